"""Generated bad inputs for tests/test_fuzz.py: media, names, JSON, checkpoints, benchmark dirs.

Everything is built once per module under one folder (`build_world`), small enough to
hash the whole tree before and after every case (that is how the fuzz test proves
inputs are unchanged and nothing is left behind). Pickle "bombs" only ever *create a
folder* (``os.mkdir`` of a marker path) when unpickled, so a regression is visible and
harmless.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import media

# Odd file names (without suffix): id -> stem. Spaces, unicode, quotes, a leading dash,
# rich markup, a newline, 240+ chars, shell syntax and format specifiers.
ODD_NAMES = {
    "space": "my holiday video",
    "unicode": "vidéo_日本語_🎬",
    "quotes": "it's \"quoted\"",
    "dash": "-dash",
    "markup": "clip [/] [bold]x [red]y",  # "clip [" is a folder: a name cannot hold "/", a path can
    "newline": "new\nline",
    "long": "L" * 240,
    "shell": "$(touch pwned) `id` ;rm",
    "format": "100% {0} %s",
}


def name_forms(name: str) -> list[str]:
    """Ways an error line may show ``name``: as is, or escaped (newlines as \\n, repr)."""
    return list(dict.fromkeys([name, name.replace("\n", "\\n"), repr(name)[1:-1]]))


class Bomb:
    """Unpickling this runs ``os.mkdir(marker)``: proof that a file was unpickled unsafely."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@dataclass
class World:
    base: Path  # everything below is snapshotted around each case
    media: Path
    odd: Path  # odd-named copies of good/truncated media, JSON, weights, dataset dirs
    fifo: Path  # named pipes: only subprocess cases touch this folder
    json: Path
    weights: Path
    data: Path
    markers: Path  # a pickle bomb that goes off creates a folder here
    cache: Path  # HIGHLIGHTER_CACHE
    tmp: Path  # TMPDIR during a case: must be empty afterwards
    work: Path  # one fresh cwd per case
    checkpoints: dict = field(default_factory=dict)  # id -> bad checkpoint file (weights import)
    detector_weights: dict = field(default_factory=dict)  # id -> bad detector weights (--weights)
    datasets: dict = field(default_factory=dict)  # id -> (benchmark dir, name the error must show)

    def m(self, name: str) -> str:
        return str(self.media / name)


# ----------------------------------------------------------------------------- media


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _rng_bytes(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size=n, dtype=np.uint8).tobytes()


def build_media(d: Path) -> None:
    """Good, truncated, corrupt, lying and wrong-type media plus links and folders."""
    good = media.make_video(d / "good.mp4", 2.0, size=(64, 48))
    data = good.read_bytes()
    media.truncate(good, d / "half.mp4", 0.5)
    _write(d / "head.mp4", data[:1024])
    _write(d / "zero.mp4", b"")
    media.write_not_media(d / "text.mp4")
    _write(d / "random.mp4", _rng_bytes(64 * 1024))
    # a container that lies: a valid mp4 'ftyp' box, then noise
    _write(d / "ftyp-noise.mp4", data[:32] + _rng_bytes(32 * 1024, 1))
    # Matroska magic, then noise
    _write(d / "ebml-noise.mkv", bytes.fromhex("1a45dfa3") + _rng_bytes(16 * 1024, 2))
    # the index (moov box) zeroed: the data is there, nothing says where (ffmpeg finds a renamed one)
    i = data.rfind(b"moov") - 4
    _write(d / "no-moov.mp4", data[:i] + bytes(len(data) - i))
    # index first, then half the media data gone (probe sees 2 s, decoding runs out)
    fs = d / "faststart.mp4"
    media._run(["-i", str(good), "-c", "copy", "-movflags", "+faststart", str(fs)])
    fsd = fs.read_bytes()
    cut = (fsd.find(b"mdat") + len(fsd)) // 2
    _write(d / "index-first-half.mp4", fsd[:cut])
    fs.unlink()
    media.make_audio(d / "song.m4a", 1.0)  # media, but no video stream
    media.make_audio(d / "song-as-video.mp4", 1.0)
    _write(d / "json.mp4", b'{"this": "is json"}\n')
    _write(d / "gzip.mp4", bytes.fromhex("1f8b0800000000000003") + _rng_bytes(512, 3))
    (d / "folder.mp4").mkdir()
    (d / "empty-dir").mkdir()
    # symlinks: a loop on itself, a two-link cycle, a dangling link, a folder that contains itself
    os.symlink("loop.mp4", d / "loop.mp4")
    os.symlink("cycle-b.mp4", d / "cycle-a.mp4")
    os.symlink("cycle-a.mp4", d / "cycle-b.mp4")
    os.symlink("does-not-exist.mp4", d / "dangling.mp4")
    loopdir = d / "loopdir"
    loopdir.mkdir()
    os.symlink(".", loopdir / "again")
    os.symlink("..", loopdir / "up")
    media.truncate(good, loopdir / "cut.mp4", 0.4)
    onlyloop = d / "onlyloop"
    onlyloop.mkdir()
    os.symlink(".", onlyloop / "again")
    os.symlink("self.mp4", onlyloop / "self.mp4")
    bad = d / "badfolder"
    bad.mkdir()
    media.truncate(good, bad / "a.mp4", 0.3)
    media.write_not_media(bad / "b.mkv")


