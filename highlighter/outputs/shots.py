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
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from highlighter.errors import InputError
from highlighter.io.quiet import native_reason, native_stderr

THRESHOLD = 27.0  # ContentDetector's default: mean HSV difference that makes a cut
MIN_SHOT_FRAMES = 15  # ContentDetector's default: no shot shorter than this (also hides flashes)


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
