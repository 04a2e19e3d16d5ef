"""`highlighter info` through the real CLI (subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import media


def cli_command() -> list[str]:
    """The installed console script (``python -m highlighter.cli.main`` would register the
    commands on a second copy of the module, so it is not used)."""
    script = Path(sys.executable).parent / "highlighter"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from highlighter.cli.main import main; main()"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run([*cli_command(), *args], capture_output=True, text=True, timeout=180, env=env)


def test_info_table_and_json(media_dir):
    # ffmpeg 5.1 stores `rotate=90` as a 90° counter-clockwise display matrix: upright = 270° clockwise
    path = media.make_video(media_dir / "info.mp4", 2.0, fps=30, size=(160, 120), rotate=90, sample_rate=48000,
                            channels=2)
    res = run_cli("info", str(path))
    assert res.returncode == 0, res.stderr
    out = res.stdout
    for text in ["h264", "160x120 (displayed 120x160)", "30.000 (constant)", "270° clockwise", "aac, 48000 Hz, stereo"]:
        assert text in out, (text, out)
    res = run_cli("info", "--json", str(path))
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout)
    assert d["video"]["width"] == 160 and d["video"]["rotation"] == 270 and d["video"]["vfr"] is False
    assert d["audio"][0]["channels"] == 2 and abs(d["duration"] - 2.0) < 0.05


def test_info_vfr_and_no_audio(media_dir):
    path = media.make_video(media_dir / "info_vfr.mp4", 2.0, vfr=True, audio=False, size=(64, 48))
    res = run_cli("info", str(path))
    assert res.returncode == 0, res.stderr
    assert "(variable)" in res.stdout and "no audio stream" in res.stdout


def test_version():
    res = run_cli("--version")
    assert res.returncode == 0 and res.stdout.startswith("highlighter ")


def test_on_off_options_show_as_flags():
    """Typer printed `--copy <bool>`, as if the option took a value (issue 13)."""
    res = run_cli("trim", "--help")
    assert res.returncode == 0, res.stderr
    assert "<bool>" not in res.stdout and "--copy" in res.stdout and "<float>" in res.stdout
    res = run_cli("--help")
    assert "<bool>" not in res.stdout and "<int>" not in res.stdout  # -v counts, takes no value
