"""Cut segments out of videos with ffmpeg and join them into a reel (or one file each).

What lands in the editor is what counts, so every cut is planned before ffmpeg runs and
the result reports the ranges really cut (`Cut`), not the ones asked for.

Two ways to cut:

* **re-encode** (default, frame-accurate): each segment is snapped to the source's frame
  grid and becomes a whole number of frames at the reel's frame rate (`frame_cuts`). Every
  cut is its own ffmpeg input (``-ss`` half a frame before the cut, so rounding never drops
  the first frame), its picture is resampled onto the grid (``fps`` with ``start_time=0``,
  padded by cloning the last frame when the source runs short, then trimmed to exactly
  that many frames) and its sound trimmed/padded to exactly the same length. With both
  streams of every piece equally long, ``concat`` and the ``xfade`` / ``acrossfade`` chain
  (whose offsets and fade are whole frames too) keep picture and sound together across
  any number of cuts: no sub-frame offset between picture and sound, no drift.
* **copy** (``copy=True``, fast, not frame-accurate at the start): a stream copy can only
  start on a keyframe, so each cut starts at the keyframe at or before the segment (up to
  one GOP early). Its end is exact: the video packets are read (`video_packets`) and the
  cut stops after the last frame that ends by the segment's end and leaves no reordered
  (B-)frame behind (`copy_range`), with ``-frames:v``. The reported ranges and length are
  those real ranges. Pieces go through temporary Matroska files joined by the concat demuxer.

More than `MAX_INPUTS` cuts are re-encoded in passes: each group becomes a lossless
intermediate (x264 ``-qp 0`` + float PCM in Matroska, exact lengths), and the
intermediates are joined the same way, so every ffmpeg run has a bounded argv and
a bounded number of open decoders.

Several videos can go into one reel (`trim_sources`): pictures are fitted into the first
video's (even) size with borders, at its frame rate, audio at one rate in stereo (silence
for a video without sound), and the reel gets one chapter per source video.

Pictures are scaled to even sizes (at least 2x2) before 4:2:0 encoding. The container
comes from the output suffix (`CONTAINERS`): H.264 + AAC for .mp4/.m4v/.mov/.mkv, VP9 +
Opus for .webm; anything else is refused up front. The output is written to a hidden temp
file in the destination folder and renamed; inputs are never overwritten and an existing
output needs ``force``. A failed ffmpeg run is reported with the real output name.
``progress(done, total)`` is called with seconds of output written (ffmpeg's ``-progress``).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Literal

from highlighter.atomic import atomic_path
from highlighter.errors import InputError, UsageError
from highlighter.outputs.segments import Segment, check_segment_bounds, merge_overlaps

Order = Literal["time", "score"]
Progress = Callable[[float, float], None]  # (seconds written, seconds in all)

MAX_INPUTS = 32  # ffmpeg inputs (cuts) per re-encode pass
# Output suffix -> (video codec, audio codec) used when TrimConfig leaves them unset.
CONTAINERS = {".mp4": ("libx264", "aac"), ".m4v": ("libx264", "aac"), ".mov": ("libx264", "aac"),
              ".mkv": ("libx264", "aac"), ".webm": ("libvpx-vp9", "libopus")}
# 4:2:0 needs even sizes: round down to even, at least 2 (quoted: the commas are not filter separators).
EVEN_SIZE = "scale='max(2,trunc(iw/2)*2)':'max(2,trunc(ih/2)*2)'"
# Intermediates of multi-pass reels: lossless, quick to write and read back.
LOSSLESS_ARGS = ["-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p"]
DEFAULT_RATE = Fraction(25)  # frames/s when a stream states none
COPY_SEEK = 0.001  # s past a keyframe we ask ffmpeg to seek to, so rounding cannot land on the one before


@dataclass
class TrimConfig:
    order: Order = "time"  # "score": best segment first
    copy: bool = False  # stream copy (starts at keyframes) instead of frame-accurate re-encode
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


@dataclass(frozen=True)
class Cut:
    """One piece of a reel as really cut: ``start``-``end`` s of ``video`` (``frames`` video frames)
    for the selected ``segment``. Re-encoding snaps to frames; copy starts at a keyframe."""

    video: Path
    segment: Segment
    start: float
    end: float
    frames: int

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def early(self) -> float:
        """Seconds the cut starts before the segment (copy: the distance back to the keyframe)."""
        return self.segment.start - self.start


@dataclass
class Source:
    """One video of a reel: its probe and its segments, checked, merged and in reel order."""

    video: Path
    info: object  # io.probe.MediaInfo
    segments: list[Segment]
    merged: int = 0  # segments merged away because they overlapped


@dataclass
class TrimResult:
    outputs: list[Path]
    segments: list[Segment]  # in the order they were written
    expected_duration: float  # the reel's real length: the cuts' lengths minus cross-fades
    seconds: float = 0.0
    mode: str = "re-encode"
    notes: list[str] = field(default_factory=list)
    cuts: list[Cut] = field(default_factory=list)  # the ranges really cut, in output order
    chapters: list[tuple[str, float, float]] = field(default_factory=list)  # (title, start, end) in the reel

    @property
    def selected(self) -> float:
        """Seconds selected (what the segments ask for, before snapping)."""
        return sum(g.duration for g in self.segments)


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


def check_outputs(videos: Path | list[Path], outputs: list[Path], force: bool) -> None:
    """Refuse, before any work, outputs ffmpeg cannot write or that would clobber something."""
    inputs = {v.resolve() for v in ([videos] if isinstance(videos, Path) else videos)}
    for out in outputs:
        check_container(out)
        if out.resolve() in inputs:
            raise InputError(f"{out}: refusing to overwrite the input video; choose another -o")
        if out.exists() and not force:
            raise InputError(f"{out} already exists; pass --force to overwrite it or choose another -o")
        if out.exists() and out.is_dir():
            raise InputError(f"{out} is a directory; give a file name for the output")


# --------------------------------------------------------------------------- planning
def frame_rate(info) -> Fraction:
    """The video's frame rate as a fraction (29.97 -> 30000/1001), `DEFAULT_RATE` when unknown."""
    fps = info.video.fps if info.video is not None else 0.0
    if not fps or not math.isfinite(fps) or fps <= 0:
        return DEFAULT_RATE
    return Fraction(fps).limit_denominator(1001)


