"""Synthetic test media with known content, made with ffmpeg lavfi (no files shipped).

Other stages' tests reuse this; keep the API small:

    make_video(path, duration, fps=25, size=(320, 240),
               colors=[(0, "red"), (2, "blue")],   # colour from each start time on
               beep_at=None, audio=True, rotate=None, vfr=False, codec="libx264")
    make_audio(path, duration, beep_at=None)       # audio-only file (no video stream)
    truncate(src, dst, fraction=0.5)               # first part of a file's bytes
    write_not_media(path)                          # text bytes with a video suffix

Content guarantees the tests rely on:

* each frame is one flat colour; the colour of ``colors[i]`` covers
  [start_i, start_{i+1}) (encoded with x264 at high quality, so RGB values are
  within ~10 of the named colour; see `COLORS`);
* audio is digital silence except a 1 kHz sine at amplitude 0.5 over
  ``[t, t + beep_seconds)`` for each ``t`` in ``beep_at``;
* ``marker=True`` paints a white box over the top-left quarter (w/4 x h/4) of
  the coded picture, so orientation can be checked;
* ``rotate=R`` stores ffmpeg's legacy ``rotate`` tag (a display matrix) on the
  stream; the coded frames are not rotated. What "upright" means is whatever
  ffmpeg's own autorotation shows (tests compare against it);
* ``vfr=True``: source frames every 1/fps before ``duration/2``, then only every
  3rd frame (so intervals change from 1/fps to 3/fps at half time) — exact pts
  are known: `vfr_pts(duration, fps)`.
Odd sizes are encoded as yuv444p (x264 cannot do 4:2:0 at odd sizes).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np

COLORS = {  # ffmpeg colour name -> RGB
    "red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 128, 0), "lime": (0, 255, 0),
    "white": (255, 255, 255), "black": (0, 0, 0), "yellow": (255, 255, 0), "gray": (128, 128, 128),
}
BEEP_HZ = 1000.0
BEEP_AMPLITUDE = 0.5


def ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        import pytest

        pytest.skip("ffmpeg is not on PATH; it is needed to generate test media")
    return exe


def _run(args: list[str]) -> None:
    proc = subprocess.run([ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {' '.join(args)}\n{proc.stderr}")


def _audio_graph(duration: float, beep_at: Sequence[float], beep_seconds: float, sample_rate: int,
                 channels: int) -> str:
    """A lavfi input graph producing [out0]: silence with sine beeps at the given times."""
    layout = "mono" if channels == 1 else "stereo"
    parts = [f"anullsrc=r={sample_rate}:cl={layout},atrim=0:{duration}[sil]"]
    labels = ["[sil]"]
    for i, t in enumerate(beep_at):
        ms = int(round(t * 1000))
        parts.append(f"sine=f={BEEP_HZ}:r={sample_rate}:d={beep_seconds},volume={BEEP_AMPLITUDE * 8},"
                     f"aformat=channel_layouts={layout},adelay={ms}:all=1[b{i}]")
        labels.append(f"[b{i}]")
    if len(labels) == 1:
        parts.append("[sil]anull[out0]")
    else:  # amix would rescale; normalize=0 keeps amplitudes (silence + beep = beep)
        parts.append(f"{''.join(labels)}amix=inputs={len(labels)}:duration=first:normalize=0[out0]")
    return ";".join(parts)


def vfr_pts(duration: float, fps: float) -> np.ndarray:
    """Source pts of a ``make_video(..., vfr=True)`` file."""
    n = np.arange(int(round(duration * fps)))
    t = n / fps
    keep = (t < duration / 2) | (n % 3 == 0)
    return t[keep]


def make_video(path: str | Path, duration: float, fps: float = 25, size: tuple[int, int] = (320, 240),
               colors: Sequence[tuple[float, str]] = ((0, "red"), (2, "blue")),
               beep_at: float | Sequence[float] | None = None, audio: bool = True, rotate: int | None = None,
               vfr: bool = False, codec: str = "libx264", sample_rate: int = 44100, channels: int = 1,
               beep_seconds: float = 0.25, marker: bool = False) -> Path:
    """Write a video with flat colours changing at known times (and optional beeps); return its path.

    The container is chosen by the suffix (.mp4, .mkv, .webm, .avi, .mov).
    ``codec``: libx264 (default), libvpx (vp8, for .webm), mpeg4, mjpeg.
    """
    path = Path(path)
    w, h = size
    starts = [c for c in colors if c[0] < duration] or [(0, colors[0][1])]
    graph = []
    odd = w % 2 == 1 or h % 2 == 1
    for i, (t0, name) in enumerate(starts):
        t1 = starts[i + 1][0] if i + 1 < len(starts) else duration
        fmt = ",format=yuv444p" if odd else ""  # else the colour source rounds odd sizes down
        graph.append(f"color=c={name}:s={w}x{h}:r={fps}:d={t1 - t0}{fmt}[v{i}]")
    vin = "".join(f"[v{i}]" for i in range(len(starts)))
    vchain = f"{vin}concat=n={len(starts)}:v=1:a=0,settb=1/{int(round(fps * 1000))}"
    if marker:
        vchain += ",drawbox=x=0:y=0:w=iw/4:h=ih/4:color=white:t=fill"
    if vfr:
        vchain += f",select='lt(t\\,{duration / 2})+not(mod(n\\,3))'"
    graph.append(vchain + "[out0]")
    # Sources go in as lavfi *inputs* (not -filter_complex) so encoders with a fixed
    # frame size (vorbis, opus) get frames of the right size.
    args = ["-f", "lavfi", "-i", ";".join(graph)]
    if audio:
        beeps = [] if beep_at is None else ([beep_at] if isinstance(beep_at, (int, float)) else list(beep_at))
        args += ["-f", "lavfi", "-i", _audio_graph(duration, beeps, beep_seconds, sample_rate, channels)]
    args += ["-map", "0:v"]
    pix = "yuv444p" if odd and codec in ("libx264", "mpeg4") else "yuv420p"
    if codec == "libx264":
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-g", str(int(fps * 2)), "-pix_fmt", pix]
    elif codec == "libvpx":
        args += ["-c:v", "libvpx", "-b:v", "2M", "-deadline", "realtime", "-cpu-used", "8", "-pix_fmt", "yuv420p"]
    elif codec == "mjpeg":
        args += ["-c:v", "mjpeg", "-q:v", "2", "-pix_fmt", "yuvj444p"]
    else:
        args += ["-c:v", codec, "-q:v", "2", "-pix_fmt", pix]
    if audio:
        acodec = {".webm": "libvorbis", ".mkv": "libvorbis", ".avi": "pcm_s16le"}.get(path.suffix.lower(), "aac")
        args += ["-map", "1:a", "-c:a", acodec, "-ar", str(sample_rate)]
        if acodec == "aac":
            args += ["-b:a", "128k"]
    args += ["-fps_mode", "passthrough" if vfr else "cfr", "-t", str(duration)]
    if not rotate:
        _run([*args, str(path)])
        return path
    # ffmpeg 5 ignores the rotate tag when encoding; it sets the display matrix on a stream copy.
    tmp = path.with_name(path.stem + ".norot" + path.suffix)
    _run([*args, str(tmp)])
    _run(["-i", str(tmp), "-map", "0", "-c", "copy", "-metadata:s:v:0", f"rotate={int(rotate)}", str(path)])
    tmp.unlink()
    return path


def make_audio(path: str | Path, duration: float, beep_at: float | Sequence[float] | None = None,
               sample_rate: int = 44100, channels: int = 1, beep_seconds: float = 0.25) -> Path:
    """Write an audio-only file (.m4a/.wav/.mp4/...) — a media file with no video stream."""
    path = Path(path)
    beeps = [] if beep_at is None else ([beep_at] if isinstance(beep_at, (int, float)) else list(beep_at))
    args = ["-f", "lavfi", "-i", _audio_graph(duration, beeps, beep_seconds, sample_rate, channels),
            "-t", str(duration)]
    if path.suffix.lower() in (".m4a", ".mp4", ".aac"):
        args += ["-c:a", "aac", "-b:a", "128k"]
    _run([*args, str(path)])
    return path


def truncate(src: str | Path, dst: str | Path, fraction: float = 0.5) -> Path:
    """Copy the first ``fraction`` of ``src``'s bytes to ``dst`` (a download cut short)."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    return Path(dst)


def write_not_media(path: str | Path) -> Path:
    """A text file with a video suffix."""
    Path(path).write_text("this is not a video, just some text\n" * 50)
    return Path(path)


def mean_rgb(frames: np.ndarray) -> np.ndarray:
    """Mean colour per frame (N, 3) of (N, H, W, 3) frames, ignoring a 2-px border."""
    inner = frames[:, 2:-2, 2:-2] if frames.shape[1] > 4 and frames.shape[2] > 4 else frames
    return inner.reshape(inner.shape[0], -1, 3).mean(axis=1)


def rms_at(samples: np.ndarray, sample_rate: int, t0: float, t1: float) -> float:
    """RMS of ``samples`` over [t0, t1) seconds."""
    a, b = int(t0 * sample_rate), int(t1 * sample_rate)
    seg = samples[max(a, 0):max(b, 0)]
    return float(np.sqrt(np.mean(seg.astype(np.float64) ** 2))) if seg.size else 0.0
