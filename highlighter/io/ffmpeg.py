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
import threading
from collections.abc import Callable, Sequence

from highlighter import interrupts
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


def progress_seconds(line: str) -> float | None:
    """Seconds of output written, from one ``key=value`` line of ffmpeg's ``-progress`` report
    (``out_time_us``; None for the other keys and for ``N/A``). Negative times (codec delay) count as 0."""
    key, sep, value = line.strip().partition("=")
    if not sep or key != "out_time_us":
        return None
    try:
        return max(int(value) / 1e6, 0.0)
    except ValueError:
        return None


def _failure(proc_rc: int, stderr: bytes, what: str) -> FfmpegFailedError:
    lines = [ln for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    # ffmpeg ends with generic trailers ("Error initializing output stream 0:1 --"); the cause is above them
    useful = [ln for ln in lines if not ln.startswith(("Error initializing output stream", "Conversion failed",
                                                       "Could not write header"))]
    last = re.sub(r"^\[\S+ @ 0x[0-9a-f]+\] ", "", (useful or lines)[-1].strip()) if lines \
        else f"exit code {proc_rc}"
    return FfmpegFailedError(f"{what} failed: {last}")


def run_ffmpeg(args: Sequence[str], what: str = "ffmpeg", timeout: float | None = None,
               on_progress: Callable[[float], None] | None = None) -> subprocess.CompletedProcess:
    """Run ffmpeg quietly with ``args``; on failure raise one line with ffmpeg's last error line.

    ``on_progress(seconds)`` is called with the output time written so far (ffmpeg's
    ``-progress pipe:1``, about twice a second). ffmpeg is killed and reaped if we are
    interrupted (Ctrl-C, SIGTERM) or time out (`subprocess.TimeoutExpired`, as
    `subprocess.run`); the CLI's SIGTERM and SIGINT wait while it starts (`highlighter.interrupts`).
    """
    cmd = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error", *args]
    if on_progress is not None:
        cmd[1:1] = ["-progress", "pipe:1", "-nostats"]
    proc = None
    try:
        with interrupts.held():
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if on_progress is None:
            out, err = proc.communicate(timeout=timeout)
        else:
            out, err = b"", _follow(proc, on_progress, timeout)
    except BaseException:
        if proc is not None:
            proc.kill()
        raise
    finally:
        if proc is not None:
            with proc:  # closes the pipes, reaps ffmpeg
                pass
    if proc.returncode != 0:
        raise _failure(proc.returncode, err, what)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _follow(proc: subprocess.Popen, on_progress: Callable[[float], None], timeout: float | None) -> bytes:
    """Report ffmpeg's ``-progress`` lines until it exits; its stderr, read in a thread (never blocks it)."""
    err: list[bytes] = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
    reader.start()
    for raw in proc.stdout:
        t = progress_seconds(raw.decode("ascii", "replace"))
        if t is not None:
            on_progress(t)
    proc.wait(timeout=timeout)
    reader.join()
    return b"".join(err)