def _half_up(x: float) -> int:
    return math.floor(x + 0.5 + 1e-9)


def frame_cuts(video: Path, info, segments: list[Segment], rate: Fraction) -> list[Cut]:
    """Re-encode cuts: each start snapped to the source's nearest frame, each length a whole
    number of frames at ``rate`` (at least one), ending by the end of the video stream. Pure."""
    src = frame_rate(info)
    v = info.video
    v0 = v.start if v is not None else 0.0
    vend = v0 + v.duration if v is not None and v.duration else info.duration
    cuts = []
    for g in segments:
        start = max(0.0, v0 + _half_up((g.start - v0) * src) / float(src))
        if start >= vend:
            start = max(0.0, vend - 1 / float(rate))
        room = max(1, math.floor((vend - start) * rate + 1e-6))  # frames left before the video ends
        n = max(1, min(_half_up((g.end - start) * rate), room))
        cuts.append(Cut(video, g, start, start + n / float(rate), n))
    return cuts


@dataclass(frozen=True)
class Packet:
    """A video packet, in seconds from the container start: ``pts`` to ``end`` on screen."""

    pts: float
    dts: float
    end: float
    key: bool


def video_packets(video: Path, start: float, end: float, frame: float) -> list[Packet]:
    """The first video stream's packets in decode order, from the keyframe at or before ``start``
    (the one a stream copy starts from) until decode times pass ``end`` by a second. No decoding."""
    import av

    from highlighter.io.probe import open_container

    container = open_container(video)
    try:
        s = container.streams.video[0]
        tb = s.time_base
        origin = (container.start_time or 0) / 1e6
        target = start + COPY_SEEK + origin
        container.seek(int(target / tb), stream=s, backward=True, any_frame=False)
        out: list[Packet] = []
        for pkt in container.demux(s):
            if pkt.pts is None or pkt.size == 0:
                continue
            pts = float(pkt.pts * tb) - origin
            dts = float(pkt.dts * tb) - origin if pkt.dts is not None else pts
            if not out and not pkt.is_keyframe:
                continue
            if out and pkt.is_keyframe and pts <= start + COPY_SEEK:
                out = []  # the demuxer landed before the last keyframe at or before start
            dur = float(pkt.duration * tb) if pkt.duration else frame
            out.append(Packet(pts, dts, pts + dur, bool(pkt.is_keyframe)))
            if dts > end + 1.0:
                break
    except av.error.FFmpegError as exc:
        raise InputError(f"{video}: cannot read its packets to plan a stream copy ({exc}); drop --copy") from None
    finally:
        container.close()
    return out


