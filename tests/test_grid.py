"""The clip grid: counts, the last partial clip, overlap, frame assignment, and the
streaming cutters in features/extract.py (fed synthetic timestamps here; real
decoding is in test_extract.py)."""

import numpy as np
import pytest

from highlighter.errors import UsageError
from highlighter.features.extract import clip_frames, clip_samples
from highlighter.features.grid import ClipGrid, assign


@pytest.mark.parametrize("duration,n,last_end", [
    (10.0, 5, 10.0),  # exact
    (11.0, 6, 11.0),  # 1 s tail = half a clip: kept
    (11.99, 6, 11.99),  # 1.99 s tail: kept, ends at the duration
    (10.9, 5, 10.0),  # 0.9 s tail: dropped
    (0.5, 1, 0.5),  # shorter than half a clip: still one clip
    (2.0, 1, 2.0),
])
def test_default_grid(duration, n, last_end):
    starts, ends = ClipGrid().clips(duration)
    assert starts.shape == ends.shape == (n,)
    np.testing.assert_allclose(starts, np.arange(n) * 2.0)
    assert ends[-1] == pytest.approx(last_end)
    assert np.all(ends[:-1] == starts[:-1] + 2.0)


def test_rasl_grid_and_overlap():
    s, e = ClipGrid(0.2).clips(30.0)
    assert s.size == 150 and e[-1] == pytest.approx(30.0)  # RASL: 30 s -> 150 vectors
    s, e = ClipGrid(2.0, hop_seconds=1.0).clips(10.0)
    # clips of 2 s every 1 s; the one at 9 s is 1 s long (half) -> kept
    np.testing.assert_allclose(s, np.arange(10.0))
    np.testing.assert_allclose(e, np.minimum(np.arange(10.0) + 2, 10))


def test_grid_rejects_bad_values_and_roundtrips():
    with pytest.raises(UsageError):
        ClipGrid(0)
    with pytest.raises(UsageError):
        ClipGrid(2.0, hop_seconds=-1)
    g = ClipGrid(2.0, 0.5)
    assert ClipGrid.from_dict(g.to_dict()).to_dict() == g.to_dict()
    assert ClipGrid().to_dict()["hop_seconds"] == 2.0


def test_assign_half_open_with_tolerance():
    s, e = ClipGrid().clips(6.0)
    t = np.array([0.0, 1.9999, 3.9999999, 4.0, 5.99])
    idx = assign(t, s, e)
    assert [list(i) for i in idx] == [[0, 1], [], [2, 3, 4]]


def _chunks(times, chunk):
    frames = np.arange(len(times), dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    for k in range(0, len(times), chunk):
        yield frames[k:k + chunk], np.asarray(times[k:k + chunk])


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_clip_frames_matches_assign(chunk):
    times = np.arange(0, 9.0, 1 / 8)  # 8 fps over 9 s; the last 1 s tail is a clip [8, 9)
    s, e = ClipGrid().clips(9.0)
    got = list(clip_frames(_chunks(times, chunk), s, e))
    assert [i for i, _, _ in got] == list(range(s.size))
    for (i, frames, padded), idx in zip(got, assign(times, s, e)):
        assert not padded
        np.testing.assert_array_equal(frames[:, 0, 0, 0], idx.astype(np.uint8))


def test_clip_frames_overlap_and_gap_padding():
    s, e = ClipGrid(2.0, 1.0).clips(6.0)
    times = np.arange(0, 6.0, 0.5)
    got = list(clip_frames(_chunks(times, 3), s, e))
    for (i, frames, _), idx in zip(got, assign(times, s, e)):
        np.testing.assert_array_equal(frames[:, 0, 0, 0], idx.astype(np.uint8))
    # a gap: no frame in [2, 4) -> the clip repeats the last earlier frame
    times = np.array([0.0, 1.0, 1.5, 4.0, 5.0])
    s, e = ClipGrid().clips(6.0)
    got = list(clip_frames(_chunks(times, 2), s, e))
    assert [p for _, _, p in got] == [False, True, False]
    assert got[1][1][:, 0, 0, 0].tolist() == [2]
    # the stream ends early: trailing clips repeat the last frame
    got = list(clip_frames(_chunks(np.array([0.0, 1.0]), 2), s, e))
    assert [p for _, _, p in got] == [False, True, True]
    assert list(clip_frames(iter(()), s, e)) == []  # nothing decoded: nothing yielded


@pytest.mark.parametrize("chunk_s", [0.3, 1.0, 5.0])
def test_clip_samples_exact_ranges_and_padding(chunk_s):
    sr = 100
    x = np.arange(int(7.2 * sr), dtype=np.float32)  # audio shorter than the 8 s video
    s, e = ClipGrid().clips(8.0)
    n = int(chunk_s * sr)
    chunks = ((x[k:k + n], k / sr) for k in range(0, x.size, n))
    got = list(clip_samples(chunks, sr, s, e))
    assert [i for i, _, _ in got] == [0, 1, 2, 3]
    for i, clip, padded in got[:3]:
        np.testing.assert_array_equal(clip, x[i * 200:(i + 1) * 200])
        assert not padded
    i, clip, padded = got[3]
    assert padded and clip.size == 200
    np.testing.assert_array_equal(clip[:120], x[600:720])
    assert not clip[120:].any()


def test_clip_frames_streams_lazily():
    """Bounded memory: a clip is handed on as soon as a frame past its end arrives, and
    frames of finished clips are released (the cutter never reads ahead of need)."""
    pulled = []

    def chunks():
        t = np.arange(0, 3600.0, 0.1)  # an hour at 10 fps, 1 frame per chunk
        for k in range(t.size):
            pulled.append(k)
            yield np.zeros((1, 1, 1, 3), np.uint8), t[k:k + 1]

    s, e = ClipGrid().clips(3600.0)
    it = clip_frames(chunks(), s, e)
    i, frames, _ = next(it)
    assert i == 0 and frames.shape[0] == 20 and len(pulled) == 21  # frames 0..19 + the one at 2.0 s
    for _ in range(9):
        next(it)
    assert len(pulled) == 201  # 10 clips x 20 frames + one look-ahead frame
