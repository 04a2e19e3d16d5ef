"""Benchmark datasets in the layout of the public UMT feature release.

A dataset directory holds::

    video_features/{vid}_rgb.npy   visual FVS, one row per clip (I3D RGB, 1024-d)
    audio_features/{vid}.npy       audio FVS, same clip grid (PANN CNN14, 2048-d)
    {name}_anno.json               labels per video (name = a `benchmarks.Benchmark`: tvsum | youtube)
    splits.json                    {domain: {"train": [vid...], "val": [vid...]}}

Labels differ per benchmark; each `Benchmark` entry says how they are read
(``youtube``: ``match`` per clip; ``tvsum``: clips x 20 annotator scores, stored as
(annotators, clips)).

Feature and label counts can differ by a row or two (the release has such
videos); every array of a video is truncated to the shortest. A larger gap means
the files do not belong together and is an error. Videos listed in splits.json
without features are skipped and counted in ``Dataset.missing``.

These directories come from elsewhere, so every piece is checked on the way in:
a malformed file raises one `InputError` naming the file, the problem and what to
do. Arrays are read with ``allow_pickle=False``: a feature file is never unpickled.
"""

from __future__ import annotations

import ast
import json
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from highlighter.errors import InputError, UsageError
from highlighter.eval.benchmarks import Benchmark, benchmarks, get_benchmark
from highlighter.methods.data import SPLITS, VideoFeatures  # noqa: F401  (re-exported: the API names them here)

Split = Literal["train", "val", "all"]
MAX_ROW_GAP = 2  # rows by which features and labels of one video may differ
NPY_MAGIC = b"\x93NUMPY"


@dataclass
class Dataset:
    name: str  # "tvsum" | "youtube"
    root: Path
    split: str
    videos: list[VideoFeatures]
    missing: list[str] = field(default_factory=list)  # listed but without features

    def domains(self) -> list[str]:
        return sorted({v.domain for v in self.videos})

    def by_domain(self) -> dict[str, list[VideoFeatures]]:
        out: dict[str, list[VideoFeatures]] = {}
        for v in self.videos:
            out.setdefault(v.domain, []).append(v)
        return dict(sorted(out.items()))

    @property
    def benchmark(self) -> Benchmark:
        return get_benchmark(self.name)

    @property
    def anno_path(self) -> Path:
        return self.root / self.benchmark.anno_file


def detect_name(root: Path) -> str:
    """The benchmark a directory holds, from its ``{name}_anno.json``."""
    known = benchmarks()
    for b in known:
        if (root / b.anno_file).is_file():
            return b.name
    raise InputError(
        f"{root}: not a benchmark directory (no {' or '.join(b.anno_file for b in known)}); "
        "point --data at a folder in the UMT feature layout"
    )


