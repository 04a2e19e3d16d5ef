"""`evaluate` and `train` on broken benchmark directories: one line naming the file, non-zero exit.

Most cases break a tiny synthetic directory in the UMT layout (runs anywhere);
the rest break small copies of the real release in ../shared (skipped when absent).
Every case goes through the real loader and the real CLI entry point.
"""

from __future__ import annotations

import json
import pathlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import run_cli_in_process as cli

from highlighter.errors import InputError, UsageError
from highlighter.eval.datasets import load_dataset

DV, DA = 6, 3


def build(root: Path, name: str = "youtube") -> Path:
    """A valid dataset: domains dog (train a1 a2, val a3) and ski (train b1, val b2), 5 clips each."""
    rng = np.random.default_rng(0)
    (root / "video_features").mkdir(parents=True)
    (root / "audio_features").mkdir()
    splits = {"dog": {"train": ["a1", "a2"], "val": ["a3"]}, "ski": {"train": ["b1"], "val": ["b2"]}}
    anno = {}
    for i, vid in enumerate(["a1", "a2", "a3", "b1", "b2"]):
        np.save(root / "video_features" / f"{vid}_rgb.npy", rng.normal(size=(5, DV)).astype(np.float32))
        np.save(root / "audio_features" / f"{vid}.npy", rng.normal(size=(5, DA)).astype(np.float32))
        match = [1 if (c + i) % 3 == 0 else -1 for c in range(5)]
        anno[vid] = {"domain": "dog" if vid[0] == "a" else "ski", "match": json.dumps(match)}
        if name == "tvsum":
            anno[vid] = {"domain": anno[vid]["domain"], "anno": json.dumps([[c % 5 + 1.0] * 4 for c in range(5)])}
    (root / f"{name}_anno.json").write_text(json.dumps(anno))
    (root / "splits.json").write_text(json.dumps(splits))
    return root


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "unexpected" not in err and "allow_pickle" not in err, err
    return lines[0]


def _edit_json(path: Path, fn) -> None:
    doc = json.loads(path.read_text())
    path.write_text(json.dumps(fn(doc)))


def _set(doc: dict, vid: str, key: str, value) -> dict:
    doc[vid][key] = value
    return doc


def _npy(root: Path, vid: str = "a3", audio: bool = False) -> Path:
    return root / "audio_features" / f"{vid}.npy" if audio else root / "video_features" / f"{vid}_rgb.npy"


