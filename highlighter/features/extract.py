"""Streaming feature extraction: one video -> `FeatureFile`, many videos -> a folder.

Memory stays bounded on long videos: frames and audio are decoded in chunks
(`iter_frames`, `iter_audio`), cut on the clip grid as they arrive, and sent to
the backbone ``batch_size`` clips at a time; only the per-clip features are
kept. At most ``batch_size`` clips of frames (plus one decode chunk) are held.

Choices:

* The grid spans the video stream (its start + duration, in container time),
  not the container: a longer audio track does not add clips without frames.
* The duration comes from the stream's packets, not its header (`io.probe`
  measures where the data ends: headers can lie), and when the frames stop
  decoding before that, the grid is cut after the last decoded frame
  (`decoded_clips`), so no trailing clip is made of one frame repeated.
* A clip without any decoded frame inside the grid (a gap in a variable-rate
  stream, the last partial clip) repeats the nearest earlier frame (or the
  next one for a leading gap) and is counted in ``meta['padded_clips']``.
  Audio clips are zero-padded where the track is shorter than the video.
* Visual and audio are decoded in two passes (each streaming), which keeps the
  decoders independent and costs one extra demux of the file.
* Frames are decoded in a thread (`prefetch`, at most two chunks ahead) while the backbone
  runs on the previous ones: PyAV and torch / ONNX Runtime release the GIL, so the two
  cores both work. H.264/HEVC frames that nothing references are not decoded at all
  (`iter_frames(skip_nonref=True)`; on H.264 streams whose P frames are checked to need no B frame,
  no B frame at all: `io.video.BFrameCheck`), and ``frame_hook`` lets a second analysis (shot cuts,
  `outputs.shots.ShotTap`) see every decoded frame of the same pass.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import queue
import stat
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from highlighter import settings
from highlighter.batch import DONE, BatchReport, ItemResult, Job, Skip, run_batch
from highlighter.errors import HighlighterError, InputError, UsageError
from highlighter.features.base import DEFAULT_AUDIO, DEFAULT_VISUAL
from highlighter.features.grid import EPS, ClipGrid
from highlighter.features.store import FORMAT, FORMAT_VERSION, SUFFIX, FeatureFile, SourceKey, check_output
from highlighter.io.probe import file_kind, stat_input

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".wmv", ".flv", ".mpg", ".mpeg",
    ".ts", ".mts", ".m2ts", ".3gp", ".ogv", ".vob", ".mxf", ".dv",
})


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class ExtractConfig:
    """What to extract and how. Only backbones, weights kind and grid are part of
    the cache key (see features/store.py); the rest only changes speed."""

    visual: str | None = DEFAULT_VISUAL
    audio: str | None = DEFAULT_AUDIO  # None = visual only
    grid: ClipGrid = field(default_factory=ClipGrid)
    pretrained: bool = True  # False = the same architectures with random weights
    device: str = "auto"
    batch_size: int = 8  # clips per backbone call
    fp16: bool | None = None  # None = on for CUDA
    chunk_size: int = 64  # frames per decode chunk
    audio_chunk_seconds: float = 30.0
    decode_backend: str = "auto"

    def __post_init__(self) -> None:
        if self.visual is None and self.audio is None:
            raise UsageError("nothing to extract: choose a visual and/or an audio backbone")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {self.batch_size}")

    def backbone_id(self, name: str | None) -> str | None:
        if name is None:
            return None
        return f"{name}:{'pretrained' if self.pretrained else 'random'}"

    def cache_key(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "visual": self.backbone_id(self.visual),
            "audio": self.backbone_id(self.audio),
            "weights": {n: _weights_version(n, self.pretrained) for n in (self.visual, self.audio) if n},
            "contracts": {n: _contract_version(n) for n in (self.visual, self.audio) if n},
            "grid": self.grid.to_dict(),
        }


def _contract_version(name: str) -> str:
    """A digest of the backbone's written contract: when what a backbone computes changes (and its
    contract with it), features cached by the old code are not reused."""
    import hashlib

    from highlighter.features.base import backbone_class

    return hashlib.sha256(backbone_class(name).spec.contract.encode("utf-8")).hexdigest()[:12]


def _weights_version(name: str, pretrained: bool) -> str:
    """Which checkpoint: the weights manager's file + checksum, so that a new
    checkpoint for the same backbone invalidates old features."""
    if not pretrained:
        return "random"
    from highlighter.features.base import backbone_class

    spec = backbone_class(name).spec
    if spec.weights is None:
        return "bundled"
    try:
        from highlighter.features.weights import get_weight_spec

        w = get_weight_spec(spec.weights)
        return f"{w.filename}@{w.sha256 or 'unhashed'}"
    except HighlighterError:
        return spec.weights


# --------------------------------------------------------------------------- progress
class Progress:
    """Progress sink for `extract_many` / `extract_features`; the default does nothing.
    The CLI subclasses it with rich bars."""

    def batch_start(self, total: int) -> None: ...

    def video_start(self, path: Path, total: int) -> None: ...  # total: clips x modalities

    def video_advance(self, n: int) -> None: ...

    def video_end(self, path: Path, status: str) -> None: ...


_NULL = Progress()


# --------------------------------------------------------------------------- extractor
class Extractor:
    """Loaded backbones for one `ExtractConfig`; reuse it across videos.

    Creating it loads the weights, so a missing checkpoint fails here, once,
    with the weights manager's message, before any video is touched."""

    def __init__(self, config: ExtractConfig):
        from highlighter.features.base import backbone_class, create_backbone
        from highlighter.features.device import bound_heap, fast_heap, resolve_device, use_fp16

        self.config = config
        self.device = resolve_device(config.device)
        self.fp16 = use_fp16(self.device, config.fp16)
        if self.device == "cpu":
            bound_heap()  # CPU runs return freed activations and frame buffers to the system (issue 14)
        for name, modality in ((config.visual, "visual"), (config.audio, "audio")):
            if name is not None and backbone_class(name).spec.modality != modality:
                raise UsageError(f"backbone '{name}' is not a {modality} backbone; "
                                 f"see `highlighter features list` for the {modality} backbones")
        self.visual = create_backbone(config.visual, self.device, config.pretrained) if config.visual else None
        self.audio = create_backbone(config.audio, self.device, config.pretrained) if config.audio else None
        if self.device == "cpu" and not any(bb is not None and bb.uses_torch for bb in (self.visual, self.audio)):
            fast_heap()  # no torch in the run: keep freed buffers for reuse instead (speed, issue 14)

    def release(self) -> None:
        """Hand back what the backbones' inference engines hold between videos (`onnx_runtime.FrameRunner`:
        the compiled model and its buffers, 100-200 MB); they load again, in ~0.3 s, for the next video.
        `api.Pipeline` calls it before the detector imports torch, so the two never add up (issue 14)."""
        for bb in (self.visual, self.audio):
            if bb is not None:
                bb.release()

    def extract(self, path: str | Path, progress: Progress | None = None, info: Any = None,
                frame_hook: Any = None) -> FeatureFile:
        """Features of one video; ``info`` (its `probe_video`) skips the probe when the caller has it;
        ``frame_hook`` (an `io.video.FrameHook`) sees every frame the visual pass decodes."""
        from highlighter import __version__
        from highlighter.io.probe import probe_video

        progress = progress or _NULL
        t0 = time.perf_counter()
        path = Path(path)
        source = SourceKey.of(path)
        info = info or probe_video(path)
        v = info.video
        duration = (v.start + v.duration) if v.duration and v.duration > 0 else info.duration
        starts, ends = self.config.grid.clips(duration)
        if starts.size == 0:
            raise InputError(f"{path}: video has zero duration; nothing to extract")
        has_audio = bool(info.audio)
        run_audio = self.audio is not None and has_audio
        progress.video_start(path, starts.size * ((self.visual is not None) + run_audio))

        padded: dict[str, int] = {}
        visual = audio = None
        timings: dict[str, float] = {}

        def audio_part(s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
            t1 = time.perf_counter()
            out = self._audio(path, info, s, e, progress)
            timings["audio"] = time.perf_counter() - t1
            return out

        # audio beside the visual pass (its own decode; fills the gaps of the visual one on two cores)
        pool = ThreadPoolExecutor(1, thread_name_prefix="highlighter-audio") if run_audio and self.visual else None
        ahead = pool.submit(audio_part, starts, ends) if pool is not None else None
        try:
            cut = False
            if self.visual is not None:
                t1 = time.perf_counter()
                visual, vpad, decoded_end = self._visual(path, info, starts, ends, progress, frame_hook, timings)
                timings["visual"] = time.perf_counter() - t1
                keep = decoded_clips(self.config.grid, duration, decoded_end)
                if keep is not None:  # the frames stop early: the grid ends where they do
                    log.warning("%s: frames decode only up to %.2f s of the %.2f s the file claims; "
                                "features cover that part", path, decoded_end, duration)
                    duration = decoded_end
                    starts, ends = self.config.grid.clips(duration)
                    visual, vpad = visual[:keep], vpad[:keep]
                    cut = True
                padded["visual"] = int(vpad.sum())
            if run_audio:
                if ahead is not None:
                    audio, apad = ahead.result()
                if ahead is None or cut:  # a grid cut short changes the last clip's end: audio on the new grid
                    audio, apad = audio_part(starts, ends)
                padded["audio"] = int(apad.sum()) if apad is not None else 0
                if audio is None:  # the decoder found no usable audio stream after all
                    has_audio = False
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        if padded.get("visual"):
            log.warning("%s: %d clip(s) had no decoded frame and repeat a neighbour", path, padded["visual"])
        cfg = self.config
        meta: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "source": source.to_dict(),
            "key": cfg.cache_key(),
            "visual_backbone": self.visual.id if self.visual is not None else None,
            "audio_backbone": self.audio.id if self.audio is not None else None,
            "grid": cfg.grid.to_dict(),
            "duration": float(duration),
            "num_clips": int(starts.size),
            "no_audio": not has_audio,
            "padded_clips": padded,
            "device": self.device,
            "precision": "fp16" if self.fp16 else "fp32",
            "versions": {"highlighter": __version__, "torch": _version_of("torch"), "numpy": np.__version__},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(time.perf_counter() - t0, 3),
            "timings": {k: round(v, 3) for k, v in timings.items()},
        }
        meta.update(getattr(frame_hook, "meta", dict)())  # what the hook found in the same pass (shot cuts)
        return FeatureFile(starts=starts, ends=ends, visual=visual, audio=audio, meta=meta)

    # -- visual ---------------------------------------------------------------
    def _visual(self, path: Path, info, starts, ends, progress: Progress, frame_hook: Any = None,
                timings: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray, float]:
        """(features, padded flag per clip, end of the decoded frames in seconds); the decode thread's
        busy seconds go to ``timings['decode']``."""
        from highlighter.io import iter_frames

        bb = self.visual
        backend = self.config.decode_backend
        chunk = min(self.config.chunk_size, bb.max_chunk_frames or self.config.chunk_size)
        chunks = prefetch(iter_frames(path, fps=bb.fps, short_side=bb.short_side or None, chunk_size=chunk,
                                      backend=backend, info=info, on_frame=frame_hook, skip_nonref=backend == "auto"),
                          busy=timings, key="decode")
        last = [-np.inf]  # latest sample time that got a decoded frame

        def timed() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            # cut on the sample times t_k (each in exactly one clip), not the source pts of
            # the held frames, which may lie in the previous clip (see io/video.py)
            for c in chunks:
                t = np.asarray(getattr(c, "times", c.pts), dtype=np.float64)
                if t.size:
                    last[0] = max(last[0], float(t.max()))
                yield c.frames, t

        out, pad = self._embed(bb, clip_frames(timed(), starts, ends), starts.size, progress,
                               f"{path}: no video frame could be decoded; the file is corrupt")
        return out, pad, last[0] + 1.0 / float(bb.fps)

    # -- audio ----------------------------------------------------------------
    def _audio(self, path: Path, info, starts, ends, progress: Progress) -> tuple[np.ndarray | None, np.ndarray | None]:
        from highlighter.io import iter_audio

        bb = self.audio
        sr = int(bb.sample_rate)
        it = iter(iter_audio(path, sr, self.config.audio_chunk_seconds, info=info))
        first = next(it, None)
        if first is None:  # an audio stream that decodes to nothing: treat as no audio
            return None, None
        clips = clip_samples(((a.samples, a.start) for a in itertools.chain([first], it)), sr, starts, ends)
        return self._embed(bb, clips, starts.size, progress, f"{path}: no audio could be decoded")

    def _embed(self, bb, clips: Iterator[tuple[int, Any, bool]], n: int, progress: Progress,
               empty_msg: str) -> tuple[np.ndarray, np.ndarray]:
        """(features (n, D), padded flag per clip)."""
        from highlighter.features.device import inference

        out: np.ndarray | None = None
        batch: list[Any] = []
        first = 0
        padded = np.zeros(n, dtype=bool)
        done = 0
        limit = min(self.config.batch_size, bb.max_batch_clips or self.config.batch_size)  # i3d CPU

        def flush() -> None:
            nonlocal out, first, batch
            with inference(self.device, self.fp16) if bb.uses_torch else contextlib.nullcontext():
                feats = np.asarray(bb.embed_clips(batch), dtype=np.float32)
            if feats.shape[0] != len(batch):
                raise RuntimeError(f"backbone {bb.id} returned {feats.shape[0]} rows for {len(batch)} clips")
            if out is None:
                out = np.zeros((n, feats.shape[1]), dtype=np.float32)
            out[first:first + len(batch)] = feats
            progress.video_advance(len(batch))
            first += len(batch)
            batch = []

        for i, clip, was_padded in clips:
            assert i == done, "clips must come in order"
            batch.append(clip)
            padded[i] = was_padded
            done += 1
            if len(batch) >= limit:
                flush()
        if batch:
            flush()
        if out is None or done != n:
            raise InputError(empty_msg)
        return out, padded


