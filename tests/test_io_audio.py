"""Audio extraction: mono float32 at the requested rate, beeps where they were put, None without audio."""

from __future__ import annotations

import numpy as np
import pytest

import media
from highlighter.errors import InputError, UsageError
from highlighter.io import Audio, iter_audio, load_audio

BEEP_RMS = media.BEEP_AMPLITUDE / np.sqrt(2)  # sine RMS


@pytest.fixture(scope="module")
def beep(media_dir):
    """4 s, 44.1 kHz AAC in MP4, 0.25 s 1 kHz beeps at 1.0 s and 3.0 s."""
    return media.make_video(media_dir / "beep.mp4", 4.0, beep_at=[1.0, 3.0], size=(64, 48))


def onset(x: np.ndarray, sr: int, after: float = 0.0) -> float:
    i = int(after * sr)
    return (i + int(np.argmax(np.abs(x[i:]) > 0.1))) / sr


@pytest.mark.parametrize("sr", [16000, 32000])
def test_rate_length_and_beep_energy(beep, sr):
    a = load_audio(beep, sr)
    assert isinstance(a, Audio) and a.sample_rate == sr and a.start == 0.0
    assert a.samples.dtype == np.float32 and a.samples.ndim == 1
    assert abs(len(a) - 4 * sr) <= 0.03 * sr  # AAC padding: within 30 ms
    assert np.abs(a.samples).max() <= 1.0
    assert abs(media.rms_at(a.samples, sr, 1.05, 1.2) - BEEP_RMS) < 0.05
    assert abs(media.rms_at(a.samples, sr, 3.05, 3.2) - BEEP_RMS) < 0.05
    for t0, t1 in [(0.1, 0.9), (1.4, 2.9), (3.4, 3.9)]:
        assert media.rms_at(a.samples, sr, t0, t1) < 0.01
    assert abs(onset(a.samples, sr) - 1.0) < 0.01 and abs(onset(a.samples, sr, 2.0) - 3.0) < 0.01


def test_range_is_aligned_to_the_clock(beep):
    a = load_audio(beep, 16000, start=2.5, end=3.5)
    assert a.start == 2.5 and len(a) == 16000
    assert abs(onset(a.samples, 16000) - 0.5) < 0.01  # the 3.0 s beep, 0.5 s into the range


def test_iter_audio_chunks_match_load(beep):
    whole = load_audio(beep, 16000)
    chunks = list(iter_audio(beep, 16000, chunk_seconds=1.5))
    assert [c.start for c in chunks] == [0.0, 1.5, 3.0]
    assert [len(c) for c in chunks[:-1]] == [24000, 24000]
    assert np.array_equal(np.concatenate([c.samples for c in chunks]), whole.samples)


def test_no_audio_stream_is_none_not_an_error(media_dir):
    path = media.make_video(media_dir / "silent_video.mp4", 1.0, audio=False, size=(64, 48))
    assert load_audio(path, 16000) is None
    assert list(iter_audio(path, 16000)) == []


def test_stereo_downmix_vorbis_webm_and_audio_only(media_dir):
    st = media.make_video(media_dir / "stereo.mkv", 2.0, beep_at=0.5, channels=2, size=(64, 48))
    a = load_audio(st, 32000)
    assert a.samples.ndim == 1 and abs(media.rms_at(a.samples, 32000, 0.55, 0.7) - BEEP_RMS) < 0.06
    assert abs(onset(a.samples, 32000) - 0.5) < 0.015  # vorbis: a little pre-echo allowed
    au = media.make_audio(media_dir / "only.m4a", 2.0, beep_at=1.2)
    b = load_audio(au, 16000)
    assert abs(onset(b.samples, 16000) - 1.2) < 0.01


def test_bad_input(media_dir, beep):
    with pytest.raises(InputError, match="no such file"):
        load_audio(media_dir / "nope.mp4", 16000)
    with pytest.raises(InputError, match="not a readable media file"):
        load_audio(media.write_not_media(media_dir / "text.mp4"), 16000)
    with pytest.raises(UsageError):
        load_audio(beep, 0)
    with pytest.raises(UsageError):
        load_audio(beep, 16000, start=2.0, end=1.0)


@pytest.mark.shared
def test_shared_mono_and_vorbis(shared_videos):
    fire = load_audio(shared_videos / "fire2.mp4", 32000)  # mono AAC 48 kHz, 2.26 s
    assert abs(fire.duration - 2.26) < 0.05 and media.rms_at(fire.samples, 32000, 0, 2) > 1e-3
    bbb = load_audio(shared_videos / "big_buck_bunny_432_433.webm", 16000)  # vorbis stereo
    assert abs(bbb.duration - 1.0) < 0.05
