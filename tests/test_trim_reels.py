"""Editor-grade reels (issue 13): what copy mode really cuts, picture/sound sync across cross-fades,
ffmpeg progress, several videos (a reel each, or one with a chapter per video), default output paths."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from highlighter.io.ffmpeg import progress_seconds, run_ffmpeg
from highlighter.io.probe import probe
from highlighter.outputs.segments import Segment
from highlighter.outputs.trim import Packet, TrimConfig, copy_range, plan_source, trim, trim_sources

media = pytest.importorskip("media")

SR = 16000


def ffprobe_json(path: Path, *what: str) -> dict:
    exe = shutil.which("ffprobe")
    if exe is None:
        pytest.skip("ffprobe is not on PATH")
    out = subprocess.run([exe, "-v", "error", *what, "-of", "json", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)


def mean_rgb(path: Path) -> np.ndarray:
    """Mean colour of every frame as written (no frame added or dropped on the way)."""
    raw = subprocess.run([media.ffmpeg(), "-v", "error", "-i", str(path), "-vf", "scale=16:12", "-fps_mode",
                          "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True,
                         check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, 12 * 16, 3).astype(np.float32).mean(axis=1)


def beep_onset(path: Path) -> float:
    raw = subprocess.run([media.ffmpeg(), "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(SR), "-f", "f32le",
                          "-"], capture_output=True, check=True).stdout
    loud = np.nonzero(np.abs(np.frombuffer(raw, np.float32)) > 0.1)[0]
    assert loud.size, "no beep in the reel"
    return loud[0] / SR


def is_blue(rgb: np.ndarray) -> np.ndarray:
    return (rgb[:, 2] > 150) & (rgb[:, 0] < 100)


def cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "highlighter", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env=None if env is None else {**os.environ, **env})


@pytest.fixture(scope="module")
def src30(media_dir) -> Path:
    """30 fps: red until 5.0 s, then blue, with a beep starting at 5.0 s (picture and sound cut together)."""
    p = media_dir / "reels_src30.mp4"
    if not p.exists():
        media.make_video(p, 10.0, fps=30, size=(64, 48), colors=[(0, "red"), (5, "blue")], beep_at=5.0)
    return p


@pytest.fixture(scope="module")
def bframes(media_dir) -> Path:
    """25 fps with B-frames, a keyframe every 2.0 s exactly, and a shot change (red -> blue) at 5.0 s."""
    p = media_dir / "reels_bframes.mp4"
    if not p.exists():
        base = media.make_video(media_dir / "reels_bframes_base.mp4", 8.0, fps=25, size=(64, 48),
                                colors=[(0, "red"), (5, "blue")])
        subprocess.run([media.ffmpeg(), "-v", "error", "-y", "-i", str(base), "-c:v", "libx264", "-preset", "medium",
                        "-bf", "3", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-c:a", "copy", str(p)],
                       check=True)
    return p


# --- copy mode: the real ranges ---------------------------------------------------------------------------

def test_copy_range_leaves_no_reordered_frame_behind():
    # decode order I0 P3 B1 B2 P6 B4 B5 (pts in frames): a copy may stop only where every frame shown
    # before the stop has been written, and never past the end
    pts = [0, 3, 1, 2, 6, 4, 5]
    packets = [Packet(p, k, p + 1, k == 0) for k, p in enumerate(pts)]
    assert copy_range(packets, end=5.0, frame=1.0) == (0, 4, 4)  # I0 P3 B1 B2: frames 0-3, not P6
    assert copy_range(packets, end=7.0, frame=1.0) == (0, 7, 7)
    assert copy_range(packets, end=0.2, frame=1.0) == (0, 1, 1)  # at least the keyframe


def test_copy_starts_at_the_keyframe_and_ends_exactly_with_bframes(bframes, tmp_path):
    """It reported the asked-for length, started at the keyframe before the cut, and its last frames ran
    into the next shot (B-frames are cut by decode time)."""
    out = tmp_path / "copy.mp4"
    res = trim(bframes, [Segment(3.3, 5.0, 1.0, 1)], out, TrimConfig(copy=True))
    [cut] = res.cuts
    assert cut.start == pytest.approx(2.0, abs=1e-3) and cut.early == pytest.approx(1.3, abs=1e-3)
    assert cut.end == pytest.approx(5.0, abs=1e-3) and cut.frames == 75
    rgb = mean_rgb(out)
    assert rgb.shape[0] == 75 and not is_blue(rgb).any(), "the cut runs into the next shot"
    assert res.expected_duration == pytest.approx(probe(out).duration, abs=1e-3)  # the real length, measured
    assert abs(probe(out).video.duration - 3.0) <= 1 / 25 + 1e-6


def test_copy_reel_with_a_relative_output(src30, tmp_path, monkeypatch):
    """`trim --copy -o reel.mp4` failed: the concat list named the scratch folder relative to the list itself."""
    monkeypatch.chdir(tmp_path)
    res = trim(src30, [Segment(1.0, 2.0, 1.0, 1), Segment(6.0, 7.0, 0.5, 2)], Path("reel.mp4"), TrimConfig(copy=True))
    assert res.outputs == [Path("reel.mp4")] and (tmp_path / "reel.mp4").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reel.mp4"]  # no scratch folder, no temp file
    assert res.expected_duration == pytest.approx(probe(tmp_path / "reel.mp4").duration, abs=1e-3)


# --- re-encode: picture and sound together ----------------------------------------------------------------

@pytest.mark.parametrize("crossfade", [0.0, 0.37])
def test_picture_and_sound_stay_together_across_cuts(src30, tmp_path, crossfade):
    """After a cross-fade the picture was one frame behind the sound (cuts off the frame grid)."""
    out = tmp_path / "sync.mp4"
    segs = [Segment(1.01, 3.0, 1.0, 1), Segment(4.02, 7.0, 0.5, 2)]
    res = trim(src30, segs, out, TrimConfig(crossfade=crossfade))
    rgb = mean_rgb(out)
    t_picture, t_sound = np.nonzero(is_blue(rgb))[0][0] / 30, beep_onset(out)
    assert abs(t_picture - t_sound) <= 0.25 / 30, (t_picture, t_sound)
    # the cuts are whole frames: 60 + 89 frames, the fade 11 frames (0.37 s at 30 fps)
    assert [c.frames for c in res.cuts] == [60, 89]
    fade = 11 if crossfade else 0
    assert rgb.shape[0] == 149 - fade and res.expected_duration == pytest.approx((149 - fade) / 30)
    info = probe(out)
    assert abs(info.audio[0].duration - info.video.duration) <= 1 / 30


# --- progress ----------------------------------------------------------------------------------------------

def test_progress_lines_are_parsed():
    assert progress_seconds("out_time_us=1500000\n") == 1.5
    assert progress_seconds("out_time_us=-23220") == 0.0  # codec delay before the first frame
    assert progress_seconds("out_time_us=N/A") is None
    assert progress_seconds("out_time=00:00:01.500000") is None and progress_seconds("progress=end") is None


def test_run_ffmpeg_reports_output_time():
    seen: list[float] = []
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=3", "-f", "null", "-"],
               on_progress=seen.append)
    assert seen and seen == sorted(seen) and seen[-1] == pytest.approx(3.0, abs=0.05)


def test_trim_reports_progress_up_to_the_total(src30, tmp_path):
    calls: list[tuple[float, float]] = []
    res = trim(src30, [Segment(1.0, 3.0, 1.0, 1), Segment(6.0, 7.0, 0.5, 2)], tmp_path / "p.mp4",
               progress=lambda done, total: calls.append((done, total)))
    done = [d for d, _t in calls]
    assert done == sorted(done) and calls[-1] == (pytest.approx(res.expected_duration),) * 2
    assert any(0 < d for d, _t in calls[:-1]), "nothing reported while ffmpeg ran"


def test_cut_progress_draws_a_bar_on_a_terminal_only(monkeypatch):
    from rich.console import Console

    from highlighter.cli import common
    from highlighter.cli.progress import cut_progress

    buf = io.StringIO()
    monkeypatch.setattr(common, "err_console", Console(file=buf, force_terminal=True, width=100))
    monkeypatch.setattr(common.state, "quiet", False)
    with cut_progress("cutting match.mp4") as bar:
        bar(12.5, 50.0)
    assert "cutting match.mp4" in buf.getvalue() and "12.5/50.0 s" in buf.getvalue()
    monkeypatch.setattr(common.state, "quiet", True)
    with cut_progress("cutting match.mp4") as bar:
        assert bar is None


# --- several videos ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two(media_dir) -> tuple[Path, Path]:
    """Two different videos: 64x48 at 25 fps with sound, 48x64 at 30 fps without."""
    a, b = media_dir / "reels_a.mp4", media_dir / "reels_b.mp4"
    if not a.exists():
        media.make_video(a, 4.0, fps=25, size=(64, 48), colors=[(0, "red")], beep_at=1.0)
    if not b.exists():
        media.make_video(b, 4.0, fps=30, size=(48, 64), colors=[(0, "blue")], audio=False)
    return a, b


def test_combined_reel_has_a_chapter_per_video(two, tmp_path):
    a, b = two
    sources = [plan_source(a, [Segment(0.0, 1.0, 1.0, 1), Segment(2.0, 3.0, 0.5, 2)]),
               plan_source(b, [Segment(1.0, 2.6, 1.0, 1)])]
    out = tmp_path / "all.mkv"
    res = trim_sources(sources, out, TrimConfig())
    assert res.chapters == [("reels_a.mp4", 0.0, pytest.approx(2.0)), ("reels_b.mp4", pytest.approx(2.0),
                                                                        pytest.approx(3.6))]
    info = ffprobe_json(out, "-show_chapters", "-show_streams")
    chapters = [(c["tags"]["title"], float(c["start_time"]), float(c["end_time"])) for c in info["chapters"]]
    assert chapters == [("reels_a.mp4", 0.0, 2.0), ("reels_b.mp4", 2.0, 3.6)]
    v = probe(out)
    assert (v.video.width, v.video.height) == (64, 48) and v.video.fps == pytest.approx(25)  # the first video's
    assert v.has_audio and abs(v.audio[0].duration - v.video.duration) <= 0.05  # silence under the silent video
    rgb = mean_rgb(out)
    # red (a) for 2 s, then blue (b, portrait: fitted between black borders) for 1.6 s
    assert rgb.shape[0] == 90 and (rgb[:50, 0] > 200).all() and (rgb[50:, 2] > 100).all() and (rgb[50:, 0] < 30).all()


def test_copy_cannot_combine_different_formats(two, tmp_path):
    from highlighter.errors import UsageError

    sources = [plan_source(v, [Segment(0.0, 1.0, 1.0, 1)]) for v in two]
    with pytest.raises(UsageError, match="drop --copy"):
        trim_sources(sources, tmp_path / "all.mp4", TrimConfig(copy=True))
    assert not list(tmp_path.iterdir())


@pytest.fixture()
def folder(two, tmp_path) -> tuple[Path, Path]:
    """in/ with the two videos, and dets/ with the detect JSON of each (as `detect in -o dets` writes)."""
    from test_trim_hostile import result_doc, write_json

    src, dets = tmp_path / "in", tmp_path / "dets"
    src.mkdir()
    dets.mkdir()
    for v, name in zip(two, ("a", "b")):
        shutil.copy(v, src / f"{name}.mp4")
        write_json(dets / f"{name}.json", result_doc(src / f"{name}.mp4", [(1.0, 2.0)]))
    return src, dets


def test_cli_one_reel_per_video_beside_each_and_not_again(folder, tmp_path):
    src, dets = folder
    p = cli("trim", str(src), "--from", str(dets), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert sorted(x.name for x in src.iterdir()) == ["a-highlights.mp4", "a.mp4", "b-highlights.mp4", "b.mp4"]
    assert "cut 2 of 2 video(s)" in p.stderr and str(src / "a-highlights.mp4") in p.stdout
    again = cli("trim", str(src), "--from", str(dets), "--force", cwd=tmp_path)  # our reels are not inputs
    assert again.returncode == 0 and "cut 2 of 2 video(s)" in again.stderr, again.stderr


def test_cli_folder_to_an_output_folder_with_a_broken_video(folder, tmp_path):
    src, dets = folder
    media.write_not_media(src / "c.mp4")
    p = cli("trim", str(src), "--from", str(dets), "-o", str(tmp_path / "reels"))
    assert p.returncode == 1
    assert sorted(x.name for x in (tmp_path / "reels").iterdir()) == ["a-highlights.mp4", "b-highlights.mp4"]
    assert "cut 2 of 3 video(s), failed 1" in p.stderr
    assert "c.mp4" in p.stderr and "Traceback" not in p.stderr


def test_cli_combine_writes_beside_the_first_input(folder, tmp_path):
    src, dets = folder
    p = cli("trim", str(src / "a.mp4"), str(src / "b.mp4"), "--from", str(dets), "--combine", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    reel = src / "a-combined-highlights.mp4"
    assert reel.is_file() and str(reel) in p.stdout
    assert len(ffprobe_json(reel, "-show_chapters")["chapters"]) == 2


def test_cli_usage_errors_for_several_videos(folder, tmp_path):
    src, dets = folder
    for args, needle in [(["--from", str(dets / "a.json")], "folder"),
                         (["--from", str(dets), "-o", str(tmp_path / "r.mp4")], "--combine"),
                         (["--from", str(dets), "--combine", "--split"], "--split")]:
        p = cli("trim", str(src), *args)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert p.returncode == 2 and len(lines) == 1 and needle in lines[0], p.stderr
    assert sorted(x.name for x in src.iterdir()) == ["a.mp4", "b.mp4"]


# --- one video: where the reel goes, what copy says ---------------------------------------------------------

def test_cli_default_output_is_beside_the_video_and_copy_says_what_it_cut(media_dir, tmp_path):
    from test_trim_hostile import result_doc, write_json

    video = tmp_path / "in" / "match.mp4"
    video.parent.mkdir()
    media.make_video(video, 6.0, fps=10, size=(64, 48))  # a keyframe every 2 s
    doc = write_json(tmp_path / "match.json", result_doc(video, [(3.0, 5.0)]))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    p = cli("trim", str(video), "--from", str(doc), "--copy", cwd=elsewhere)
    assert p.returncode == 0, p.stderr
    reel = video.with_name("match-highlights.mp4")
    assert reel.is_file() and not list(elsewhere.iterdir())
    assert f"wrote 1 file(s): {reel} " in p.stdout and "3.0 s reel of 2.0 s selected" in p.stdout
    assert "keyframe" in p.stdout and "drop --copy" in p.stdout
    assert "is cut 0:02.00-0:05.00 (keyframe 1.00 s earlier)" in p.stderr
    help_text = " ".join(cli("trim", "--help", env={"COLUMNS": "1000"}).stdout.split())
    assert "beside each video" in help_text and "-highlights.mp4" in help_text
