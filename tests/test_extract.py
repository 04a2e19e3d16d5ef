"""Feature extraction on real decoded media: clip alignment, cache invalidation,
failure isolation, no-audio files, atomic outputs, the CLI.

Most tests use two small backbones defined here (mean colour + frame count of a
clip; RMS + sample count of an audio clip). They are real feature functions
behind the real `Backbone` contract, chosen because their output is known
exactly, so the test can check that the extractor hands each clip exactly the
frames/samples of its time span. The published backbones run in
`test_real_backbone_*` (random weights: same architecture and compute).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

import media
from cli_helpers import run_cli_in_process as _cli
from highlighter.errors import InputError, UsageError, WeightsMissingError
from highlighter.features import base
from highlighter.features.base import Backbone, BackboneSpec
from highlighter.features.extract import (ExtractConfig, Extractor, discover, extract_features, extract_many,
                                          load_or_extract)
from highlighter.features.grid import ClipGrid
from highlighter.features.store import FeatureFile


class MeanColour(Backbone):
    spec = BackboneSpec("test-meancolour", "visual", 4, None, "mean RGB and frame count of a clip", "10 fps, 32 px")
    fps = 10.0
    short_side = 32

    def embed_clips(self, clips):
        return np.stack([np.r_[media.mean_rgb(c).mean(0), len(c)] for c in clips]).astype(np.float32)


class MeanColour5(MeanColour):
    spec = BackboneSpec("test-meancolour5", "visual", 4, None, "as test-meancolour at 5 fps", "5 fps, 32 px")
    fps = 5.0


class Loudness(Backbone):
    spec = BackboneSpec("test-rms", "audio", 2, None, "RMS and sample count of a clip", "8 kHz mono")
    sample_rate = 8000

    def embed_clips(self, clips):
        return np.stack([[np.sqrt(np.mean(c.astype(np.float64) ** 2)), c.size] for c in clips]).astype(np.float32)


class FailsLate(MeanColour):
    """Raises on its second batch: a crash in the middle of a video."""

    spec = BackboneSpec("test-failslate", "visual", 4, None, "fails mid-video", "10 fps, 32 px")
    calls = 0

    def embed_clips(self, clips):
        FailsLate.calls += 1
        if FailsLate.calls % 2 == 0:
            raise RuntimeError("simulated out-of-memory in the backbone")
        return super().embed_clips(clips)


@pytest.fixture(scope="module", autouse=True)
def test_backbones():
    """Register the test backbones for this module only (other tests list the built-ins)."""
    added = [MeanColour, MeanColour5, Loudness, FailsLate]
    for cls in added:
        base.register_backbone(cls)
    yield
    for cls in added:
        base.unregister_backbone(cls.spec.name)


CFG = ExtractConfig(visual="test-meancolour", audio="test-rms", pretrained=False, device="cpu", batch_size=3)


@pytest.fixture(scope="module")
def colour_video(tmp_path_factory):
    """9.3 s: red until 4 s, then blue; a beep at [6, 6.25)."""
    d = tmp_path_factory.mktemp("colour")
    return media.make_video(d / "colour.mp4", 9.3, fps=25, size=(64, 48),
                            colors=[(0, "red"), (4, "blue")], beep_at=[6.0], sample_rate=16000)


def test_alignment_with_decoder_timestamps(colour_video):
    from highlighter.io import probe

    ff = extract_features(colour_video, CFG)
    v = probe(colour_video).video
    dur = v.start + v.duration  # 9.32: x264 rounds up to whole 1/25-s frames
    s, e = ClipGrid().clips(dur)
    np.testing.assert_array_equal(ff.starts, s)
    np.testing.assert_array_equal(ff.ends, e)
    assert ff.num_clips == 5 and ff.ends[-1] == pytest.approx(9.3, abs=0.05)  # 1.3 s tail kept
    red, blue = ff.visual[:, 0] > 200, ff.visual[:, 2] > 200
    assert red.tolist() == [True, True, False, False, False]  # changes exactly at the 4-s boundary
    assert blue.tolist() == [False, False, True, True, True]
    # every clip got exactly the frames sampled at 10 fps inside its span
    assert ff.visual[:, 3].tolist() == [20, 20, 20, 20, np.ceil((dur - 8.0) * 10 - 1e-6)]
    # audio: only the clip [6, 8) holds the beep; clips are exactly 2 s of samples
    loud = ff.audio[:, 0] > 0.05
    assert loud.tolist() == [False, False, False, True, False]
    assert ff.audio[:4, 1].tolist() == [16000] * 4
    assert ff.meta["no_audio"] is False and ff.meta["visual_backbone"] == "test-meancolour:random"
    # a 1-s grid: the change is at clip 4 exactly
    ff1 = extract_features(colour_video, ExtractConfig(visual="test-meancolour", audio=None, pretrained=False,
                                                       device="cpu", grid=ClipGrid(1.0)))
    assert (ff1.visual[:, 2] > 200).tolist() == [False] * 4 + [True] * 5 and ff1.audio is None


def test_backbone_limits_are_honoured_without_changing_features(colour_video):
    """`Backbone.max_batch_clips` / `max_chunk_frames` (what i3d and swin set on CPU) bound the batches and the
    decode chunks the extractor uses; the features stay the same as without them."""

    class Limited(MeanColour):
        spec = BackboneSpec("test-limited", "visual", 4, None, "mean colour, 2 clips a call", "10 fps, 32 px")
        max_batch_clips = 2
        max_chunk_frames = 7
        seen: list[int] = []

        def embed_clips(self, clips):
            Limited.seen.append(len(clips))
            return super().embed_clips(clips)

    base.register_backbone(Limited)
    try:
        limited = extract_features(colour_video, ExtractConfig(visual="test-limited", audio=None, pretrained=False,
                                                               device="cpu", batch_size=3))
    finally:
        base.unregister_backbone(Limited.spec.name)
    plain = extract_features(colour_video, ExtractConfig(visual="test-meancolour", audio=None, pretrained=False,
                                                         device="cpu", batch_size=3))
    assert Limited.seen == [2, 2, 1]  # 5 clips, at most 2 per call (the config alone would give 3 + 2)
    np.testing.assert_array_equal(limited.visual, plain.visual)


def test_no_audio_file_is_not_a_failure(tmp_path):
    v = media.make_video(tmp_path / "silent.mkv", 4.0, size=(64, 48), audio=False)
    ff = extract_features(v, CFG)
    assert ff.audio is None and ff.meta["no_audio"] is True and ff.visual.shape == (2, 4)
    ff.save(tmp_path / "silent.features.npz")
    assert FeatureFile.load(tmp_path / "silent.features.npz").no_audio


def _touch(p: Path) -> None:
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 2 * 10**9))


def test_cache_invalidation(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    a = media.make_video(src / "a.mp4", 3.0, size=(64, 48))
    b = media.make_video(src / "sub" / "b.mp4", 2.0, size=(64, 48), audio=False)
    out = tmp_path / "out"
    r = extract_many([src], out, CFG)
    assert len(r.done) == 2 and r.ok
    fa, fb = out / "a.features.npz", out / "sub" / "b.features.npz"
    assert FeatureFile.load(fb).no_audio and not FeatureFile.load(fa).no_audio
    r = extract_many([src], out, CFG)
    assert len(r.skipped) == 2 and not r.done
    _touch(a)  # same bytes, new mtime
    r = extract_many([src], out, CFG)
    assert [x.source.name for x in r.done] == ["a.mp4"] and [x.source.name for x in r.skipped] == ["b.mp4"]
    media.make_video(b, 2.0, size=(64, 48), colors=[(0, "green")], audio=False)  # content changed
    r = extract_many([src], out, CFG)
    assert [x.source.name for x in r.done] == ["b.mp4"]
    assert FeatureFile.load(fb).visual[0, 1] > 100  # green now
    other = ExtractConfig(visual="test-meancolour5", audio="test-rms", pretrained=False, device="cpu")
    r = extract_many([src], out, other)  # different backbone -> both re-extracted
    assert len(r.done) == 2
    assert FeatureFile.load(fa).visual[0, 3] == 10  # 5 fps x 2 s
    assert len(extract_many([src], out, other).skipped) == 2
    assert len(extract_many([src], out, other, force=True).done) == 2


def test_load_or_extract_cache(tmp_path):
    v = media.make_video(tmp_path / "v.mp4", 2.0, size=(64, 48))
    cache = tmp_path / "cache"
    ff = load_or_extract(v, cache, CFG)
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].name.startswith("v-") and files[0].name.endswith(".features.npz")
    again = load_or_extract(v, cache, CFG)
    assert again.meta["created"] == ff.meta["created"] and again.meta["seconds"] == ff.meta["seconds"]
    np.testing.assert_array_equal(again.visual, ff.visual)
    _touch(v)
    third = load_or_extract(v, cache, CFG)
    assert third.meta["source"]["mtime"] != ff.meta["source"]["mtime"]


def test_failure_isolation_and_atomic_outputs(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    good = media.make_video(src / "good.mp4", 2.0, size=(64, 48))
    media.write_not_media(src / "broken.mp4")
    media.truncate(good, src / "cut.mp4", 0.3)
    (src / ".hidden.mp4").write_bytes(b"ignored")
    (src / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    r = extract_many([src], out, CFG)
    assert [x.source.name for x in r.done] == ["good.mp4"]
    assert sorted(x.source.name for x in r.failed) == ["broken.mp4", "cut.mp4"]
    assert all(x.source.name in x.message for x in r.failed)
    assert sorted(p.name for p in out.iterdir()) == ["good.features.npz"]
    # a crash in the middle of a video leaves no partial file (and no temp file)
    v = media.make_video(tmp_path / "long.mp4", 8.0, size=(64, 48))
    out2 = tmp_path / "out2"
    FailsLate.calls = 0
    r = extract_many([v], out2, ExtractConfig(visual="test-failslate", audio=None, pretrained=False,
                                              device="cpu", batch_size=2))
    assert len(r.failed) == 1 and "simulated out-of-memory" in r.failed[0].message
    assert not out2.exists() or list(out2.iterdir()) == []


def test_discover_naming(tmp_path):
    for rel in ["x.mp4", "x.mkv", "a/y.mp4", "b/y.mp4", "a/.secret/z.mp4", ".h.mp4", "a/readme.md"]:
        (tmp_path / "d" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "d" / rel).write_bytes(b"")
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "x.mp4").write_bytes(b"")
    (tmp_path / "clip.dat").write_bytes(b"")
    jobs = discover([tmp_path / "d", tmp_path / "e" / "x.mp4", tmp_path / "clip.dat", tmp_path / "d"])
    names = {str(src.relative_to(tmp_path)): str(rel) for src, rel in jobs}
    assert set(names) == {"d/x.mp4", "d/x.mkv", "d/a/y.mp4", "d/b/y.mp4", "e/x.mp4", "clip.dat"}
    assert names["d/a/y.mp4"] == "a/y" and names["d/b/y.mp4"] == "b/y" and names["clip.dat"] == "clip"
    assert names["d/x.mkv"] == "x.mkv"  # x.mp4 twice and x.mkv: extensions kept, then a hash
    assert names["d/x.mp4"].startswith("x.mp4.") and names["e/x.mp4"].startswith("x.mp4.")
    assert len(set(names.values())) == len(names)
    with pytest.raises(InputError, match="does not exist"):
        discover([tmp_path / "nope"])


def test_cli_failure_summary_and_skip(tmp_path, monkeypatch, capsys):
    src = tmp_path / "in"
    src.mkdir()
    media.make_video(src / "ok.mp4", 2.0, size=(64, 48))
    media.write_not_media(src / "bad.mp4")
    out = tmp_path / "out"
    args = ["extract-features", src, "-o", out, "--visual", "test-meancolour", "--audio", "test-rms",
            "--random-weights", "--device", "cpu"]
    code, so, se = _cli(monkeypatch, capsys, *args)
    assert code == 1
    assert "extracted 1" in so and "failed 1" in so
    assert "bad.mp4" in se and "Traceback" not in se
    assert (out / "ok.features.npz").exists()
    code, so, se = _cli(monkeypatch, capsys, args[0], src / "ok.mp4", *args[2:])
    assert code == 0 and "up to date 1" in so
    code, so, se = _cli(monkeypatch, capsys, *args, "--device", "cuda:7")
    assert code == 2 and "CUDA" in se and "--device cpu" in se
    code, so, se = _cli(monkeypatch, capsys, "extract-features", src / "ok.mp4", "-o", out, "--visual", "nope")
    assert code == 2 and "unknown backbone 'nope'" in se


def test_backbone_registry_is_lazy_and_shared():
    """Backbones live in the one Registry; listing names (and `--help`) imports no backbone module, no torch."""
    import subprocess

    from highlighter.registry import Registry

    assert isinstance(base.BACKBONES, Registry) and "test-meancolour" in base.backbone_names()
    assert {"i3d", "panns", "efficientnet-lite0"} <= set(base.backbone_names())
    code = ("import sys; from highlighter.features.base import backbone_names, DEFAULT_VISUAL, DEFAULT_AUDIO; "
            "import highlighter.features.weights, highlighter.features.extract; "
            "n = backbone_names(); assert DEFAULT_VISUAL in n and DEFAULT_AUDIO in n; "
            "print('torch' in sys.modules, any(m.startswith('highlighter.features.visual.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
    with pytest.raises(ValueError, match="already registered"):  # a name is never silently replaced
        base.register_backbone(type("Other", (MeanColour,), {}))
    with pytest.raises(UsageError, match="unknown backbone 'test-meancolor'.*did you mean 'test-meancolour'"):
        base.create_backbone("test-meancolor")


def test_create_backbone_resolves_the_device():
    """`create_backbone` goes through features.device: ``auto`` becomes a real device, a bad name is a usage error."""
    from highlighter.features.device import resolve_device

    assert base.create_backbone("test-meancolour", device="auto").device == resolve_device("auto")
    with pytest.raises(UsageError, match="unknown device 'gpu'"):
        base.create_backbone("test-meancolour", device="gpu")


def _real(modality: str) -> list[str]:
    names = [s.name for s in base.available_backbones(modality) if not s.name.startswith("test-")]
    return names


def test_real_backbone_missing_weights_fail_up_front(tmp_path, monkeypatch, capsys):
    if "i3d" not in _real("visual"):
        pytest.skip("the i3d backbone is not registered yet")
    monkeypatch.setenv("HIGHLIGHTER_CACHE", str(tmp_path / "cache"))  # empty weights cache
    monkeypatch.setenv("HIGHLIGHTER_OFFLINE", "1")
    v = media.make_video(tmp_path / "v.mp4", 2.0, size=(64, 48))
    with pytest.raises(WeightsMissingError):
        extract_many([v, v], tmp_path / "out", ExtractConfig(visual="i3d", audio=None, device="cpu"))
    code, so, se = _cli(monkeypatch, capsys, "extract-features", v, "-o", tmp_path / "out", "--audio", "none")
    assert code == 1 and "i3d" in se and "Traceback" not in se and len(se.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_real_backbones(tmp_path):
    """Published architectures through the extractor: efficientnet-lite0 with its bundled
    ImageNet weights (red and blue clips must differ) and PANN CNN14 with random weights.
    HIGHLIGHTER_TEST_ALL_BACKBONES=1 runs every registered backbone (random weights; ~1 min)."""
    import torch

    torch.set_num_threads(1)
    vis, aud = _real("visual"), _real("audio")
    names = [n for n in ("efficientnet-lite0", "panns") if n in vis + aud]
    if os.environ.get("HIGHLIGHTER_TEST_ALL_BACKBONES"):
        names = vis + aud
    if not names:
        pytest.skip("no published backbone is registered")
    v = media.make_video(tmp_path / "v.mp4", 4.0, size=(160, 120), colors=[(0, "red"), (2, "blue")], beep_at=[2.5])
    for name in names:
        modality = "visual" if name in vis else "audio"
        pretrained = base.backbone_class(name).spec.weights is None  # bundled weights: always available
        cfg = ExtractConfig(visual=name if modality == "visual" else None,
                            audio=name if modality == "audio" else None, pretrained=pretrained, device="cpu",
                            batch_size=2)
        try:
            ff = extract_features(v, cfg)
        except UsageError as exc:  # e.g. yamnet: a fixed int8 model without a random variant
            print(f"skipped {name}: {exc}")
            continue
        x = ff.visual if modality == "visual" else ff.audio
        dim = base.backbone_class(name).spec.dim
        assert x.shape == (2, dim) and x.dtype == np.float32 and np.isfinite(x).all(), name
        assert not np.array_equal(x[0], x[1]), f"{name}: both clips give the same features"
        if pretrained and modality == "visual":
            assert np.abs(x[0] - x[1]).max() > 0.1, f"{name}: red and blue clips barely differ"


def test_shared_videos(shared_videos):
    """Real files: every shared video decodes on the grid, with audio."""
    vids = sorted(p for p in shared_videos.iterdir() if p.suffix in (".mp4", ".webm"))
    ex = Extractor(CFG)
    for v in vids:
        ff = ex.extract(v)
        from highlighter.io import probe

        info = probe(v)
        dur = info.video.start + info.video.duration
        assert ff.num_clips == ClipGrid().num_clips(dur), v.name
        assert ff.visual.shape == (ff.num_clips, 4) and ff.audio.shape == (ff.num_clips, 2)
        assert not ff.meta["no_audio"] and (ff.visual[:, 3] >= 1).all()
        full = ff.ends - ff.starts > 1.999
        assert (ff.visual[full, 3] == 20).all(), v.name  # 2 s at 10 fps


def test_device_resolution():
    import torch

    from highlighter.features.device import resolve_device, use_fp16

    assert resolve_device("cpu") == "cpu" and use_fp16("cpu") is False
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UsageError, match="unknown device"):
        resolve_device("tpu")
    with pytest.raises(UsageError, match="fp16 needs a CUDA device"):
        use_fp16("cpu", True)
    if torch.cuda.is_available():
        assert use_fp16(resolve_device("cuda")) is True
    else:
        with pytest.raises(UsageError, match="--device cpu"):
            resolve_device("cuda")


# --------------------------------------------------------------------------- decode thread
def test_prefetch_overlaps_keeps_order_raises_and_stops_early():
    """`prefetch` runs the producer in a thread (bounded: at most ``depth`` ahead), hands items over in
    order, raises the producer's error in the consumer, and closes the producer when the consumer stops."""
    import threading

    from highlighter.features.extract import prefetch

    made: list[int] = []
    closed = threading.Event()

    def items(n, fail_at=None):
        try:
            for i in range(n):
                if i == fail_at:
                    raise InputError("v.mp4: decoding failed at 1.00 s")
                made.append(i)
                yield i
        finally:
            closed.set()

    busy: dict[str, float] = {}
    assert list(prefetch(items(10), busy=busy)) == list(range(10)) and busy["decode"] >= 0.0
    with pytest.raises(InputError, match="decoding failed"):
        list(prefetch(items(10, fail_at=3)))
    made.clear()
    closed.clear()
    gen = prefetch(items(1000), depth=2)
    assert next(gen) == 0
    gen.close()  # the consumer stops: the producer is stopped and its generator closed
    assert closed.wait(5) and len(made) <= 5