def copy_range(packets: list[Packet], end: float, frame: float) -> tuple[float, float, int]:
    """(start, end, frames) a stream copy of ``packets`` (decode order, from a keyframe) really
    cuts when it stops by ``end``: the longest run of packets whose frames end by ``end`` (half a
    frame of slack) and leave no frame to be shown before them unwritten (B-frames). Pure."""
    if not packets:
        raise ValueError("no packets")
    later = [math.inf] * (len(packets) + 1)  # later[k]: the earliest pts among packets[k:]
    for k in range(len(packets) - 1, -1, -1):
        later[k] = min(later[k + 1], packets[k].pts)
    best, shown_end = 1, packets[0].end
    top, last = -math.inf, -math.inf  # over the first n packets: latest pts, latest end on screen
    for n in range(1, len(packets) + 1):
        top, last = max(top, packets[n - 1].pts), max(last, packets[n - 1].end)
        if last > end + frame / 2:
            break
        if later[n] > top:  # nothing after the first n is shown before them
            best, shown_end = n, last
    return packets[0].pts, shown_end, best


def copy_cuts(video: Path, info, segments: list[Segment]) -> list[Cut]:
    """Stream-copy cuts: from the keyframe at or before each segment to its exact end (`copy_range`)."""
    frame = 1.0 / float(frame_rate(info))
    cuts = []
    for g in segments:
        packets = video_packets(video, g.start, g.end, frame)
        if not packets:
            raise InputError(f"{video}: no keyframe at or before {g.start:.2f} s to start a stream copy; drop --copy")
        start, end, n = copy_range(packets, g.end, frame)
        cuts.append(Cut(video, g, start, end, n))
    return cuts


def plan_source(video: str | Path, segments: list[Segment], order: Order = "time") -> Source:
    """Probe ``video`` and check its segments (bounds, overlaps merged, in ``order``)."""
    from highlighter.io.probe import probe_video

    video = Path(video)
    info = probe_video(video)  # InputError for missing / corrupt / no video
    if not segments:
        raise InputError(f"{video}: no segment to cut; lower --threshold or raise --top")
    check_segment_bounds(segments, f"{video}")
    merged = merge_overlaps(segments)
    segs = order_segments(merged, order)
    for g in segs:
        if g.start < 0 or g.end > info.duration + 0.5:
            raise InputError(f"{video}: segment {g.start:.2f}-{g.end:.2f}s lies outside the video "
                             f"({info.duration:.2f}s); was the result made for another file?")
    return Source(video, info, segs, merged=len(segments) - len(merged))


def fade_frames(crossfade: float, rate: Fraction) -> int:
    """The cross-fade in whole frames (at least one when asked for): picture and sound fade together."""
    return max(1, _half_up(crossfade * rate)) if crossfade > 0 else 0


