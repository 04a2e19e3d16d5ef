"""Turn a score per clip into highlight segments (shared by ``detect`` and ``trim``).

`select_segments(starts, ends, scores, SelectConfig, duration)` is a pure function.
The algorithm, in order (every step is deterministic; ties are broken by time):

1. **Check** the arrays (same length, finite scores, increasing starts) and clamp the
   clip grid to ``[0, duration]``.
2. **Smooth** the scores with a centred moving average of ``smooth`` seconds (an odd
   number of clips, the edges average over the clips that exist). Detectors score
   2-s clips independently; a one-clip spike is more often noise than a highlight.
3. **Normalise** the smoothed curve to ``[0, 1]`` per video (min-max; a flat curve is
   all zeros). ``threshold`` is read on this scale, so it means the same for every
   detector whatever the range of its raw scores.
4. **Pick clips**:

   * ``top="10%"`` (a share of the duration): take clips best-first until their total
     length reaches the share (at least one clip), keeping only clips ``>= threshold``
     when one is given.
   * ``top=5`` (a count): peak picking. Repeatedly take the best clip not yet used and
     grow a segment around it while the neighbour stays at or above half the peak's
     normalised score (the full width at half maximum of the peak, baseline = the
     video's minimum) and ``>= threshold``; the clips of that segment plus
     ``merge_gap`` seconds either side are then used up. Stops after ``top`` segments.
   * ``top=None``: every clip ``>= threshold`` (``threshold`` is then required).

5. **Runs**: consecutive picked clips form a segment; segments whose gap is
   ``<= merge_gap`` seconds are merged (the clips in the gap join the segment).
6. **min_length**: a shorter segment grows around its centre (clamped to the video),
   then segments that now overlap or touch within ``merge_gap`` merge again.
7. **max_length**: a longer segment is cut down to its best-scoring window of whole
   clips no longer than ``max_length`` (a sliding-window sum over the smoothed curve),
   so the cap keeps the strongest part instead of splitting the highlight.
8. **pad**: ``pad`` seconds are added to both ends (context before/after the action);
   the result is clamped to ``[0, duration]`` and padded segments that overlap merge.
9. **Score and rank**: a segment's score is the mean smoothed raw score of the clips it
   covers; rank 1 is the best. Count mode keeps the best ``top`` segments. The list is
   returned in time order.

Guarantees (tested): segments lie in ``[0, duration]``, have ``end > start`` and never
overlap; with ``pad=0`` their bounds lie on the clip grid.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from highlighter.errors import InputError, UsageError
from highlighter.scores import normalize_scores


@dataclass(frozen=True)
class Segment:
    """One highlight: seconds in the source video, score (mean smoothed clip score), rank (1 = best)."""

    start: float
    end: float
    score: float
    rank: int

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return {"start": round(self.start, 6), "end": round(self.end, 6),
                "duration": round(self.duration, 6), "score": float(self.score), "rank": self.rank}


@dataclass
class SelectConfig:
    """How segments are chosen; see the module docstring for the algorithm.

    ``top``: ``"10%"`` (share of the duration), ``5`` / ``"5"`` (number of segments) or None.
    ``threshold``: in [0, 1] on the per-video min-max normalised smoothed score.
    Lengths are seconds. ``smooth`` is the moving-average window in seconds (0 = off).
    """

    top: str | int | float | None = "10%"
    threshold: float | None = None
    min_length: float = 0.0
    max_length: float | None = None
    merge_gap: float = 0.0
    pad: float = 0.0
    smooth: float = 6.0

    def __post_init__(self) -> None:
        parse_top(self.top)  # raises on a bad value
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise UsageError(f"--threshold {self.threshold}: must be between 0 and 1 (normalised score)")
        if self.top is None and self.threshold is None:
            raise UsageError("give --top or --threshold to choose segments")
        for name in ("min_length", "merge_gap", "pad", "smooth"):
            v = getattr(self, name)
            if v is None or not math.isfinite(v) or v < 0:
                raise UsageError(f"--{name.replace('_', '-')} {v}: must be a number >= 0")
        if self.max_length is not None:
            if not math.isfinite(self.max_length) or self.max_length <= 0:
                raise UsageError(f"--max-length {self.max_length}: must be > 0")
            if self.max_length < self.min_length:
                raise UsageError(f"--max-length {self.max_length} is below --min-length {self.min_length}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_TOP_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


def parse_top(top: str | int | float | None) -> tuple[str, float] | None:
    """``"10%"`` -> ("share", 0.10); ``5`` / ``"5"`` -> ("count", 5); None -> None."""
    if top is None:
        return None
    if isinstance(top, bool):
        raise UsageError(f"--top {top!r}: give a count like 5 or a share like 10%")
    if isinstance(top, (int, float)) and not isinstance(top, bool):
        text = repr(top) if isinstance(top, float) else str(top)
    else:
        text = str(top)
    m = _TOP_RE.match(text)
    if not m:
        raise UsageError(f"--top {top!r}: give a count like 5 or a share like 10%")
    value, pct = float(m.group(1)), m.group(2)
    if pct:
        if not 0 < value <= 100:
            raise UsageError(f"--top {top}: a share must be in (0%, 100%]")
        return ("share", value / 100.0)
    if value != int(value) or value < 1:
        raise UsageError(f"--top {top}: a count must be a whole number >= 1 (or use a share like 10%)")
    return ("count", float(int(value)))


def smooth_scores(scores: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over ``window`` clips (odd); edges average what exists."""
    scores = np.asarray(scores, dtype=np.float64)
    if window <= 1 or scores.size == 0:
        return scores.copy()
    half = window // 2
    csum = np.concatenate([[0.0], np.cumsum(scores)])
    idx = np.arange(scores.size)
    lo = np.clip(idx - half, 0, scores.size)
    hi = np.clip(idx + half + 1, 0, scores.size)
    return (csum[hi] - csum[lo]) / (hi - lo)


