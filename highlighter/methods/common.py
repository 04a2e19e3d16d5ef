"""Torch training utilities shared by the trainable detectors.

Why a shared module: every trainable detector needs the same plumbing — a seed
that makes a run reproducible, a device picked from ``auto|cpu|cuda``, videos cut
into fixed-length windows (short ones repeat-padded), windows batched in a seeded
order, and window scores stitched back into one normalised score per clip.
Getting these identical across detectors keeps their numbers comparable.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

from highlighter.errors import InputError, UsageError


# --- reproducibility ------------------------------------------------------------------------


class NetStateMixin:
    """Persistence for detectors whose weights are exactly one torch module, ``self.net``.

    Put it before `Detector` in the bases; weights are stored fp16 and loaded back as fp32.
    """

    net: "torch.nn.Module"

    def state_dict(self) -> dict:
        return dict(self.net.state_dict())

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict({k: v.float() for k, v in state.items()})
        self.net.eval()


def seed_everything(seed: int):
    """Seed Python, numpy and torch; return a torch.Generator for data order / masks.

    Data order and random masks draw from the returned generator (not the global
    RNG) so that adding a random op elsewhere cannot change the batches.
    """
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    g = torch.Generator()
    g.manual_seed(seed)
    return g


@contextlib.contextmanager
def deterministic(seed: int, threads: int | None = None):
    """Seeded, deterministic-algorithms block; restores the previous torch settings.

    ``threads`` pins torch's intra-op threads: float sums can depend on how work is
    split, so identical weights across runs need the same thread count.
    """
    import torch

    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True, warn_only=True)
    if threads:
        torch.set_num_threads(threads)
    try:
        yield seed_everything(seed)
    finally:
        torch.use_deterministic_algorithms(prev_det)
        torch.set_num_threads(prev_threads)


def select_device(name: str = "auto") -> str:
    """``auto`` -> cuda when available else cpu; an unavailable ``cuda`` is a usage error."""
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
        return name
    raise UsageError(f"--device {name}: unknown device; use auto, cpu or cuda")


# --- fixed-length windows -------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Clip indices of one fixed-length window into a video.

    ``index`` has exactly ``length`` entries; the first ``valid`` are the window's own
    clips in order, the rest repeat them (repeat-padding). At inference only the
    first ``valid`` scores are kept.
    """

    video: int  # position of the video in the list given to `make_windows`
    start: int  # first clip of the window in the video
    valid: int
    index: np.ndarray  # (length,) int64 clip indices into the video


def window_indices(num_clips: int, length: int) -> list[tuple[int, int, np.ndarray]]:
    """Cut ``num_clips`` clips into consecutive windows of ``length`` clips.

    A video (or the remainder after the last full window) shorter than ``length`` is
    repeated until it fills the window — the RASL paper's rule ("concatenate the
    video repeatedly until it is longer than 30 s and clip it"); we repeat the
    *remaining* part rather than the whole video, so every window holds only
    consecutive content.
    """
    if length < 1:
        raise UsageError(f"window length must be >= 1, got {length}")
    if num_clips < 1:
        raise InputError("a video with 0 clips cannot be scored; its feature file is empty")
    out = []
    for start in range(0, num_clips, length):
        valid = min(length, num_clips - start)
        idx = start + np.resize(np.arange(valid, dtype=np.int64), length)
        out.append((start, valid, idx))
    return out


def make_windows(lengths: Sequence[int], length: int) -> list[Window]:
    """Windows of every video, in video order."""
    return [Window(v, s, n, idx) for v, t in enumerate(lengths) for s, n, idx in window_indices(int(t), length)]


def iter_batches(n: int, batch_size: int, generator=None, shuffle: bool = True) -> Iterator[np.ndarray]:
    """Index batches over ``n`` items; the order comes from ``generator`` only."""
    import torch

    if shuffle:
        order = torch.randperm(n, generator=generator).numpy()
    else:
        order = np.arange(n)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


def gather_windows(seqs: Sequence[np.ndarray], windows: Sequence[Window]) -> np.ndarray:
    """Stack the windows' rows: (B, length, D) float32."""
    return np.stack([seqs[w.video][w.index] for w in windows]).astype(np.float32, copy=False)


# --- scores ---------------------------------------------------------------------------------


