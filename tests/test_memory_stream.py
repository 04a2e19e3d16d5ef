"""Audio reaches the backbones in bounded chunks, and chunking does not change the features.

Issue 14 (memory): a whole 2-h track at 32 kHz is 0.9 GB of float32, so extraction must never
hold it. These tests pin the two halves of that: `iter_audio` is a lazy generator whose
allocations stay near one chunk whatever the file length, and features made from small,
oddly sized chunks equal those made from the whole track at once.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import media
from highlighter.features.extract import ExtractConfig, Extractor
from highlighter.io import iter_audio, load_audio


@pytest.fixture(scope="module")
def clip(media_dir):
    """3 s of 64x48 video with AAC beeps at 0.5 s and 2.2 s (a partial last clip on a 2-s grid)."""
    return media.make_video(media_dir / "stream3s.mp4", 3.0, size=(64, 48), beep_at=[0.5, 2.2])


@pytest.fixture(scope="module")
def long_audio(media_dir):
    """60 s of AAC: 3.8 MB of float32 at 16 kHz when decoded whole."""
    return media.make_audio(media_dir / "long60.m4a", 60.0, beep_at=[10.0, 45.0])


def video_end(path) -> float:
    """Where the extractor's grid ends: the video stream's end in container time."""
    from highlighter.io.probe import probe_video

    v = probe_video(path).video
    return v.start + v.duration


def whole_track_features(extractor: Extractor, path) -> np.ndarray:
    """The reference: decode the whole track into one array, cut it on the grid, embed every clip."""
    bb = extractor.audio
    sr = int(bb.sample_rate)
    starts, ends = extractor.config.grid.clips(video_end(path))
    x = load_audio(path, sr).samples
    clips = []
    for s, e in zip(starts, ends):
        a, b = round(s * sr), max(round(e * sr), round(s * sr) + 1)
        c = np.zeros(b - a, np.float32)
        part = x[a:b]
        c[:len(part)] = part
        clips.append(c)
    return bb.embed_clips(clips)


@pytest.mark.parametrize("backbone", ["logmel", "panns"])
def test_streamed_features_equal_whole_track(clip, backbone):
    # 0.7-s chunks: not a divisor of the 2-s clip, so clips are stitched across chunk edges
    ex = Extractor(ExtractConfig(visual=None, audio=backbone, pretrained=backbone == "logmel", device="cpu",
                                 audio_chunk_seconds=0.7, batch_size=2))
    streamed = ex.extract(clip).audio
    whole = whole_track_features(ex, clip)
    assert streamed.shape == whole.shape == (2, ex.audio.spec.dim)
    atol = 1e-5 * float(np.abs(whole).max())  # random-weight PANN features are ~0.01, logmel's ~10
    np.testing.assert_allclose(streamed, whole, rtol=1e-4, atol=atol)
    assert np.abs(streamed[0] - streamed[1]).max() > 100 * atol  # the two clips differ: the check can fail


def test_iter_audio_is_a_lazy_bounded_generator(long_audio):
    sr, chunk = 16000, 1.0
    gen = iter_audio(long_audio, sr, chunk_seconds=chunk)
    assert inspect.isgenerator(gen)
    whole_bytes = 60 * sr * 4
    next(iter_audio(long_audio, sr, chunk_seconds=chunk))  # imports (PyAV...) are not what is measured
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        total = 0
        for a in gen:
            assert len(a) <= chunk * sr
            total += len(a)
            del a
        streamed_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        whole = load_audio(long_audio, sr)
        whole_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == len(whole)
    assert whole_peak >= whole_bytes  # the whole-array path does hold the track (the measure sees numpy)
    assert streamed_peak < whole_bytes / 8, f"streaming held {streamed_peak} bytes, the whole track is {whole_bytes}"


def test_weight_free_audio_never_imports_torch(clip):
    """logmel needs no torch; importing it anyway costs ~0.5 GB of RSS (the CUDA build here)."""
    code = ("import sys; from highlighter.features.extract import ExtractConfig, Extractor; "
            "ff = Extractor(ExtractConfig(visual=None, audio='logmel', device='cpu')).extract(sys.argv[1]); "
            "assert ff.audio.shape == (2, 132); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(clip)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