def _version_of(package: str) -> str | None:
    """An installed package's version without importing it (torch takes seconds to import)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


_DONE = object()


def prefetch(items: Iterable[Any], depth: int = 2, busy: dict[str, float] | None = None,
             key: str = "decode") -> Iterator[Any]:
    """``items`` produced in a daemon thread at most ``depth`` ahead of the consumer.

    Why: decoding and inference then overlap on two cores (both release the GIL). Memory
    stays bounded (``depth`` items in the queue, one being made). An exception in the
    producer is raised in the consumer; a consumer that stops early stops the producer
    (and closes its generator, so the decoder's file is closed). ``busy[key]``: seconds
    the producer spent making items.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(x: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        it = iter(items)
        spent = 0.0
        try:
            while True:
                t = time.perf_counter()
                try:
                    x = next(it)
                except StopIteration:
                    break
                finally:
                    spent += time.perf_counter() - t
                if not put((None, x)):
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put((exc, None))
            return
        finally:
            if busy is not None:
                busy[key] = busy.get(key, 0.0) + spent
            close = getattr(it, "close", None)
            if close is not None:
                close()
        put((None, _DONE))

    thread = threading.Thread(target=produce, name="highlighter-decode", daemon=True)
    thread.start()
    try:
        while True:
            exc, x = q.get()
            if exc is not None:
                raise exc
            if x is _DONE:
                return
            yield x
    finally:
        stop.set()
        thread.join(timeout=5)


def decoded_clips(grid: ClipGrid, duration: float, decoded_end: float) -> int | None:
    """How many clips to keep when the frames stop before ``duration`` (None: keep all).

    Headers can claim more than the stream decodes to (a damaged tail); whole clips past
    the last decoded frame would only repeat it, so the grid is cut at ``decoded_end``.
    """
    if not 0 < decoded_end < duration:
        return None
    keep = grid.num_clips(decoded_end)
    return keep if keep < grid.num_clips(duration) else None


# --------------------------------------------------------------------------- clip cutting
def clip_frames(chunks: Iterable[tuple[np.ndarray, np.ndarray]], starts: np.ndarray,
                ends: np.ndarray) -> Iterator[tuple[int, np.ndarray, bool]]:
    """Cut a stream of (frames (N,H,W,3), times (N,)) chunks on the grid.

    Yields (clip index, frames of that clip, padded) in order, as soon as a frame
    at or after the clip's end arrives (or the stream ends). Keeps only the frames
    that a not-yet-finished clip can still use."""
    n = starts.size
    buf: deque[tuple[np.ndarray, np.ndarray]] = deque()  # (pts, frames) with pts + EPS >= starts[i]
    last: np.ndarray | None = None  # latest frame dropped from the buffer (for padding)
    i = 0

    def cut(i: int) -> tuple[np.ndarray, bool]:
        s, e = starts[i], ends[i]
        parts = [f[(p + EPS >= s) & (p + EPS < e)] for p, f in buf]
        parts = [x for x in parts if x.shape[0]]
        if parts:
            return (parts[0] if len(parts) == 1 else np.concatenate(parts)), False
        # no frame in the clip: the nearest earlier frame, else the next one
        before = [f[p + EPS < s] for p, f in buf]
        before = [x for x in before if x.shape[0]]
        if before:
            return before[-1][-1:], True
        if last is not None:
            return last, True
        after = [f for p, f in buf if f.shape[0]]
        if after:
            return after[0][:1], True
        return np.zeros((0,)), True

    def drop_before(t: float) -> None:
        nonlocal last
        while buf:
            p, f = buf[0]
            keep = p + EPS >= t
            if keep.all():
                break
            if p.size < 2 or bool(np.all(p[1:] >= p[:-1])):  # sorted times (the decoder's): views, no copy
                k = int(np.argmax(keep)) if keep.any() else p.size  # of a 64-frame chunk, per clip
                last = f[k - 1:k].copy()
                keep_f, keep_p = f[k:], p[k:]
            else:
                last = f[~keep][-1:].copy()
                keep_f, keep_p = f[keep], p[keep]
            if keep_p.size:
                buf[0] = (keep_p, keep_f)
                break
            buf.popleft()

    for frames, pts in chunks:
        pts = np.asarray(pts, dtype=np.float64)
        if pts.size == 0:
            continue
        buf.append((pts, frames))
        newest = float(pts.max())
        while i < n and newest + EPS >= ends[i]:
            clip, pad = cut(i)
            yield i, clip, pad
            i += 1
            drop_before(starts[i] if i < n else np.inf)
        if i >= n:
            break
    while i < n:
        clip, pad = cut(i)
        if clip.shape[0] == 0:
            return  # nothing decoded at all; the caller reports it
        yield i, clip, pad
        i += 1


def clip_samples(chunks: Iterable[tuple[np.ndarray, float]], sample_rate: int, starts: np.ndarray,
                 ends: np.ndarray) -> Iterator[tuple[int, np.ndarray, bool]]:
    """Cut a stream of (mono samples, start seconds) chunks on the grid.

    Clip i is samples ``[round(start*sr), round(end*sr))``; chunks are taken as
    contiguous after the first one's start. Missing samples (track shorter than
    the video, or starting late) are zeros and mark the clip as padded."""
    n = starts.size
    lo = np.round(starts * sample_rate).astype(np.int64)
    hi = np.maximum(np.round(ends * sample_rate).astype(np.int64), lo + 1)
    buf = np.zeros(0, dtype=np.float32)
    buf_start = None  # absolute sample index of buf[0]
    i = 0

    def cut(i: int) -> tuple[np.ndarray, bool]:
        a, b = int(lo[i]), int(hi[i])
        out = np.zeros(b - a, dtype=np.float32)
        if buf_start is None:
            return out, True
        s, e = max(a, buf_start), min(b, buf_start + buf.size)
        if e > s:
            out[s - a:e - a] = buf[s - buf_start:e - buf_start]
        return out, (e - s) < (b - a)

    for samples, start in chunks:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if buf_start is None:
            buf_start = int(round(float(start) * sample_rate))
        buf = np.concatenate([buf, samples]) if buf.size else samples
        while i < n and buf_start + buf.size >= hi[i]:
            clip, pad = cut(i)
            yield i, clip, pad
            i += 1
            keep_from = int(lo[i]) if i < n else buf_start + buf.size
            drop = min(max(keep_from - buf_start, 0), buf.size)
            if drop:
                buf = buf[drop:]
                buf_start += drop
        if i >= n:
            return
    while i < n:
        clip, pad = cut(i)
        yield i, clip, pad
        i += 1


# --------------------------------------------------------------------------- API
def extract_features(path: str | Path, config: ExtractConfig | None = None, *,
                     extractor: Extractor | None = None, progress: Progress | None = None) -> FeatureFile:
    """Features of one video (not saved). Pass ``extractor`` to reuse loaded backbones."""
    config = config or (extractor.config if extractor else ExtractConfig())
    extractor = extractor or Extractor(config)
    return extractor.extract(path, progress)


def cache_path(path: str | Path, cache_dir: str | Path) -> Path:
    """``cache_dir/<stem>-<hash of the absolute path>.features.npz``: one entry per
    source file, whatever folder it is in. The stem is cut to `STEM_BYTES` so that
    the name fits any file system whatever the length of the video's name."""
    p = resolved(path)
    return Path(cache_dir) / f"{short_stem(p.stem)}-{hashlib.sha256(os.fsencode(p)).hexdigest()[:12]}{SUFFIX}"


STEM_BYTES = 60  # of a file name's stem kept in generated names (NAME_MAX is 255 bytes)


def short_stem(stem: str, limit: int = STEM_BYTES) -> str:
    """``stem`` cut to at most ``limit`` UTF-8 bytes (never inside a character)."""
    return stem.encode("utf-8", "surrogateescape")[:limit].decode("utf-8", "ignore")


def resolved(path: str | Path) -> Path:
    """``Path.resolve()``, or the absolute path when it cannot be resolved (a symbolic
    link loop raises RuntimeError there); the caller's stat then reports it."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(path))


def default_cache_dir() -> Path:
    """Where `load_or_extract` keeps features unless told (`settings.feature_cache_dir`)."""
    return settings.feature_cache_dir()


def load_or_extract(path: str | Path, cache_dir: str | Path | None = None, config: ExtractConfig | None = None,
                    *, extractor: Extractor | None = None, progress: Progress | None = None,
                    force: bool = False) -> FeatureFile:
    """Cached features of ``path``: loaded when up to date, else extracted and saved.

    For `detect`: pass one ``extractor`` when scoring many files."""
    return cached_features(path, cache_dir, config, extractor=extractor, progress=progress, force=force)[0]


def cached_features(path: str | Path, cache_dir: str | Path | None = None, config: ExtractConfig | None = None,
                    *, extractor: Extractor | None = None, progress: Progress | None = None,
                    force: bool = False, info: Any = None, frame_hook: Any = None) -> tuple[FeatureFile, bool]:
    """`load_or_extract` that also says whether the features came from the cache; ``info``
    (the video's `probe_video`) saves a second probe on a miss; ``frame_hook``: see `Extractor.extract`
    (not called on a cache hit)."""
    config = config or (extractor.config if extractor else ExtractConfig())
    out = cache_path(path, cache_dir or default_cache_dir())
    if not force and check_output(out, path, config) is None:
        return FeatureFile.load(out), True
    extractor = extractor or Extractor(config)
    ff = extractor.extract(path, progress, info=info, frame_hook=frame_hook)
    ff.save(out)
    return ff, False


# --------------------------------------------------------------------------- batch
def discover(inputs: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """Videos under ``inputs`` as (source, output path relative to OUT, without suffix).

    Directories are searched recursively for video extensions, skipping hidden
    files and folders; files named explicitly are taken whatever their extension.
    Outputs mirror the sub-folders under each given directory; files given
    directly go to the top. When two sources would get the same output (``a.mp4``
    and ``a.mkv``, or the same name under two inputs), they keep their extension
    (``a.mp4``), and if that still collides a short hash of the source path."""
    found: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    for raw in inputs:
        p = Path(raw)
        if not os.path.lexists(p):
            raise InputError(f"{p} does not exist; pass video files or folders that contain them")
        mode = stat_input(p).st_mode  # a broken link or link loop named directly: one line
        if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
            raise InputError(f"{p}: not a regular file ({file_kind(mode)}); pass video files or folders")
        if stat.S_ISDIR(mode):
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    f = Path(dirpath) / name
                    if name.startswith(".") or f.suffix.lower() not in VIDEO_EXTENSIONS:
                        continue
                    # a link loop, pipe or device is kept: its extraction fails alone, with one line
                    if resolved(f) not in seen:
                        seen.add(resolved(f))
                        found.append((f, f.relative_to(p)))
        elif resolved(p) not in seen:
            seen.add(resolved(p))
            found.append((p, Path(p.name)))
    stems = [rel.with_suffix("") for _, rel in found]
    counts: dict[Path, int] = {}
    for s in stems:
        counts[s] = counts.get(s, 0) + 1
    names = [rel if counts[s] > 1 else s for (_, rel), s in zip(found, stems)]
    counts = {}
    for s in names:
        counts[s] = counts.get(s, 0) + 1
    out = []
    for (src, _), name in zip(found, names):
        if counts[name] > 1:
            h = hashlib.sha256(os.fsencode(resolved(src))).hexdigest()[:8]
            name = name.with_name(f"{name.name}.{h}")
        out.append((src, name))
    return out


def output_path(out_dir: str | Path, rel: Path) -> Path:
    """``OUT/rel.features.npz``; a name too long for the file system gets a short stem + hash."""
    name = rel.name + SUFFIX
    if len(name.encode("utf-8", "surrogateescape")) > 200:
        name = f"{short_stem(rel.name)}-{hashlib.sha256(os.fsencode(rel)).hexdigest()[:12]}{SUFFIX}"
    return Path(out_dir) / rel.with_name(name)


class VideoResult(ItemResult[float]):
    """One video of `extract_many`: ``value`` is the seconds of video extracted (done only);
    ``message`` is the failure line, or why it was (re-)extracted or skipped."""

    @property
    def duration(self) -> float:
        return float(self.value or 0.0)


@dataclass
class ExtractJob:
    """The per-video work of `extract_many`: extract, save (atomically), return the seconds of video.

    An object, not a closure, so that a cluster runner (`batch_ray`) can ship it: pickling drops
    the loaded backbones and the progress sink, and ``prepare`` loads them once per process."""

    config: ExtractConfig
    extractor: Extractor | None = None
    progress: Progress = _NULL

    def prepare(self) -> None:
        if self.extractor is None:
            self.extractor = Extractor(self.config)  # raises once for missing weights / bad device

    def __call__(self, job: Job) -> float:
        self.prepare()
        ff = self.extractor.extract(job.source, self.progress)
        ff.save(job.output)
        return float(ff.meta.get("duration", 0.0))

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config, "extractor": None, "progress": _NULL}


def extract_many(paths: Iterable[str | Path], out_dir: str | Path, config: ExtractConfig,
                 progress: Progress | None = None, *, force: bool = False,
                 extractor: Extractor | None = None, runner=run_batch) -> BatchReport[float]:
    """Extract every video under ``paths`` into ``out_dir``, skipping up-to-date outputs.

    One video failing (corrupt, unreadable) is recorded and the rest go on (`batch.run_batch`).
    Backbones are loaded once, before the first extraction, and only if some
    video needs extracting — a missing checkpoint fails the whole run there. ``runner``:
    `batch.run_batch`, or one with its call that runs elsewhere (`batch_ray.RayRunner`)."""
    progress = progress or _NULL
    t0 = time.perf_counter()
    paths = list(paths)
    found = discover(paths)
    if not found:
        raise InputError(f"no video files found in {', '.join(str(p) for p in paths)} "
                         f"(extensions: {', '.join(sorted(VIDEO_EXTENSIONS))})")
    key = config.cache_key()  # unknown backbone names fail here, once
    jobs = [Job(src, output_path(out_dir, rel)) for src, rel in found]
    progress.batch_start(len(jobs))

    def stale(job: Job) -> str:
        why = "forced" if force else check_output(job.output, job.source, key)  # hashes only if size+mtime match
        if why is None:
            raise Skip("up to date")
        return why

    def settled(r: ItemResult) -> None:
        if r.status != DONE:  # skipped or failed already; the rest are reported once extracted
            progress.video_end(r.source, r.status)

    checked = run_batch(jobs, stale, on_done=settled, result_type=VideoResult)
    reasons = {r.source: r.value for r in checked if r.status == DONE}
    todo = [j for j in jobs if j.source in reasons]
    work = ExtractJob(config, extractor, progress)
    if todo and runner is run_batch:  # another runner (`batch_ray`) prepares the work where it runs
        work.prepare()

    def extracted(r: ItemResult) -> None:
        if r.status == DONE:
            r.message = reasons[r.source]
        progress.video_end(r.source, r.status)

    done = {r.source: r for r in runner(todo, work, on_done=extracted, result_type=VideoResult)}
    results = [done.get(r.source, r) for r in checked]  # input order
    return BatchReport(results, time.perf_counter() - t0)