def normalize_scores(scores: np.ndarray, mode: str = "minmax") -> np.ndarray:
    """Per-video normalisation so scores of different videos share a range.

    ``minmax`` maps to [0, 1] (a constant video scores all 0); ``zscore`` to zero
    mean / unit std; ``none`` leaves them. Ranking within a video never changes.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if mode == "none" or s.size == 0:
        return s.astype(np.float32)
    if mode == "minmax":
        lo, hi = float(s.min()), float(s.max())
        return ((s - lo) / (hi - lo) if hi > lo else np.zeros_like(s)).astype(np.float32)
    if mode == "zscore":
        sd = float(s.std())
        return ((s - s.mean()) / sd if sd > 0 else np.zeros_like(s)).astype(np.float32)
    raise UsageError(f"unknown score normalisation '{mode}'; use minmax, zscore or none")


def score_by_windows(
    fn: Callable[[np.ndarray], np.ndarray],
    seq: np.ndarray,
    length: int,
    batch_size: int = 64,
    normalize: str = "minmax",
) -> np.ndarray:
    """Score a (T, D) sequence window by window and stitch the scores back.

    ``fn`` maps (B, length, D) -> (B, length). Each window's padded tail is dropped,
    the valid parts are concatenated in order, and the whole video is normalised
    once (the paper: "concatenate and normalize the highlight score sequences").
    """
    seq = np.asarray(seq, dtype=np.float32)
    if seq.ndim != 2:
        raise InputError(f"features must be a (clips, dims) matrix, got shape {seq.shape}")
    wins = make_windows([seq.shape[0]], length)
    parts = []
    for i in range(0, len(wins), batch_size):
        chunk = wins[i : i + batch_size]
        out = np.asarray(fn(gather_windows([seq], chunk)))
        parts.extend(out[j, : w.valid] for j, w in enumerate(chunk))
    return normalize_scores(np.concatenate(parts), normalize)


# --- config overrides and the generic training entry point --------------------------------


def _convert(raw: str, hint, key: str):
    """Parse a ``--set`` value into the type of the config field."""
    import typing

    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or (origin is not None and type(None) in args and len(args) == 2):
        inner = [a for a in args if a is not type(None)]
        if raw.lower() in ("none", "null"):
            return None
        return _convert(raw, inner[0], key)
    if hint is bool:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"--set {key}={raw}: expected true or false")
    if hint in (int, float):
        try:
            return hint(raw)
        except ValueError:
            raise UsageError(f"--set {key}={raw}: expected {hint.__name__}") from None
    if origin in (tuple, list):
        elem = args[0] if args else str
        return tuple(_convert(p.strip(), elem, key) for p in raw.split(",") if p.strip())
    return raw


def parse_overrides(config_cls, pairs: Sequence[str]) -> dict:
    """``["key=value", ...]`` -> typed kwargs for ``config_cls``; unknown keys are usage errors."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(config_cls)
    valid = [f.name for f in dataclasses.fields(config_cls)]
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"--set {pair}: expected key=value; valid keys: {', '.join(valid)}")
        key, raw = (p.strip() for p in pair.split("=", 1))
        if key not in valid:
            raise UsageError(f"--set {key}: unknown key; valid keys: {', '.join(valid)}")
        out[key] = _convert(raw, hints[key], key)
    return out


SPLITS = ("train", "val", "all")


def parse_data_spec(spec: str, default_split: str | None = None) -> tuple[str, str]:
    """``DIR`` or ``DIR:split`` -> (dir, split); the default split is ``train``."""
    path, split = spec, default_split or "train"
    head, sep, tail = spec.rpartition(":")
    if sep and tail in SPLITS and head:
        path, split = head, tail
    if split not in SPLITS:
        raise UsageError(f"--split {split}: use train, val or all")
    return path, split


@dataclass
class TrainResult:
    """What `train_detector` produced: the fitted detector, its report and file."""

    detector: object
    report: object
    path: object
    info: dict


def train_detector(
    method: str,
    data: Sequence[str],
    out,
    seed: int = 0,
    epochs: int | None = None,
    device: str | None = None,
    overrides: Sequence[str] = (),
    splits: Sequence[str] = (),
    command: str = "",
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train any registered trainable detector on benchmark feature dirs and save it.

    Generic over the registry: the config dataclass of ``method`` defines what
    ``overrides`` (``key=value``) may set; ``epochs`` and ``device`` map to the config
    fields of those names. Labels are loaded with the data but only supervised
    methods may use them. The weights' ``info`` records data dirs, splits and video
    counts, feature dims, seed, command line and training seconds.
    """
    import dataclasses
    import time
    from pathlib import Path

    from highlighter.eval.datasets import load_dataset
    from highlighter.methods.base import create_method, method_class

    cls = method_class(method)
    if not cls.trainable:
        raise UsageError(f"method '{method}' is training-free; nothing to train")
    if not data:
        raise UsageError("give at least one --data DIR")
    if splits and len(splits) not in (1, len(data)):
        raise UsageError(f"--split given {len(splits)} times for {len(data)} --data dirs; give it once or once per dir")
    if device is not None:
        select_device(device)  # fail before loading data
    config_cls = type(create_method(method).config)
    kwargs = parse_overrides(config_cls, overrides)
    names = {f.name for f in dataclasses.fields(config_cls)}
    for key, value in (("epochs", epochs), ("device", device)):
        if value is None:
            continue
        if key not in names:
            raise UsageError(f"--{key}: method '{method}' has no '{key}' setting")
        kwargs[key] = value
    det = create_method(method, **kwargs)

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
    if cls.supervised is False:
        videos = [dataclasses.replace(v, labels=np.zeros(0)) for v in videos]  # never read labels
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
        "command": command,
        "train_seconds": round(seconds, 1),
        "final_loss": report.losses[-1] if report.losses else {},
    }
    det.info = {**(det.info or {}), **info}
    path = det.save(Path(out))
    return TrainResult(detector=det, report=report, path=path, info=info)