def build_odd(d: Path, good: Path, half: Path) -> None:
    """Per odd name: a good copy, a truncated copy, a bad JSON, a bad checkpoint, an empty dataset dir."""
    for stem in ODD_NAMES.values():
        (d / stem).parent.mkdir(parents=True, exist_ok=True)
        _write(d / f"{stem}.mp4", good.read_bytes())
        _write(d / f"{stem}-cut.mp4", half.read_bytes())
        _write(d / f"{stem}.json", b"{ not json")
        _write(d / f"{stem}.pt", b"not a checkpoint\n" * 8)
        (d / f"{stem}-data").mkdir()


def build_fifos(d: Path) -> None:
    """Named pipes nobody writes to: opening one for reading blocks forever."""
    for name in ("pipe.mp4", "pipe.json", "pipe.pt"):
        os.mkfifo(d / name)
    (d / "dir").mkdir()
    os.mkfifo(d / "dir" / "inside.mp4")
    splits = make_dataset(d / "ds") / "splits.json"  # a required file: a feature pipe would just be skipped
    splits.unlink()
    os.mkfifo(splits)


# ----------------------------------------------------------------------------- trim --from JSON


def from_variants(valid: dict) -> dict[str, bytes | str]:
    """Broken copies of a valid detect result: id -> file content."""

    def mut(fn) -> str:
        d = json.loads(json.dumps(valid))
        fn(d)
        return json.dumps(d)  # allow_nan: NaN/Infinity are written as JavaScript literals

    def seg(**kw):
        def f(d):
            d["segments"][0].update(kw)
        return f

    out: dict[str, bytes | str] = {
        "not-json": "{ this is not json",
        "empty": "",
        "binary": bytes(range(256)) * 4,
        "array": "[]",
        "null": "null",
        "string": '"hello"',
        "deep-nesting": "[" * 200_000 + "]" * 200_000,
        "schema-2": mut(lambda d: d.update(schema_version="2.0")),
        "no-schema": mut(lambda d: d.pop("schema_version")),
        "no-segments": mut(lambda d: d.pop("segments")),
        "segments-not-list": mut(lambda d: d.update(segments="abc")),
        "segment-not-object": mut(lambda d: d.update(segments=[1, 2])),
        "empty-segments": mut(lambda d: d.update(segments=[])),
        "nan-segment": mut(seg(start=float("nan"))),
        "inf-segment": mut(seg(end=float("inf"))),
        "negative-start": mut(seg(start=-5.0, end=1.0)),
        "reversed-segment": mut(seg(start=1.5, end=0.5)),
        "zero-length-segment": mut(seg(start=1.0, end=1.0)),
        "beyond-duration": mut(seg(start=1000.0, end=1010.0)),
        "huge-time": mut(seg(start=1e300, end=1e308)),
        "string-time": mut(seg(start="abc")),
        "null-time": mut(seg(end=None)),
        "rank-string": mut(seg(rank="first")),
        "no-video": mut(lambda d: d.pop("video")),
        "video-not-object": mut(lambda d: d.update(video=[1])),
        "other-video": mut(lambda d: d["video"].update(name="other.mp4", size_bytes=12345)),
        "selection-unknown-key": mut(lambda d: d["selection"].update(bogus=1)),
        "clips-not-list": mut(lambda d: d.update(clips=7)),
        "clip-missing-score": mut(lambda d: d["clips"][0].pop("score")),
        "clip-string-score": mut(lambda d: d["clips"][0].update(score="high")),
        "clip-nan-score": mut(lambda d: d["clips"][0].update(score=float("nan"))),
        "clip-nan-start": mut(lambda d: d["clips"][0].update(start=float("nan"))),
        "negative-duration": mut(lambda d: d["video"].update(duration=-1.0)),
        "nan-clip-seconds": mut(lambda d: d.update(clip_seconds=float("nan"))),
    }
    return out


