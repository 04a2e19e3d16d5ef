"""Mono float32 audio at a requested rate, decoded and resampled with PyAV.

``load_audio`` returns ``None`` for a file without an audio stream: callers
branch on it (audio backbones are skipped, feature files record ``no_audio``)
instead of catching an exception. Multi-channel audio is down-mixed by
libswresample's default matrix (stereo -> (L + R) / 2); the first audio stream
is used. Samples are aligned to the container clock: sample 0 of an ``Audio``
is at ``Audio.start`` seconds (when the audio stream starts later than the
requested start, the gap is filled with silence so that alignment holds).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from highlighter.errors import InputError, UsageError
from highlighter.io.probe import MediaInfo, _av_reason, open_container, probe

log = logging.getLogger(__name__)


@dataclass
class Audio:
    samples: np.ndarray  # float32 (S,) mono in [-1, 1]
    sample_rate: int
    start: float = 0.0  # seconds (container clock) of samples[0]

    @property
    def duration(self) -> float:
        return self.samples.shape[0] / self.sample_rate

    def __len__(self) -> int:
        return int(self.samples.shape[0])


def _decode(path: str, info: MediaInfo, sample_rate: int, start: float, end: float | None) -> Iterator[np.ndarray]:
    """Contiguous mono float32 pieces covering [start, end) exactly (until the stream ends)."""
    import av

    a = info.audio[0]
    container = open_container(path)
    try:
        stream = container.streams[a.index]
        stream.thread_type = "AUTO"
        origin = info.start_time
        if start > 0.5:
            container.seek(int((max(start - 0.25, 0.0) + origin) / stream.time_base), stream=stream, backward=True)
        # Output in frames of one second, not one per decoded frame (AAC: 1024 samples): the same samples,
        # bit for bit, with 40x fewer trips through the Python below (0.59 -> 0.33 s of CPU for 173 s of AAC).
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate, frame_size=sample_rate)
        pos: int | None = None  # absolute sample index (at sample_rate) of the next resampled sample
        want = round(start * sample_rate)  # first sample index to emit
        stop = None if end is None else round(end * sample_rate)

        def pieces(frames):
            nonlocal pos, want
            for rf in frames:
                x = rf.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                if pos is None:
                    continue
                lo, hi = pos, pos + x.shape[0]
                pos = hi
                if hi <= want:
                    continue
                if lo > want:  # gap before the audio starts (or a hole): silence keeps alignment
                    yield np.zeros(lo - want, np.float32)
                    want = lo
                if stop is not None and hi > stop:
                    x = x[: max(stop - lo, 0)]
                    hi = stop
                seg = x[want - lo: hi - lo]
                if seg.size:
                    yield seg
                want = max(want, hi)

        try:
            for frame in container.decode(stream):
                if pos is None:
                    t = (float(frame.time) - origin) if frame.time is not None else 0.0
                    pos = round(t * sample_rate)
                yield from (np.clip(p, -1.0, 1.0) for p in pieces(resampler.resample(frame)))
                if stop is not None and want >= stop:
                    return
            yield from (np.clip(p, -1.0, 1.0) for p in pieces(resampler.resample(None)))
        except av.error.FFmpegError as exc:
            raise InputError(f"{path}: audio decoding failed ({_av_reason(exc)}); the file is corrupt or "
                             "truncated") from exc
    finally:
        container.close()


def _check(sample_rate: int, start: float, end: float | None) -> None:
    if sample_rate <= 0:
        raise UsageError(f"sample_rate must be > 0, got {sample_rate}")
    if start < 0 or (end is not None and end <= start):
        raise UsageError(f"bad audio range start={start} end={end}")


def load_audio(path: str | os.PathLike, sample_rate: int, start: float = 0.0, end: float | None = None,
               info: MediaInfo | None = None) -> Audio | None:
    """The whole range [start, end) as one `Audio`, or ``None`` when the file has no audio stream."""
    _check(sample_rate, start, end)
    info = info or probe(path)
    if not info.audio:
        return None
    parts = list(_decode(str(path), info, sample_rate, start, end))
    samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return Audio(samples=np.ascontiguousarray(samples, dtype=np.float32), sample_rate=sample_rate, start=start)


def iter_audio(path: str | os.PathLike, sample_rate: int, chunk_seconds: float = 60.0, start: float = 0.0,
               end: float | None = None, info: MediaInfo | None = None) -> Iterator[Audio]:
    """`Audio` chunks of exactly ``chunk_seconds`` (the last may be shorter); nothing when there is no audio.

    Memory stays at about one chunk whatever the file length. Check
    ``probe(path).audio`` (or use `load_audio`) to tell "no audio" apart from "empty".
    """
    _check(sample_rate, start, end)
    if chunk_seconds <= 0:
        raise UsageError(f"chunk_seconds must be > 0, got {chunk_seconds}")
    info = info or probe(path)
    if not info.audio:
        return
    n = max(1, round(chunk_seconds * sample_rate))
    buf: list[np.ndarray] = []
    have, t0 = 0, start
    for piece in _decode(str(path), info, sample_rate, start, end):
        buf.append(piece)
        have += piece.shape[0]
        while have >= n:
            allx = np.concatenate(buf)
            yield Audio(samples=np.ascontiguousarray(allx[:n]), sample_rate=sample_rate, start=t0)
            t0 += n / sample_rate
            rest = allx[n:]
            buf, have = ([rest] if rest.size else []), rest.shape[0]
    if have:
        yield Audio(samples=np.ascontiguousarray(np.concatenate(buf)), sample_rate=sample_rate, start=t0)
