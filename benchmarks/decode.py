"""Decode-only throughput of highlighter.io.iter_frames vs a plain ffmpeg decode (the floor).

Generates a synthetic 720p clip (ffmpeg lavfi testsrc2, x264, 2-s GOP, 25 fps) in a
temp dir, then for each sampling rate and backend times ``iter_frames`` (decode +
sample + resize to --short-side + RGB), and ``ffmpeg -vf fps=F,scale=W:H -f null``
with rgb24 output on the same file — the same work done by ffmpeg alone.

    .venv/bin/python benchmarks/decode.py [--duration 60] [--short-side 224] [--fps 5 25]

Reports frames/s (output frames) and video-seconds decoded per wall-second (best of
--repeat runs). The machine's load is printed too: on a shared CPU compare rows of one
run, not runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from highlighter.io import ffmpeg_binary, iter_frames, probe
from highlighter.io.video import output_size


def make_clip(path: Path, duration: float) -> None:
    subprocess.run([ffmpeg_binary(), "-v", "error", "-y", "-f", "lavfi",
                    "-i", f"testsrc2=size=1280x720:rate=25:duration={duration}",
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", "50", "-pix_fmt", "yuv420p",
                    str(path)], check=True)


def time_ours(path: Path, fps: float, short_side: int, backend: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = 0
    for chunk in iter_frames(path, fps, short_side=short_side, chunk_size=64, backend=backend):
        n += len(chunk)
    return time.perf_counter() - t0, n


def time_ffmpeg(path: Path, fps: float, w: int, h: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.run([ffmpeg_binary(), "-hide_banner", "-nostdin", "-i", str(path), "-an",
                           "-vf", f"fps={fps},scale={w}:{h}:flags=bicubic", "-pix_fmt", "rgb24", "-f", "null", "-"],
                          capture_output=True, text=True, check=True)
    dt = time.perf_counter() - t0
    frames = [ln for ln in proc.stderr.replace("\r", "\n").splitlines() if ln.startswith("frame=")]
    n = int(frames[-1].split("=")[1].split()[0]) if frames else -1
    return dt, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--short-side", type=int, default=224)
    ap.add_argument("--fps", type=float, nargs="+", default=[5.0, 25.0])
    ap.add_argument("--backends", nargs="+", default=["decord", "pyav"])
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip720p.mp4"
        t0 = time.perf_counter()
        make_clip(clip, args.duration)
        print(f"generated {args.duration:.0f} s 1280x720 25 fps clip in {time.perf_counter() - t0:.1f} s "
              f"({clip.stat().st_size / 1e6:.1f} MB); cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f}")
        v = probe(clip).video
        w, h = output_size(v.width, v.height, args.short_side)
        rows = []
        for fps in args.fps:
            runs = {"ffmpeg -f null (floor)": lambda: time_ffmpeg(clip, fps, w, h)}
            for b in args.backends:
                runs[f"iter_frames {b}"] = (lambda b=b: time_ours(clip, fps, args.short_side, b))
            for name, fn in runs.items():
                best = min((fn() for _ in range(args.repeat)), key=lambda r: r[0])
                rows.append((fps, name, best[1], best[0]))
        print(f"\nshort side {args.short_side} -> {w}x{h}; best of {args.repeat}")
        print(f"{'fps':>4}  {'decoder':<24} {'frames':>6} {'wall s':>7} {'frames/s':>9} {'video s/s':>9}")
        for fps, name, n, dt in rows:
            print(f"{fps:>4g}  {name:<24} {n:>6d} {dt:>7.2f} {n / dt:>9.1f} {args.duration / dt:>9.1f}")
        print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
