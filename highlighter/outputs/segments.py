"""Turn a score per clip into highlight segments (shared by ``detect`` and ``trim``).

`select_segments(starts, ends, scores, SelectConfig, duration, cuts)` is a pure function of
the clip grid, its scores, the video's shot cuts (seconds, `outputs.shots`) and the config.
The algorithm, in order (every step is deterministic; ties are broken by time):

1. **Check** the arrays (same length, finite scores, increasing starts) and clamp the
   clip grid to ``[0, duration]``. **The tail**: the grid drops a last partial clip shorter
   than half a clip (`features.grid.ClipGrid.min_last`), so the video's last fraction of a
   clip (fire2.mp4: 0.38 s) has no features. It belongs to the last clip: that clip is taken
   to end at ``duration``, so it scores the tail and a segment that ends with it runs to the
   end of the video instead of stopping short of it.
2. **Smooth** the scores with a centred moving average of ``smooth`` seconds, but never more
   than a fifth of the video (`SMOOTH_SHARE`; an odd number of clips, the edges average over
   the clips that exist). Detectors score 2-s clips independently; a one-clip spike is more
   often noise than a highlight. On a short video a 6-s window spans half of it and favours
   whatever sits beside the best clip, hence the cap (a 9.6-s video: no smoothing).
3. **Normalise** the smoothed curve to ``[0, 1]`` per video (min-max; a flat curve is
   all zeros). ``threshold`` is read on this scale, so it means the same for every
   detector whatever the range of its raw scores.
4. **Pick** (``top`` says how much; `parse_top`):

   * ``"10%"`` (a share of the duration): take clips best-first until their total length
     reaches the share (at least one clip), keeping only clips ``>= threshold`` when one is
     given; consecutive picks form runs, runs closer than ``merge_gap`` merge.
   * ``None``: every clip ``>= threshold`` (``threshold`` is then required), as runs.
   * ``5`` (a count) and ``"30s"`` / ``"0:30"`` (a reel length): peak picking. Repeatedly
     take the best clip not yet used and grow a segment around it while the neighbour stays
     at or above half the peak's normalised score (the full width at half maximum, baseline
     = the video's minimum) and ``>= threshold``; that whole peak, and ``merge_gap`` plus twice
     ``pad`` either side of it, is then used up, so one peak gives one segment and padded
     segments never run into each other. So are half a smoothing window of clips beyond it:
     their smoothed scores were lifted by the peak's own clips, and picking one would give the
     same moment twice (the lead-in of the best event instead of the second event).
     Count mode stops after ``top`` segments, or earlier when the best clip left is at the
     video's lowest score (normalised 0: a "second highlight" there would be the dullest
     moment; the first segment is always returned); duration mode collects every peak and fills
     the reel in step 9. Both bound each segment to a reel-sized moment: ``min_length``
     0 means `DEFAULT_MIN_SECONDS` (2 s) and an unset ``max_length`` means
     `DEFAULT_MAX_SECONDS` (10 s) there (``--top 5`` once gave five segments of 18 s).

5. **Shots** (``cuts``; ignored when empty). Each edge within ``snap`` seconds of a cut moves
   onto it, as long as the segment keeps half its length (no five frames of the next shot,
   no half-second stub of the previous one). Unless ``cross_cuts``, a segment never spans a
   cut: a peak's segment is confined to the shot of its peak clip (the shot holding the
   clip's middle), a run of picked clips is split at each cut into one segment per shot,
   and min_length growth, padding and merging stop at cuts. Segments may touch at a cut.
6. **min_length**: a shorter segment grows around its centre within its shot (a shot
   shorter than that is taken whole), and in peak mode not into its neighbours.
7. **max_length**: a longer segment keeps its best-scoring window no longer than
   ``max_length`` whose ends lie on clip boundaries, cuts or its own ends (the integral of
   the normalised curve, so the cap keeps the strongest part instead of splitting the
   highlight); a single clip longer than the cap gives a window of exactly the cap.
8. **pad**: ``pad`` seconds are added to both ends (context before/after the action), clamped
   to the video and the shot; segments that then overlap or touch in the same shot merge (and
   one that is now longer than ``max_length`` plus the padding keeps its best window).
9. **Score and rank**: a segment's score is the mean smoothed raw score of the clips it
   covers (weighted by overlap); rank 1 is the best. Count mode keeps the best ``top``.
   Duration mode takes segments best-first while they fit the reel length and cuts the
   first that does not fit to its best window of exactly the time left (when that is at
   least the minimum length, or the whole reel is shorter); time still left (under one
   minimum length) grows the chosen segments, best first, within their shots and
   ``max_length``. The total is the reel length to the microsecond, or all there is (a
   threshold, the length bounds, or shots too short to grow in can leave it shorter).
   The list is returned in time order.

Guarantees (tested): segments lie in ``[0, duration]``, have ``end > start``, never overlap
and touch only at a cut; without ``cross_cuts`` none contains a cut; with ``pad=0`` in share
and threshold modes their bounds lie on the clip grid (the tail included) or on cuts.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from highlighter.errors import InputError, UsageError
from highlighter.outputs.shots import clean_cuts
from highlighter.scores import normalize_scores
from highlighter.timeparse import EXAMPLES, is_time_text, parse_seconds

DEFAULT_MIN_SECONDS = 2.0  # count/duration modes, min_length 0: long enough to read a moment
DEFAULT_MAX_SECONDS = 10.0  # count/duration modes, no max_length: five moments stay a reel, not half the video
SMOOTH_SHARE = 0.2  # the smoothing window never covers more than this share of the video
# 0.2 (not 0.1): on the 18-s weightlifting clip 0.1 left no smoothing, and the single 2-s bar drop
# after the lift outranked the clean (6-8 s); 0.2 smooths over 3 clips there and picks the clean,
# while a 9.6-s clip still gets none (1.9 s < one clip). Dog, demo and fire2 picks are unchanged.
TIME_FIELDS = ("min_length", "max_length", "merge_gap", "pad", "smooth", "snap")
_EPS = 1e-9


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

    ``top``: ``"10%"`` (share of the duration), ``5`` / ``"5"`` (number of segments), ``"30s"`` /
    ``"0:30"`` (reel length) or None. ``threshold``: in [0, 1] on the per-video min-max normalised
    smoothed score. Lengths are seconds, or any time `timeparse.parse_seconds` reads ("2s", "0:02").
    ``smooth`` is the moving-average window (0 = off; at most a fifth of the video). ``snap``: an edge
    this close to a cut moves onto it (0 = off). ``cross_cuts``: let segments span shot cuts.
    """

    top: str | int | float | None = "10%"
    threshold: float | None = None
    min_length: float = 0.0
    max_length: float | None = None
    merge_gap: float = 0.0
    pad: float = 0.0
    smooth: float = 6.0
    cross_cuts: bool = False
    snap: float = 1.0

    def __post_init__(self) -> None:
        parse_top(self.top)  # raises on a bad value
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise UsageError(f"--threshold {self.threshold}: must be between 0 and 1 (normalised score)")
        if self.top is None and self.threshold is None:
            raise UsageError("give --top, --duration or --threshold to choose segments")
        for name in TIME_FIELDS:
            v = getattr(self, name)
            if v is not None or name != "max_length":
                setattr(self, name, parse_seconds(v, f"--{name.replace('_', '-')}"))
        if not isinstance(self.cross_cuts, bool):
            raise UsageError(f"cross_cuts {self.cross_cuts!r}: must be true or false")
        if self.max_length is not None:
            if self.max_length <= 0:
                raise UsageError(f"--max-length {self.max_length:g}: must be > 0")
            if self.max_length < self.min_length:
                raise UsageError(f"--max-length {self.max_length:g} is below --min-length {self.min_length:g}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_TOP_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")
