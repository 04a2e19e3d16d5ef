"""Per-video score normalisation, shared by the detectors and segment selection.

It lives at the package root (pure numpy) because both `methods` and `outputs`
need it and neither may import the other: one rule for "what a flat curve maps
to" and "which range scores share".
"""

from __future__ import annotations

import numpy as np

from highlighter.errors import UsageError

NORMALIZE_MODES = ("minmax", "zscore", "none")


def normalize_scores(scores: np.ndarray, mode: str = "minmax", dtype=np.float32) -> np.ndarray:
    """Per-video normalisation so scores of different videos share a range.

    ``minmax`` maps to [0, 1]; ``zscore`` to zero mean / unit std; ``none`` leaves
    them. A flat curve (spread within float noise of its level) maps to all 0.
    Computed in float64, returned as ``dtype``; ranking within a video never changes.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if mode not in NORMALIZE_MODES:
        raise UsageError(f"unknown score normalisation '{mode}'; use {', '.join(NORMALIZE_MODES)}")
    if mode == "none" or s.size == 0:
        return s.astype(dtype)
    if mode == "minmax":
        lo, hi = float(s.min()), float(s.max())
        flat = hi - lo <= 1e-12 * max(1.0, abs(hi))
        return (np.zeros_like(s) if flat else (s - lo) / (hi - lo)).astype(dtype)
    sd = float(s.std())
    return ((s - s.mean()) / sd if sd > 0 else np.zeros_like(s)).astype(dtype)
