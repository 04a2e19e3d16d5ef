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

More than `MAX_INPUTS` segments are re-encoded in passes: each group of up to
`MAX_INPUTS` becomes a lossless intermediate (x264 ``-qp 0`` + float PCM in Matroska,
so nothing is lost and no AAC priming creeps in), and the intermediates are joined the
same way (concat, or the same cross-fade, which composes). Each ffmpeg run thus has a
bounded argv, a bounded number of open files and decoders, whatever the segment count.

Pictures are scaled to even sizes (at least 2x2) before 4:2:0 encoding, which cannot
hold odd sizes. The container comes from the output suffix (`CONTAINERS`): H.264 + AAC
for .mp4/.m4v/.mov/.mkv, VP9 + Opus for .webm; anything else is refused up front.

Outputs are written to a hidden temp file in the destination folder and renamed;
the input is never overwritten and an existing output needs ``force``. A failed ffmpeg
run is reported with the real output name, never the temp file's.
"""

from __future__ import annotations

import math
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Literal

from highlighter.atomic import atomic_path
from highlighter.errors import InputError, UsageError
from highlighter.outputs.segments import Segment, check_segment_bounds, merge_overlaps

Order = Literal["time", "score"]

MAX_INPUTS = 32  # ffmpeg inputs (segments) per re-encode pass
# Output suffix -> (video codec, audio codec) used when TrimConfig leaves them unset.
CONTAINERS = {".mp4": ("libx264", "aac"), ".m4v": ("libx264", "aac"), ".mov": ("libx264", "aac"),
              ".mkv": ("libx264", "aac"), ".webm": ("libvpx-vp9", "libopus")}
# 4:2:0 needs even sizes: round down to even, at least 2 (quoted: the commas are not filter separators).
EVEN_SIZE = "scale='max(2,trunc(iw/2)*2)':'max(2,trunc(ih/2)*2)'"
# Intermediates of multi-pass reels: lossless, quick to write and read back.
LOSSLESS_ARGS = ["-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p"]


@dataclass
class TrimConfig:
    order: Order = "time"  # "score": best segment first
    copy: bool = False  # stream copy (keyframe-aligned) instead of frame-accurate re-encode
    split: bool = False  # one file per segment instead of one reel
    crossfade: float = 0.0  # seconds of video+audio cross-fade between segments (re-encode only)
    force: bool = False  # overwrite existing outputs
    video_codec: str | None = None  # None: the container's (see CONTAINERS)
    crf: int = 18  # x264 quality (VP9 for .webm uses its own scale, crf 30)
    preset: str = "veryfast"
    audio_codec: str | None = None  # None: the container's
    audio_bitrate: str = "192k"

    def __post_init__(self) -> None:
        if self.order not in ("time", "score"):
            raise UsageError(f"--order {self.order}: choose 'time' or 'score'")
        if not math.isfinite(self.crossfade) or self.crossfade < 0:
            raise UsageError(f"--crossfade {self.crossfade}: must be a finite number of seconds >= 0")
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


def check_container(out: Path) -> None:
    """Refuse an output suffix that is not a video container we know how to fill."""
    if out.suffix == "":
        raise UsageError(f"{out}: give the output a file extension (.mp4, .mkv, .mov)")
    if out.suffix.lower() not in CONTAINERS:
        raise UsageError(f"{out}: ffmpeg cannot write a video reel into this container ({out.suffix}); "
                         "use .mp4, .mov, .mkv or .webm")


def check_outputs(video: Path, outputs: list[Path], force: bool) -> None:
    """Refuse, before any work, outputs ffmpeg cannot write or that would clobber something."""
    vres = video.resolve()
    for out in outputs:
        check_container(out)
        if out.resolve() == vres:
            raise InputError(f"{out}: refusing to overwrite the input video; choose another -o")
        if out.exists() and not force:
            raise InputError(f"{out} already exists; pass --force to overwrite it or choose another -o")
        if out.exists() and out.is_dir():
            raise InputError(f"{out} is a directory; give a file name for the output")


@contextmanager
def _written(out: Path) -> Iterator[Path]:
    """`atomic_path` for an ffmpeg output (temp keeps the suffix ffmpeg picks the muxer by);
    a folder that cannot be written is one InputError naming ``out``."""
    stack = ExitStack()
    try:
        tmp = stack.enter_context(atomic_path(out, suffix=f".part{out.suffix}"))
    except OSError as exc:
        raise InputError(f"{out}: cannot write there ({exc.strerror}); choose another -o") from None
    with stack:
        yield tmp


def _work_dir(output: Path) -> tempfile.TemporaryDirectory:
    """A hidden scratch folder beside ``output`` (same disk as the result), removed on exit or error."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix=".highlighter-trim-", dir=output.parent)
    except OSError as exc:
        raise InputError(f"{output}: cannot write there ({exc.strerror}); choose another -o") from None