def _check(starts, ends, scores, duration) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = np.asarray(starts, dtype=np.float64).reshape(-1)
    e = np.asarray(ends, dtype=np.float64).reshape(-1)
    x = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not (s.size == e.size == x.size):
        raise InputError(f"segments: {s.size} starts, {e.size} ends and {x.size} scores; they must match")
    if not (math.isfinite(duration) and duration > 0):
        raise InputError(f"segments: video duration {duration} is not a positive number")
    if x.size and not np.all(np.isfinite(x)):
        raise InputError("segments: the detector returned NaN/inf scores; check the features and weights")
    if s.size and (np.any(np.diff(s) <= 0) or np.any(e <= s)):
        raise InputError("segments: the clip grid must have increasing starts and end > start")
    return np.clip(s, 0.0, duration), np.clip(e, 0.0, duration), x


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive-exclusive index runs of True."""
    out, i, n = [], 0, mask.size
    while i < n:
        if mask[i]:
            j = i
            while j < n and mask[j]:
                j += 1
            out.append((i, j))
            i = j
        else:
            i += 1
    return out


def _merge_index_runs(runs: list[tuple[int, int]], s: np.ndarray, e: np.ndarray, gap: float) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(runs):
        if out and s[a] - e[out[-1][1] - 1] <= gap + 1e-9:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _pick_share(sm: np.ndarray, ok: np.ndarray, s: np.ndarray, e: np.ndarray, share: float, duration: float) -> np.ndarray:
    budget = share * duration
    order = np.lexsort((np.arange(sm.size), -sm))  # best first, earlier first on ties
    mask = np.zeros(sm.size, dtype=bool)
    total = 0.0
    for i in order:
        if total >= budget - 1e-9:
            break
        if not ok[i]:
            continue
        mask[i] = True
        total += e[i] - s[i]
    return mask


def _pick_peaks(sm: np.ndarray, norm: np.ndarray, ok: np.ndarray, s: np.ndarray, e: np.ndarray,
                count: int, gap: float) -> list[tuple[int, int]]:
    used = ~ok
    runs: list[tuple[int, int]] = []
    order = np.lexsort((np.arange(sm.size), -sm))
    for p in order:
        if len(runs) >= count:
            break
        if used[p]:
            continue
        level = norm[p] / 2.0
        a, b = p, p + 1
        while a > 0 and not used[a - 1] and norm[a - 1] >= level:
            a -= 1
        while b < sm.size and not used[b] and norm[b] >= level:
            b += 1
        runs.append((a, b))
        lo, hi = s[a] - gap - 1e-9, e[b - 1] + gap + 1e-9
        used |= (e > lo) & (s < hi)
    return runs


def _best_window(sm: np.ndarray, s: np.ndarray, e: np.ndarray, a: int, b: int, max_len: float) -> tuple[int, int]:
    """The best-scoring run of whole clips inside [a, b) no longer than max_len (>= 1 clip)."""
    best, best_ab = -math.inf, (a, a + 1)
    j = a
    for i in range(a, b):
        j = max(j, i + 1)
        while j < b and e[j] - s[i] <= max_len + 1e-9:
            j += 1
        total = float(sm[i:j].sum())
        # compare sums of equal-length windows fairly: use the sum (longer = more highlight)
        if total > best + 1e-12:
            best, best_ab = total, (i, j)
    return best_ab


def _merge_intervals(iv: list[tuple[float, float]], gap: float) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(iv):
        if out and a - out[-1][1] <= gap + 1e-9:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _interval_score(a: float, b: float, s: np.ndarray, e: np.ndarray, sm: np.ndarray) -> float:
    """Mean smoothed score of the clips overlapping [a, b), weighted by overlap."""
    w = np.clip(np.minimum(e, b) - np.maximum(s, a), 0.0, None)
    if w.sum() <= 0:
        return float(sm.mean()) if sm.size else 0.0
    return float((w * sm).sum() / w.sum())


def select_segments(starts, ends, scores, config: SelectConfig, duration: float) -> list[Segment]:
    """Choose non-overlapping highlight segments from a score per clip (see module docstring)."""
    s, e, raw = _check(starts, ends, scores, duration)
    if raw.size == 0:
        return []
    sm = smooth_scores(raw, _window(s, e, config.smooth))
    norm = normalize_scores(sm, "minmax", dtype=np.float64)  # the detectors' rule: flat -> zeros
    ok = np.ones(raw.size, dtype=bool) if config.threshold is None else norm >= config.threshold - 1e-12
    top = parse_top(config.top)

    if top is not None and top[0] == "count":
        runs = _pick_peaks(sm, norm, ok, s, e, int(top[1]), config.merge_gap)
        runs = _merge_index_runs(runs, s, e, config.merge_gap)
    else:
        mask = _pick_share(sm, ok, s, e, top[1], duration) if top is not None else ok
        runs = _merge_index_runs(_runs(mask), s, e, config.merge_gap)

    # min_length: grow around the centre, then re-merge.
    iv: list[tuple[float, float]] = []
    for a, b in runs:
        lo, hi = float(s[a]), float(e[b - 1])
        if hi - lo < config.min_length:
            need = config.min_length - (hi - lo)
            lo, hi = lo - need / 2, hi + need / 2
            if lo < 0:
                hi, lo = hi - lo, 0.0
            if hi > duration:
                lo, hi = max(0.0, lo - (hi - duration)), duration
        iv.append((lo, hi))
    iv = _merge_intervals(iv, config.merge_gap)

    # max_length: keep the best window of whole clips.
    if config.max_length is not None:
        capped = []
        for lo, hi in iv:
            if hi - lo > config.max_length + 1e-9:
                inside = np.nonzero((s >= lo - 1e-9) & (e <= hi + 1e-9))[0]
                if inside.size:
                    a, b = _best_window(sm, s, e, int(inside[0]), int(inside[-1]) + 1, config.max_length)
                    lo2, hi2 = float(s[a]), float(e[b - 1])
                    if hi2 - lo2 > config.max_length + 1e-9:  # a single clip longer than the cap
                        hi2 = lo2 + config.max_length
                    lo, hi = lo2, hi2
                else:
                    hi = lo + config.max_length
            capped.append((lo, hi))
        iv = capped

    # pad, clamp, merge overlaps.
    iv = [(max(0.0, lo - config.pad), min(duration, hi + config.pad)) for lo, hi in iv]
    iv = _merge_intervals([(lo, hi) for lo, hi in iv if hi - lo > 1e-9], 0.0)

    scored = [(lo, hi, _interval_score(lo, hi, s, e, sm)) for lo, hi in iv]
    ranked = sorted(scored, key=lambda t: (-t[2], t[0]))
    if top is not None and top[0] == "count":
        ranked = ranked[: int(top[1])]
    segs = [Segment(start=lo, end=hi, score=sc, rank=r + 1) for r, (lo, hi, sc) in enumerate(ranked)]
    return sorted(segs, key=lambda g: g.start)


def smoothed_curve(starts, ends, scores, config: SelectConfig) -> np.ndarray:
    """The smoothed score curve `select_segments` works on (for plots)."""
    s = np.asarray(starts, dtype=np.float64)
    e = np.asarray(ends, dtype=np.float64)
    raw = np.asarray(scores, dtype=np.float64)
    return smooth_scores(raw, _window(s, e, config.smooth)) if raw.size else raw


def _window(s: np.ndarray, e: np.ndarray, seconds: float) -> int:
    """Smoothing window in clips: ``seconds`` / clip length, rounded, made odd (>= 1)."""
    if seconds <= 0 or s.size == 0:
        return 1
    clip_len = float(np.median(e - s)) or 1.0
    w = max(1, int(round(min(seconds / clip_len, 2 * s.size + 1))))  # wider changes nothing (and 1e308 overflowed)
    return w if w % 2 else w + 1


def check_segment_bounds(segments: list[Segment], where: str) -> None:
    """Refuse NaN/inf, reversed and zero-length segments: no cut can be made of them (``where`` names the source)."""
    for k, g in enumerate(segments):
        if not (math.isfinite(g.start) and math.isfinite(g.end)):
            raise InputError(f"{where}: segment {k + 1} has a start or end that is not a number "
                             f"({g.start}-{g.end}); re-run highlighter detect")
        if g.end <= g.start:
            kind = "zero-length" if g.end == g.start else "reversed"
            raise InputError(f"{where}: segment {k + 1} is {kind} ({g.start:.3f}-{g.end:.3f} s); "
                             "a segment needs end > start; re-run highlighter detect")


def merge_overlaps(segments: list[Segment]) -> list[Segment]:
    """Merge segments that overlap, so no stretch of video is cut twice.

    Touching segments (one ends where the next starts) stay apart. A merged segment keeps
    the best score and rank of its parts; ranks are then renumbered 1..n in rank order.
    Returned in time order; `select_segments` output comes back unchanged.
    """
    merged: list[list] = []  # [start, end, score, rank]
    for g in sorted(segments, key=lambda g: (g.start, g.end)):
        if merged and g.start < merged[-1][1] - 1e-6:
            m = merged[-1]
            m[1], m[2], m[3] = max(m[1], g.end), max(m[2], g.score), min(m[3], g.rank)
        else:
            merged.append([g.start, g.end, g.score, g.rank])
    by_rank = sorted(merged, key=lambda m: (m[3], m[0]))
    out = [Segment(start=m[0], end=m[1], score=m[2], rank=r) for r, m in enumerate(by_rank, start=1)]
    return sorted(out, key=lambda g: g.start)