def require_regular(path: Path, fix: str) -> None:
    """InputError unless ``path`` (when it exists) is a regular file: opening a named pipe blocks for ever."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # missing or unreadable: the caller's open() says which
    if not stat.S_ISREG(mode):
        raise InputError(f"{path}: not a regular file (a directory, pipe or device); {fix}")


def read_json(path: Path):
    """A JSON document, or one InputError line saying why it cannot be read."""
    require_regular(path, "restore the file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: missing from the dataset directory; restore it (the UMT layout needs it)") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); restore the file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 JSON file; restore the file") from None
    except (OSError, RecursionError) as exc:
        raise InputError(f"{path}: cannot be read ({type(exc).__name__}); restore the file") from None


def read_splits(root: Path) -> dict[str, dict[str, list[str]]]:
    """``splits.json`` checked to be ``{domain: {part: [vid, ...]}}``."""
    path = root / "splits.json"
    splits = read_json(path)
    parts_shape = '{"train": [...], "val": [...]}'  # no [word] in messages: rich would read it as markup
    if not isinstance(splits, dict):
        raise InputError(f"{path}: expected an object {{domain: {parts_shape}}}, got {type(splits).__name__}")
    for domain, parts in splits.items():
        if not isinstance(parts, dict):
            raise InputError(f"{path}: domain '{domain}' should map to {parts_shape}, got {type(parts).__name__}")
        for part, vids in parts.items():
            if not isinstance(vids, list) or not all(isinstance(v, str) for v in vids):
                raise InputError(f"{path}: '{domain}' -> '{part}' should be a list of video ids (strings)")
    return splits


def _split_ids(splits: dict, split: str) -> list[tuple[str, str, str]]:
    wanted = ("train", "val") if split == "all" else (split,)
    out = []
    for domain, parts in splits.items():
        for part in wanted:
            for vid in parts.get(part, []):
                out.append((vid, domain, part))
    return out


def _check_split(root: Path, splits: dict, split: str) -> list[tuple[str, str, str]]:
    """The (vid, domain, part) of ``split``; a split the file does not have is a usage error."""
    path = root / "splits.json"
    have = sorted({p for parts in splits.values() for p, vids in parts.items() if vids})
    if not have:
        raise InputError(f"{path}: lists no videos; list each video id under its domain's train or val")
    listed = ", ".join(have)
    if split not in SPLITS:
        raise UsageError(f"split '{split}': use train, val or all ({path} lists: {listed})")
    ids = _split_ids(splits, split)
    if not ids:
        raise UsageError(f"{path}: no videos in split '{split}' (it lists: {listed}); choose one of those or all")
    seen: dict[str, str] = {}
    for vid, domain, part in ids:
        if vid in seen:
            raise InputError(f"{path}: video '{vid}' is listed twice ({seen[vid]} and {domain}/{part}); list it once")
        seen[vid] = f"{domain}/{part}"
    return ids


def read_annotations(root: Path, name: str) -> dict:
    """``{name}_anno.json`` checked to be an object keyed by video id."""
    path = root / get_benchmark(name).anno_file
    anno = read_json(path)
    if not isinstance(anno, dict):
        raise InputError(f"{path}: expected an object {{video_id: {{...}}}}, got {type(anno).__name__}")
    return anno


def _parse(value):
    """Annotation fields are stored as strings of Python/JSON literals (or as lists)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return ast.literal_eval(value)


def _labels(bench: Benchmark, entry, vid: str, path: Path) -> np.ndarray:
    """Labels of one annotation entry, checked here and converted by the benchmark's ``to_labels``."""
    key = bench.label_key
    if not isinstance(entry, dict):
        raise InputError(f"{path}: entry of video '{vid}' is not an object; restore the annotation file")
    if key not in entry:
        raise InputError(f"{path}: video '{vid}' has no '{key}' labels; restore the annotation file")
    try:
        arr = np.asarray(_parse(entry[key]), dtype=np.float64)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        arr = None
    if arr is None or arr.ndim != bench.label_ndim or not np.all(np.isfinite(arr)):
        raise InputError(f"{path}: video '{vid}': '{key}' is not {bench.label_form} (finite numbers); "
                         "restore the annotation file")
    if arr.size == 0:
        raise InputError(f"{path}: video '{vid}': '{key}' is empty; restore the annotation file")
    return bench.to_labels(arr, f"{path}: video '{vid}'")


def _npy_header(path: Path, fix: str) -> tuple[tuple, np.dtype]:
    """Shape and dtype from a .npy header, checked against the file size before any allocation."""
    from numpy.lib import format as npy

    require_regular(path, fix)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            if size and f.read(len(NPY_MAGIC)) != NPY_MAGIC:
                raise InputError(f"{path}: not a NumPy .npy array (no .npy header); {fix}")
            f.seek(0)
            if size == 0:
                raise InputError(f"{path}: empty file (0 bytes); {fix}")
            version = npy.read_magic(f)
            read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            shape, _, dtype = read(f)
            data_bytes = size - f.tell()
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__}); {fix}") from None
    except ValueError:
        raise InputError(f"{path}: corrupt .npy header; {fix}") from None
    if dtype.hasobject:
        raise InputError(f"{path}: holds Python objects, not numbers (refusing to unpickle); {fix}")
    if data_bytes < int(np.prod(shape, dtype=np.float64)) * dtype.itemsize:
        raise InputError(f"{path}: truncated .npy file (header says shape {shape}); {fix}")
    return shape, dtype


def load_array(path: Path) -> np.ndarray:
    """A feature file as a finite float32 (clips, dims) array, never unpickled."""
    fix = "re-extract the features or replace the file"
    shape, dtype = _npy_header(path, fix)
    if dtype.kind not in "fiu":
        raise InputError(f"{path}: holds {dtype} values, not real numbers; {fix}")
    if len(shape) != 2 or 0 in shape:
        raise InputError(f"{path}: expected a (clips, features) array, got shape {shape}; {fix}")
    try:
        arr = np.load(path, allow_pickle=False).astype(np.float32)
    except (ValueError, OSError, EOFError, MemoryError):
        raise InputError(f"{path}: truncated or corrupt .npy file; {fix}") from None
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise InputError(f"{path}: NaN or infinite values (first at row {int(np.argmax(bad))}); {fix}")
    return arr


