"""Cut segments out of a video with ffmpeg and join them into a reel (or one file each).

Two ways to cut:

* **re-encode** (default, frame-accurate): every segment is its own ffmpeg input opened
  with ``-ss START -t DURATION`` before ``-i`` (fast seek to the keyframe before START,
  then decoded frames before START are dropped: ffmpeg's accurate seek), and one
  ``concat`` filter joins them. One encode, no intermediate files, and since each
  input seeks independently the order (time or score) costs nothing extra. The concat
  filter ends each segment when its longest stream ends and pads the shorter audio
  with silence, so audio cannot drift from picture across cuts (which separately
  encoded AAC pieces joined by the concat demuxer would: ~21 ms priming per piece).
  ``crossfade`` replaces concat with an ``xfade`` / ``acrossfade`` chain.
* **copy** (``copy=True``, fast, keyframe-aligned): each segment is stream-copied from
  the keyframe at or before its start (so it may begin up to one GOP early) into a
  temporary Matroska file, then the concat demuxer joins them without re-encoding.

Outputs are written to a hidden temp file in the destination folder and renamed;
the input is never overwritten and an existing output needs ``force``.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Literal

from highlighter.errors import InputError, UsageError
from highlighter.outputs.segments import Segment

Order = Literal["time", "score"]


@dataclass
class TrimConfig:
    order: Order = "time"  # "score": best segment first
    copy: bool = False  # stream copy (keyframe-aligned) instead of frame-accurate re-encode
    split: bool = False  # one file per segment instead of one reel
    crossfade: float = 0.0  # seconds of video+audio cross-fade between segments (re-encode only)
    force: bool = False  # overwrite existing outputs
    video_codec: str = "libx264"
    crf: int = 18
    preset: str = "veryfast"
    audio_codec: str = "aac"
    audio_bitrate: str = "192k"

    def __post_init__(self) -> None:
        if self.order not in ("time", "score"):
            raise UsageError(f"--order {self.order}: choose 'time' or 'score'")
        if self.crossfade < 0:
            raise UsageError(f"--crossfade {self.crossfade}: must be >= 0 seconds")
        if self.crossfade > 0 and self.copy:
            raise UsageError("--crossfade needs re-encoding; it cannot be combined with --copy")
        if self.crossfade > 0 and self.split:
            raise UsageError("--crossfade joins segments; it has no effect with --split")


@dataclass
class TrimResult:
    outputs: list[Path]
    segments: list[Segment]  # in the order they were written
    expected_duration: float  # sum of segment lengths minus cross-fades
    seconds: float = 0.0
    mode: str = "re-encode"
    notes: list[str] = field(default_factory=list)


def order_segments(segments: list[Segment], order: Order) -> list[Segment]:
    if order == "score":
        return sorted(segments, key=lambda g: (g.rank, g.start))
    return sorted(segments, key=lambda g: g.start)


def split_paths(output: Path, n: int) -> list[Path]:
    """``reel.mp4`` -> ``reel-001.mp4``, ``reel-002.mp4``, ... (in output order)."""
    width = max(3, len(str(n)))
    return [output.with_name(f"{output.stem}-{k:0{width}d}{output.suffix}") for k in range(1, n + 1)]


def check_outputs(video: Path, outputs: list[Path], force: bool) -> None:
    vres = video.resolve()
    for out in outputs:
        if out.suffix == "":
            raise UsageError(f"{out}: give the output a file extension (.mp4, .mkv, .mov)")
        if out.resolve() == vres:
            raise InputError(f"{out}: refusing to overwrite the input video; choose another -o")
        if out.exists() and not force:
            raise InputError(f"{out} already exists; pass --force to overwrite it or choose another -o")
        if out.exists() and out.is_dir():
            raise InputError(f"{out} is a directory; give a file name for the output")


def _tmp_like(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=f".part{out.suffix}", dir=out.parent)
    os.close(fd)
    from highlighter.atomic import default_mode

    os.chmod(tmp, default_mode())
    return Path(tmp)


def _encode_args(cfg: TrimConfig, has_audio: bool, suffix: str) -> list[str]:
    args = ["-c:v", cfg.video_codec, "-preset", cfg.preset, "-crf", str(cfg.crf), "-pix_fmt", "yuv420p"]
    if has_audio:
        args += ["-c:a", cfg.audio_codec, "-b:a", cfg.audio_bitrate]
    if suffix.lower() in (".mp4", ".mov", ".m4v"):
        args += ["-movflags", "+faststart"]
    return args


def _seg_input(video: Path, g: Segment) -> list[str]:
    return ["-ss", f"{g.start:.6f}", "-t", f"{g.duration:.6f}", "-i", str(video)]


def _reel_filter(n: int, has_audio: bool, crossfade: float, durations: list[float], fps: Fraction | None) -> str:
    parts = []
    for k in range(n):
        vf = "setpts=PTS-STARTPTS"
        if crossfade > 0 and fps is not None:
            vf = f"settb=AVTB,fps={fps.numerator}/{fps.denominator},setpts=PTS-STARTPTS"
        parts.append(f"[{k}:v:0]{vf},format=yuv420p[v{k}]")
        if has_audio:
            parts.append(f"[{k}:a:0]asetpts=PTS-STARTPTS[a{k}]")
    if n == 1:
        parts.append("[v0]null[vout]" + (";[a0]anull[aout]" if has_audio else ""))
    elif crossfade <= 0:
        ins = "".join(f"[v{k}]" + (f"[a{k}]" if has_audio else "") for k in range(n))
        parts.append(f"{ins}concat=n={n}:v=1:a={1 if has_audio else 0}[vout]" + ("[aout]" if has_audio else ""))
    else:
        prev_v, prev_a, acc = "v0", "a0", durations[0]
        for k in range(1, n):
            offset = acc - crossfade
            last = k == n - 1
            vo, ao = ("vout", "aout") if last else (f"xv{k}", f"xa{k}")
            parts.append(f"[{prev_v}][v{k}]xfade=transition=fade:duration={crossfade:.6f}:offset={offset:.6f}[{vo}]")
            if has_audio:
                parts.append(f"[{prev_a}][a{k}]acrossfade=d={crossfade:.6f}[{ao}]")
            prev_v, prev_a = vo, ao
            acc = offset + durations[k]
    return ";".join(parts)


def trim(video: str | Path, segments: list[Segment], output: str | Path, config: TrimConfig | None = None,
         log: Callable[[str], None] | None = None) -> TrimResult:
    """Cut ``segments`` out of ``video`` into ``output`` (one reel, or numbered files with ``split``)."""
    from highlighter.io.ffmpeg import run_ffmpeg
    from highlighter.io.probe import probe_video

    cfg = config or TrimConfig()
    video, output = Path(video), Path(output)
    info = probe_video(video)  # InputError for missing / corrupt / no video
    segs = [g for g in order_segments(segments, cfg.order) if g.duration > 0]
    if not segs:
        raise InputError(f"{video}: no segment to cut; lower --threshold or raise --top")
    for g in segs:
        if g.start < 0 or g.end > info.duration + 0.5:
            raise InputError(f"{video}: segment {g.start:.2f}-{g.end:.2f}s lies outside the video "
                             f"({info.duration:.2f}s); was the result made for another file?")
    if cfg.crossfade > 0 and len(segs) > 1:
        short = [g for k, g in enumerate(segs) if g.duration <= cfg.crossfade * (1 if k in (0, len(segs) - 1) else 2)]
        if short:
            raise UsageError(f"--crossfade {cfg.crossfade}: segment {short[0].start:.2f}-{short[0].end:.2f}s "
                             "is too short to fade in and out; use a shorter cross-fade or --min-length")
    outputs = split_paths(output, len(segs)) if cfg.split else [output]
    check_outputs(video, outputs, cfg.force)
    has_audio = info.has_audio
    fps = Fraction(info.video.fps).limit_denominator(1001) if info.video and info.video.fps else None
    t0 = time.perf_counter()
    mode = "copy" if cfg.copy else "re-encode"
    say = log or (lambda _m: None)

    if cfg.split:
        for k, (g, out) in enumerate(zip(segs, outputs), start=1):
            say(f"cutting segment {k}/{len(segs)} -> {out}")
            tmp = _tmp_like(out)
            try:
                if cfg.copy:
                    args = [*_seg_input(video, g), "-map", "0:v:0", *(["-map", "0:a:0"] if has_audio else []),
                            "-c", "copy", "-avoid_negative_ts", "make_zero"]
                else:
                    args = [*_seg_input(video, g), "-map", "0:v:0", *(["-map", "0:a:0"] if has_audio else []),
                            *_encode_args(cfg, has_audio, out.suffix)]
                run_ffmpeg(["-y", *args, str(tmp)], what=f"cutting {video} {g.start:.2f}-{g.end:.2f}s")
                os.replace(tmp, out)
            finally:
                tmp.unlink(missing_ok=True)
    elif cfg.copy:
        _copy_reel(video, segs, output, has_audio, say)
    else:
        tmp = _tmp_like(output)
        try:
            inputs = [a for g in segs for a in _seg_input(video, g)]
            graph = _reel_filter(len(segs), has_audio, cfg.crossfade, [g.duration for g in segs], fps)
            maps = ["-map", "[vout]"] + (["-map", "[aout]"] if has_audio else [])
            say(f"cutting {len(segs)} segment(s) of {video} -> {output} (re-encode)")
            run_ffmpeg(["-y", *inputs, "-filter_complex", graph, *maps,
                        *_encode_args(cfg, has_audio, output.suffix), str(tmp)], what=f"cutting {video}")
            os.replace(tmp, output)
        finally:
            tmp.unlink(missing_ok=True)
    fades = cfg.crossfade * (len(segs) - 1) if (cfg.crossfade > 0 and not cfg.split) else 0.0
    return TrimResult(outputs=outputs, segments=segs, expected_duration=sum(g.duration for g in segs) - fades,
                      seconds=time.perf_counter() - t0, mode=mode)


def _copy_reel(video: Path, segs: list[Segment], output: Path, has_audio: bool, say: Callable[[str], None]) -> None:
    from highlighter.io.ffmpeg import run_ffmpeg

    say(f"cutting {len(segs)} segment(s) of {video} -> {output} (stream copy, keyframe-aligned)")
    with tempfile.TemporaryDirectory(prefix=".highlighter-trim-", dir=output.parent if output.parent.exists() else None) as td:
        parts = []
        for k, g in enumerate(segs):
            part = Path(td) / f"part{k:04d}.mkv"
            run_ffmpeg(["-y", *_seg_input(video, g), "-map", "0:v:0", *(["-map", "0:a:0"] if has_audio else []),
                        "-c", "copy", "-avoid_negative_ts", "make_zero", str(part)],
                       what=f"cutting {video} {g.start:.2f}-{g.end:.2f}s")
            parts.append(part)
        listing = Path(td) / "list.txt"
        listing.write_text("".join(f"file '{p.as_posix()}'\n" for p in parts))
        tmp = _tmp_like(output)
        try:
            run_ffmpeg(["-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
                        *(["-movflags", "+faststart"] if output.suffix.lower() in (".mp4", ".mov", ".m4v") else []),
                        str(tmp)], what=f"joining segments of {video}")
            os.replace(tmp, output)
        finally:
            tmp.unlink(missing_ok=True)
