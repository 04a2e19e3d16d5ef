"""Write a `DetectResult` as JSON, CSV and editor timelines (EDL, OTIO, FCPXML, Premiere XML), each atomically.

Every writer goes through `atomic_write_text`: the text is written to a hidden
temporary file in the destination folder and renamed over the target, so a crash
never leaves half a file, and a reader never sees one.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from highlighter.atomic import atomic_write_text as _atomic_write_text
from highlighter.errors import InputError
from highlighter.outputs.schema import DetectResult

# Every format `detect --format` takes, and its file name ending. The editor timelines
# (outputs/timeline.py): edl = CMX3600, otio = OpenTimelineIO, fcpxml = Final Cut Pro X /
# DaVinci Resolve, premiere = Premiere Pro / FCP7 XML (xmeml, also read by Resolve).
EXTENSIONS = {"json": ".json", "csv": ".csv", "edl": ".edl", "otio": ".otio", "fcpxml": ".fcpxml",
              "premiere": ".xml"}
FORMATS = tuple(EXTENSIONS)
DEFAULT_FORMATS = ("json", "csv", "edl")  # what detect writes when --format is not given


def atomic_write_text(path: str | Path, text: str, protect: list[str | Path] = ()) -> Path:
    """Write ``text`` to ``path`` via a temp file + rename; never write over a file in ``protect``."""
    path = Path(path)
    for p in protect:
        if path.exists() and Path(p).exists() and path.resolve() == Path(p).resolve():
            raise InputError(f"{path}: refusing to overwrite the input video; choose another -o")
    return _atomic_write_text(path, text)


def to_json(result: DetectResult) -> str:
    return json.dumps(result.to_dict(), indent=2) + "\n"


def to_csv(result: DetectResult) -> str:
    """One row per segment in time order, with timecodes for people reading it in a spreadsheet."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["rank", "start", "end", "duration", "score", "start_time", "end_time"])
    for g in result.segments:
        w.writerow([g.rank, f"{g.start:.3f}", f"{g.end:.3f}", f"{g.duration:.3f}", f"{g.score:.6g}",
                    clock(g.start), clock(g.end)])
    return buf.getvalue()


def clock(seconds: float) -> str:
    """H:MM:SS.mmm."""
    ms = int(round(seconds * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h}:{m:02d}:{s:02d}.{ms:03d}"


def timecode(seconds: float, fps: float) -> str:
    """SMPTE non-drop-frame timecode HH:MM:SS:FF, as the HTML report labels frames.

    The frame index is counted at the real rate (``round(t * fps)``) and labelled at the
    nominal integer rate (29.97 -> 30), which is what NON-DROP FRAME means for 29.97 media.
    """
    base = max(1, int(round(fps)))
    n = max(0, int(round(seconds * fps)))
    ff = n % base
    total_s = n // base
    return f"{total_s // 3600:02d}:{(total_s // 60) % 60:02d}:{total_s % 60:02d}:{ff:02d}"


def _timeline(kind: str):
    """The writer ``kind`` of outputs/timeline.py, imported when first used (OTIO loads its adapters)."""

    def render(result: DetectResult) -> str:
        from highlighter.outputs import timeline

        return getattr(timeline, kind)(result)

    render.__name__ = render.__qualname__ = kind
    return render


to_edl = _timeline("to_edl")  # CMX3600, through OpenTimelineIO
RENDER = {"json": to_json, "csv": to_csv, "edl": to_edl, "otio": _timeline("to_otio"),
          "fcpxml": _timeline("to_fcpxml"), "premiere": _timeline("to_fcp7_xml")}


def write_outputs(result: DetectResult, stem: str | Path,
                  formats: tuple[str, ...] = DEFAULT_FORMATS) -> dict[str, Path]:
    """Write ``{stem}.json`` / ``.csv`` / ``.edl`` / ... (those in ``formats``); returns the paths."""
    stem = Path(stem)
    out = {}
    for fmt in formats:
        if fmt not in RENDER:
            raise InputError(f"unknown output format '{fmt}'; valid: {', '.join(FORMATS)}")
        out[fmt] = atomic_write_text(stem.with_name(stem.name + EXTENSIONS[fmt]), RENDER[fmt](result),
                                     protect=[result.video.path])
    return out