class Marker:
    """Unpickling this touches a file: proof that a feature file was (not) unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


def _pickled(root: Path) -> None:
    arr = np.empty((2, 2), dtype=object)
    arr[:] = Marker(root.parent / "unpickled")
    np.save(_npy(root), arr, allow_pickle=True)


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])


def _nan(root: Path) -> None:
    a = np.load(_npy(root))
    a[2, 1] = np.nan
    np.save(_npy(root), a)


# (break the directory, file named in the message, phrase)
SYNTHETIC = {
    "splits.json missing": (lambda r: (r / "splits.json").unlink(), "splits.json", "missing"),
    "splits.json broken": (lambda r: (r / "splits.json").write_text('{"dog": {'), "splits.json", "not valid JSON"),
    "splits.json a list": (lambda r: (r / "splits.json").write_text("[1, 2]"), "splits.json",
                           'expected an object {domain: {"train": [...], "val": [...]}}'),
    "splits.json domain a list": (lambda r: _edit_json(r / "splits.json", lambda d: {**d, "dog": ["a3"]}),
                                  "splits.json", "domain 'dog' should map"),
    "splits.json ids not strings": (lambda r: _edit_json(r / "splits.json", lambda d: {**d, "ski": {"val": [1]}}),
                                    "splits.json", "list of video ids"),
    "splits.json lists no videos": (lambda r: (r / "splits.json").write_text('{"dog": {"val": []}}'),
                                    "splits.json", "lists no videos"),
    "split lists only missing videos": (lambda r: [_npy(r, v).unlink() for v in ("a3", "b2")], "video_features",
                                        "none of the 2 videos"),
    "video listed twice": (lambda r: _edit_json(r / "splits.json", lambda d: {**d, "ski": {"val": ["a3"]}}),
                           "splits.json", "listed twice"),
    "annotation broken": (lambda r: (r / "youtube_anno.json").write_text('{"a3": '), "youtube_anno.json",
                          "not valid JSON"),
    "annotation not an object": (lambda r: (r / "youtube_anno.json").write_text('"x"'), "youtube_anno.json",
                                 "expected an object"),
    "annotation entry not an object": (lambda r: _edit_json(r / "youtube_anno.json", lambda d: {**d, "a3": [1]}),
                                       "youtube_anno.json", "'a3' is not an object"),
    "annotation without the video": (lambda r: _edit_json(r / "youtube_anno.json",
                                                          lambda d: {k: v for k, v in d.items() if k != "b2"}),
                                     "youtube_anno.json", "no labels for video 'b2'"),
    "match missing": (lambda r: _edit_json(r / "youtube_anno.json", lambda d: {**d, "a3": {"domain": "dog"}}),
                      "youtube_anno.json", "has no 'match' labels"),
    "match not numbers": (lambda r: _edit_json(r / "youtube_anno.json", lambda d: _set(d, "a3", "match", "[1, 'x']")),
                          "youtube_anno.json", "'match' is not a list"),
    "match not a literal": (lambda r: _edit_json(r / "youtube_anno.json", lambda d: _set(d, "a3", "match", "[1, 0")),
                            "youtube_anno.json", "'match' is not a list"),
    "match not integers": (lambda r: _edit_json(r / "youtube_anno.json",
                                                lambda d: _set(d, "a3", "match", [0.5, 1, 0, 0, 1])),
                           "youtube_anno.json", "must hold integers"),
    "match empty": (lambda r: _edit_json(r / "youtube_anno.json", lambda d: _set(d, "a3", "match", "[]")),
                    "youtube_anno.json", "is empty"),
    "labels far shorter than features": (lambda r: _edit_json(r / "youtube_anno.json",
                                                              lambda d: _set(d, "a3", "match", "[1, 0]")),
                                         "a3_rgb.npy", "do not belong together"),
    "npy zero bytes": (lambda r: _npy(r).write_bytes(b""), "a3_rgb.npy", "empty file (0 bytes)"),
    "npy is text": (lambda r: _npy(r).write_text("0.1 0.2\n0.3 0.4\n"), "a3_rgb.npy", "not a NumPy .npy"),
    "npy holds pickled objects": (_pickled, "a3_rgb.npy", "refusing to unpickle"),
    "npy truncated": (lambda r: _truncated(_npy(r)), "a3_rgb.npy", "truncated .npy file"),
    "npy header garbage": (lambda r: _npy(r).write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': 12345"),
                           "a3_rgb.npy", "corrupt .npy header"),
    "npy one-dimensional": (lambda r: np.save(_npy(r), np.ones(5, np.float32)), "a3_rgb.npy", "got shape (5,)"),
    "npy strings": (lambda r: np.save(_npy(r), np.full((5, 2), "x")), "a3_rgb.npy", "not real numbers"),
    "npy NaN": (_nan, "a3_rgb.npy", "NaN or infinite values (first at row 2)"),
    "audio npy zero bytes": (lambda r: _npy(r, audio=True).write_bytes(b""), "audio_features/a3.npy", "empty file"),
    "audio width differs": (lambda r: np.save(_npy(r, "b2", audio=True), np.ones((5, DA + 1), np.float32)),
                            "audio_features/b2.npy", "same backbone"),
}


@pytest.fixture
def broken(tmp_path, request):
    root = build(tmp_path / "yt")
    fn, where, what = SYNTHETIC[request.param]
    fn(root)
    return root, where, what


@pytest.mark.parametrize("broken", list(SYNTHETIC), indirect=True)
def test_evaluate_broken_dir_one_line(broken, monkeypatch, capsys):
    root, where, what = broken
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    code, out, err = cli(monkeypatch, capsys, "evaluate", "--data", root, "--split", "val", "--no-baselines",
                         "--method", "feature-norm")
    line = one_error_line(err)
    assert code == 1, err
    assert where in line and what in line, line
    assert "mean" not in out  # no table
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before  # inputs untouched
    assert not (root.parent / "unpickled").exists()


def test_the_synthetic_dir_is_valid(tmp_path, monkeypatch, capsys):
    """The base every case above breaks evaluates cleanly (so each failure is the break's)."""
    code, out, err = cli(monkeypatch, capsys, "evaluate", "--data", build(tmp_path / "yt"), "--split", "val")
    assert code == 0, err
    assert "feature-norm" in out and "mean" in out


def test_unknown_split_is_a_usage_error_listing_the_splits(tmp_path, monkeypatch, capsys):
    root = build(tmp_path / "yt")
    with pytest.raises(UsageError, match=r"split 'test': use train, val or all .*lists: train, val"):
        load_dataset(root, "test")
    _edit_json(root / "splits.json", lambda d: {k: {"train": v["train"]} for k, v in d.items()})
    code, _, err = cli(monkeypatch, capsys, "evaluate", "--data", root, "--split", "val")
    assert code == 2 and "no videos in split 'val' (it lists: train)" in one_error_line(err)


def test_missing_dir(tmp_path, monkeypatch, capsys):
    with pytest.raises(InputError, match="dataset directory not found"):
        load_dataset(tmp_path / "nope", "all")
    code, _, err = cli(monkeypatch, capsys, "evaluate", "--data", tmp_path / "nope")
    assert code == 1 and "nope: dataset directory not found" in one_error_line(err)


@pytest.mark.parametrize("name", ["youtube", "tvsum"])
def test_identical_labels_make_evaluation_impossible(tmp_path, monkeypatch, capsys, name):
    root = build(tmp_path / name, name)
    key, flat = ("match", "[-1, -1, -1, -1, -1]") if name == "youtube" else ("anno", json.dumps([[3.0, 3.0]] * 5))
    _edit_json(root / f"{name}_anno.json", lambda d: {k: {**v, key: flat} for k, v in d.items()})
    code, out, err = cli(monkeypatch, capsys, "evaluate", "--data", root, "--split", "val")
    line = one_error_line(err)
    assert code == 1 and f"{name}_anno.json" in line and "evaluation is impossible" in line, line
    assert "0.00" not in out and "mean" not in out


def test_train_reports_the_same_way(tmp_path, monkeypatch, capsys):
    root = build(tmp_path / "yt")
    out = tmp_path / "w.safetensors"
    _npy(root, "a1").write_bytes(b"")
    code, _, err = cli(monkeypatch, capsys, "train", "--method", "rasl", "--data", f"{root}:train", "-o", out)
    assert code == 1 and "a1_rgb.npy: empty file (0 bytes)" in one_error_line(err)
    code, _, err = cli(monkeypatch, capsys, "train", "--method", "rasl", "--data", f"{root}:test", "-o", out)
    assert code == 1 and "to pick a split write DIR:train" in one_error_line(err)
    assert not out.exists() and not list(tmp_path.glob("*.part"))


# --- small copies of the real release (../shared) -------------------------------------------------


def real_subset(shared_dir: Path, name: str, dst: Path, n: int = 3) -> tuple[Path, list[str]]:
    """The first ``n`` val-or-train videos of one domain of the real release, copied into ``dst``."""
    src = shared_dir / "data" / name
    if not (src / "splits.json").is_file():
        pytest.skip(f"{src} not present")
    splits = json.loads((src / "splits.json").read_text())
    domain = sorted(splits)[0]
    vids = [v for v in splits[domain]["train"] if (src / "video_features" / f"{v}_rgb.npy").is_file()][:n]
    for sub, suffix in (("video_features", "_rgb"), ("audio_features", "")):
        (dst / sub).mkdir(parents=True)
        for v in vids:
            shutil.copyfile(src / sub / f"{v}{suffix}.npy", dst / sub / f"{v}{suffix}.npy")
    anno = json.loads((src / f"{name}_anno.json").read_text())
    (dst / f"{name}_anno.json").write_text(json.dumps({v: anno[v] for v in vids}))
    (dst / "splits.json").write_text(json.dumps({domain: {"train": vids}}))
    return dst, vids


def _drop_rows(path: Path, key: str, vid: str, keep: float) -> None:
    def cut(d):
        rows = d[vid][key] if isinstance(d[vid][key], list) else json.loads(d[vid][key])
        d[vid][key] = rows[: int(len(rows) * keep)]
        return d

    _edit_json(path, cut)


REAL = {
    "intact": (lambda r, v: None, None),
    "feature file cut short": (lambda r, v: _truncated(r / "video_features" / f"{v[1]}_rgb.npy"),
                               "truncated .npy file"),
    "audio file replaced by text": (lambda r, v: (r / "audio_features" / f"{v[0]}.npy").write_text("nan\n"),
                                    "not a NumPy .npy"),
    "labels of a video deleted": (lambda r, v: _edit_json(r / f"{r.name}_anno.json",
                                                          lambda d: {**d, v[0]: {"domain": d[v[0]]["domain"]}}),
                                  "has no '"),
    "half the label rows lost": (lambda r, v: _drop_rows(r / f"{r.name}_anno.json",
                                                         "match" if r.name == "youtube" else "anno", v[2], 0.5),
                                 "do not belong together"),
}


@pytest.mark.shared
@pytest.mark.parametrize("name", ["youtube", "tvsum"])
@pytest.mark.parametrize("case", list(REAL))
def test_real_release_copies(shared_dir, tmp_path, monkeypatch, capsys, name, case):
    root, vids = real_subset(shared_dir, name, tmp_path / name)
    fn, what = REAL[case]
    fn(root, vids)
    code, out, err = cli(monkeypatch, capsys, "evaluate", "--data", root, "--no-baselines", "--method", "feature-norm")
    if what is None:
        assert code == 0 and "feature-norm" in out, err
        return
    line = one_error_line(err)
    assert code == 1 and str(root) in line and what in line, line


def test_npy_header_claiming_a_huge_array_is_refused_before_allocating(tmp_path):
    from numpy.lib import format as npy

    root = build(tmp_path / "yt")
    with open(_npy(root), "wb") as f:
        npy.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (10**11, 1024)})
        f.write(b"\0" * 64)
    with pytest.raises(InputError, match=r"a3_rgb.npy: truncated .npy file \(header says shape \(100000000000, 1024"):
        load_dataset(root, "val")


def test_message_keeps_brackets_in_paths(tmp_path, monkeypatch, capsys):
    root = build(tmp_path / "[set 1]")
    _npy(root).write_bytes(b"")
    code, _, err = cli(monkeypatch, capsys, "evaluate", "--data", root, "--split", "val")
    assert code == 1 and f"{root}/video_features/a3_rgb.npy: empty file" in one_error_line(err)
