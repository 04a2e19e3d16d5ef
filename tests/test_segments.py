"""Segment selection rules: top share / count / reel length, threshold, min/max length, merge, pad, shot cuts,
short videos and the tail, bounds; the one time parser behind every time option."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from highlighter.errors import InputError, UsageError
from highlighter.outputs.segments import (DEFAULT_MAX_SECONDS, DEFAULT_MIN_SECONDS, SelectConfig, parse_top,
                                          select_segments, smooth_scores)
from highlighter.timeparse import parse_seconds


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


def test_count_second_pick_is_another_event_not_the_lead_in_of_the_first():
    """The demo's case (examples/demo.mp4 under per-video RASL): a strong event whose rising edge sits just below
    half its smoothed peak, and a weaker, narrower second event. Smoothing lifts the clip before the first event
    above the second event's peak; the second pick must still be the second event."""
    s, e, d = grid(30)
    x = np.full(30, 0.05)
    x[9:13] = [0.44, 0.61, 0.73, 1.0]  # event 1 (18-26 s), its first clip under half the smoothed peak
    x[7] = 0.21
    x[20] = 0.53  # event 2 (40-42 s): one strong clip
    segs = select_segments(s, e, x, SelectConfig(top=2, smooth=6), d)
    assert len(segs) == 2
    assert any(g.start < 26 and g.end > 18 for g in segs) and any(g.start < 42 and g.end > 40 for g in segs), segs
    # without smoothing nothing is lifted, and the same two events are found
    raw = select_segments(s, e, x, SelectConfig(top=2, smooth=0), d)
    assert any(g.start < 42 and g.end > 40 for g in raw), raw


def test_count_stops_at_the_videos_lowest_clip_but_keeps_the_first():
    """The dog clip (v_ZNVhz7ctTq0, 7 clips): one peak covers all but the first clip, which is the video's lowest;
    `--top 2` then gives one segment, not that clip as a "second highlight". A flat video still gives one."""
    s, e, d = grid(7)
    x = np.array([0.0, 0.31, 0.55, 0.66, 0.53, 1.0, 0.69])
    segs = select_segments(s, e, x, SelectConfig(top=2), d)
    assert len(segs) == 1 and segs[0].start >= 2.0, segs
    assert len(select_segments(s, e, np.zeros(7), SelectConfig(top=2), d)) == 1


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



# --------------------------------------------------------------------------- times
def test_parse_seconds_forms():
    cases = {"30s": 30, "0:30": 30, "1:02:03.5": 3723.5, "1.5": 1.5, "500ms": 0.5, "2m": 120, "1m30s": 90,
             "1h": 3600, " 2 s ": 2, "0.5S": 0.5, ".5": 0.5, "10:00": 600, "3 seconds": 3}
    for text, want in cases.items():
        assert parse_seconds(text, "--x") == pytest.approx(want), text
    assert parse_seconds(2, "--x") == 2.0
    for bad in ("", "abc", "-1", "1:60", "1:60:00", "5 parsecs", "1.2.3", "nan", "inf", "s", "1e3", True):
        with pytest.raises(UsageError, match="--x"):
            parse_seconds(bad, "--x")


def test_parse_top_reel_length():
    assert parse_top("30s") == ("duration", 30.0)
    assert parse_top("0:30") == ("duration", 30.0)
    assert parse_top("1:02:03.5") == ("duration", 3723.5)
    assert parse_top("5") == ("count", 5)  # a bare number stays a count
    for bad in ("0s", "0:00", "1.5", "30 parsecs"):
        with pytest.raises(UsageError):
            parse_top(bad)


def test_config_reads_time_text():
    cfg = SelectConfig(pad="0.5s", min_length="2s", max_length="0:10", smooth="6s", merge_gap="500ms")
    assert (cfg.pad, cfg.min_length, cfg.max_length, cfg.smooth, cfg.merge_gap) == (0.5, 2.0, 10.0, 6.0, 0.5)
    with pytest.raises(UsageError, match="--pad"):
        SelectConfig(pad="soon")
    with pytest.raises(UsageError, match="--max-length"):
        SelectConfig(max_length="0s")