def check_fades(cuts: list[Cut], fade: int, crossfade: float) -> None:
    """Each cut must be long enough to fade in and out (UsageError naming the first that is not)."""
    if fade <= 0 or len(cuts) < 2:
        return
    for k, c in enumerate(cuts):
        if c.frames <= fade * (1 if k in (0, len(cuts) - 1) else 2):
            raise UsageError(f"--crossfade {crossfade}: segment {c.segment.start:.2f}-{c.segment.end:.2f}s "
                             "is too short to fade in and out; use a shorter cross-fade or --min-length")


def reel_chapters(cuts: list[Cut], fade: float = 0.0) -> list[tuple[str, float, float]]:
    """One chapter per run of cuts from the same video: (file name, start, end) in reel seconds,
    with ``fade`` seconds of cross-fade between cuts. Pure."""
    chapters: list[tuple[str, float, float]] = []
    at = 0.0
    for k, c in enumerate(cuts):
        if not chapters or cuts[k - 1].video != c.video:
            if chapters:
                chapters[-1] = (chapters[-1][0], chapters[-1][1], at)
            chapters.append((c.video.name, at, at))
        at += c.duration - (fade if k < len(cuts) - 1 else 0.0)
    if chapters:
        chapters[-1] = (chapters[-1][0], chapters[-1][1], at)
    return chapters


def ffmetadata(chapters: list[tuple[str, float, float]]) -> str:
    """An ffmpeg metadata file with these chapters (times in ms; ``=;#\\`` and newlines escaped)."""
    def esc(s: str) -> str:
        return "".join("\\" + ch if ch in "=;#\\\n" else ch for ch in s)

    lines = [";FFMETADATA1"]
    for title, a, b in chapters:
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={round(a * 1000)}", f"END={round(b * 1000)}",
                  f"title={esc(title)}"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- running ffmpeg
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
    """A hidden scratch folder beside ``output`` (same disk as the result), removed on exit or error.
    Absolute: ffmpeg's concat demuxer reads the paths in its list relative to the list's folder."""
    try:
        folder = Path(os.path.abspath(output.parent))
        folder.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix=".highlighter-trim-", dir=folder)
    except OSError as exc:
        raise InputError(f"{output}: cannot write there ({exc.strerror}); choose another -o") from None


class _Meter:
    """Turns each ffmpeg run's out_time into overall progress: ``report(done, total)`` seconds."""

    def __init__(self, total: float, report: Progress | None) -> None:
        self.total, self.report, self.base = max(total, 1e-6), report, 0.0

    def run(self, seconds: float) -> Callable[[float], None] | None:
        """The callback for one run writing ``seconds`` of output; advances the base for the next."""
        if self.report is None:
            return None
        base, self.base = self.base, self.base + seconds
        self.report(min(base, self.total), self.total)
        return lambda t: self.report(min(base + min(max(t, 0.0), seconds), self.total), self.total)

    def done(self) -> None:
        if self.report is not None:
            self.report(self.total, self.total)


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


def _run(args: list[str], what: str, tmp: Path, out: Path, copy: bool = False,
         on_progress: Callable[[float], None] | None = None) -> None:
    """run_ffmpeg, but a failure names ``out`` (not the hidden temp file) and says what to try."""
    from highlighter.io.ffmpeg import FfmpegFailedError, run_ffmpeg

    try:
        run_ffmpeg(args, what=what, on_progress=on_progress)
    except FfmpegFailedError as exc:
        msg = str(exc).replace(str(tmp), str(out))
        low = msg.lower()
        if any(k in low for k in ("not currently supported in container", "are supported for", "not supported in",
                                  "could not find tag", "unsupported codec")):
            hint = ("; drop --copy to re-encode, or write .mkv" if copy
                    else "; write .mp4, .mov or .mkv instead")
            raise FfmpegFailedError(f"{out}: this container cannot hold the streams ({msg}){hint}") from None
        raise FfmpegFailedError(f"{out}: {msg}") from None