_TOP_HINT = f"give a count like 5, a share like 10% or a reel length ({EXAMPLES})"


def parse_top(top: str | int | float | None) -> tuple[str, float] | None:
    """``"10%"`` -> ("share", 0.10); ``5`` / ``"5"`` -> ("count", 5); ``"30s"`` / ``"0:30"`` ->
    ("duration", 30.0); None -> None. A bare number is a count: a reel length needs a unit or a colon."""
    if top is None:
        return None
    if isinstance(top, bool):
        raise UsageError(f"--top {top!r}: {_TOP_HINT}")
    text = repr(top) if isinstance(top, float) else str(top)
    m = _TOP_RE.match(text)
    if not m:
        if isinstance(top, str) and is_time_text(top):
            seconds = parse_seconds(top, "--top")
            if seconds <= 0:
                raise UsageError(f"--top {top}: a reel length must be more than 0 s")
            return ("duration", seconds)
        raise UsageError(f"--top {top!r}: {_TOP_HINT}")
    value, pct = float(m.group(1)), m.group(2)
    if pct:
        if not 0 < value <= 100:
            raise UsageError(f"--top {top}: a share must be in (0%, 100%]")
        return ("share", value / 100.0)
    if value != int(value) or value < 1:
        raise UsageError(f"--top {top}: a count must be a whole number >= 1 (or use a share like 10% "
                         "or a reel length like 30s)")
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


