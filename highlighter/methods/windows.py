"""Fixed-length windows over a video's clips, and scoring a video window by window.

Why: window-based detectors (RASL, HPCL with ``infer_window``) must cut videos the
same way in training and at inference — short remainders repeat-padded, padded
positions dropped again, the stitched video normalised once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from highlighter.errors import InputError, UsageError
from highlighter.scores import normalize_scores


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


def gather_windows(seqs: Sequence[np.ndarray], windows: Sequence[Window]) -> np.ndarray:
    """Stack the windows' rows: (B, length, D) float32."""
    return np.stack([seqs[w.video][w.index] for w in windows]).astype(np.float32, copy=False)


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