def _encode_args(cfg: TrimConfig, has_audio: bool, suffix: str) -> list[str]:
    vcodec, acodec = CONTAINERS.get(suffix.lower(), CONTAINERS[".mkv"])
    vcodec, acodec = cfg.video_codec or vcodec, cfg.audio_codec or acodec
    if vcodec == "libvpx-vp9":  # realtime speed; -b:v 0 makes -crf a constant-quality target
        args = ["-c:v", vcodec, "-crf", "30", "-b:v", "0", "-deadline", "realtime", "-cpu-used", "8",
                "-row-mt", "1", "-pix_fmt", "yuv420p"]
    else:
        args = ["-c:v", vcodec, "-preset", cfg.preset, "-crf", str(cfg.crf), "-pix_fmt", "yuv420p"]
    if has_audio:
        args += ["-c:a", acodec, "-b:a", cfg.audio_bitrate]
    if suffix.lower() in (".mp4", ".mov", ".m4v"):
        args += ["-movflags", "+faststart"]
    return args


def _run(args: list[str], what: str, tmp: Path, out: Path, copy: bool = False) -> None:
    """run_ffmpeg, but a failure names ``out`` (not the hidden temp file) and says what to try."""
    from highlighter.io.ffmpeg import FfmpegFailedError, run_ffmpeg

    try:
        run_ffmpeg(args, what=what)
    except FfmpegFailedError as exc:
        msg = str(exc).replace(str(tmp), str(out))
        low = msg.lower()
        if any(k in low for k in ("not currently supported in container", "are supported for", "not supported in",
                                  "could not find tag", "unsupported codec")):
            hint = ("; drop --copy to re-encode, or write .mkv" if copy
                    else "; write .mp4, .mov or .mkv instead")
            raise FfmpegFailedError(f"{out}: this container cannot hold the streams ({msg}){hint}") from None
        raise FfmpegFailedError(f"{out}: {msg}") from None


def _seg_input(video: Path, g: Segment) -> list[str]:
    return ["-ss", f"{g.start:.6f}", "-t", f"{g.duration:.6f}", "-i", str(video)]


def _reel_filter(n: int, has_audio: bool, crossfade: float, durations: list[float], fps: Fraction | None) -> str:
    parts = []
    for k in range(n):
        vf = "setpts=PTS-STARTPTS"
        if crossfade > 0 and fps is not None:
            vf = f"settb=AVTB,fps={fps.numerator}/{fps.denominator},setpts=PTS-STARTPTS"
        parts.append(f"[{k}:v:0]{vf},{EVEN_SIZE},format=yuv420p[v{k}]")
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
    from highlighter.io.probe import probe_video

    cfg = config or TrimConfig()
    video, output = Path(video), Path(output)
    say = log or (lambda _m: None)
    info = probe_video(video)  # InputError for missing / corrupt / no video
    if not segments:
        raise InputError(f"{video}: no segment to cut; lower --threshold or raise --top")
    check_segment_bounds(segments, f"{video}")
    merged = merge_overlaps(segments)
    if len(merged) < len(segments):
        say(f"merged overlapping segments so nothing is cut twice ({len(segments)} -> {len(merged)} segments)")
    segs = order_segments(merged, cfg.order)
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

    if cfg.split:
        for k, (g, out) in enumerate(zip(segs, outputs), start=1):
            say(f"cutting segment {k}/{len(segs)} -> {out}")
            maps = ["-map", "0:v:0", *(["-map", "0:a:0"] if has_audio else [])]
            if cfg.copy:
                args = [*_seg_input(video, g), *maps, "-c", "copy", "-avoid_negative_ts", "make_zero"]
            else:
                args = [*_seg_input(video, g), *maps, "-vf", f"{EVEN_SIZE},format=yuv420p",
                        *_encode_args(cfg, has_audio, out.suffix)]
            with _written(out) as tmp:
                _run(["-y", *args, str(tmp)], f"cutting {video} {g.start:.2f}-{g.end:.2f}s", tmp, out, cfg.copy)
    elif cfg.copy:
        _copy_reel(video, segs, output, has_audio, say)
    else:
        say(f"cutting {len(segs)} segment(s) of {video} -> {output} (re-encode)")
        _encode_reel(video, segs, output, cfg, has_audio, fps, say)
    fades = cfg.crossfade * (len(segs) - 1) if (cfg.crossfade > 0 and not cfg.split) else 0.0
    return TrimResult(outputs=outputs, segments=segs, expected_duration=sum(g.duration for g in segs) - fades,
                      seconds=time.perf_counter() - t0, mode=mode)