# --------------------------------------------------------------------------- the re-encode graph
@dataclass(frozen=True)
class _Input:
    """One ffmpeg input of a pass: its args, the seconds to skip at its start, its length in frames."""

    args: list[str]
    shift: float
    frames: int
    audio: bool  # has a sound stream (else silence is made for it when the reel has sound)


@dataclass(frozen=True)
class _Canvas:
    """What every piece is brought to: frame rate, picture filter, sound (None: no sound)."""

    rate: Fraction
    picture: str  # EVEN_SIZE, or fit-into-WxH for reels of several videos
    audio: bool
    audio_format: str = ""  # e.g. "aformat=sample_rates=48000:channel_layouts=stereo," for several videos
    sample_rate: int = 48000


def _cut_input(c: Cut, rate: Fraction, src_rate: Fraction, audio: bool) -> _Input:
    """Open the source half a source frame before the cut (never past a rounding), with room to spare."""
    seek = max(0.0, c.start - 0.5 / float(src_rate))
    length = (c.start - seek) + c.frames / float(rate) + 1.0 / float(src_rate)
    return _Input(["-ss", f"{seek:.6f}", "-t", f"{length:.6f}", "-i", str(c.video)], c.start - seek, c.frames, audio)


def _piece(k: int, inp: _Input, canvas: _Canvas) -> list[str]:
    """Filters making input ``k`` exactly ``inp.frames`` frames of picture and as long a sound."""
    r = canvas.rate
    seconds = inp.frames / float(r)
    parts = [f"[{k}:v:0]setpts=PTS-{inp.shift:.6f}/TB,fps={r.numerator}/{r.denominator}:start_time=0,"
             f"tpad=stop=-1:stop_mode=clone,trim=end_frame={inp.frames},setpts=PTS-STARTPTS,"
             f"{canvas.picture},format=yuv420p[v{k}]"]
    if canvas.audio and inp.audio:
        parts.append(f"[{k}:a:0]atrim=start={inp.shift:.6f},asetpts=PTS-{inp.shift:.6f}/TB,"
                     f"aresample=async=1:first_pts=0,{canvas.audio_format}"
                     f"apad=whole_dur={seconds:.6f},atrim=duration={seconds:.6f}[a{k}]")
    elif canvas.audio:
        parts.append(f"anullsrc=r={canvas.sample_rate}:cl=stereo,atrim=duration={seconds:.6f}[a{k}]")
    return parts


def reel_filter(inputs: list[_Input], canvas: _Canvas, fade: int) -> str:
    """The filter graph joining ``inputs`` by concat, or by cross-fades of ``fade`` frames."""
    n, has_audio, r = len(inputs), canvas.audio, canvas.rate
    parts = [p for k, inp in enumerate(inputs) for p in _piece(k, inp, canvas)]
    if n == 1:
        parts.append("[v0]null[vout]" + (";[a0]anull[aout]" if has_audio else ""))
    elif fade <= 0:
        ins = "".join(f"[v{k}]" + (f"[a{k}]" if has_audio else "") for k in range(n))
        parts.append(f"{ins}concat=n={n}:v=1:a={1 if has_audio else 0}[vout]" + ("[aout]" if has_audio else ""))
    else:
        d = fade / float(r)
        prev_v, prev_a, at = "v0", "a0", inputs[0].frames
        for k in range(1, n):
            offset = (at - fade) / float(r)  # whole frames: the picture's fade starts on a frame
            vo, ao = ("vout", "aout") if k == n - 1 else (f"xv{k}", f"xa{k}")
            parts.append(f"[{prev_v}][v{k}]xfade=transition=fade:duration={d:.6f}:offset={offset:.6f}[{vo}]")
            if has_audio:
                parts.append(f"[{prev_a}][a{k}]acrossfade=d={d:.6f}[{ao}]")
            prev_v, prev_a = vo, ao
            at += inputs[k].frames - fade
    return ";".join(parts)


