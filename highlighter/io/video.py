"""Frames sampled at a fixed rate, resized in the decoder, in bounded chunks.

Sampling rule (both backends): the targets are ``t_k = start + k / fps`` for
every ``t_k`` before the end of the video; for each target we return the
*latest source frame whose pts <= t_k* (the frame on screen at t_k), or the
first frame when the video starts after t_k. This is a "sample and hold"
rule (with 1 ms tolerance for timestamp rounding): it never looks into the future, repeats frames when ``fps`` exceeds
the source rate, and skips frames when it is lower, so a clip of 2 s always
has ``2 * fps`` frames. It works from pts, not frame indices, so variable
frame rate video is sampled at the right times. ``FrameChunk.pts`` holds the
*source* pts of each returned frame and ``FrameChunk.times`` the target times;
cut a stream on the clip grid with ``times`` (every target falls in exactly one
clip; a held frame's pts may lie in the previous clip).
(ffmpeg's ``fps`` filter rounds to the *nearest* frame instead; the two differ
by less than one source frame interval.)

Backends: decord (fast random access, decoder-side resize) is the default;
PyAV decodes sequentially and is the fallback when decord is missing or fails
on a file (``backend="auto"`` switches mid-stream, resuming at the next
target). Rotation: PyAV decodes in coded orientation, resized to the
coded-orientation size, and we turn the frames with ``np.rot90``. decord 0.6.0
*does* apply the display matrix itself, but its decoder-side resize is broken
on rotated streams (wrong buffer sizes / DECORDError, measured here), so for a
rotated video decord decodes at full size (already upright) and we resize with
PIL (bicubic); ``auto`` therefore picks PyAV for rotated videos.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from highlighter.errors import InputError, UsageError
from highlighter.io.probe import MediaInfo, _av_reason, open_container, probe_video
from highlighter.io.quiet import decord_level, native_reason, quiet_native  # decord's own libav prints to fd 2

log = logging.getLogger(__name__)

BACKENDS = ("auto", "decord", "pyav")
# Codecs whose decoder honours skip_frame=NONREF by dropping only unreferenced (B) frames; an
# intra-only codec (MJPEG, ProRes) could read every frame as unreferenced, so it is never asked.
NONREF_CODECS = frozenset({"h264", "hevc"})
# `BFrameCheck`: seconds of stream it watches at most, and the reference B frames (each unlike the frame
# shown before it) plus P frames decoded the same without them that it needs to let B frames be skipped.
B_CHECK_SECONDS = 4.0
B_CHECK_EVIDENCE = 3
# swscale in the decoder: bilinear, as decord (features as before: corr 0.99-1.0), 40 % cheaper than bicubic
INTERPOLATION = "BILINEAR"
FrameHook = Callable[[Any, float], None]  # (PyAV VideoFrame, seconds from the container start)
# A frame up to 1 ms after a target counts as "at" it: decord reports pts as float32
# (0.25 ms resolution at 2 h) and containers round pts to their time base.
_EPS = 1e-3


@dataclass
class FrameChunk:
    frames: np.ndarray  # uint8 (N, H, W, 3) RGB, upright
    pts: np.ndarray  # float64 (N,) source pts of each frame (s from container start)
    times: np.ndarray  # float64 (N,) target sample times t_k
    first_index: int = 0  # k of the first frame in the whole sampled sequence
    backend: str = ""

    def __len__(self) -> int:
        return int(self.frames.shape[0])


def sample_times(start: float, end: float, fps: float) -> np.ndarray:
    """Targets ``start + k/fps`` below ``end`` (at least one when end > start)."""
    if end <= start:
        return np.zeros(0, dtype=np.float64)
    n = max(1, math.ceil((end - start) * fps - 1e-6))
    return start + np.arange(n, dtype=np.float64) / fps


def select_indices(src_pts: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Index of the latest source frame with pts <= t for each target (0 before the first frame).

    ``src_pts`` must be sorted ascending.
    """
    idx = np.searchsorted(src_pts, targets + _EPS, side="right") - 1
    return np.clip(idx, 0, max(len(src_pts) - 1, 0))


def output_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """Coded-orientation (w, h) whose shorter side is ``short_side``, aspect kept (rounded)."""
    if not short_side:
        return width, height
    s = min(width, height)
    if width <= height:
        return short_side, max(1, round(height * short_side / s))
    return max(1, round(width * short_side / s)), short_side


def rotate_frames(frames: np.ndarray, rotation: int) -> np.ndarray:
    """Turn (N, H, W, C) frames clockwise by ``rotation`` degrees (0/90/180/270)."""
    k = {0: 0, 90: -1, 180: 2, 270: 1}[rotation % 360]
    return frames if k == 0 else np.ascontiguousarray(np.rot90(frames, k=k, axes=(1, 2)))


