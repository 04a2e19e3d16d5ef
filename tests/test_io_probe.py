"""probe(): what the decoders see, and one clear InputError for each unusable file."""

from __future__ import annotations

import subprocess

import pytest

import media
from highlighter.errors import InputError, NoVideoStreamError
from highlighter.io import ffmpeg_binary, ffprobe_binary, probe, probe_video
from highlighter.io.ffmpeg import FfmpegMissingError


def test_probe_fields(media_dir):
    path = media.make_video(media_dir / "p.mp4", 3.0, fps=30, size=(160, 120), beep_at=1.0, sample_rate=48000)
    info = probe(path)
    assert info.container.startswith("mov,mp4") and abs(info.duration - 3.0) < 0.05
    assert info.size_bytes == path.stat().st_size
    v = info.video
    assert (v.codec, v.width, v.height, v.rotation, v.vfr) == ("h264", 160, 120, 0, False)
    assert abs(v.fps - 30) < 1e-6 and v.num_frames == 90
    (a,) = info.audio
    assert (a.codec, a.sample_rate, a.channels) == ("aac", 48000, 1)
    assert info.to_dict()["video"]["fps"] == v.fps


def test_audio_only_has_no_video(media_dir):
    path = media.make_audio(media_dir / "a.m4a", 1.0)
    info = probe(path)
    assert info.video is None and info.audio[0].codec == "aac"
    with pytest.raises(NoVideoStreamError, match="no video stream"):
        probe_video(path)


def test_each_bad_input_is_one_clear_line(media_dir):
    good = media.make_video(media_dir / "good.mp4", 6.0, size=(160, 120))
    faststart = media_dir / "faststart.mp4"
    subprocess.run([media.ffmpeg(), "-v", "error", "-y", "-i", str(good), "-c", "copy", "-movflags", "+faststart",
                    str(faststart)], check=True)
    data = faststart.read_bytes()
    mdat = data.find(b"mdat")
    assert 0 < mdat  # index first, then the media data
    cut_fs = media.truncate(faststart, media_dir / "cut_fs.mp4", (mdat + len(data)) / 2 / len(data))
    empty = media_dir / "empty.mp4"
    empty.write_bytes(b"")
    cases = {
        media_dir / "missing.mp4": "no such file",
        media_dir: "is a directory",
        empty: "empty",
        media.write_not_media(media_dir / "notes.mp4"): "not a readable media file",
        media.write_not_media(media_dir / "notes.txt"): "not a video file",
        media.truncate(good, media_dir / "cut.mp4", 0.5): "not a readable media file",  # moov at the end: lost
        cut_fs: "truncated",  # index claims 6 s, data stops
    }
    for path, what in cases.items():
        with pytest.raises(InputError) as err:
            probe(path)
        msg = str(err.value)
        assert what in msg and str(path) in msg and "\n" not in msg, msg


def test_ffmpeg_binaries_found():
    assert ffmpeg_binary().endswith("ffmpeg") and ffprobe_binary().endswith("ffprobe")


def test_ffmpeg_missing_is_one_line(monkeypatch):
    monkeypatch.setenv("HIGHLIGHTER_FFMPEG", "/nonexistent/ffmpeg")
    with pytest.raises(FfmpegMissingError, match="HIGHLIGHTER_FFMPEG"):
        ffmpeg_binary()
