"""What the decoders see in a media file, read with PyAV (no ffprobe needed).

`probe` is also the gate for bad input: every way a path can be unusable
(missing, a directory, empty, not media, truncated, no video) becomes one
`InputError` line naming the file and what to do, so later stages can assume a
decodable video.

Conventions (shared with `video.py` and `audio.py`):

* times are seconds from the container's start time (the origin ``ffmpeg -ss``
  uses), so frame pts, audio samples and trim points line up even for MPEG-TS /
  offset files whose first timestamp is not 0;
* ``rotation`` is the clockwise turn, in {0, 90, 180, 270}, that makes the coded
  picture upright (the legacy ``rotate`` tag; the display matrix stores the
  counter-clockwise angle, so we negate it);
* ``width``/``height`` are the coded size, ``display_width``/``display_height``
  the size after rotation (sample aspect ratio is not applied: non-square-pixel
  sources are rare in the target material and the backbones resize anyway).
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from highlighter.errors import InputError, NoVideoStreamError

log = logging.getLogger(__name__)

# Demuxers that open things which are not videos (text as ANSI art, single images).
_NOT_VIDEO_FORMATS = {"tty", "image2", "webp_pipe", "ico", "apng"}
# Packets inspected to decide constant vs variable frame rate.
_VFR_PACKETS = 600
# Measuring where a stream's data ends (`_data_end`): seek this far past the header's
# end, read at most this many packets, and ignore differences up to this many seconds.
_FAR_SECONDS = 1e6
_TAIL_PACKETS = 4000
_TOLERANCE = 0.25


@dataclass
class VideoStreamInfo:
    codec: str
    width: int
    height: int
    display_width: int
    display_height: int
    fps: float  # average frame rate (frames / duration) — the nominal rate for CFR
    vfr: bool
    rotation: int  # clockwise degrees to make the picture upright
    num_frames: int | None
    duration: float
    index: int = 0
    start: float = 0.0  # first pts of this stream, relative to the container start


@dataclass
class AudioStreamInfo:
    index: int
    codec: str
    sample_rate: int
    channels: int
    duration: float
    start: float = 0.0


@dataclass
class MediaInfo:
    path: str
    container: str
    duration: float
    size_bytes: int
    video: VideoStreamInfo | None
    audio: list[AudioStreamInfo] = field(default_factory=list)
    start_time: float = 0.0  # absolute container start (s); all other times are relative to it

    @property
    def has_audio(self) -> bool:
        return bool(self.audio)

    def to_dict(self) -> dict:
        return asdict(self)


def check_file(path: str | os.PathLike) -> Path:
    """Raise one clear `InputError` unless ``path`` is an existing, non-empty regular file."""
    p = Path(path)
    st = stat_input(p)
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{p}: is a directory, not a video file; pass a video file inside it")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{p}: not a regular file ({file_kind(st.st_mode)}); pass a video file")
    if not os.access(p, os.R_OK):
        raise InputError(f"{p}: permission denied; make the file readable")
    if st.st_size == 0:
        raise InputError(f"{p}: file is empty (0 bytes); re-copy or re-export the video")
    return p


def stat_input(p: Path) -> os.stat_result:
    """``os.stat`` (never ``open``: opening a named pipe blocks) with each failure as one `InputError`."""
    try:
        return os.stat(p)
    except FileNotFoundError:
        if os.path.islink(p):
            raise InputError(f"{p}: broken symbolic link (its target does not exist); fix or remove the link") from None
        raise InputError(f"{p}: no such file; check the path") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"{p}: symbolic link loop; fix or remove the link") from None
        raise InputError(f"{p}: cannot read ({exc.strerror or exc}); check the path and permissions") from None


def file_kind(mode: int) -> str:
    """What a non-regular file is, for error messages."""
    for test, name in ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a plain file"


def quiet_libav() -> None:
    """Silence libav's own stderr logging (it would break the one-line error contract).

    Its messages ("moov atom not found", "File ended prematurely") reach the user
    through our `InputError` text instead; ``--debug`` (or HIGHLIGHTER_AV_LOG=WARNING)
    shows them through Python logging (see `highlighter.io.quiet`).
    """
    import av.logging

    from highlighter.io.quiet import pyav_level

    level = pyav_level()
    # Silence = no Python callback at all: PyAV's takes the GIL, so a decoder thread that logs while
    # another thread holds the GIL and waits for it (freeing a frame-threaded decoder) deadlocks.
    av.logging.set_level(None if level == av.logging.PANIC else level)


def open_container(path: str | os.PathLike):
    """``av.open`` with its errors turned into one `InputError` line."""
    import av

    p = check_file(path)
    quiet_libav()
    try:
        container = av.open(str(p), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise InputError(f"{p}: not a readable media file ({_av_reason(exc)}); is it a video, and complete?") from exc
    if container.format.name in _NOT_VIDEO_FORMATS or container.format.name.endswith("_pipe"):
        container.close()
        raise InputError(f"{p}: not a video file (detected as '{container.format.name}'); pass a video file")
    return container


def _av_reason(exc: Exception) -> str:
    msg = getattr(exc, "strerror", None) or str(exc)
    return str(msg).split(":")[0].strip() or type(exc).__name__


def _rel(t: float | None, origin: float) -> float:
    return 0.0 if t is None else float(t) - origin


def _stream_seconds(stream, value) -> float | None:
    if value is None or stream.time_base is None:
        return None
    return float(value * stream.time_base)


def _packet_pts(container, stream, limit: int) -> np.ndarray:
    """Presentation times (s, sorted) of the first ``limit`` packets of ``stream`` — no decoding."""
    out = []
    for pkt in container.demux(stream):
        if pkt.pts is not None and pkt.size > 0:
            out.append(float(pkt.pts * stream.time_base))
        if len(out) >= limit:
            break
    return np.sort(np.asarray(out, dtype=np.float64))


def _is_vfr(pts: np.ndarray, time_base: float) -> bool:
    """Variable frame rate when >2% of frame intervals differ from the median by >5%.

    Decided from packet pts, not container rate fields (MP4 from phones often
    claims a 90 kHz "rate"); a small tolerance absorbs timestamp rounding.
    """
    if pts.size < 3:
        return False
    d = np.diff(pts)
    d = d[d > 0]
    if d.size < 2:
        return False
    med = float(np.median(d))
    tol = max(0.05 * med, 1.5 * time_base)
    return float(np.mean(np.abs(d - med) > tol)) > 0.02


def probe(path: str | os.PathLike) -> MediaInfo:
    """Describe ``path``; raise `InputError` / `NoVideoStreamError` for unusable files.

    Decodes the first video frame (catches files that open but do not decode,
    and reads the rotation) and seeks near the end (catches truncated files
    whose index still claims the full length). Durations come from where each
    stream's packets end when the header disagrees (`_data_end`: headers can lie).
    """
    import av

    p = check_file(path)
    container = open_container(p)
    try:
        origin = (container.start_time or 0) / 1e6
        duration = (container.duration or 0) / 1e6
        audio: list[AudioStreamInfo] = []
        for s in container.streams.audio:
            cc = s.codec_context
            audio.append(AudioStreamInfo(
                index=s.index, codec=cc.name, sample_rate=int(cc.sample_rate or 0),
                channels=int(cc.channels or 0),
                duration=_stream_seconds(s, s.duration) or duration,
                start=_rel(_stream_seconds(s, s.start_time), origin) if s.start_time is not None else 0.0,
            ))
        vstreams = [s for s in container.streams.video
                    if not (s.disposition & av.stream.Disposition.attached_pic)] if hasattr(av.stream, "Disposition") \
            else list(container.streams.video)
        video = _probe_video(container, vstreams[0], origin, duration, p) if vstreams else None
        for a in audio:
            s = container.streams[a.index]
            a.duration = trusted_duration(p, "audio", a.start, a.duration, _data_end(container, s, origin, 0.0),
                                          _TOLERANCE)
        ends = [video.start + video.duration] if video else []
        ends += [a.start + a.duration for a in audio]
        if duration <= 0 or (ends and abs(duration - max(ends)) > _TOLERANCE):
            duration = max(ends + [0.0])  # the header's total disagrees with the streams' data
        info = MediaInfo(path=str(p), container=container.format.name, duration=duration,
                         size_bytes=p.stat().st_size, video=video, audio=audio, start_time=origin)
    except av.error.FFmpegError as exc:
        raise InputError(f"{p}: corrupt or truncated media ({_av_reason(exc)}); re-copy or re-export it") from exc
    finally:
        container.close()
    return info


def require_video(info: MediaInfo) -> VideoStreamInfo:
    if info.video is None:
        what = "an audio-only file" if info.audio else "a media file without video"
        raise NoVideoStreamError(f"{info.path}: no video stream ({what}); pass a file with video")
    return info.video


def probe_video(path: str | os.PathLike) -> MediaInfo:
    """`probe`, plus `NoVideoStreamError` when there is no video stream."""
    info = probe(path)
    require_video(info)
    return info


def _probe_video(container, s, origin: float, duration: float, p: Path) -> VideoStreamInfo:
    import av

    cc = s.codec_context
    tb = float(s.time_base) if s.time_base else 1e-6
    pts = _packet_pts(container, s, _VFR_PACKETS)
    if pts.size == 0:
        raise InputError(f"{p}: video stream has no frames (truncated or corrupt); re-copy or re-export it")
    vdur = _stream_seconds(s, s.duration)
    own_index = bool(vdur and vdur > 0)  # the stream's own index gives its length (mp4/mov), not the container's
    start = _rel(_stream_seconds(s, s.start_time), origin) if s.start_time is not None else _rel(pts[0], origin)
    if not vdur or vdur <= 0:
        vdur = max(duration - start, 0.0)
    n = int(s.frames) if s.frames else None
    rate = s.average_rate or s.guessed_rate
    fps = float(rate) if rate else 0.0
    if n and vdur > 0 and (fps <= 0 or fps > 1000):
        fps = n / vdur
    if fps <= 0 and pts.size > 1:
        fps = (pts.size - 1) / max(pts[-1] - pts[0], 1e-9)
    vfr = _is_vfr(pts, tb)

    # Decode the first frame: proves the stream decodes and gives the display matrix.
    container.seek(0)
    rotation = 0
    got = False
    try:
        for frame in container.decode(s):
            rotation = int(round(-(getattr(frame, "rotation", 0) or 0))) % 360
            got = True
            break
    except av.error.FFmpegError as exc:
        raise InputError(f"{p}: video does not decode ({_av_reason(exc)}); the file is corrupt") from exc
    if not got:
        raise InputError(f"{p}: no decodable video frame (truncated or corrupt); re-copy or re-export it")
    if rotation not in (0, 90, 180, 270):
        log.warning("%s: rotation %d° is not a multiple of 90; ignoring it", p, rotation)
        rotation = 0
    _check_tail(container, s, start + vdur, p)
    vdur = trusted_duration(p, "video" if own_index else "video (container header)", start, vdur,
                            _data_end(container, s, origin, 1.0 / fps if fps > 0 else 0.04),
                            max(_TOLERANCE, 2.0 / fps if fps > 0 else 0.0))
    if n and vdur > 0 and not 0 < fps <= 1000:
        fps = n / vdur
    w, h = int(cc.width), int(cc.height)
    dw, dh = (h, w) if rotation in (90, 270) else (w, h)
    return VideoStreamInfo(codec=cc.name, width=w, height=h, display_width=dw, display_height=dh,
                           fps=fps, vfr=vfr, rotation=rotation, num_frames=n, duration=float(vdur),
                           index=s.index, start=start)


def _data_end(container, s, origin: float, fallback_dur: float) -> float | None:
    """Where the stream's data really ends (s from the container start), from the packets
    after a seek past the end: the latest pts + duration. None when that cannot be read.

    Headers can lie (a patched or buggy muxer's mvhd/tkhd/mdhd durations); the packet
    timestamps are what the decoders will produce, so they win. Reads one GOP or so
    (bounded by `_TAIL_PACKETS`), never decodes.
    """
    import av

    if s.time_base is None:
        return None
    tb = float(s.time_base)
    far = (_stream_seconds(s, s.start_time) or 0.0) + (_stream_seconds(s, s.duration) or 0.0) + _FAR_SECONDS
    end: float | None = None
    try:
        container.seek(int(far / tb), stream=s, backward=True, any_frame=False)
        for k, pkt in enumerate(container.demux(s)):
            if k >= _TAIL_PACKETS:
                return None  # no keyframe near the end: too far to read; keep the header
            if pkt.pts is None or pkt.size == 0:
                continue
            t = float(pkt.pts) * tb + (float(pkt.duration) * tb if pkt.duration else fallback_dur)
            end = t if end is None else max(end, t)
    except av.error.FFmpegError:
        pass  # a damaged tail: what was read so far is where the data ends
    return None if end is None else end - origin


_TRUNCATED_GAP = 1.0  # s of video promised by the header but missing from the data: a truncated file


def trusted_duration(p: Path, what: str, start: float, header: float, data_end: float | None,
                     tolerance: float) -> float:
    """The stream duration to use: the header's, unless the packets end elsewhere (see `_data_end`)."""
    if data_end is None or data_end <= start:
        return header
    measured = data_end - start
    if header > 0 and abs(measured - header) <= tolerance:
        return header
    if what == "video" and header > 0 and header - measured > max(_TRUNCATED_GAP, 0.1 * header):
        # The stream's own index (mp4/mov sample tables) promising much more than the data
        # holds is a cut-off file (an interrupted download or copy): say so rather than work
        # on a stub. A length taken from the container header (mkv/webm have no per-stream
        # length; their video may end before the audio) only gets the warning below.
        raise InputError(f"{p}: truncated (the header says {header:.2f} s of video, the data ends at "
                         f"{data_end:.2f} s); re-copy or re-export it")
    if header > 0:
        say = log.warning if measured < header else log.info
        say("%s: the header says the %s stream lasts %.3f s but its data ends at %.3f s; using %.3f s",
            p, what, header, data_end, measured)
    return measured


def _check_tail(container, s, end: float, p: Path) -> None:
    """Seek to the last second and read one packet: a truncated file has none there."""
    import av

    if end <= 2.0:
        return
    target = end - 1.0 + (container.start_time or 0) / 1e6
    try:
        container.seek(int(target / s.time_base), stream=s, backward=True, any_frame=False)
        for pkt in container.demux(s):
            if pkt.size > 0:
                return
            break
    except av.error.FFmpegError as exc:
        raise InputError(f"{p}: truncated or corrupt ({_av_reason(exc)}); re-copy or re-export it") from exc
    raise InputError(f"{p}: truncated (no data near the end at {end:.1f} s); re-copy or re-export it")
