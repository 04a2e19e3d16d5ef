"""Locating and running the ffmpeg / ffprobe executables.

Decoding and probing go through PyAV (which links its own libav*), so the
binaries are only needed for jobs that shell out (trimming, the decode
benchmark's floor, test media generation). ``ffmpeg_binary`` prefers the one on
PATH (the user's, usually newest) and falls back to the static build shipped by
``imageio-ffmpeg`` when that optional package is installed; ``ffprobe_binary``
has no such fallback, which is why nothing at runtime depends on ffprobe.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence

from highlighter.errors import HighlighterError


class FfmpegMissingError(HighlighterError):
    """The ffmpeg (or ffprobe) executable cannot be found."""


class FfmpegFailedError(HighlighterError):
    """An ffmpeg run exited non-zero."""


def ffmpeg_binary() -> str:
    """Path of ffmpeg: $HIGHLIGHTER_FFMPEG, then PATH, then imageio-ffmpeg's bundled build."""
    env = os.environ.get("HIGHLIGHTER_FFMPEG")
    if env:
        if shutil.which(env):
            return shutil.which(env)  # type: ignore[return-value]
        raise FfmpegMissingError(f"HIGHLIGHTER_FFMPEG={env} is not an executable; fix or unset it")
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg  # type: ignore[import-not-found]

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # not installed, or its binary is missing for this platform
        pass
    raise FfmpegMissingError(
        "ffmpeg not found: install it (apt install ffmpeg / brew install ffmpeg) "
        "or `pip install imageio-ffmpeg`, or set HIGHLIGHTER_FFMPEG"
    )


def ffprobe_binary() -> str:
    """Path of ffprobe on PATH (optional: `probe()` uses PyAV and never needs it)."""
    found = shutil.which(os.environ.get("HIGHLIGHTER_FFPROBE", "ffprobe"))
    if found:
        return found
    raise FfmpegMissingError("ffprobe not found on PATH: install ffmpeg (apt install ffmpeg / brew install ffmpeg)")


def run_ffmpeg(args: Sequence[str], what: str = "ffmpeg", timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ffmpeg quietly with ``args``; on failure raise one line with ffmpeg's last error line."""
    cmd = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error", *args]
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        # ffmpeg ends with generic trailers ("Error initializing output stream 0:1 --"); the cause is above them
        useful = [ln for ln in lines if not ln.startswith(("Error initializing output stream", "Conversion failed",
                                                           "Could not write header"))]
        last = re.sub(r"^\[\S+ @ 0x[0-9a-f]+\] ", "", (useful or lines)[-1].strip()) if lines \
            else f"exit code {proc.returncode}"
        raise FfmpegFailedError(f"{what} failed: {last}")
    return proc