def _join_pass(inputs: list[tuple[list[str], float]], out_args: list[str], target: Path, output: Path,
               cfg: TrimConfig, has_audio: bool, fps: Fraction | None, what: str, tmp: Path) -> None:
    """One ffmpeg run joining ``inputs`` (input args, seconds) with concat or the cross-fade chain."""
    graph = _reel_filter(len(inputs), has_audio, cfg.crossfade, [d for _a, d in inputs], fps)
    maps = ["-map", "[vout]"] + (["-map", "[aout]"] if has_audio else [])
    args = [a for ins, _d in inputs for a in ins]
    _run(["-y", *args, "-filter_complex", graph, *maps, *out_args, str(target)], what, tmp, output)


def _encode_reel(video: Path, segs: list[Segment], output: Path, cfg: TrimConfig, has_audio: bool,
                 fps: Fraction | None, say: Callable[[str], None]) -> None:
    """Re-encode the reel in as many passes as `MAX_INPUTS` needs (one for most reels)."""
    from contextlib import nullcontext

    from highlighter.io.probe import probe

    items = [(_seg_input(video, g), g.duration) for g in segs]
    lossless = [*LOSSLESS_ARGS, *(["-c:a", "pcm_f32le"] if has_audio else [])]
    with (_work_dir(output) if len(items) > MAX_INPUTS else nullcontext()) as work:
        level = 0
        while len(items) > MAX_INPUTS:
            level += 1
            groups = [items[i:i + MAX_INPUTS] for i in range(0, len(items), MAX_INPUTS)]
            say(f"pass {level}: joining {len(items)} pieces into {len(groups)} lossless intermediates")
            done = []
            for k, group in enumerate(groups):
                part = Path(work) / f"pass{level}-{k:05d}.mkv"
                _join_pass(group, lossless, part, output, cfg, has_audio, fps, f"cutting {video}", part)
                # cross-fade offsets need each piece's real length (frame rounding adds up)
                done.append((["-i", str(part)], probe(part).duration if cfg.crossfade > 0 else 0.0))
            for ins, _d in items:  # the previous pass's intermediates are no longer needed
                if ins[:1] == ["-i"]:
                    Path(ins[1]).unlink(missing_ok=True)
            items = done
        with _written(output) as tmp:
            _join_pass(items, _encode_args(cfg, has_audio, output.suffix), tmp, output, cfg, has_audio, fps,
                       f"cutting {video}", tmp)


def _copy_reel(video: Path, segs: list[Segment], output: Path, has_audio: bool, say: Callable[[str], None]) -> None:
    say(f"cutting {len(segs)} segment(s) of {video} -> {output} (stream copy, keyframe-aligned)")
    with _work_dir(output) as td:
        parts = []
        for k, g in enumerate(segs):
            part = Path(td) / f"part{k:04d}.mkv"
            _run(["-y", *_seg_input(video, g), "-map", "0:v:0", *(["-map", "0:a:0"] if has_audio else []),
                  "-c", "copy", "-avoid_negative_ts", "make_zero", str(part)],
                 f"cutting {video} {g.start:.2f}-{g.end:.2f}s", part, output, copy=True)
            parts.append(part)
        listing = Path(td) / "list.txt"
        quoted = (p.as_posix().replace("'", "'\\''") for p in parts)  # concat-list quoting of '
        listing.write_text("".join(f"file '{q}'\n" for q in quoted))
        with _written(output) as tmp:
            _run(["-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
                  *(["-movflags", "+faststart"] if output.suffix.lower() in (".mp4", ".mov", ".m4v") else []),
                  str(tmp)], f"joining segments of {video}", tmp, output, copy=True)