def decord_available() -> bool:
    try:
        import decord  # noqa: F401
    except Exception:
        return False
    return True


def iter_frames(path: str | os.PathLike, fps: float, short_side: int | None = None, chunk_size: int = 64,
                backend: str = "auto", start: float = 0.0, end: float | None = None,
                info: MediaInfo | None = None, on_frame: FrameHook | None = None,
                skip_nonref: bool = False) -> Iterator[FrameChunk]:
    """Yield `FrameChunk`s of at most ``chunk_size`` frames sampled at ``fps`` (see module doc).

    Memory is bounded by one chunk (plus the decoder's own buffers) whatever the
    video length. ``info`` skips the probe when the caller already has it.

    One decode pass for several consumers: ``on_frame(frame, seconds)`` sees every decoded
    PyAV frame (coded orientation, not converted) before sampling, so a second analysis (shot
    cuts) costs no second decode; it forces PyAV. ``skip_nonref`` lets H.264/HEVC decoders skip
    frames no other frame references (about 40 % of x264's default stream, 28 % less decode
    time measured here), and H.264 ones every B frame when `BFrameCheck` finds that no P frame
    needs them (a third less again on x264's fast presets): a target whose frame was skipped
    holds the previous decoded frame (at most a few source frames earlier), which a 2-s clip
    does not notice.
    """
    if fps <= 0:
        raise UsageError(f"fps must be > 0, got {fps}")
    if chunk_size < 1:
        raise UsageError(f"chunk_size must be >= 1, got {chunk_size}")
    if backend not in BACKENDS:
        raise UsageError(f"unknown decoding backend '{backend}'; valid: {', '.join(BACKENDS)}")
    info = info or probe_video(path)
    v = info.video
    if v is None:  # probe_video already raised; keeps type checkers happy
        raise InputError(f"{path}: no video stream")
    video_end = v.start + v.duration
    stop = video_end if end is None else min(end, video_end)
    if start >= video_end:
        raise UsageError(f"start {start:.2f} s is past the end of {path} ({video_end:.2f} s)")
    targets = sample_times(max(start, 0.0), stop, fps)
    size = output_size(v.width, v.height, short_side)

    use_decord = backend == "decord" or (backend == "auto" and v.rotation == 0 and on_frame is None
                                         and not skip_nonref and decord_available())
    if on_frame is not None and backend == "decord":
        raise UsageError("on_frame needs the PyAV backend (decord hides the decoded frames)")
    if use_decord:
        done = 0
        try:
            for chunk in _iter_decord(str(path), info, targets, size, chunk_size):
                done += len(chunk)
                yield chunk
            return
        except Exception as exc:  # decord raises DECORDError / RuntimeError on files it cannot handle
            if backend == "decord":
                raise InputError(f"{path}: decord cannot decode this file ({native_reason(exc)}); "
                                 f"try backend='pyav'") from exc
            log.warning("decord failed on %s (%s); falling back to PyAV", path, native_reason(exc))
        targets, offset = targets[done:], done
    else:
        offset = 0
    for chunk in _iter_pyav(str(path), info, targets, size, chunk_size, on_frame, skip_nonref):
        chunk.first_index += offset
        yield chunk


def _iter_decord(path: str, info: MediaInfo, targets: np.ndarray, size: tuple[int, int],
                 chunk_size: int) -> Iterator[FrameChunk]:
    import decord

    decord.logging.set_level(decord_level())
    v = info.video
    assert v is not None
    w, h = size
    same = (w, h) == (v.width, v.height)
    vr = None
    try:
        if v.rotation:  # decord rotates by itself; its resize is broken then (see module doc)
            vr = quiet_native(decord.VideoReader, path, ctx=decord.cpu(0))
            dh, dw = vr[0].shape[:2]
            if (dw, dh) != (v.display_width, v.display_height):
                want = f"{v.display_width}x{v.display_height}"
                raise RuntimeError(f"decord gave {dw}x{dh} frames, expected upright {want}")
            vr.seek(0)
        else:
            vr = quiet_native(decord.VideoReader, path, ctx=decord.cpu(0), width=-1 if same else w,
                              height=-1 if same else h)
        n = len(vr)
        if n == 0:
            raise RuntimeError("decord sees no frames")
        # decord's timestamps start at the video stream's first pts; shift to container time.
        src = vr.get_frame_timestamp(np.arange(n))[:, 0].astype(np.float64) + v.start
        order = np.argsort(src, kind="stable")
        src_sorted = src[order]
        frame_dur = float(np.median(np.diff(src_sorted))) if n > 1 else 1.0 / max(v.fps, 1e-3)
        targets = targets[targets < src_sorted[-1] + frame_dur - _EPS] if n else targets
        for i in range(0, len(targets), chunk_size):
            t = targets[i:i + chunk_size]
            idx = order[select_indices(src_sorted, t)]
            uniq, inv = np.unique(idx, return_inverse=True)
            batch = vr.get_batch(uniq.tolist()).asnumpy()
            if v.rotation:
                batch = _resize(batch, *((h, w) if v.rotation in (90, 270) else (w, h)))
            frames = batch[inv]
            yield FrameChunk(frames=frames, pts=src[idx], times=t.copy(), first_index=i, backend="decord")
    finally:  # tear decord's worker down inside a capture, not whenever the generator is collected
        if vr is not None:
            vr.close()


