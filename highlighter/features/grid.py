"""The clip grid: which time span each feature row describes.

Visual and audio FVS share one grid so that row ``t`` of both describes the same
span ``[starts[t], ends[t])`` of the video. The default is 2-s clips back to back,
the grid of the public benchmark features (TVSum / YouTube Highlights in the UMT
release); RASL samples every 0.2 s, which is ``ClipGrid(0.2)``. A hop shorter
than the clip gives overlapping clips.

Choices (the papers do not say):

* The last, partial clip is kept when it is at least ``min_last`` (default half)
  of a clip long, and its end is the video's duration (it is not padded to a
  full clip). A video shorter than that still gets one clip, so that no
  decodable video yields an empty FVS.
* A frame (or sample) at time ``t`` belongs to clip ``i`` when
  ``starts[i] <= t < ends[i]``, compared with a tolerance of ``EPS`` seconds so
  that a frame whose timestamp is 3.9999999 s after a time-base round trip falls
  in the clip that starts at 4 s.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from highlighter.errors import UsageError

EPS = 1e-6  # seconds; timestamp tolerance when assigning frames to clips


@dataclass(frozen=True)
class ClipGrid:
    """Clips of ``clip_seconds`` every ``hop_seconds`` (default: back to back)."""

    clip_seconds: float = 2.0
    hop_seconds: float | None = None  # None = clip_seconds (no overlap)
    min_last: float = 0.5  # fraction of a clip the final partial clip needs to be kept

    def __post_init__(self) -> None:
        if not (self.clip_seconds > 0 and math.isfinite(self.clip_seconds)):
            raise UsageError(f"clip length must be a positive number of seconds, got {self.clip_seconds}")
        if self.hop_seconds is not None and not (self.hop_seconds > 0 and math.isfinite(self.hop_seconds)):
            raise UsageError(f"clip hop must be a positive number of seconds, got {self.hop_seconds}")
        if not 0.0 < self.min_last <= 1.0:
            raise UsageError(f"min_last must be in (0, 1], got {self.min_last}")

    @property
    def hop(self) -> float:
        return float(self.hop_seconds if self.hop_seconds is not None else self.clip_seconds)

    def clips(self, duration: float) -> tuple[np.ndarray, np.ndarray]:
        """(starts, ends) float64 in seconds for a video of ``duration`` seconds."""
        if not (duration > 0 and math.isfinite(duration)):
            return np.zeros(0), np.zeros(0)
        hop, clip = self.hop, float(self.clip_seconds)
        need = self.min_last * clip
        # clip i is kept when min(clip, duration - i*hop) >= need (tolerant to float error)
        n = int(math.floor((duration - need) / hop + 1e-9)) + 1 if duration + 1e-9 >= need else 0
        n = max(n, 1)
        starts = np.arange(n, dtype=np.float64) * hop
        ends = np.minimum(starts + clip, float(duration))
        return starts, ends

    def num_clips(self, duration: float) -> int:
        return int(self.clips(duration)[0].shape[0])

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hop_seconds"] = self.hop
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ClipGrid":
        return cls(clip_seconds=float(d["clip_seconds"]), hop_seconds=float(d["hop_seconds"]),
                   min_last=float(d.get("min_last", 0.5)))


def assign(times: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> list[np.ndarray]:
    """Indices into ``times`` of the frames in each clip (a frame may be in several
    clips when they overlap, or in none after the last clip)."""
    t = np.asarray(times, dtype=np.float64) + EPS
    return [np.flatnonzero((t >= s) & (t < e)) for s, e in zip(starts, ends)]