# with --top given, trim re-selects from the stored clips: these break only that path
FROM_RESELECT = ("clip-nan-score", "clip-nan-start", "negative-duration", "clips-not-list", "clip-missing-score",
                 "clip-string-score", "nan-clip-seconds")


# ----------------------------------------------------------------------------- checkpoints


# weights name -> the suffix of its published file (what a user would import)
WEIGHT_NAMES = {
    "i3d-rgb-imagenet-kinetics": ".pt",
    "panns_cnn14": ".pth",
    "mockingjay": ".ckpt",
    "r3d18-kinetics400": ".pth",
    "swin-base-in22k-in1k": ".safetensors",
    "yamnet": ".tflite",
}
TORCH_WEIGHTS = ("i3d-rgb-imagenet-kinetics", "panns_cnn14", "mockingjay", "r3d18-kinetics400")


def _safetensors_raw(header: bytes, payload: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + payload


def build_weights(d: Path, markers: Path) -> dict[str, Path]:
    """Bad checkpoint files: id -> path (ids are 'KIND' or 'KIND-NAME')."""
    import pickle

    import torch
    from safetensors.torch import save_file

    files: dict[str, Path] = {}
    for name, suffix in WEIGHT_NAMES.items():
        files[f"zero-{name}"] = _write(d / f"zero-{name}{suffix}", b"")
        files[f"text-{name}"] = _write(d / f"text-{name}{suffix}", b"<html>404 Not Found</html>\n" * 20)
        files[f"random-{name}"] = _write(d / f"random-{name}{suffix}", _rng_bytes(48 * 1024, 7))
    for name in TORCH_WEIGHTS:
        suffix = WEIGHT_NAMES[name]
        raw = d / f"pickle-bomb-{name}{suffix}"
        raw.write_bytes(pickle.dumps({"state_dict": Bomb(markers / f"raw-{name}")}, protocol=2))
        files[f"pickle-bomb-{name}"] = raw
        zipped = d / f"torch-bomb-{name}{suffix}"
        torch.save({"model": Bomb(markers / f"zip-{name}")}, zipped)
        files[f"torch-bomb-{name}"] = zipped
        wrong = d / f"wrong-keys-{name}{suffix}"
        torch.save({"foo.weight": torch.zeros(3, 3)}, wrong)
        files[f"wrong-keys-{name}"] = wrong
        cut = d / f"truncated-{name}{suffix}"
        tmp = d / "tmp-full.pt"
        torch.save({"conv.weight": torch.zeros(64, 64)}, tmp)
        cut.write_bytes(tmp.read_bytes()[: tmp.stat().st_size // 2])
        tmp.unlink()
        files[f"truncated-{name}"] = cut
    sw = "swin-base-in22k-in1k"
    files["huge-header-" + sw] = _write(d / "huge-header.safetensors", struct.pack("<Q", 1 << 62) + b"{}")
    files["bad-header-" + sw] = _write(d / "bad-header.safetensors", _safetensors_raw(b"{not json at all"))
    files["lying-offsets-" + sw] = _write(d / "lying-offsets.safetensors", _safetensors_raw(
        json.dumps({"w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 4000000]}}).encode(), b"\0" * 16))
    wrong = d / "wrong-keys.safetensors"
    save_file({"foo": torch.zeros(2, 2)}, str(wrong))
    files["wrong-keys-" + sw] = wrong
    files["wrong-size-yamnet"] = _write(d / "wrong-size.tflite", b"TFL3" + _rng_bytes(4096, 8))
    (d / "folder.pt").mkdir()
    files["folder"] = d / "folder.pt"
    os.symlink("loop.pt", d / "loop.pt")
    files["loop"] = d / "loop.pt"
    return files


def build_detector_weights(d: Path, markers: Path) -> dict[str, Path]:
    """Bad detector weights for --weights (detect, evaluate): id -> path."""
    import pickle

    files = {
        "zero": _write(d / "zero.safetensors", b""),
        "text": _write(d / "text.safetensors", b"not weights\n" * 10),
        "pickle": d / "bomb.safetensors",
        "huge-header": _write(d / "huge.safetensors", struct.pack("<Q", 1 << 62) + b"{}"),
        "no-metadata": d / "nometa.safetensors",
    }
    files["pickle"].write_bytes(pickle.dumps(Bomb(markers / "detector-weights"), protocol=2))
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(files["no-metadata"]))
    return files


# ----------------------------------------------------------------------------- benchmark dirs


def make_dataset(root: Path, name: str = "youtube", n: int = 4, dv: int = 16, da: int = 24, seed: int = 0) -> Path:
    """A small valid dataset in the UMT feature layout (half train, half val, one domain)."""
    rng = np.random.default_rng(seed)
    (root / "video_features").mkdir(parents=True)
    (root / "audio_features").mkdir()
    anno, splits = {}, {"dom": {"train": [], "val": []}}
    for i in range(n):
        vid = f"{name[:2]}{i}"
        t = 10
        np.save(root / "video_features" / f"{vid}_rgb.npy", np.abs(rng.normal(size=(t, dv))).astype(np.float32))
        np.save(root / "audio_features" / f"{vid}.npy", np.abs(rng.normal(size=(t, da))).astype(np.float32))
        if name == "youtube":
            anno[vid] = {"match": json.dumps([int(x) for x in rng.integers(-1, 2, size=t)])}
        else:
            anno[vid] = {"anno": json.dumps(rng.integers(1, 6, size=(t, 3)).tolist())}
        splits["dom"]["train" if i < n // 2 else "val"].append(vid)
    (root / f"{name}_anno.json").write_text(json.dumps(anno))
    (root / "splits.json").write_text(json.dumps(splits))
    return root


def build_datasets(d: Path, markers: Path) -> dict[str, tuple[Path, str]]:
    """Bad benchmark dirs: id -> (dir, the name the error line must contain)."""
    out: dict[str, tuple[Path, str]] = {}

    def ds(key: str, needle: str | None = None) -> Path:
        root = make_dataset(d / key)
        out[key] = (root, needle or key)
        return root

    def edit_json(path: Path, fn) -> None:
        doc = json.loads(path.read_text())
        fn(doc)
        path.write_text(json.dumps(doc))

    valid = make_dataset(d / "valid")
    out["valid"] = (valid, "valid")
    (d / "empty").mkdir()
    out["empty"] = (d / "empty", "empty")
    _write(d / "a-file", b"not a dir\n")
    out["file"] = (d / "a-file", "a-file")
    out["missing"] = (d / "missing-dir", "missing-dir")
    (ds("anno-not-json", "youtube_anno.json") / "youtube_anno.json").write_text("{oops")
    (ds("anno-list", "youtube_anno.json") / "youtube_anno.json").write_text("[1, 2, 3]")
    (ds("anno-binary", "youtube_anno.json") / "youtube_anno.json").write_bytes(_rng_bytes(300, 4))
    (ds("no-splits", "splits.json") / "splits.json").unlink()
    (ds("splits-not-json", "splits.json") / "splits.json").write_text("splits!")
    (ds("splits-list", "splits.json") / "splits.json").write_text('["yo0", "yo1"]')
    (ds("splits-domain-list", "splits.json") / "splits.json").write_text('{"dom": ["yo0", "yo1"]}')
    (ds("splits-empty", "splits.json") / "splits.json").write_text('{"dom": {"train": [], "val": []}}')
    (ds("splits-ids-not-strings", "splits.json") / "splits.json").write_text(
        '{"dom": {"train": [1, null], "val": [{}]}}')
    vf = "video_features"
    _write(ds("npy-garbage", "yo2_rgb.npy") / vf / "yo2_rgb.npy", _rng_bytes(2000, 5))
    _write(ds("npy-empty-file", "yo2_rgb.npy") / vf / "yo2_rgb.npy", b"")
    np.save(ds("npy-pickle", "yo2_rgb.npy") / vf / "yo2_rgb.npy",
            np.array([Bomb(markers / "npy-pickle"), 1], dtype=object), allow_pickle=True)
    np.save(ds("npy-1d", "yo2_rgb.npy") / vf / "yo2_rgb.npy", np.ones(10, dtype=np.float32))
    np.save(ds("npy-3d", "yo2_rgb.npy") / vf / "yo2_rgb.npy", np.ones((10, 4, 4), dtype=np.float32))
    np.save(ds("npy-zero-rows", "yo2_rgb.npy") / vf / "yo2_rgb.npy", np.ones((0, 16), dtype=np.float32))
    np.save(ds("npy-nan", "yo2_rgb.npy") / vf / "yo2_rgb.npy", np.full((10, 16), np.nan, dtype=np.float32))
    np.save(ds("npy-strings", "yo2_rgb.npy") / vf / "yo2_rgb.npy", np.array([["a"] * 16] * 10))
    np.save(ds("npy-dims-mismatch", "yo2_rgb.npy") / vf / "yo2_rgb.npy", np.ones((10, 7), dtype=np.float32))
    _write(ds("audio-garbage", "yo2.npy") / "audio_features" / "yo2.npy", _rng_bytes(1000, 6))
    edit_json(ds("match-garbage", "yo2") / "youtube_anno.json", lambda a: a["yo2"].update(match="[1, 2,"))
    edit_json(ds("match-missing", "yo2") / "youtube_anno.json", lambda a: a.update(yo2={}))
    edit_json(ds("match-nested", "yo2") / "youtube_anno.json", lambda a: a["yo2"].update(match="(" * 500 + ")" * 500))
    edit_json(ds("match-strings", "yo2") / "youtube_anno.json", lambda a: a["yo2"].update(match='["a", "b"]'))
    edit_json(ds("anno-entry-not-object", "yo2") / "youtube_anno.json", lambda a: a.update(yo2=[1, 2]))
    root = make_dataset(d / "tvsum-wrong-shape", "tvsum")
    edit_json(root / "tvsum_anno.json", lambda a: a["tv2"].update(anno="[1, 2, 3]"))
    out["tvsum-wrong-shape"] = (root, "tv2")
    root = ds("all-features-missing", "all-features-missing")
    for f in (root / vf).iterdir():
        f.unlink()
    root = ds("features-loop")
    (root / vf).rename(root / "old")
    os.symlink(vf, root / vf)  # video_features -> itself
    return out


# ----------------------------------------------------------------------------- snapshots


_HASHES: dict[tuple, str] = {}  # (path, inode, size, mtime, ctime) -> sha256: unchanged files are not re-read


def _sha256(p: Path, st: os.stat_result) -> str:
    key = (str(p), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)  # any write changes ctime
    if key not in _HASHES:
        _HASHES[key] = hashlib.sha256(p.read_bytes()).hexdigest()
    return _HASHES[key]


def snapshot(base: Path, roots: set[Path] | None = None, shallow: set[Path] = frozenset()) -> dict[str, str]:
    """Path relative to ``base`` -> content fingerprint, for every entry under ``roots`` (default: all of
    ``base``) and directly in ``shallow``. Links and pipes are not followed or opened."""
    out: dict[str, str] = {}
    for root in sorted(shallow):
        out.update(_entries(base, root, [(str(root), sorted(os.listdir(root)))]))
    for root in sorted(roots or {base}):
        out.update(_entries(base, root, ((d, ds + fs) for d, ds, fs in os.walk(root, followlinks=False))))
    return out


def _entries(base: Path, root: Path, listing) -> dict[str, str]:
    out: dict[str, str] = {}
    for dirpath, names in listing:
        for name in names:
            p = Path(dirpath) / name
            st = os.lstat(p)
            rel = str(p.relative_to(base))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = "link:" + os.readlink(p)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = "dir"
            elif stat.S_ISREG(st.st_mode):
                out[rel] = "file:" + _sha256(p, st)
            else:
                out[rel] = f"special:{stat.S_IFMT(st.st_mode)}"
    return out


def build_world(base: Path) -> World:
    w = World(base=base, media=base / "media", odd=base / "odd", fifo=base / "fifo", json=base / "json",
              weights=base / "weights", data=base / "data", markers=base / "markers", cache=base / "cache",
              tmp=base / "tmp", work=base / "work")
    for d in (w.media, w.odd, w.fifo, w.json, w.weights, w.data, w.markers, w.cache, w.tmp, w.work):
        d.mkdir(parents=True, exist_ok=True)
    build_media(w.media)
    build_odd(w.odd, w.media / "good.mp4", w.media / "half.mp4")
    build_fifos(w.fifo)
    w.checkpoints = build_weights(w.weights, w.markers)
    w.detector_weights = build_detector_weights(w.weights, w.markers)
    w.datasets = build_datasets(w.data, w.markers)
    return w