def test_cli_select_config_maps_duration_and_cross_cuts():
    from highlighter.cli.options import select_config

    cfg = select_config(None, None, 1.0, None, None, 0.5, None, duration=90.0)
    assert (cfg.top, cfg.min_length, cfg.pad, cfg.cross_cuts) == ("90s", 1.0, 0.5, False)
    base = SelectConfig(top=3, cross_cuts=True, snap=0.4)
    again = select_config(None, None, None, None, None, None, None, base=base)
    assert (again.top, again.cross_cuts, again.snap) == (3, True, 0.4)
    with pytest.raises(UsageError, match="give one of them"):
        select_config("5", None, None, None, None, None, None, duration=30.0)
    with pytest.raises(UsageError, match="--duration"):
        select_config(None, None, None, None, None, None, None, duration=0.0)


# --------------------------------------------------------------------------- shots
def test_count_segment_stays_in_its_shot():
    """The issue's reel that ended on frames of the next clip: a peak never runs past a cut."""
    s, e, d = grid(30)
    x = np.zeros(30)
    x[10:13] = 1.0  # the moment: 20-26 s; a cut at 25.8 s starts an unrelated clip
    segs = select_segments(s, e, x, SelectConfig(top=1, smooth=0), d, cuts=[25.8])
    assert [(g.start, g.end) for g in segs] == [(20.0, 25.8)]
    # without cuts (or with --cross-cuts) the grid decides, as before
    for kw in ({}, {"cuts": [25.8]}):
        cross = SelectConfig(top=1, smooth=0, cross_cuts=bool(kw), snap=0)
        assert [(g.start, g.end) for g in select_segments(s, e, x, cross, d, **kw)] == [(20.0, 26.0)]


def test_edges_snap_to_a_near_cut():
    s, e, d = grid(30)
    x = np.zeros(30)
    x[10:13] = 1.0  # 20-26 s
    segs = select_segments(s, e, x, SelectConfig(top=1, smooth=0), d, cuts=[19.4, 26.7])
    assert [(g.start, g.end) for g in segs] == [(19.4, 26.7)]  # the whole shot, not 0.6 s short of either cut
    far = select_segments(s, e, x, SelectConfig(top=1, smooth=0), d, cuts=[17.0, 29.0])
    assert [(g.start, g.end) for g in far] == [(20.0, 26.0)]
    off = select_segments(s, e, x, SelectConfig(top=1, smooth=0, snap=0, cross_cuts=True), d, cuts=[19.4, 26.7])
    assert [(g.start, g.end) for g in off] == [(20.0, 26.0)]


def test_share_run_is_split_into_one_segment_per_shot():
    s, e, d = grid(50)
    x = np.zeros(50)
    x[20:25] = 1.0  # 40-50 s, across a cut at 44.5
    segs = select_segments(s, e, x, SelectConfig(top="10%", smooth=0), d, cuts=[44.5])
    assert [(g.start, g.end) for g in segs] == [(40.0, 44.5), (44.5, 50.0)]
    crossed = select_segments(s, e, x, SelectConfig(top="10%", smooth=0, cross_cuts=True, snap=0), d, cuts=[44.5])
    assert [(g.start, g.end) for g in crossed] == [(40.0, 50.0)]