def with_tail(starts: np.ndarray, ends: np.ndarray, duration: float) -> np.ndarray:
    """``ends`` with the last clip running to ``duration`` when the uncovered tail is shorter than a clip."""
    e = np.array(ends, dtype=np.float64)
    if e.size == 0:
        return e
    last = int(np.argmax(e))
    tail = duration - e[last]
    if 1e-9 < tail < float(np.median(e - np.asarray(starts, dtype=np.float64))) + 1e-9:
        e[last] = duration
    return e


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
        if out and s[a] - e[out[-1][1] - 1] <= gap + _EPS:
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
        if total >= budget - _EPS:
            break
        if not ok[i]:
            continue
        mask[i] = True
        total += e[i] - s[i]
    return mask


class _Curve:
    """The normalised score curve as a density over time, for integrals over any window."""

    def __init__(self, s: np.ndarray, e: np.ndarray, norm: np.ndarray):
        self.knots = np.unique(np.concatenate([s, e]))
        delta = np.zeros(self.knots.size)
        np.add.at(delta, np.searchsorted(self.knots, s), norm)
        np.add.at(delta, np.searchsorted(self.knots, e), -norm)
        density = np.cumsum(delta)[:-1]
        self.area = np.concatenate([[0.0], np.cumsum(density * np.diff(self.knots))])

    def integral(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.interp(b, self.knots, self.area) - np.interp(a, self.knots, self.area)


def best_window(curve: _Curve, lo: float, hi: float, length: float, cuts: list[float], exact: bool = False
                ) -> tuple[float, float]:
    """The window of [lo, hi] with the largest integral of the curve (earliest on ties).

    ``exact``: exactly ``length`` seconds long, starting or ending on a clip boundary or cut.
    Otherwise both ends on clip boundaries, cuts or [lo, hi]'s own ends and at most ``length``
    long (a stretch between two boundaries longer than that: exactly ``length`` from its start).
    """
    if hi - lo <= length + _EPS:
        return lo, hi
    marks = np.concatenate([curve.knots, np.asarray(cuts, dtype=np.float64), [lo, hi]])
    b = np.unique(marks[(marks >= lo - _EPS) & (marks <= hi + _EPS)].clip(lo, hi))
    if exact:
        starts = np.concatenate([b[b + length <= hi + _EPS], b[b - length >= lo - _EPS] - length])
        starts = np.unique(np.clip(starts, lo, hi - length))
        ends = starts + length
    else:
        starts = b[:-1]
        j = np.searchsorted(b, starts + length + _EPS, side="right") - 1
        ends = np.where(j > np.arange(starts.size), b[np.maximum(j, 0)], starts + length)
    gain = curve.integral(starts, ends)
    k = int(np.argmax(gain >= gain.max() - 1e-12))  # earliest of the best
    return float(starts[k]), float(ends[k])


def _shot(t: float, cuts: list[float], duration: float) -> tuple[float, float]:
    """The shot [start, end) that holds time ``t``."""
    i = bisect.bisect_right(cuts, t)
    return (cuts[i - 1] if i else 0.0), (cuts[i] if i < len(cuts) else duration)


def _snap(lo: float, hi: float, cuts: list[float], snap: float) -> tuple[float, float]:
    """Each edge onto the nearest cut within ``snap`` seconds, if the segment keeps half its length."""
    if not cuts or snap <= 0:
        return lo, hi
    keep = (hi - lo) / 2

    def nearest(t: float) -> float:
        i = bisect.bisect_left(cuts, t)
        return min(cuts[max(i - 1, 0): i + 1], key=lambda c: (abs(c - t), c))

    c = nearest(lo)
    if abs(c - lo) <= snap + _EPS and hi - c >= keep - _EPS:
        lo = c
    c = nearest(hi)
    if abs(c - hi) <= snap + _EPS and c - lo >= keep - _EPS:
        hi = c
    return lo, hi


def _split(lo: float, hi: float, cuts: list[float]) -> list[tuple[float, float]]:
    """[lo, hi) cut at every cut strictly inside it."""
    inner = [c for c in cuts if lo + 1e-6 < c < hi - 1e-6]
    edges = [lo, *inner, hi]
    return list(zip(edges[:-1], edges[1:]))


def _grow(lo: float, hi: float, length: float, a: float, b: float) -> tuple[float, float]:
    """[lo, hi) grown around its centre to ``length`` within [a, b] (shifted at a bound, capped by it)."""
    need = length - (hi - lo)
    if need <= _EPS:
        return lo, hi
    lo, hi = lo - need / 2, hi + need / 2
    if lo < a:
        lo, hi = a, hi + (a - lo)
    if hi > b:
        lo, hi = max(a, lo - (hi - b)), b
    return lo, hi


def _cut_between(x: float, y: float, cuts: list[float]) -> bool:
    i = bisect.bisect_left(cuts, min(x, y) - 1e-6)
    return i < len(cuts) and cuts[i] <= max(x, y) + 1e-6


def _merge_intervals(iv: list[tuple[float, float]], gap: float, cuts: list[float] = ()) -> list[tuple[float, float]]:
    """Merge intervals that overlap or lie within ``gap`` of each other, never across a cut."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(iv):
        if out and a - out[-1][1] <= gap + _EPS and (a < out[-1][1] - 1e-6 or not _cut_between(out[-1][1], a, cuts)):
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


@dataclass
class _Ctx:
    """What every step of one selection shares (the video's grid, curves, cuts and config)."""

    s: np.ndarray
    e: np.ndarray
    sm: np.ndarray
    norm: np.ndarray
    curve: _Curve
    cuts: list[float]  # every cut (snapping)
    hard: list[float]  # the cuts segments may not cross ([] with cross_cuts)
    duration: float
    config: SelectConfig
    radius: int = 0  # half the smoothing window, in clips: how far a peak lifts its neighbours' smoothed scores

    def shot(self, t: float) -> tuple[float, float]:
        return _shot(t, self.hard, self.duration)

    def cap(self, lo: float, hi: float, max_len: float | None) -> tuple[float, float]:
        if max_len is None or hi - lo <= max_len + _EPS:
            return lo, hi
        return best_window(self.curve, lo, hi, max_len, self.cuts)


def length_bounds(config: SelectConfig, kind: str) -> tuple[float, float | None]:
    """(min, max) segment length before padding: the config's, with reel-sized defaults in peak modes."""
    if kind not in ("count", "duration"):
        return config.min_length, config.max_length
    lo = config.min_length if config.min_length > 0 else DEFAULT_MIN_SECONDS
    hi = config.max_length if config.max_length is not None else max(DEFAULT_MAX_SECONDS, lo)
    return min(lo, hi), hi


def _peaks(cx: _Ctx, ok: np.ndarray, limit: int | None, min_len: float, max_len: float | None
           ) -> list[tuple[float, float]]:
    """Peak picking (module docstring, steps 4-7): one segment per peak, best peak first."""
    s, e, norm, cfg = cx.s, cx.e, cx.norm, cx.config
    used = ~ok
    reserve = cfg.merge_gap + 2 * cfg.pad
    out: list[tuple[float, float]] = []
    for p in np.lexsort((np.arange(cx.sm.size), -cx.sm)):
        if limit is not None and len(out) >= limit:
            break
        if used[p]:
            continue
        if limit is not None and out and norm[p] <= 0.0:  # the best left is the video's lowest: not a moment
            break
        level = norm[p] / 2.0
        a, b = p, p + 1
        while a > 0 and not used[a - 1] and norm[a - 1] >= level:
            a -= 1
        while b < s.size and not used[b] and norm[b] >= level:
            b += 1
        lo_s, hi_s = cx.shot((s[p] + e[p]) / 2)
        left = max([hi + reserve for _, hi in out if hi <= s[p] + 1e-6], default=0.0)
        right = min([lo - reserve for lo, _ in out if lo >= e[p] - 1e-6], default=cx.duration)
        room = (max(lo_s, left), min(hi_s, right))
        lo, hi = _snap(max(float(s[a]), room[0]), min(float(e[b - 1]), room[1]), cx.cuts, cfg.snap)
        lo, hi = max(lo, room[0]), min(hi, room[1])
        if hi - lo <= 1e-6:  # the peak's room is taken
            used[p] = True
            continue
        lo, hi = cx.cap(*_grow(lo, hi, min_len, *room), max_len)
        out.append((lo, hi))
        hill_lo, hill_hi = min(lo, float(s[a])), max(hi, float(e[b - 1]))  # the whole peak is used up, not just the cap
        near = np.flatnonzero((e >= hill_lo - reserve - 1e-6) & (s <= hill_hi + reserve + 1e-6))  # touching too
        if near.size:  # and the clips whose smoothed score this peak's clips lifted: not a second moment
            used[max(0, near[0] - cx.radius): near[-1] + 1 + cx.radius] = True
        used[p] = True
    return out


def _runs_to_segments(cx: _Ctx, runs: list[tuple[int, int]], min_len: float, max_len: float | None
                      ) -> list[tuple[float, float]]:
    """Share/threshold runs as segments (module docstring, steps 5-7): snapped, split per shot, sized."""
    out = []
    for a, b in runs:
        lo, hi = _snap(float(cx.s[a]), float(cx.e[b - 1]), cx.cuts, cx.config.snap)
        for lo2, hi2 in _split(lo, hi, cx.hard):
            out.append(_grow(lo2, hi2, min_len, *cx.shot((lo2 + hi2) / 2)))
    out = _merge_intervals(out, cx.config.merge_gap, cx.hard)
    return [cx.cap(lo, hi, max_len) for lo, hi in out]


def _pad(cx: _Ctx, iv: list[tuple[float, float]], max_len: float | None) -> list[tuple[float, float]]:
    """Step 8: pad within the video and the shot, then merge (never across a cut); a merged segment
    longer than ``max_len`` plus the padding keeps its best window."""
    pad = cx.config.pad
    out = []
    for lo, hi in iv:
        a, b = cx.shot((lo + hi) / 2)
        out.append((max(a, lo - pad), min(b, hi + pad)))
    merged = _merge_intervals([(lo, hi) for lo, hi in out if hi - lo > 1e-6], 0.0, cx.hard)
    return [cx.cap(lo, hi, None if max_len is None else max_len + 2 * pad) for lo, hi in merged]


def _fill(cx: _Ctx, ranked: list[tuple[float, float, float]], budget: float, min_len: float,
          max_len: float | None) -> list[tuple[float, float, float]]:
    """Duration mode (step 9): best segments while they fit ``budget`` seconds; the first that does
    not is cut to its best window of the time left, when that is at least ``min_len`` (or the budget)."""
    out, left = [], budget
    smallest = min(min_len, budget)
    for lo, hi, score in ranked:
        if left < smallest - 1e-6:
            break
        if hi - lo <= left + 1e-6:
            out.append((lo, hi, score))
            left -= hi - lo
        else:
            a, b = best_window(cx.curve, lo, hi, left, cx.cuts, exact=True)
            out.append((a, b, _interval_score(a, b, cx.s, cx.e, cx.sm)))
            left = 0.0
    return _stretch(cx, [(lo, hi) for lo, hi, _ in out], left, max_len)


def _stretch(cx: _Ctx, chosen: list[tuple[float, float]], left: float, max_len: float | None
             ) -> list[tuple[float, float, float]]:
    """Spend the ``left`` seconds `_fill` could not place (under one minimum length) growing the chosen
    segments, best first, around their centres within their shots and ``max_len`` (plus padding);
    those that come to touch merge (and keep their best window of that length)."""
    iv = list(chosen)
    for k in range(len(iv)):
        if left <= 1e-6:
            break
        lo, hi = iv[k]
        a, b = cx.shot((lo + hi) / 2)
        a = max([a] + [h for j, (_l, h) in enumerate(iv) if j != k and h <= lo + 1e-6])
        b = min([b] + [l for j, (l, _h) in enumerate(iv) if j != k and l >= hi - 1e-6])
        longest = math.inf if max_len is None else max(hi - lo, max_len + 2 * cx.config.pad)
        iv[k] = _grow(lo, hi, min(hi - lo + left, longest), a, b)
        left -= (iv[k][1] - iv[k][0]) - (hi - lo)
    cap = None if max_len is None else max_len + 2 * cx.config.pad
    merged = [cx.cap(lo, hi, cap) for lo, hi in _merge_intervals(iv, 0.0, cx.hard)]
    return [(lo, hi, _interval_score(lo, hi, cx.s, cx.e, cx.sm)) for lo, hi in merged]


def select_segments(starts, ends, scores, config: SelectConfig, duration: float, cuts=None) -> list[Segment]:
    """Choose non-overlapping highlight segments from a score per clip (see module docstring).

    ``cuts``: the video's shot cuts in seconds (`outputs.shots.detect_cuts`); None or [] = none known.
    """
    s, e, raw = _check(starts, ends, scores, duration)
    if raw.size == 0:
        return []
    e = with_tail(s, e, duration)
    window = _window(s, e, smooth_seconds(config.smooth, duration))
    sm = smooth_scores(raw, window)
    norm = normalize_scores(sm, "minmax", dtype=np.float64)  # the detectors' rule: flat -> zeros
    all_cuts = clean_cuts(cuts or [], duration)
    cx = _Ctx(s, e, sm, norm, _Curve(s, e, norm), all_cuts, [] if config.cross_cuts else all_cuts, duration, config,
              window // 2)
    ok = np.ones(raw.size, dtype=bool) if config.threshold is None else norm >= config.threshold - 1e-12
    top = parse_top(config.top)
    kind = top[0] if top is not None else "threshold"
    min_len, max_len = length_bounds(config, kind)

    if kind in ("count", "duration"):
        iv = _peaks(cx, ok, int(top[1]) if kind == "count" else None, min_len, max_len)
    else:
        mask = _pick_share(sm, ok, s, e, top[1], duration) if kind == "share" else ok
        iv = _runs_to_segments(cx, _merge_index_runs(_runs(mask), s, e, config.merge_gap), min_len, max_len)

    scored = [(lo, hi, _interval_score(lo, hi, s, e, sm)) for lo, hi in _pad(cx, iv, max_len)]
    ranked = sorted(scored, key=lambda t: (-t[2], t[0]))
    if kind == "count":
        ranked = ranked[: int(top[1])]
    elif kind == "duration":
        ranked = sorted(_fill(cx, ranked, top[1], min_len, max_len), key=lambda t: (-t[2], t[0]))
    segs = [Segment(start=lo, end=hi, score=sc, rank=r + 1) for r, (lo, hi, sc) in enumerate(ranked)]
    return sorted(segs, key=lambda g: g.start)


def smooth_seconds(smooth: float, duration: float) -> float:
    """The smoothing window actually used: ``smooth``, but at most `SMOOTH_SHARE` of the video."""
    return min(float(smooth), SMOOTH_SHARE * float(duration))


def smoothed_curve(starts, ends, scores, config: SelectConfig, duration: float | None = None) -> np.ndarray:
    """The smoothed score curve `select_segments` works on (for plots); ``duration`` defaults to the grid's end."""
    s = np.asarray(starts, dtype=np.float64)
    e = np.asarray(ends, dtype=np.float64)
    raw = np.asarray(scores, dtype=np.float64)
    if not raw.size:
        return raw
    d = float(duration) if duration else float(e.max())
    return smooth_scores(raw, _window(s, e, smooth_seconds(config.smooth, d)))


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
