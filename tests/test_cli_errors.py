"""Bad input through the real CLI: one line on stderr naming the file, non-zero exit, no traceback."""

from __future__ import annotations

import subprocess

import pytest

import media
from test_cli_info import run_cli


@pytest.fixture(scope="module")
def bad_inputs(media_dir):
    good = media.make_video(media_dir / "ok.mp4", 3.0, size=(64, 48))
    empty = media_dir / "zero.mp4"
    empty.write_bytes(b"")
    fs = media_dir / "ok_fs.mp4"
    subprocess.run([media.ffmpeg(), "-v", "error", "-y", "-i", str(good), "-c", "copy", "-movflags", "+faststart",
                    str(fs)], check=True)
    data = fs.read_bytes()
    cut = (data.find(b"mdat") + len(data)) / 2 / len(data)  # index intact, second half of the data gone
    return {
        "missing": (media_dir / "does_not_exist.mp4", ("no such file",)),
        "directory": (media_dir, ("is a directory",)),
        "not media": (media.write_not_media(media_dir / "readme.mp4"), ("not a readable media file",)),
        "truncated": (media.truncate(good, media_dir / "half.mp4", 0.5), ("not a readable media file", "truncated")),
        "truncated, index first": (media.truncate(fs, media_dir / "half_fs.mp4", cut), ("truncated",)),
        "zero length": (empty, ("empty",)),
        "no video stream": (media.make_audio(media_dir / "song.m4a", 1.0), ("no video stream",)),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "not media", "truncated", "truncated, index first",
                                  "zero length", "no video stream"])
def test_bad_input_one_line(bad_inputs, case):
    path, what = bad_inputs[case]
    res = run_cli("info", str(path))
    assert res.returncode == 1, (res.returncode, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error:") and str(path) in lines[0], lines[0]
    assert any(w in lines[0] for w in what), lines[0]
    assert "Traceback" not in res.stderr and res.stdout == ""


def test_debug_shows_traceback(bad_inputs):
    path, _ = bad_inputs["missing"]
    res = run_cli("--debug", "info", str(path))
    assert res.returncode != 0 and "Traceback" in res.stderr and "InputError" in res.stderr


def test_usage_error_exit_code_2():
    """Typer >= 0.20 vendors click (typer._click); cli/main.py must catch that ClickException too."""
    res = run_cli("info")  # missing VIDEO argument
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
