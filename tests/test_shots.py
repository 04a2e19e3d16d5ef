"""Shot cuts: PySceneDetect on real (lavfi-made) video, the cuts in the result JSON (schema 1.2, 1.0/1.1 still
read), and detect end to end: segments stay inside shots, --duration / unit suffixes on the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from highlighter.errors import InputError
from highlighter.outputs.schema import DetectResult, MethodInfo, VideoInfo, load_result, load_schema
from highlighter.outputs.segments import SelectConfig, select_segments
from highlighter.outputs.shots import TAP_FPS, ShotTap, clean_cuts, detect_cuts, find_cuts, small_bgr

media = pytest.importorskip("media")
pytest.importorskip("scenedetect")
FRAME = 1 / 25


@pytest.fixture(scope="module")
def three_shots(media_dir) -> Path:
    """8 s at 25 fps: grey, then yellow from 4 s, blue from 6 s (two hard cuts)."""
    p = media_dir / "shots_three.mp4"
    if not p.exists():
        media.make_video(p, 8.0, fps=25, size=(64, 48), colors=[(0, "gray"), (4, "yellow"), (6, "blue")])
    return p


def test_detect_cuts_finds_each_join_to_the_frame(three_shots):
    cuts = detect_cuts(three_shots)
    assert len(cuts) == 2
    assert cuts == pytest.approx([4.0, 6.0], abs=FRAME + 1e-6)


def test_one_shot_has_no_cuts(media_dir):
    p = media_dir / "shots_one.mp4"
    media.make_video(p, 2.0, fps=25, size=(64, 48), colors=[(0, "red")])
    assert detect_cuts(p) == []


def test_unreadable_file_is_one_line_or_a_note(tmp_path):
    bad = tmp_path / "broken.mp4"
    media.write_not_media(bad)
    with pytest.raises(InputError, match="broken.mp4"):
        detect_cuts(bad)
    found = find_cuts(bad)
    assert found.cuts is None and "broken.mp4" in found.note and "cross shot cuts" in found.note
    assert "\n" not in found.note


def test_clean_cuts():
    assert clean_cuts([3.0, float("nan"), 1.0, 1.0004, -2, 0.0, 9.0, 12.0], duration=9.0) == [1.0, 3.0]
    assert clean_cuts([]) == []


# --------------------------------------------------------------------------- the shared decode pass
def test_shot_tap_on_the_backbone_decode_finds_the_same_cuts(three_shots):
    """`ShotTap` fed by `iter_frames(on_frame=...)` (2 fps for the backbone, non-reference frames
    skipped) finds the joins `detect_cuts` finds on its own pass, each at most 1/TAP_FPS later."""
    from highlighter.io import iter_frames

    tap = ShotTap()
    n = sum(len(c) for c in iter_frames(three_shots, fps=2, short_side=48, on_frame=tap, skip_nonref=True))
    found = tap.result(three_shots)  # waits for the tap's worker thread
    assert n == 16 and 7.5 * TAP_FPS * 0.9 <= len(tap.times) <= 8.0 * TAP_FPS  # a frame per tick of 0.1 s
    own = detect_cuts(three_shots)
    assert found.note is None and len(found.cuts) == len(own) == 2
    assert all(0 <= a - b <= 1 / TAP_FPS + FRAME for a, b in zip(found.cuts, own))
    assert tap.meta()["shot_cuts"]["cuts"] == found.cuts


def test_shot_tap_worker_thread_gives_the_cuts_of_the_inline_tap(three_shots):
    """The detector runs in the tap's own thread by default; it sees the same frames in the same order
    as when it runs inside the decode thread, so it finds the same cuts at the same times."""
    from highlighter.io import iter_frames

    taps = [ShotTap(worker=True), ShotTap(worker=False)]
    for tap in taps:
        for _ in iter_frames(three_shots, fps=2, short_side=48, on_frame=tap, skip_nonref=True):
            pass
    threaded, inline = (t.result(three_shots) for t in taps)
    assert threaded.cuts == inline.cuts and len(threaded.cuts) == 2
    assert taps[0].times == taps[1].times and taps[0]._thread is None  # the worker was joined


def test_small_bgr_keeps_colours_and_aspect(three_shots):
    """The strided YUV image has the colours swscale gives (limited range expanded), at ~1/k size."""
    import av

    with av.open(str(three_shots)) as c:
        frames = [f for i, f in enumerate(c.decode(video=0)) if i in (10, 120, 170)]  # grey, yellow, blue
    for f in frames:
        small, ref = small_bgr(f, width=32), f.to_ndarray(format="bgr24")
        assert small.dtype == np.uint8 and small.shape == (24, 32, 3)
        assert np.abs(small.reshape(-1, 3).mean(0) - ref.reshape(-1, 3).mean(0)).max() <= 6, f  # yellow: 4


def test_a_cache_hit_reuses_the_cuts_of_the_feature_file(three_shots, offline_env, tmp_path):
    """The cuts the tap found are kept in the feature file: a second run reads them, no shot pass."""
    from highlighter.api import DetectConfig, Pipeline

    if not bundled_backbone_available():
        pytest.skip("efficientnet-lite0 weights package missing")
    pipe = Pipeline(DetectConfig(method="feature-norm", backbone="efficientnet-lite0", cache_dir=str(tmp_path)))
    first, again = pipe.features(three_shots), pipe.features(three_shots)
    assert not first.cached and again.cached
    assert again.shots.cuts == first.shots.cuts and len(first.shots.cuts) == 2 and again.shots.seconds == 0.0


# --------------------------------------------------------------------------- the JSON
def result_with_cuts(cuts) -> DetectResult:
    starts = np.arange(0, 20, 2.0)
    ends, scores = starts + 2.0, np.sin(starts / 3.0)
    sel = SelectConfig(top="6s", smooth=0)
    return DetectResult(
        video=VideoInfo(path="/v/m.mp4", name="m.mp4", duration=20.0, width=64, height=48, fps=25.0, size_bytes=9),
        method=MethodInfo(name="feature-norm", requested="feature-norm"), visual_backbone="e:pretrained",
        audio_backbone=None, clip_seconds=2.0, starts=starts, ends=ends, scores=scores,
        segments=select_segments(starts, ends, scores, sel, 20.0, cuts=cuts), selection=sel, cuts=cuts)


def test_json_records_cuts_and_reads_older_files(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(load_schema())
    r = result_with_cuts([3.5, 11.25])
    doc = r.to_dict()
    assert doc["schema_version"] == "1.4" and doc["cuts"] == [3.5, 11.25]
    assert doc["selection"]["top"] == "6s" and doc["selection"]["cross_cuts"] is False
    assert not list(validator.iter_errors(doc))
    (tmp_path / "new.json").write_text(json.dumps(doc))
    back = load_result(tmp_path / "new.json")
    assert back.cuts == [3.5, 11.25] and back.selection == r.selection and back.segments == r.segments

    old = json.loads(json.dumps(doc))  # what 1.1 wrote: no cuts, no cross_cuts/snap
    old["schema_version"] = "1.1"
    del old["cuts"], old["selection"]["cross_cuts"], old["selection"]["snap"]
    old["selection"]["top"] = 3
    assert not list(validator.iter_errors(old))
    (tmp_path / "old.json").write_text(json.dumps(old))
    back = load_result(tmp_path / "old.json")
    assert back.cuts is None and back.selection.cross_cuts is False and back.selection.snap == 1.0

    for bad in ([11.25, 3.5], [3.5, 3.5], [25.0], [0], ["4"]):
        doc["cuts"] = bad
        (tmp_path / "bad.json").write_text(json.dumps(doc))
        with pytest.raises(InputError, match="bad.json"):
            load_result(tmp_path / "bad.json")


# --------------------------------------------------------------------------- end to end
def bundled_backbone_available() -> bool:
    try:
        from highlighter.features.base import backbone_class

        return sys.modules[backbone_class("efficientnet-lite0").__module__].bundled_weights_path().is_file()
    except Exception:  # noqa: BLE001
        return False


needs_backbone = pytest.mark.skipif(not bundled_backbone_available(),
                                    reason="efficientnet-lite0 weights package missing")


@pytest.fixture
def offline_env(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("HIGHLIGHTER_OFFLINE", "1")
    # one cache root per session (the backbone's ONNX export is made once), features per test
    monkeypatch.setenv("HIGHLIGHTER_CACHE", str(tmp_path_factory.getbasetemp() / "shots_cache"))


@needs_backbone
def test_detect_keeps_every_segment_inside_one_shot(three_shots, offline_env):
    from highlighter.api import DetectConfig, Pipeline

    pipe = Pipeline(DetectConfig(method="feature-norm", backbone="efficientnet-lite0",
                                 select=SelectConfig(top="25%", smooth=0, snap=0)))
    feats = pipe.features(three_shots)
    r = pipe.select(feats, pipe.score(feats))
    # shots come from the backbone's decode pass (`ShotTap`, 10 frames/s): a cut is the first tapped
    # frame of the new shot, so it is found up to 1/TAP_FPS after the join, never before it
    assert r.cuts == pytest.approx([4.0, 6.0], abs=1 / TAP_FPS + FRAME) and "shots" in r.timings
    assert all(c >= join - 1e-6 for c, join in zip(r.cuts, (4.0, 6.0)))
    for g in r.segments:
        assert not any(g.start + 1e-6 < c < g.end - 1e-6 for c in r.cuts), (g, r.cuts)
    c0, c1 = r.cuts
    flat = pipe.select(feats, np.ones(4), SelectConfig(top="75%", smooth=0))  # 0-6 s of a flat curve: two shots
    assert [(g.start, g.end) for g in flat.segments] == [(0.0, c0), (c0, c1)]
    crossed = pipe.select(feats, np.ones(4), SelectConfig(top="75%", smooth=0, cross_cuts=True))
    assert [(g.start, g.end) for g in crossed.segments] == [(0.0, c1)]  # one segment, its end still snapped
    pipe.config.shots = False  # DetectConfig(shots=False): no shot detection, no cuts recorded
    assert pipe.select(pipe.features(three_shots), np.ones(4)).cuts is None


def cli(*args: str) -> subprocess.CompletedProcess:
    code = "from highlighter.cli.main import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


@needs_backbone
def test_cli_duration_and_time_units(three_shots, tmp_path, offline_env):
    p = cli("detect", str(three_shots), "-o", str(tmp_path), "--method", "feature-norm", "--backbone",
            "efficientnet-lite0", "--duration", "0:03", "--pad", "0.5s", "--min-length", "1s", "--smooth", "0s",
            "--format", "json")
    assert p.returncode == 0, p.stderr
    doc = json.loads((tmp_path / "shots_three.json").read_text())
    assert doc["selection"]["top"] == "3s" and doc["selection"]["pad"] == 0.5 and doc["selection"]["min_length"] == 1
    assert doc["cuts"] == pytest.approx([4.0, 6.0], abs=1 / TAP_FPS + FRAME)  # from the shared decode pass
    assert sum(g["duration"] for g in doc["segments"]) == pytest.approx(3.0, abs=1e-5)
    for g in doc["segments"]:
        assert not any(g["start"] + 1e-6 < c < g["end"] - 1e-6 for c in doc["cuts"])

    for args, what in ((("--top", "2", "--duration", "30s"), "give one of them"), (("--pad", "soon"), "--pad")):
        bad = cli("detect", str(three_shots), "-o", str(tmp_path / "x"), *args)
        assert bad.returncode == 2, (args, bad.stderr)
        lines = bad.stderr.strip().splitlines()
        assert len(lines) == 1 and what in lines[0] and "Traceback" not in bad.stderr, (args, bad.stderr)