def _join(inputs: list[_Input], canvas: _Canvas, fade: int, out_args: list[str], target: Path, output: Path,
          what: str, meter: _Meter, chapters_file: Path | None = None) -> None:
    """One ffmpeg run joining ``inputs`` into ``target`` (``output`` names it in errors)."""
    graph = reel_filter(inputs, canvas, fade)
    maps = ["-map", "[vout]"] + (["-map", "[aout]"] if canvas.audio else [])
    args = [a for inp in inputs for a in inp.args]
    if chapters_file is not None:
        args += ["-f", "ffmetadata", "-i", str(chapters_file)]
        maps += ["-map_chapters", str(len(inputs))]
    else:
        maps += ["-map_chapters", "-1"]  # the source's own chapters would point at the wrong times
    seconds = (sum(i.frames for i in inputs) - fade * (len(inputs) - 1)) / float(canvas.rate)
    _run(["-y", *args, "-filter_complex", graph, *maps, *out_args, str(target)], what, target, output,
         on_progress=meter.run(seconds))


def _encode_reel(inputs: list[_Input], canvas: _Canvas, fade: int, output: Path, cfg: TrimConfig, what: str,
                 meter: _Meter, say: Callable[[str], None], chapters: list[tuple[str, float, float]]) -> None:
    """Re-encode the reel in as many passes as `MAX_INPUTS` needs (one for most reels)."""
    lossless = [*LOSSLESS_ARGS, *(["-c:a", "pcm_f32le"] if canvas.audio else [])]
    need_dir = len(inputs) > MAX_INPUTS or bool(chapters)
    with (_work_dir(output) if need_dir else nullcontext()) as work:
        level = 0
        while len(inputs) > MAX_INPUTS:
            level += 1
            groups = [inputs[i:i + MAX_INPUTS] for i in range(0, len(inputs), MAX_INPUTS)]
            say(f"pass {level}: joining {len(inputs)} pieces into {len(groups)} lossless intermediates")
            done = []
            for k, group in enumerate(groups):
                part = Path(work) / f"pass{level}-{k:05d}.mkv"
                _join(group, canvas, fade, lossless, part, output, what, meter)
                frames = sum(i.frames for i in group) - fade * (len(group) - 1)
                done.append(_Input(["-i", str(part)], 0.0, frames, canvas.audio))
            for inp in inputs:  # the previous pass's intermediates are no longer needed
                if inp.args[:1] == ["-i"]:
                    Path(inp.args[1]).unlink(missing_ok=True)
            inputs = done
        meta = None
        if chapters:
            meta = Path(work) / "chapters.txt"
            meta.write_text(ffmetadata(chapters), encoding="utf-8", errors="surrogateescape")
        with _written(output) as tmp:
            _join(inputs, canvas, fade, _encode_args(cfg, canvas.audio, output.suffix), tmp, output, what, meter,
                  meta)


def _passes(n: int) -> int:
    """ffmpeg passes a reel of ``n`` cuts takes (for the progress total)."""
    passes = 1
    while n > MAX_INPUTS:
        n, passes = math.ceil(n / MAX_INPUTS), passes + 1
    return passes


# --------------------------------------------------------------------------- stream copy
def _copy_args(c: Cut, has_audio: bool) -> list[str]:
    """ffmpeg args copying exactly the cut ``c``: seek to its keyframe, stop after its frames."""
    # -t ends the sound with the picture (the last sound packet may reach past it: sound can't be cut inside a packet)
    return ["-ss", f"{c.start + COPY_SEEK:.6f}", "-t", f"{c.duration - COPY_SEEK:.6f}", "-i", str(c.video),
            "-map", "0:v:0", *(["-map", "0:a:0"] if has_audio else []), "-c", "copy",
            "-frames:v", str(c.frames), "-avoid_negative_ts", "make_zero", "-map_chapters", "-1"]


