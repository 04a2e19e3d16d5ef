"""Segment selection rules: top share / count, threshold, min/max length, merge, pad, bounds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from highlighter.errors import InputError, UsageError
from highlighter.outputs.segments import SelectConfig, parse_top, select_segments, smooth_scores


def grid(n: int, clip: float = 2.0, duration: float | None = None):
    starts = np.arange(n) * clip
    ends = np.minimum(starts + clip, duration if duration is not None else n * clip)
    return starts, ends, float(duration if duration is not None else n * clip)


def test_parse_top():
    assert parse_top("10%") == ("share", 0.10)
    assert parse_top("5") == ("count", 5)
    assert parse_top(5) == ("count", 5)
    assert parse_top(None) is None
    for bad in ("0%", "150%", "0", "2.5", "abc", "-3"):
        with pytest.raises(UsageError):
            parse_top(bad)


def test_config_validation():
    with pytest.raises(UsageError):
        SelectConfig(threshold=1.5)
    with pytest.raises(UsageError):
        SelectConfig(top=None, threshold=None)
    with pytest.raises(UsageError):
        SelectConfig(min_length=10, max_length=5)
    with pytest.raises(UsageError):
        SelectConfig(pad=-1)


def test_share_picks_the_peak_and_meets_budget():
    s, e, d = grid(50)
    x = np.zeros(50)
    x[20:25] = 1.0  # a 10-s highlight in a 100-s video
    segs = select_segments(s, e, x, SelectConfig(top="10%", smooth=0), d)
    assert [(g.start, g.end, g.rank) for g in segs] == [(40.0, 50.0, 1)]
    assert segs[0].score == pytest.approx(1.0)


def test_share_total_within_one_clip_of_budget():
    rng = np.random.default_rng(0)
    s, e, d = grid(200)
    x = rng.normal(size=200)
    for share in (0.05, 0.1, 0.33):
        segs = select_segments(s, e, x, SelectConfig(top=f"{share * 100:g}%", smooth=0), d)
        total = sum(g.duration for g in segs)
        assert share * d <= total < share * d + 2.0


def test_count_returns_best_peaks_in_time_order_with_ranks():
    s, e, d = grid(60)
    x = np.zeros(60)
    x[5:8], x[30:32], x[50:53] = 0.6, 1.0, 0.8
    segs = select_segments(s, e, x, SelectConfig(top=2, smooth=0), d)
    assert [(g.start, g.end) for g in segs] == [(60.0, 64.0), (100.0, 106.0)]
    assert [g.rank for g in segs] == [1, 2]
    segs3 = select_segments(s, e, x, SelectConfig(top=3, smooth=0), d)
    assert [g.rank for g in segs3] == [3, 1, 2]


def test_threshold_only():
    s, e, d = grid(10)
    x = np.array([0, 0, 1, 1, 0, 0, 0.5, 0, 0.9, 0], float)
    segs = select_segments(s, e, x, SelectConfig(top=None, threshold=0.8, smooth=0), d)
    assert [(g.start, g.end) for g in segs] == [(4.0, 8.0), (16.0, 18.0)]


def test_merge_gap_joins_close_segments():
    s, e, d = grid(20)
    x = np.zeros(20)
    x[5], x[7] = 1.0, 1.0
    cfg = dict(top=None, threshold=0.5, smooth=0)
    assert len(select_segments(s, e, x, SelectConfig(**cfg), d)) == 2
    merged = select_segments(s, e, x, SelectConfig(**cfg, merge_gap=2.0), d)
    assert [(g.start, g.end) for g in merged] == [(10.0, 16.0)]


def test_min_length_grows_around_centre_and_clamps():
    s, e, d = grid(20)
    x = np.zeros(20)
    x[10] = 1.0
    x[0] = 0.99
    segs = select_segments(s, e, x, SelectConfig(top=None, threshold=0.9, min_length=6, smooth=0), d)
    assert [(g.start, g.end) for g in segs] == [(0.0, 6.0), (18.0, 24.0)]


def test_max_length_keeps_best_window():
    s, e, d = grid(30)
    x = np.zeros(30)
    x[5:20] = 0.6
    x[12:15] = 1.0
    segs = select_segments(s, e, x, SelectConfig(top=None, threshold=0.5, max_length=6, smooth=0), d)
    assert [(g.start, g.end) for g in segs] == [(24.0, 30.0)]


def test_pad_merges_and_clamps_to_video():
    s, e, d = grid(10, duration=19.0)  # last clip is short
    x = np.zeros(10)
    x[0], x[3], x[9] = 1.0, 1.0, 1.0
    segs = select_segments(s, e, x, SelectConfig(top=None, threshold=0.5, pad=1.5, smooth=0), d)
    assert [(g.start, g.end) for g in segs] == [(0.0, 3.5), (4.5, 9.5), (16.5, 19.0)]
    segs = select_segments(s, e, x, SelectConfig(top=None, threshold=0.5, pad=2.0, smooth=0), d)
    assert [(g.start, g.end) for g in segs] == [(0.0, 10.0), (16.0, 19.0)]


def test_smoothing_removes_single_clip_spike():
    s, e, d = grid(30)
    x = np.zeros(30)
    x[3] = 1.0  # isolated spike
    x[15:20] = 0.6  # sustained
    segs = select_segments(s, e, x, SelectConfig(top=1, smooth=6.0), d)
    assert 30.0 <= segs[0].start < segs[0].end <= 40.0
    assert np.allclose(smooth_scores(np.array([0, 3, 0.0]), 3), [1.5, 1.0, 1.5])


def test_flat_and_empty_scores():
    s, e, d = grid(10)
    assert select_segments([], [], [], SelectConfig(), 5.0) == []
    segs = select_segments(s, e, np.ones(10), SelectConfig(top="20%", smooth=0), d)
    assert [(g.start, g.end) for g in segs] == [(0.0, 4.0)]


def test_bad_input():
    s, e, d = grid(5)
    with pytest.raises(InputError):
        select_segments(s, e, np.array([0, np.nan, 0, 0, 0]), SelectConfig(), d)
    with pytest.raises(InputError):
        select_segments(s, e, np.zeros(4), SelectConfig(), d)
    with pytest.raises(InputError):
        select_segments(s, e, np.zeros(5), SelectConfig(), 0.0)


top_values = st.one_of(st.integers(1, 8).map(str), st.integers(1, 100).map(lambda p: f"{p}%"))


@settings(max_examples=150, deadline=None)
@given(
    scores=st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=80),
    last=st.floats(0.1, 2.0),
    top=st.one_of(st.none(), top_values),
    threshold=st.one_of(st.none(), st.floats(0, 1)),
    min_length=st.sampled_from([0.0, 3.0, 7.0]),
    max_length=st.sampled_from([None, 7.0, 12.0]),
    merge_gap=st.sampled_from([0.0, 2.0, 5.0]),
    pad=st.sampled_from([0.0, 0.5, 3.0]),
    smooth=st.sampled_from([0.0, 6.0]),
)
def test_properties(scores, last, top, threshold, min_length, max_length, merge_gap, pad, smooth):
    if top is None and threshold is None:
        threshold = 0.5
    n = len(scores)
    duration = 2.0 * (n - 1) + last
    s, e, _ = grid(n, duration=duration)
    cfg = SelectConfig(top=top, threshold=threshold, min_length=min_length, max_length=max_length,
                       merge_gap=merge_gap, pad=pad, smooth=smooth)
    segs = select_segments(s, e, np.array(scores), cfg, duration)
    # bounds and order
    for g in segs:
        assert 0.0 <= g.start < g.end <= duration + 1e-9
    for a, b in zip(segs, segs[1:]):
        assert a.end < b.start  # never overlap (touching pieces are merged)
    assert sorted(g.rank for g in segs) == list(range(1, len(segs) + 1))
    if top is not None and not top.endswith("%"):
        assert len(segs) <= int(top)
    if pad == 0 and min_length == 0:
        on_grid = set(np.round(np.concatenate([s, e]), 6))
        for g in segs:
            assert round(g.start, 6) in on_grid and round(g.end, 6) in on_grid
    if max_length is not None and pad == 0:
        assert all(g.duration <= max_length + 1e-6 for g in segs)
    if threshold is None and top is not None and top.endswith("%") and min_length == 0 and pad == 0 \
            and max_length is None:
        share = float(top[:-1]) / 100
        assert sum(g.duration for g in segs) >= min(share * duration, duration) - 1e-6