def _aligned(video: VideoFeatures, vpath: Path, apath: Path, anno_path: Path) -> VideoFeatures:
    """Truncate every array to the shortest; refuse a gap of more than `MAX_ROW_GAP` rows."""
    counts = {vpath: video.visual.shape[0], anno_path: video.labels.shape[-1]}
    if video.audio is not None:
        counts[apath] = video.audio.shape[0]
    lo, hi = min(counts.values()), max(counts.values())
    if hi - lo > MAX_ROW_GAP:
        longest = max(counts, key=counts.get)
        shortest = min(counts, key=counts.get)
        raise InputError(
            f"{longest}: {hi} clips for video '{video.vid}' but {shortest} has {lo} "
            f"(at most {MAX_ROW_GAP} may differ); these files do not belong together: re-extract or fix the labels"
        )
    video.visual, video.labels = video.visual[:lo], video.labels[..., :lo]
    video.audio = None if video.audio is None else video.audio[:lo]
    return video


def _check_dims(videos: list[VideoFeatures], root: Path) -> None:
    """Every video of a dataset must come from the same backbones (same feature widths)."""
    for kind, folder, suffix in (("visual", "video_features", "_rgb"), ("audio", "audio_features", "")):
        arrays = [(v.vid, getattr(v, kind)) for v in videos if getattr(v, kind) is not None]
        if not arrays:
            continue
        dim = arrays[0][1].shape[1]
        for vid, a in arrays:
            if a.shape[1] != dim:
                raise InputError(
                    f"{root / folder / f'{vid}{suffix}.npy'}: {a.shape[1]} features per clip but "
                    f"'{arrays[0][0]}' has {dim}; every video must use the same backbone: re-extract it"
                )


def load_dataset(root: str | Path, split: Split = "all", name: str | None = None) -> Dataset:
    """Load features and labels of one split (``train``, ``val`` or ``all``)."""
    root = Path(root)
    if not root.is_dir():
        hint = " (to pick a split write DIR:train, DIR:val or DIR:all)" if ":" in root.name else ""
        raise InputError(
            f"{root}: dataset directory not found{hint}; point --data at a folder in the UMT feature layout"
        )
    name = name or detect_name(root)
    bench = get_benchmark(name)
    anno_path = root / bench.anno_file
    anno = read_annotations(root, name)
    ids = _check_split(root, read_splits(root), split)
    videos, missing = [], []
    for vid, domain, part in ids:
        vpath = root / "video_features" / f"{vid}_rgb.npy"
        if not vpath.is_file():
            missing.append(vid)
            continue
        if vid not in anno:
            raise InputError(f"{anno_path}: no labels for video '{vid}' (it has features and is in splits.json); "
                             "restore the annotation file or drop the video from splits.json")
        labels = _labels(bench, anno[vid], vid, anno_path)
        visual = load_array(vpath)
        apath = root / "audio_features" / f"{vid}.npy"
        audio = load_array(apath) if apath.is_file() else None
        video = VideoFeatures(vid=vid, domain=domain, split=part, visual=visual, audio=audio, labels=labels)
        videos.append(_aligned(video, vpath, apath, anno_path))
    if not videos:
        raise InputError(
            f"{root / 'video_features'}: none of the {len(ids)} videos of split '{split}' has a feature file "
            f"(e.g. {ids[0][0]}_rgb.npy); extract the features or fix splits.json"
        )
    _check_dims(videos, root)
    return Dataset(name=name, root=root, split=split, videos=videos, missing=missing)


def require_contrast(dataset: Dataset) -> None:
    """Refuse a split whose labels cannot rank anything (every AP would be 0 or 1 whatever the scores)."""
    has_contrast = dataset.benchmark.has_contrast
    if not any(v.labels.size and has_contrast(v.labels) for v in dataset.videos):
        raise InputError(
            f"{dataset.anno_path}: no video of split '{dataset.split}' has both highlight and other clips "
            "(labels all identical); evaluation is impossible: check the annotation file"
        )
