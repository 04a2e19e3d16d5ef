"""ffmpeg cutting: reel length, audio/picture sync across cuts, order, split, copy, no audio, overwrite rules."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from highlighter.errors import HighlighterError, InputError, UsageError
from highlighter.outputs.segments import Segment
from highlighter.outputs.trim import TrimConfig, trim

media = pytest.importorskip("media")

FPS = 25
SR = 16000
# Picture turns red -> blue at 5.0 s, exactly when a beep starts: both must land at the same reel time.
SEGS = [Segment(1.0, 3.0, 0.2, 3), Segment(4.0, 7.0, 0.9, 1), Segment(12.0, 14.0, 0.5, 2)]


def ffprobe(path: Path) -> dict:
    exe = shutil.which("ffprobe")
    if exe is None:
        pytest.skip("ffprobe is not on PATH")
    out = subprocess.run([exe, "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def frames_rgb(path: Path) -> np.ndarray:
    raw = subprocess.run([media.ffmpeg(), "-v", "error", "-i", str(path), "-vf", "scale=16:12", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, 12, 16, 3).astype(np.float32)


def audio(path: Path) -> np.ndarray:
    raw = subprocess.run([media.ffmpeg(), "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(SR), "-f", "f32le",
                          "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.float32)


def first_blue(frames: np.ndarray, fps: float) -> float:
    rgb = frames.reshape(frames.shape[0], -1, 3).mean(axis=1)
    blue = np.nonzero((rgb[:, 2] > 150) & (rgb[:, 0] < 100))[0]
    assert blue.size, "no blue frame in the reel"
    return blue[0] / fps


def beep_onset(samples: np.ndarray) -> float:
    loud = np.nonzero(np.abs(samples) > 0.1)[0]
    assert loud.size, "no beep in the reel audio"
    return loud[0] / SR


@pytest.fixture(scope="module")
def src(media_dir) -> Path:
    p = media_dir / "trim_src.mp4"
    if not p.exists():
        media.make_video(p, 16.0, fps=FPS, size=(160, 120),
                         colors=[(0, "red"), (5, "blue"), (10, "green"), (15, "yellow")], beep_at=5.0)
    return p


def durations(info: dict) -> dict[str, float]:
    return {s["codec_type"]: float(s["duration"]) for s in info["streams"]}


def test_reel_length_and_sync_time_order(src, tmp_path):
    out = tmp_path / "reel.mp4"
    res = trim(src, SEGS, out)
    assert res.outputs == [out] and out.is_file()
    assert not list(tmp_path.glob(".*part*")), "temp file left behind"
    d = durations(ffprobe(out))
    expected = sum(g.duration for g in SEGS)  # 7 s
    assert res.expected_duration == pytest.approx(expected)
    assert abs(d["video"] - expected) <= len(SEGS) / FPS + 1e-6
    assert abs(d["audio"] - expected) <= len(SEGS) / FPS + 0.03  # + one AAC frame
    frames = frames_rgb(out)
    assert abs(frames.shape[0] - expected * FPS) <= len(SEGS)
    # red->blue change and the beep both at 2 s (first segment) + 1 s into the second
    t_pic, t_snd = first_blue(frames, FPS), beep_onset(audio(out))
    assert t_pic == pytest.approx(3.0, abs=1.0 / FPS + 1e-6)
    assert t_snd == pytest.approx(3.0, abs=1.0 / FPS)
    assert abs(t_pic - t_snd) <= 1.0 / FPS + 0.005


def test_score_order_puts_best_first(src, tmp_path):
    out = tmp_path / "best.mkv"
    res = trim(src, SEGS, out, TrimConfig(order="score"))
    assert [g.rank for g in res.segments] == [1, 2, 3]
    t_pic, t_snd = first_blue(frames_rgb(out), FPS), beep_onset(audio(out))
    assert t_pic == pytest.approx(1.0, abs=1.0 / FPS + 1e-6)
    assert t_snd == pytest.approx(1.0, abs=1.0 / FPS)


def test_split_writes_one_file_per_segment(src, tmp_path):
    out = tmp_path / "cut.mp4"
    res = trim(src, SEGS, out, TrimConfig(split=True))
    assert [p.name for p in res.outputs] == ["cut-001.mp4", "cut-002.mp4", "cut-003.mp4"]
    assert not out.exists()
    for p, g in zip(res.outputs, SEGS):
        d = durations(ffprobe(p))
        assert abs(d["video"] - g.duration) <= 1.0 / FPS + 1e-6
        assert "audio" in d
    # the beep lies 1 s into the second piece, as does the colour change
    assert beep_onset(audio(res.outputs[1])) == pytest.approx(1.0, abs=1.0 / FPS)
    assert first_blue(frames_rgb(res.outputs[1]), FPS) == pytest.approx(1.0, abs=1.0 / FPS + 1e-6)


def test_crossfade_shortens_by_overlaps(src, tmp_path):
    out = tmp_path / "xf.mp4"
    res = trim(src, SEGS, out, TrimConfig(crossfade=0.5))
    expected = 7.0 - 2 * 13 / FPS  # the fade is whole frames: 0.5 s at 25 fps -> 13 frames
    assert res.expected_duration == pytest.approx(expected)
    d = durations(ffprobe(out))
    assert abs(d["video"] - expected) <= 1.0 / FPS + 1e-6
    assert abs(d["audio"] - expected) <= 1.0 / FPS
    with pytest.raises(UsageError):
        trim(src, SEGS, tmp_path / "xf2.mp4", TrimConfig(crossfade=1.5))  # 2-s segments cannot fade 1.5 s twice


def test_copy_mode_is_keyframe_aligned_reel(src, tmp_path):
    out = tmp_path / "copy.mp4"
    res = trim(src, SEGS, out, TrimConfig(copy=True))
    assert res.mode == "copy"
    d = durations(ffprobe(out))
    # starts snap back to a keyframe (GOP = 2 s here), so the reel is at least as long, at most a GOP per cut longer
    assert 7.0 - 3.0 / FPS <= d["video"] <= 7.0 + len(SEGS) * 2.0 + 0.1
    assert "audio" in d


def test_no_audio_input(media_dir, tmp_path):
    src = media.make_video(media_dir / "trim_silent.mp4", 6.0, fps=FPS, size=(160, 120), audio=False)
    out = tmp_path / "silent_reel.mp4"
    trim(src, [Segment(0.0, 2.0, 1.0, 1), Segment(4.0, 6.0, 0.5, 2)], out)
    info = ffprobe(out)
    assert [s["codec_type"] for s in info["streams"]] == ["video"]
    assert abs(float(info["streams"][0]["duration"]) - 4.0) <= 2 / FPS


def test_refuses_to_overwrite(src, tmp_path):
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(InputError, match="--force"):
        trim(src, SEGS[:1], out)
    assert out.read_bytes() == b"keep me"
    trim(src, SEGS[:1], out, TrimConfig(force=True))
    assert out.stat().st_size > 1000
    with pytest.raises(InputError, match="input video"):
        trim(src, SEGS[:1], src, TrimConfig(force=True))
    split_existing = tmp_path / "s-002.mp4"
    split_existing.write_bytes(b"x")
    with pytest.raises(InputError, match="already exists"):
        trim(src, SEGS, tmp_path / "s.mp4", TrimConfig(split=True))
    assert not (tmp_path / "s-001.mp4").exists()  # checked before anything is written


def test_bad_input(tmp_path, src):
    with pytest.raises(InputError):
        trim(tmp_path / "missing.mp4", SEGS, tmp_path / "o.mp4")
    with pytest.raises(InputError, match="no segment"):
        trim(src, [], tmp_path / "o.mp4")
    with pytest.raises(InputError, match="outside"):
        trim(src, [Segment(10.0, 40.0, 1.0, 1)], tmp_path / "o.mp4")
    with pytest.raises(UsageError):
        TrimConfig(copy=True, crossfade=1.0)


def test_long_output_name_and_failed_cut_leave_no_temp(src, tmp_path):
    """The reel's temp file has a short name (an output name near the 255-byte limit works),
    and a failing ffmpeg run leaves neither the output nor its temp file, and names the output."""
    out = tmp_path / ("r" * 245 + ".mp4")
    trim(src, SEGS[:1], out, TrimConfig(copy=True))
    assert out.is_file() and out.stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]
    bad = tmp_path / "reel.webm"  # H.264 cannot be stream-copied into WebM: ffmpeg refuses
    with pytest.raises(HighlighterError, match="reel.webm") as ei:
        trim(src, SEGS[:1], bad, TrimConfig(copy=True))
    assert ".part" not in str(ei.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]