def test_pad_min_length_and_merge_stop_at_cuts():
    s, e, d = grid(30)
    x = np.zeros(30)
    x[10] = 1.0  # 20-22 s, in a shot that starts at 19 s
    padded = select_segments(s, e, x, SelectConfig(top=None, threshold=0.5, pad=3, smooth=0, snap=0), d, cuts=[19.0])
    assert [(g.start, g.end) for g in padded] == [(19.0, 25.0)]
    grown = select_segments(s, e, x, SelectConfig(top=None, threshold=0.5, min_length=8, smooth=0, snap=0), d,
                            cuts=[19.0, 23.0])
    assert [(g.start, g.end) for g in grown] == [(19.0, 23.0)]  # the shot is shorter than 8 s: taken whole
    x[12] = 1.0  # 24-26 s: a gap of 2 s with a cut in it
    cfg = SelectConfig(top=None, threshold=0.5, merge_gap=3, smooth=0, snap=0)
    assert len(select_segments(s, e, x, cfg, d, cuts=[23.0])) == 2
    assert len(select_segments(s, e, x, cfg, d)) == 1


def test_cuts_are_cleaned():
    s, e, d = grid(10)
    x = np.arange(10.0)
    junk = [float("nan"), -1.0, 0.0, 25.0, 13.5, 13.5, 20.0]  # only 13.5 is a cut inside the video
    segs = select_segments(s, e, x, SelectConfig(top=1, smooth=0), d, cuts=junk)
    assert [(g.start, g.end) for g in segs] == [(13.5, 20.0)]


# --------------------------------------------------------------------------- reel length and count bounds
def test_count_mode_segments_have_reel_sized_lengths():
    """`--top 5` once gave 92 s (53 % of the video): a broad curve made five 18-s segments."""
    s, e, d = grid(87, duration=174.0)
    x = np.sin(np.arange(87) / 6.0) + 0.01 * np.arange(87)  # broad hills
    segs = select_segments(s, e, x, SelectConfig(top=5), d)
    assert len(segs) == 5
    assert all(DEFAULT_MIN_SECONDS - 1e-9 <= g.duration <= DEFAULT_MAX_SECONDS + 1e-9 for g in segs)
    assert sum(g.duration for g in segs) <= 5 * DEFAULT_MAX_SECONDS
    wide = select_segments(s, e, x, SelectConfig(top=5, max_length=30), d)
    assert max(g.duration for g in wide) > DEFAULT_MAX_SECONDS  # an explicit cap wins


def test_duration_mode_fills_the_reel_exactly():
    rng = np.random.default_rng(3)
    s, e, d = grid(90)
    x = rng.normal(size=90)
    cuts = list(np.cumsum(rng.uniform(3, 15, size=20)))
    cuts = [c for c in cuts if c < d]
    for target in ("30s", "0:30", "1:00"):
        for kw in ({}, {"cuts": cuts}):
            segs = select_segments(s, e, x, SelectConfig(top=target, pad=0.5), d, **kw)
            want = parse_top(target)[1]
            assert sum(g.duration for g in segs) == pytest.approx(want, abs=1e-6), (target, kw)
            for g in segs:
                assert not any(g.start + 1e-6 < c < g.end - 1e-6 for c in kw.get("cuts", []))
    # best first: the reel holds the best peak
    x2 = np.zeros(90)
    x2[60:62] = 5.0
    segs = select_segments(s, e, x2, SelectConfig(top="10s", smooth=0), d)
    assert any(g.start <= 120.0 and g.end >= 124.0 for g in segs)


def test_duration_longer_than_the_video_gives_all_there_is():
    s, e, d = grid(5, duration=9.0)
    segs = select_segments(s, e, np.arange(5.0), SelectConfig(top="5m", smooth=0, max_length=100), d)
    assert [(g.start, g.end) for g in segs] == [(0.0, 9.0)]


# --------------------------------------------------------------------------- short videos and the tail
def test_smoothing_scales_to_a_short_video():
    """A 9.6-s video: a 6-s window averaged the best clip away and picked a bad one."""
    s, e, d = grid(5, duration=9.6)
    x = np.array([0.1, 0.9, 0.2, 0.3, 0.1])
    segs = select_segments(s, e, x, SelectConfig(top=1), d)  # default smooth=6
    assert [(g.start, g.end) for g in segs] == [(2.0, 4.0)]
    long_s, long_e, long_d = grid(50)
    spike = np.zeros(50)
    spike[3] = 1.0
    spike[20:25] = 0.6
    assert select_segments(long_s, long_e, spike, SelectConfig(top=1), long_d)[0].start >= 40.0  # still smooths


