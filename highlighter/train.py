"""Train any registered detector on benchmark feature directories: the API `highlighter train` wraps.

It sits above both `methods` (what is trained) and `eval.datasets` (what it is
trained on), like `api.detect` sits above the pipeline stages, so the detectors
never depend on the benchmark loader.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from highlighter.errors import UsageError
from highlighter.methods.base import Detector, TrainReport, create_method, method_class, preset_config
from highlighter.methods.config import parse_overrides
from highlighter.methods.data import SPLITS

DEFAULT_SPLIT = "train"


def parse_data_spec(spec: str, default_split: str | None = None) -> tuple[str, str]:
    """``DIR`` or ``DIR:split`` -> (dir, split); the default split is ``train``."""
    path, split = spec, default_split or DEFAULT_SPLIT
    head, sep, tail = spec.rpartition(":")
    if sep and tail in SPLITS and head:
        path, split = head, tail
    if split not in SPLITS:
        raise UsageError(f"--split {split}: use {', '.join(SPLITS)}")
    return path, split


@dataclass
class TrainResult:
    """What `train_detector` produced: the fitted detector, its report and file."""

    detector: Detector
    report: TrainReport
    path: Path
    info: dict[str, Any]


def train_detector(
    method: str,
    data: Sequence[str],
    out: str | Path,
    seed: int = 0,
    epochs: int | None = None,
    device: str | None = None,
    overrides: Sequence[str] = (),
    preset: str | None = None,
    splits: Sequence[str] = (),
    command: str = "",
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train any registered trainable detector on benchmark feature dirs and save it.

    Generic over the registry: the config dataclass of ``method`` defines what
    ``overrides`` (``key=value``) may set, on top of ``preset`` (the method's named config); ``epochs`` and ``device`` map to the config
    fields of those names. Labels are loaded with the data; `Detector.fit` hides
    them from unsupervised methods. The weights' ``info`` records data dirs, splits
    and video counts, feature dims, seed, command line and training seconds.
    """
    from highlighter.eval.datasets import load_dataset
    from highlighter.features.device import resolve_device

    cls = method_class(method)
    if not cls.trainable:
        raise UsageError(f"method '{method}' is training-free; nothing to train")
    if not data:
        raise UsageError("give at least one --data DIR")
    if splits and len(splits) not in (1, len(data)):
        raise UsageError(f"--split given {len(splits)} times for {len(data)} --data dirs; give it once or once per dir")
    if device is not None:
        resolve_device(device)  # fail before loading data
    preset_config(method, preset)  # an unknown preset fails before loading data
    kwargs = parse_overrides(cls.config_class, overrides)
    names = {f.name for f in dataclasses.fields(cls.config_class)}
    for key, value in (("epochs", epochs), ("device", device)):
        if value is None:
            continue
        if key not in names:
            raise UsageError(f"--{key}: method '{method}' has no '{key}' setting")
        kwargs[key] = value
    det = create_method(method, preset=preset, **kwargs)

    videos, sources = [], []
    for i, spec in enumerate(data):
        default = splits[0] if len(splits) == 1 else (splits[i] if splits else None)
        root, split = parse_data_spec(str(spec), default)
        ds = load_dataset(root, split)
        videos.extend(ds.videos)
        sources.append({"dir": str(root), "name": ds.name, "split": split, "videos": len(ds.videos),
                        "missing": len(ds.missing)})
        if log:
            log(f"{root} ({split} split): {len(ds.videos)} {ds.name} videos, {len(ds.missing)} listed without features")
    t0 = time.perf_counter()
    report = det.fit(videos, seed=seed, log=log)
    seconds = time.perf_counter() - t0
    info = {
        "data": sources,
        "num_videos": len(videos),
        "num_clips": int(sum(v.num_clips for v in videos)),
        "visual_dim": int(videos[0].visual.shape[1]),
        "audio_dim": int(videos[0].audio.shape[1]) if videos[0].audio is not None else None,
        "seed": seed,
        **({"preset": preset} if preset else {}),
        "command": command,
        "train_seconds": round(seconds, 1),
        "final_loss": report.losses[-1] if report.losses else {},
    }
    det.info = {**(det.info or {}), **info}
    path = det.save(Path(out))
    return TrainResult(detector=det, report=report, path=path, info=info)