def _resize(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bicubic resize of (N, H, W, 3) uint8 frames with PIL (only for decord on rotated video)."""
    if frames.shape[1:3] == (height, width):
        return frames
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.BICUBIC)) for f in frames])


def _iter_pyav(path: str, info: MediaInfo, targets: np.ndarray, size: tuple[int, int],
               chunk_size: int, on_frame: FrameHook | None = None, skip_nonref: bool = False) -> Iterator[FrameChunk]:
    """Sequential decode, sample-and-hold against the targets, converting only the frames used."""
    import av
    from av.video.reformatter import VideoReformatter

    v = info.video
    assert v is not None
    if len(targets) == 0:
        return
    w, h = size
    container = open_container(path)
    try:
        stream = container.streams.video[0] if v.index is None else container.streams[v.index]
        stream.thread_type = "AUTO"
        if skip_nonref and stream.codec_context.name in NONREF_CODECS:
            stream.codec_context.skip_frame = "NONREF"
        origin = info.start_time
        if targets[0] > 0.5:
            container.seek(int((targets[0] + origin) / stream.time_base), stream=stream, backward=True)
        frames: list[np.ndarray] = []
        pts_out: list[float] = []
        k, first = 0, 0
        prev = None  # (pts, av frame, converted array or None)
        nominal_dur = 1.0 / v.fps if v.fps > 0 else 0.04

        # One reformatter for the whole pass: `VideoFrame.to_ndarray(width=...)` builds a new swscale
        # context per frame (4.7 ms a 720p frame here, against 2.3 ms reused, bit-identical output).
        reformatter = VideoReformatter()

        def convert(item):
            if item[2] is None:
                item[2] = reformatter.reformat(item[1], width=w, height=h, format="rgb24",
                                               interpolation=INTERPOLATION, threads=1).to_ndarray()
            return item[2]

        def emit(item):
            nonlocal k, frames, pts_out, first
            frames.append(convert(item))
            pts_out.append(item[0])
            k += 1
            if len(frames) == chunk_size:
                out = _chunk(frames, pts_out, targets[first:k], first, v.rotation)
                frames, pts_out, first = [], [], k
                return out
            return None

        check = BFrameCheck(stream) if skip_nonref and stream.codec_context.name == "h264" else None
        parts = EncodeWatch(stream.codec_context.extradata) if check is not None else None

        def decoded():
            nonlocal check
            for packet in container.demux(stream):  # what `container.decode(stream)` does, packets seen
                if parts is not None and parts.new_part(packet):  # a join: what held before may not hold now
                    stream.codec_context.skip_frame = "NONREF"
                    check = BFrameCheck(stream, since=packet.pts)
                if check is not None and check.verdict is None:
                    check.feed(packet)
                yield from packet.decode()

        last_pts = None
        try:
            for frame in decoded():
                if check is not None and check.verdict is None and check.see(frame):
                    stream.codec_context.skip_frame = "BIDIR"
                if frame.pts is not None and frame.time is not None:
                    p = float(frame.time) - origin
                else:
                    p = (last_pts + nominal_dur) if last_pts is not None else 0.0
                if last_pts is not None and p < last_pts:  # out-of-order pts: keep the hold monotone
                    p = last_pts
                if on_frame is not None:
                    on_frame(frame, p)
                cur = [p, frame, None]
                while k < len(targets) and p > targets[k] + _EPS:
                    out = emit(prev if prev is not None else cur)
                    if out is not None:
                        yield out
                if prev is not None and last_pts is not None:
                    nominal_dur = max(p - last_pts, 1e-3) if p > last_pts else nominal_dur
                prev, last_pts = cur, p
                if k >= len(targets):
                    break
        except av.error.FFmpegError as exc:
            raise InputError(f"{path}: decoding failed at {last_pts or 0:.2f} s ({_av_reason(exc)}); "
                             "the file is corrupt or truncated") from exc
        if prev is None:
            raise InputError(f"{path}: no decodable video frame; the file is corrupt or truncated")
        # Stream ended: hold the last frame for targets within one frame interval of it.
        while k < len(targets) and targets[k] < last_pts + nominal_dur - _EPS:
            out = emit(prev)
            if out is not None:
                yield out
        if k < len(targets):
            log.warning("%s: video ends at %.2f s, before the %.2f s the container claims (truncated?)",
                        path, last_pts + nominal_dur, targets[-1])
        if frames:
            yield _chunk(frames, pts_out, targets[first:k], first, v.rotation)
    finally:
        container.close()


class BFrameCheck:
    """Whether every B frame of an H.264 stream can be skipped: its I and P frames then decode the same.

    Why: skip_frame=NONREF drops only the B frames nothing references, but x264's b-pyramid (on by
    default) keeps some as references: a third of the frames of the 173-s benchmark join (x264
    veryfast). Skipping those too (BIDIR) cuts its decode from 5.4 to 3.6 s of CPU. That is safe only
    when no P frame predicts from a B frame, which the headers do not tell: x264 with one reference
    frame (its superfast / veryfast presets, OBS's default) never does; with more (its default, medium)
    almost every P frame does, and skipping their B frames corrupts them (mean error 18 grey levels,
    measured). So it is checked, on the stream itself: a second decoder that skips every B frame gets
    the same packets during the first `B_CHECK_SECONDS`, and its I/P frames must equal the main
    decoder's bit for bit (luma digests, matched by pts), while the main decoder shows at least
    `B_CHECK_EVIDENCE` reference B frames unlike the frame before them (in a still window a wrong
    reference decodes the same and proves nothing) and as many P frames after them. Any difference,
    or a window without that evidence, leaves NONREF. Cost: the second decoder's I/P frames of at most
    `B_CHECK_SECONDS` (~0.02 s of CPU at 720p). A file joined by stream copy from parts made by different
    encoder runs can change its prediction structure at a join: where `EncodeWatch` sees a new part
    starts, the decode goes back to NONREF and a new check (``since`` that keyframe) decides again.

    Feed it every packet (`feed`) and every frame the main decoder gives (`see`) until ``verdict`` is
    set; `see` returns True once, when B frames may be skipped from then on.
    """

    def __init__(self, stream: Any, seconds: float = B_CHECK_SECONDS, evidence: int = B_CHECK_EVIDENCE,
                 since: int | None = None):
        import av
        from av.video.frame import PictureType

        self.B, self.P = PictureType.B, PictureType.P
        cc = stream.codec_context
        self.side = av.CodecContext.create(cc.name, "r")
        self.side.extradata = cc.extradata
        self.side.skip_frame = "BIDIR"
        self.time_base = stream.time_base
        self.seconds, self.need = seconds, evidence
        self.since = since  # pts of the keyframe the check starts at: frames before it are not its business
        self.verdict: bool | None = None
        self.start: float | None = None
        self.side_digests: dict[int, bytes] = {}  # pts -> luma digest, I/P frames of the B-skipping decoder
        self.main_digests: dict[int, bytes] = {}  # the main decoder's, not yet matched
        self.evidence = 0  # reference B frames unlike the I/P frame shown before them
        self.matched_after = 0  # P frames matched since the evidence was complete
        self.prev: np.ndarray | None = None  # small luma of the main decoder's last I/P frame

    @staticmethod
    def _luma(frame: Any) -> np.ndarray:
        plane = frame.planes[0]
        return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, :plane.width]

    def _digest(self, frame: Any) -> bytes:
        return hashlib.blake2b(np.ascontiguousarray(self._luma(frame)).data, digest_size=16).digest()

    def _settle(self, ok: bool) -> None:
        self.verdict = ok
        self.side_digests.clear()
        self.main_digests.clear()
        self.side = None

    def _match(self, pts: int, mine: dict[int, bytes], other: dict[int, bytes], digest: bytes, p_frame: bool) -> None:
        if pts not in other:
            mine[pts] = digest
            return
        if other.pop(pts) != digest:
            self._settle(False)
        elif p_frame and self.evidence >= self.need:
            self.matched_after += 1

    def feed(self, packet: Any) -> None:
        """One packet of the stream (before the main decoder gets it)."""
        if self.verdict is not None:
            return
        try:
            out = self.side.decode(packet)
        except Exception:  # noqa: BLE001 - a check that cannot run just leaves NONREF
            self._settle(False)
            return
        for f in out:
            if f.pts is None:
                self._settle(False)
                return
            if f.pict_type != self.B and self.verdict is None:
                self._match(f.pts, self.side_digests, self.main_digests, self._digest(f), f.pict_type == self.P)

    def see(self, frame: Any) -> bool:
        """One frame of the main decoder (skip_frame=NONREF); True when B frames may be skipped from now on."""
        if self.verdict is not None:
            return False
        if frame.pts is None:
            self._settle(False)
            return False
        if self.since is not None and frame.pts < self.since:  # still in flight from before the join
            return False
        t = float(frame.pts * self.time_base)
        self.start = t if self.start is None else self.start
        if frame.pict_type == self.B:  # a reference B frame (NONREF dropped the others)
            small = self._luma(frame)[::4, ::4].astype(np.int16)
            if self.prev is not None and float(np.abs(small - self.prev).mean()) > 1.0:
                self.evidence += 1
        else:
            self.prev = self._luma(frame)[::4, ::4].astype(np.int16)
            self._match(frame.pts, self.main_digests, self.side_digests, self._digest(frame), frame.pict_type == self.P)
        if self.verdict is None and self.matched_after >= self.need and not self.main_digests:
            self._settle(True)
            return True
        if self.verdict is None and t - self.start > self.seconds:
            self._settle(False)
        return False


X264_SEI = b"x264 - core"  # x264 writes its settings in an SEI of the first frame of every encode


class EncodeWatch:
    """Where an H.264 stream joined by stream copy starts a part from another encoder run.

    Why: `BFrameCheck` judges a stream on its first seconds, and a later part may predict P frames
    from B frames where the first did not (a veryfast recording joined to a medium one: its P frames
    came out 7.8 grey levels wrong on average). A keyframe starts a new part when it carries parameter
    sets (SPS) unlike the last ones seen, or x264's settings SEI. Only keyframes are read.
    """

    def __init__(self, extradata: bytes | None):
        data = bytes(extradata or b"")
        self.avcc = len(data) > 6 and data[0] == 1
        self.length_size = (data[4] & 3) + 1 if self.avcc else 4
        self.sps = self._extradata_sps(data) if self.avcc else set(self._sps(data))
        self.first = True

    @staticmethod
    def _extradata_sps(data: bytes) -> set[bytes]:
        out, pos = set(), 6
        for _ in range(data[5] & 0x1F):
            n = int.from_bytes(data[pos:pos + 2], "big")
            out.add(data[pos + 2:pos + 2 + n])
            pos += 2 + n
        return out

    def _nals(self, data: bytes) -> list[bytes]:
        if not self.avcc:  # Annex B: start codes
            return [n.rstrip(b"\x00") for n in data.split(b"\x00\x00\x01") if n]
        out, pos, k = [], 0, self.length_size
        while pos + k <= len(data):
            n = int.from_bytes(data[pos:pos + k], "big")
            out.append(data[pos + k:pos + k + n])
            pos += k + n
        return out

    def _sps(self, data: bytes) -> list[bytes]:
        return [n for n in self._nals(data) if n and n[0] & 0x1F == 7]

    def new_part(self, packet: Any) -> bool:
        """True for the keyframe packet that starts a part unlike the one before (never the first)."""
        if not packet.is_keyframe:
            return False
        data = bytes(packet)
        sps = set(self._sps(data))
        changed = bool(sps) and sps != self.sps
        self.sps = sps or self.sps
        first, self.first = self.first, False
        return not first and (changed or X264_SEI in data)


def _chunk(frames: list[np.ndarray], pts: list[float], times: np.ndarray, first: int, rotation: int) -> FrameChunk:
    arr = rotate_frames(np.stack(frames), rotation)
    return FrameChunk(frames=arr, pts=np.asarray(pts, dtype=np.float64), times=times.copy(),
                      first_index=first, backend="pyav")


def read_frames(path: str | os.PathLike, fps: float, **kwargs) -> FrameChunk:
    """All sampled frames in one chunk — for short clips and tests only (unbounded memory)."""
    chunks = list(iter_frames(path, fps, **kwargs))
    if not chunks:
        return FrameChunk(np.zeros((0, 0, 0, 3), np.uint8), np.zeros(0), np.zeros(0))
    return FrameChunk(frames=np.concatenate([c.frames for c in chunks]),
                      pts=np.concatenate([c.pts for c in chunks]),
                      times=np.concatenate([c.times for c in chunks]), backend=chunks[0].backend)