def test_tail_after_the_last_clip_is_scored():
    """fire2.mp4 (2.38 s): one 2-s clip, the last 0.38 s had no score and was never cut."""
    one = select_segments([0.0], [2.0], [1.0], SelectConfig(top=1), 2.38)
    assert [(g.start, g.end) for g in one] == [(0.0, 2.38)]
    s, e, _ = grid(9)  # 0-18 s of features in an 18.87-s video: the tail belongs to the last clip
    x = np.zeros(9)
    x[8] = 1.0
    segs = select_segments(s, e, x, SelectConfig(top=None, threshold=0.5, smooth=0), 18.87)
    assert [(g.start, g.end) for g in segs] == [(16.0, 18.87)]
    share = select_segments(s, e, x, SelectConfig(top="10%", smooth=0), 18.87)
    assert share[-1].end == 18.87


top_values = st.one_of(st.integers(1, 8).map(str), st.integers(1, 100).map(lambda p: f"{p}%"),
                       st.sampled_from(["3s", "0:10", "25s"]))


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
    cut_fracs=st.lists(st.floats(0.0, 1.0), max_size=6),
    cross_cuts=st.booleans(),
)
def test_properties(scores, last, top, threshold, min_length, max_length, merge_gap, pad, smooth, cut_fracs,
                    cross_cuts):
    if top is None and threshold is None:
        threshold = 0.5
    n = len(scores)
    duration = 2.0 * (n - 1) + last
    s, e, _ = grid(n, duration=duration)
    cuts = sorted({round(f * duration, 3) for f in cut_fracs} - {0.0, round(duration, 3)})
    cuts = [c for c in cuts if 0 < c < duration]
    cfg = SelectConfig(top=top, threshold=threshold, min_length=min_length, max_length=max_length,
                       merge_gap=merge_gap, pad=pad, smooth=smooth, cross_cuts=cross_cuts)
    segs = select_segments(s, e, np.array(scores), cfg, duration, cuts=cuts)
    kind = parse_top(top)[0] if top is not None else "threshold"
    # bounds and order
    for g in segs:
        assert 0.0 <= g.start < g.end <= duration + 1e-9
        if not cross_cuts:
            assert not any(g.start + 1e-6 < c < g.end - 1e-6 for c in cuts), (g, cuts)
    for a, b in zip(segs, segs[1:]):
        # never overlap; touching pieces merge, except at a cut (two shots)
        assert a.end < b.start or (abs(a.end - b.start) < 1e-6 and any(abs(a.end - c) < 1e-6 for c in cuts))
    assert sorted(g.rank for g in segs) == list(range(1, len(segs) + 1))
    if threshold is None:
        assert segs, "without a threshold something is always selected"
    if kind == "count":
        assert len(segs) <= int(top)
    if kind == "duration":
        assert sum(g.duration for g in segs) <= parse_top(top)[1] + 1e-6
    if pad == 0 and min_length == 0 and kind in ("share", "threshold"):
        on_grid = set(np.round(np.concatenate([s, e, [duration], cuts]), 6))
        for g in segs:
            assert round(g.start, 6) in on_grid and round(g.end, 6) in on_grid
    if max_length is not None and pad == 0:
        assert all(g.duration <= max_length + 1e-6 for g in segs)
    if threshold is None and kind == "share" and min_length == 0 and pad == 0 and max_length is None and not cuts:
        share = float(top[:-1]) / 100
        assert sum(g.duration for g in segs) >= min(share * duration, duration) - 1e-6
