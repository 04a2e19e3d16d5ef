"""Shot cuts: the seconds at which one shot ends and the next begins, found by PySceneDetect.

Why: selection works on a 2-s clip grid, which knows nothing of shots, so a segment could
end on five frames of the next, unrelated shot or span several source clips. Editors see
that at once. `detect_cuts` finds the hard cuts once per video at detect time; the list of
seconds then goes into `segments.select_segments`, which stays a pure function of
(scores, grid, cuts, config), and into the JSON (``"cuts"``), so ``trim --from`` re-selects
with the same cuts without reading the video again.

Detector: PySceneDetect's `ContentDetector` with its defaults (threshold 27 on the mean
HSV frame difference, shots of at least 15 frames, flash filter), through its library API
on the OpenCV backend. A cut's time is that of the first frame of the new shot.

Cost (measured here, 2 shared CPU cores): it is decode-bound. A 169-s 1280x720 25-fps
concatenation of the five clips in ../shared/videos took 10.8 s, i.e. **about 3.8 s per minute
of 720p** (21 s, 7.6 s per minute, while ~7 jobs shared the CPU; PyAV backend 14.9 s; frames
downscaled 8x before the detector: 10.2 s, so no gain), and found all 9 joins, each within one
frame (18.12 s for a join at 18.157 s). Features on the same video took about 6x longer.

A video OpenCV cannot read gives no cuts and a note instead of failing detect: shots are a
refinement of the selection, not a requirement for it.

Shared decode (`ShotTap`, what `detect` uses): the same ContentDetector fed by the decode pass
the visual backbone already makes (`io.video.iter_frames(on_frame=...)`), so shots cost no
decode of their own. It sees `TAP_FPS` = 10 frames per second, each a small BGR image made
from the decoded YUV planes by striding (about 0.25 ms a frame, no colour conversion of the
full frame), and reports a cut at the first tapped frame of the new shot: up to 0.1 s after
the real cut, which selection does not notice (segment edges snap onto cuts within 1 s). On
the 174-s 720p join of ../shared/videos it finds the same 11 cuts as `scenedetect detect-content`,
each 0.02-0.12 s after it, for ~0.8 s of CPU instead of a 15-s pass of its own.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from highlighter.errors import InputError
from highlighter.io.quiet import native_reason, native_stderr

THRESHOLD = 27.0  # ContentDetector's default: mean HSV difference that makes a cut
MIN_SHOT_FRAMES = 15  # ContentDetector's default: no shot shorter than this (also hides flashes)
TAP_FPS = 10.0  # frames per second `ShotTap` looks at
MIN_SHOT_SECONDS = 0.5  # MIN_SHOT_FRAMES at 30 fps, in seconds, so that it holds at the tap's rate
TAP_WIDTH = 160  # px: ContentDetector itself works at ~256 (scenedetect default); 160 finds the same cuts, cheaper


@dataclass(frozen=True)
class ShotCuts:
    """What shot detection found in one video: ``cuts`` (seconds, increasing) or None with a ``note``."""

    cuts: list[float] | None
    seconds: float = 0.0
    note: str | None = None


def detect_cuts(path: str | Path, threshold: float = THRESHOLD, min_shot_frames: int = MIN_SHOT_FRAMES) -> list[float]:
    """Seconds of every hard cut in ``path`` (start of each shot after the first), increasing.

    Raises `InputError` naming the file when PySceneDetect cannot read it.
    """
    import logging

    from scenedetect import ContentDetector, SceneManager
    from scenedetect.backends.pyav import VideoStreamAv

    logging.getLogger("pyscenedetect").setLevel(logging.ERROR)  # its INFO lines would break the one-line rule
    try:
        # PyAV on an open file, not OpenCV on a name: OpenCV's capture crashes the process
        # (SIGSEGV) on a file name that is not UTF-8, and PyAV is the decoder we ship anyway.
        with native_stderr(), open(path, "rb") as f:
            video = VideoStreamAv(f, name=Path(path).stem, suppress_output=True)
            manager = SceneManager()
            manager.add_detector(ContentDetector(threshold=threshold, min_scene_len=min_shot_frames))
            manager.detect_scenes(video)
            scenes = manager.get_scene_list()
    except Exception as exc:  # noqa: BLE001 - the library raises OSError, IOError, its own and cv2 errors
        raise InputError(f"{path}: shot detection cannot read it ({native_reason(exc)}); "
                         "check the file with `highlighter info`") from None
    return clean_cuts([float(start.seconds) for start, _end in scenes[1:]])


class ShotTap:
    """ContentDetector on the frames of another decode pass: call it with each decoded PyAV frame
    and its time (`io.video.FrameHook`), then `result` gives the `ShotCuts`.

    It looks at the first frame of each 1/`TAP_FPS`-s tick (``floor(t * fps)``) and passes over the rest. A failure
    (an odd pixel format OpenCV refuses) turns into a note, never into a failed decode.

    The decode thread only copies the tick's small strided planes (`grab`); colour conversion and
    ContentDetector run in a worker thread of their own (``worker=True``, the default), fed through
    a bounded queue. Why: decoding is the longest stage of `detect` on the CPU default, and the tap's
    work there (~1.7 s on the 173-s 720p join) is done on the other core instead. The frames reach
    ContentDetector in the same order, so the cuts are the same as in the thread.
    """

    QUEUE = 256  # tapped frames in flight (~40 KB each at TAP_WIDTH)

    def __init__(self, fps: float = TAP_FPS, threshold: float = THRESHOLD, min_shot: float = MIN_SHOT_SECONDS,
                 worker: bool = True):
        self.fps = fps
        self.threshold, self.min_shot = threshold, min_shot
        self.detector: Any = None
        self.last_tick = -math.inf
        self.index = 0
        self.times: list[float] = []  # time of each frame it looked at
        self.cuts: list[float] = []
        self.grab_seconds = 0.0  # in the decode thread
        self.work_seconds = 0.0  # colour conversion + detector (the worker, or the decode thread without one)
        self.error: str | None = None
        self.worker = worker
        self._queue: Any = None
        self._thread: Any = None

    def __call__(self, frame: Any, t: float) -> None:
        tick = math.floor(t * self.fps + 1e-6)
        if self.error is not None or tick <= self.last_tick:
            return
        self.last_tick = tick
        t0 = time.perf_counter()
        try:
            planes = grab(frame)
            if self.worker:
                self._start()
                self._queue.put((planes, t))
            else:
                self._look(to_bgr(planes), t)
        except Exception as exc:  # noqa: BLE001 - shots refine the selection; never fail the decode for them
            self.error = native_reason(exc)
        self.grab_seconds += time.perf_counter() - t0

    @property
    def seconds(self) -> float:
        """The tap's cost in seconds of thread time (grabbing + detector)."""
        return self.grab_seconds + self.work_seconds

    def _start(self) -> None:
        if self._thread is None:
            import queue
            import threading

            self._queue = queue.Queue(self.QUEUE)
            self._thread = threading.Thread(target=self._work, name="highlighter-shots", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.error is not None:
                continue  # drain: the decode thread must never block on a full queue
            t0 = time.perf_counter()
            try:
                self._look(to_bgr(item[0]), item[1])
            except Exception as exc:  # noqa: BLE001 - as in __call__
                self.error = native_reason(exc)
            self.work_seconds += time.perf_counter() - t0

    def close(self) -> None:
        """Wait for the worker to finish the frames it was given (`meta` and `result` call it)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _look(self, img: np.ndarray, t: float) -> None:
        from scenedetect import ContentDetector, FrameTimecode

        if self.detector is None:
            self.detector = ContentDetector(threshold=self.threshold, min_scene_len=float(self.min_shot))
        self.times.append(t)
        for tc in self.detector.process_frame(FrameTimecode(self.index, fps=self.fps), img):
            n = int(tc.frame_num)
            if 0 < n < len(self.times):
                self.cuts.append(self.times[n])
        self.index += 1

    def meta(self) -> dict[str, Any]:
        """What the feature file keeps of the tap (so a cache hit needs no shot pass): the cuts, when found."""
        self.close()
        if self.error is not None or not self.times:
            return {}
        return {"shot_cuts": {"cuts": clean_cuts(self.cuts), "fps": self.fps, "threshold": self.threshold}}

    def result(self, path: str | Path = "") -> ShotCuts:
        """The cuts found (None with a note when the tap failed or saw no frame)."""
        self.close()
        if self.error is not None or not self.times:
            why = self.error or "no frame was decoded"
            return ShotCuts(cuts=None, seconds=self.seconds,
                            note=f"{path}: shot detection failed ({why}); segments may cross shot cuts")
        return ShotCuts(cuts=clean_cuts(self.cuts), seconds=self.seconds)


_LIMITED_Y = np.clip(np.round((np.arange(256) - 16.0) * (255.0 / 219.0)), 0, 255).astype(np.uint8)
_LIMITED_C = np.clip(np.round((np.arange(256) - 128.0) * (255.0 / 224.0) + 128.0), 0, 255).astype(np.uint8)


def grab(frame: Any, width: int = TAP_WIDTH) -> tuple:
    """The cheap part of `small_bgr`, done where the frame is: ("yuv", limited, y, u, v) strided copies of
    an 8-bit 4:2:0 frame's planes, or ("bgr", image) swscaled for other formats."""
    k = max(2, 2 * round(frame.width / (2 * width)))
    if frame.format.name in ("yuv420p", "yuvj420p"):
        y, u, v = (np.frombuffer(pl, np.uint8).reshape(pl.height, pl.line_size) for pl in frame.planes[:3])
        ys = y[:frame.height:k, :frame.width:k]
        h, w = ys.shape
        us, vs = u[:, :frame.width // 2:k // 2][::k // 2][:h, :w], v[:, :frame.width // 2:k // 2][::k // 2][:h, :w]
        h, w = min(h, us.shape[0]), min(w, us.shape[1])
        return ("yuv", frame.format.name == "yuv420p", ys[:h, :w].copy(), us[:h, :w].copy(), vs[:h, :w].copy())
    w = max(2, frame.width // k)
    h = max(2, frame.height // k)
    return ("bgr", frame.to_ndarray(width=w, height=h, format="bgr24", interpolation="FAST_BILINEAR"))


def to_bgr(planes: tuple) -> np.ndarray:
    """`grab`'s planes -> the small uint8 BGR image ContentDetector gets (limited range expanded first,
    so differences keep the scale ContentDetector's threshold was set on)."""
    import cv2

    if planes[0] == "bgr":
        return planes[1]
    _, limited, ys, us, vs = planes
    if limited:  # Y 16-235, UV 16-240 around 128
        ys, us, vs = _LIMITED_Y[ys], _LIMITED_C[us], _LIMITED_C[vs]
    return cv2.cvtColor(np.dstack([ys, us, vs]), cv2.COLOR_YUV2BGR)


def small_bgr(frame: Any, width: int = TAP_WIDTH) -> np.ndarray:
    """A PyAV frame as a small uint8 BGR image (about ``width`` px wide) for ContentDetector.

    8-bit 4:2:0 (nearly every video): luma and chroma planes strided by an even factor, then
    OpenCV's YUV->BGR on the small image. Other formats: swscale to that size.
    """
    return to_bgr(grab(frame, width))


def find_cuts(path: str | Path) -> ShotCuts:
    """`detect_cuts` timed, with a failure turned into a note (segments may then cross cuts)."""
    t0 = time.perf_counter()
    try:
        cuts, note = detect_cuts(path), None
    except InputError as exc:
        cuts, note = None, f"{exc}".split(";")[0] + "; segments may cross shot cuts"
    return ShotCuts(cuts=cuts, seconds=time.perf_counter() - t0, note=note)


def clean_cuts(cuts, duration: float | None = None) -> list[float]:
    """Cuts as selection uses them: finite, inside ``(0, duration)``, increasing, without repeats
    (closer than 1 ms), rounded to the microsecond like every time in the JSON."""
    end = math.inf if duration is None else duration - 1e-6
    out: list[float] = []
    for c in sorted(c for c in map(float, cuts) if 0.0 < c < end):  # NaN fails every comparison: dropped first
        if out and c - out[-1] < 1e-3:
            continue
        out.append(round(c, 6))
    return out