def _faststart(out: Path) -> list[str]:
    return ["-movflags", "+faststart"] if out.suffix.lower() in (".mp4", ".mov", ".m4v") else []


def _copy_reel(cuts: list[Cut], output: Path, has_audio: bool, meter: _Meter, what: str,
               chapters: list[tuple[str, float, float]]) -> None:
    with _work_dir(output) as td:
        parts = []
        for k, c in enumerate(cuts):
            part = Path(td) / f"part{k:04d}.mkv"
            _run(["-y", *_copy_args(c, has_audio), str(part)],
                 f"cutting {c.video} {c.start:.2f}-{c.end:.2f}s", part, output, copy=True,
                 on_progress=meter.run(c.duration))
            parts.append(part)
        listing = Path(td) / "list.txt"
        quoted = (p.as_posix().replace("'", "'\\''") for p in parts)  # concat-list quoting of '
        listing.write_text("".join(f"file '{q}'\n" for q in quoted), encoding="utf-8", errors="surrogateescape")
        extra, chapter_map = [], ["-map_chapters", "-1"]
        if chapters:
            meta = Path(td) / "chapters.txt"
            meta.write_text(ffmetadata(chapters), encoding="utf-8", errors="surrogateescape")
            extra, chapter_map = ["-f", "ffmetadata", "-i", str(meta)], ["-map_chapters", "1"]
        with _written(output) as tmp:
            _run(["-y", "-f", "concat", "-safe", "0", "-i", str(listing), *extra, "-map", "0", *chapter_map,
                  "-c", "copy", *_faststart(output), str(tmp)], what, tmp, output, copy=True,
                 on_progress=meter.run(sum(c.duration for c in cuts)))


def _check_copy_compatible(sources: list[Source]) -> None:
    """A stream copy across videos needs one format: same codecs, size and sound."""
    def shape(s: Source):
        v, a = s.info.video, s.info.audio[0] if s.info.audio else None
        return (v.codec, v.width, v.height, a.codec if a else None, a.sample_rate if a else None,
                a.channels if a else None)

    first = shape(sources[0])
    for s in sources[1:]:
        if shape(s) != first:
            raise UsageError(f"--copy --combine: {s.video.name} ({_describe(shape(s))}) differs from "
                             f"{sources[0].video.name} ({_describe(first)}); "
                             "drop --copy to re-encode them to one format")


def _describe(shape: tuple) -> str:
    vc, w, h, ac, sr, ch = shape
    return f"{vc} {w}x{h}, " + (f"{ac} {sr} Hz {ch} ch" if ac else "no sound")


# --------------------------------------------------------------------------- entry points
def trim(video: str | Path, segments: list[Segment], output: str | Path, config: TrimConfig | None = None,
         log: Callable[[str], None] | None = None, progress: Progress | None = None) -> TrimResult:
    """Cut ``segments`` out of ``video`` into ``output`` (one reel, or numbered files with ``split``)."""
    cfg = config or TrimConfig()
    say = log or (lambda _m: None)
    source = plan_source(video, segments, cfg.order)
    if source.merged:
        say(f"merged overlapping segments so nothing is cut twice ({len(segments)} -> {len(source.segments)} "
            "segments)")
    return trim_sources([source], output, cfg, log=log, progress=progress)


