"""Benchmark datasets in the layout of the public UMT feature release.

A dataset directory holds::

    video_features/{vid}_rgb.npy   visual FVS, one row per clip (I3D RGB, 1024-d)
    audio_features/{vid}.npy       audio FVS, same clip grid (PANN CNN14, 2048-d)
    {name}_anno.json               labels per video (name = tvsum | youtube)
    splits.json                    {domain: {"train": [vid...], "val": [vid...]}}

Labels differ per benchmark:

* ``youtube``: ``match`` per clip, 1 = highlight, 0 / -1 = not (the UMT protocol
  counts a clip as positive when ``match > 0``).
* ``tvsum``: ``anno`` is clips x 20 annotators, scores 1..5; we store it as
  (annotators, clips).

Feature and label counts can differ by a row or two; every array of a video is
truncated to the shortest. Videos listed in splits.json without features are
skipped and counted in ``Dataset.missing``.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from highlighter.errors import InputError

Split = Literal["train", "val", "all"]
KNOWN_NAMES = ("tvsum", "youtube")


@dataclass
class VideoFeatures:
    """One benchmark video: features on its clip grid plus its labels."""

    vid: str
    domain: str
    split: str
    visual: np.ndarray  # (T, Dv) float32
    audio: np.ndarray | None  # (T, Da) float32, None when the file is absent
    labels: np.ndarray  # youtube: (T,) int match; tvsum: (A, T) float scores

    @property
    def num_clips(self) -> int:
        return int(self.visual.shape[0])


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


def detect_name(root: Path) -> str:
    """The benchmark a directory holds, from its ``{name}_anno.json``."""
    for name in KNOWN_NAMES:
        if (root / f"{name}_anno.json").is_file():
            return name
    raise InputError(
        f"{root}: not a benchmark directory (no tvsum_anno.json or youtube_anno.json); "
        "point --data at a folder in the UMT feature layout"
    )


def _parse(value):
    """Annotation fields are stored as strings of Python/JSON literals."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return ast.literal_eval(value)


def _labels(name: str, entry: dict) -> np.ndarray:
    if name == "youtube":
        return np.asarray(_parse(entry["match"]), dtype=np.int64)
    anno = np.asarray(_parse(entry["anno"]), dtype=np.float32)  # (T, A)
    return anno.T.copy()


def _split_ids(splits: dict, split: Split) -> list[tuple[str, str, str]]:
    wanted = ("train", "val") if split == "all" else (split,)
    out = []
    for domain, parts in splits.items():
        for part in wanted:
            for vid in parts.get(part, []):
                out.append((vid, domain, part))
    return out


def load_dataset(root: str | Path, split: Split = "all", name: str | None = None) -> Dataset:
    """Load features and labels of one split (``train``, ``val`` or ``all``)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: dataset directory not found")
    name = name or detect_name(root)
    try:
        anno = json.loads((root / f"{name}_anno.json").read_text())
        splits = json.loads((root / "splits.json").read_text())
    except FileNotFoundError as exc:
        raise InputError(f"{exc.filename}: missing from the dataset directory") from None
    ids = _split_ids(splits, split)
    if not ids:
        raise InputError(f"{root / 'splits.json'}: no videos in split '{split}'")
    videos, missing = [], []
    for vid, domain, part in ids:
        vpath = root / "video_features" / f"{vid}_rgb.npy"
        if not vpath.is_file() or vid not in anno:
            missing.append(vid)
            continue
        visual = np.load(vpath).astype(np.float32)
        apath = root / "audio_features" / f"{vid}.npy"
        audio = np.load(apath).astype(np.float32) if apath.is_file() else None
        labels = _labels(name, anno[vid])
        t = min(visual.shape[0], labels.shape[-1], audio.shape[0] if audio is not None else 1 << 30)
        videos.append(
            VideoFeatures(
                vid=vid,
                domain=domain,
                split=part,
                visual=visual[:t],
                audio=None if audio is None else audio[:t],
                labels=labels[..., :t],
            )
        )
    return Dataset(name=name, root=root, split=split, videos=videos, missing=missing)