def trim_sources(sources: list[Source], output: str | Path, config: TrimConfig | None = None,
                 log: Callable[[str], None] | None = None, progress: Progress | None = None) -> TrimResult:
    """Cut every source's segments into one reel at ``output`` (numbered files with ``split``);
    with several sources, the reel has a chapter per video (see the module docstring)."""
    cfg = config or TrimConfig()
    output = Path(output)
    say = log or (lambda _m: None)
    if not sources:
        raise InputError(f"{output}: no video to cut")
    several = len({s.video.resolve() for s in sources}) > 1
    if several and cfg.split:
        raise UsageError("--split writes one file per segment; it cannot be combined with --combine")
    first = sources[0]
    rate = frame_rate(first.info)
    if cfg.copy:
        if several:
            _check_copy_compatible(sources)
        cuts = [c for s in sources for c in copy_cuts(s.video, s.info, s.segments)]
    else:
        cuts = [c for s in sources for c in frame_cuts(s.video, s.info, s.segments, rate)]
    fade = fade_frames(cfg.crossfade, rate) if not cfg.split else 0
    check_fades(cuts, fade, cfg.crossfade)
    outputs = split_paths(output, len(cuts)) if cfg.split else [output]
    check_outputs([s.video for s in sources], outputs, cfg.force)
    has_audio = any(s.info.has_audio for s in sources)
    chapters = reel_chapters(cuts, fade / float(rate)) if several else []
    t0 = time.perf_counter()
    total = sum(c.duration for c in cuts)
    work = 1 if cfg.split else 2 if cfg.copy else _passes(len(cuts))  # copy: the pieces, then the join
    meter = _Meter(total * work, progress)
    rates = {s.video: frame_rate(s.info) for s in sources}
    sounds = {s.video: s.info.has_audio for s in sources}
    canvas = _canvas(sources, rate, has_audio, several)
    what = f"cutting {first.video}" + (f" and {len(sources) - 1} more video(s)" if several else "")
    if cfg.split:
        for k, (c, out) in enumerate(zip(cuts, outputs), start=1):
            say(f"cutting segment {k}/{len(cuts)} -> {out}")
            with _written(out) as tmp:
                piece_what = f"cutting {c.video} {c.start:.2f}-{c.end:.2f}s"
                if cfg.copy:
                    _run(["-y", *_copy_args(c, has_audio), *_faststart(out), str(tmp)], piece_what, tmp, out,
                         copy=True, on_progress=meter.run(c.duration))
                else:
                    inp = _cut_input(c, rate, rates[c.video], sounds[c.video])
                    _join([inp], canvas, 0, _encode_args(cfg, has_audio, out.suffix), tmp, out, piece_what, meter)
    elif cfg.copy:
        say(f"cutting {len(cuts)} segment(s) -> {output} (stream copy: each cut starts at the keyframe before it)")
        _copy_reel(cuts, output, has_audio, meter, f"joining segments of {first.video}", chapters)
    else:
        say(f"cutting {len(cuts)} segment(s) -> {output} (re-encode)")
        inputs = [_cut_input(c, rate, rates[c.video], sounds[c.video]) for c in cuts]
        _encode_reel(inputs, canvas, fade, output, cfg, what, meter, say, chapters)
    meter.done()
    length = total - fade * (len(cuts) - 1) / float(rate)
    if cfg.copy and not cfg.split:  # sound packets can reach past each cut's picture: measure what was joined
        from highlighter.io.probe import probe

        length = probe(output).duration
    return TrimResult(outputs=outputs, segments=[c.segment for c in cuts], expected_duration=length,
                      seconds=time.perf_counter() - t0, mode="copy" if cfg.copy else "re-encode", cuts=cuts,
                      chapters=chapters)


def _canvas(sources: list[Source], rate: Fraction, has_audio: bool, several: bool) -> _Canvas:
    """One video: its own (even) size and sound format. Several: the first's size and rate, 48 kHz stereo."""
    if not several:
        return _Canvas(rate, EVEN_SIZE, has_audio)
    v = sources[0].info.video
    w, h = max(2, v.display_width // 2 * 2), max(2, v.display_height // 2 * 2)
    fit = (f"scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2,"
           f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1")
    return _Canvas(rate, fit, has_audio, "aformat=sample_rates=48000:channel_layouts=stereo,", 48000)
