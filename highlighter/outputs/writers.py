"""Write a `DetectResult` as JSON, CSV and a CMX3600 EDL, each atomically.

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

FORMATS = ("json", "csv", "edl")


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
    """SMPTE non-drop-frame timecode HH:MM:SS:FF.

    The frame index is counted at the real rate (``round(t * fps)``) and labelled at the
    nominal integer rate (29.97 -> 30), which is what NON-DROP FRAME means for 29.97 media.
    """
    base = max(1, int(round(fps)))
    n = max(0, int(round(seconds * fps)))
    ff = n % base
    total_s = n // base
    return f"{total_s // 3600:02d}:{(total_s // 60) % 60:02d}:{total_s % 60:02d}:{ff:02d}"


def to_edl(result: DetectResult, title: str | None = None) -> str:
    """CMX3600 EDL: one cut event per segment in time order, laid end to end on the record side.

    Choices: the source file is assumed to start at timecode 00:00:00:00 (embedded start
    timecodes are ignored), reel name ``AX`` (a file-based clip, as Premiere and Resolve
    write it), track ``AA/V`` (picture + stereo audio) or ``V`` for files without audio,
    the record side starts at 00:00:00:00; 'FROM CLIP NAME' / 'SOURCE FILE' remarks tie each
    event to the file (editors relink by clip name).
    """
    fps = result.video.fps or 25.0
    name = result.video.name
    lines = [f"TITLE: {(title or Path(name).stem + ' highlights')[:70]}", "FCM: NON-DROP FRAME", ""]
    track = "AA/V" if result.video.has_audio else "V"
    rec = 0
    for i, g in enumerate(sorted(result.segments, key=lambda g: g.start), start=1):
        a = int(round(g.start * fps))
        b = int(round(g.end * fps))
        if b <= a:
            continue
        lines.append(f"{i:03d}  {'AX':<8} {track:<5} {'C':<8} "
                     f"{timecode(a / fps, fps)} {timecode(b / fps, fps)} "
                     f"{timecode(rec / fps, fps)} {timecode((rec + b - a) / fps, fps)}")
        lines.append(f"* FROM CLIP NAME: {name}")
        lines.append(f"* SOURCE FILE: {result.video.path}")
        lines.append(f"* HIGHLIGHT RANK {g.rank} SCORE {g.score:.4g}")
        lines.append("")
        rec += b - a
    return "\n".join(lines)


def write_outputs(result: DetectResult, stem: str | Path, formats: tuple[str, ...] = FORMATS) -> dict[str, Path]:
    """Write ``{stem}.json`` / ``.csv`` / ``.edl`` (those in ``formats``); returns the paths."""
    stem = Path(stem)
    render = {"json": to_json, "csv": to_csv, "edl": to_edl}
    out = {}
    for fmt in formats:
        if fmt not in render:
            raise InputError(f"unknown output format '{fmt}'; valid: {', '.join(FORMATS)}")
        out[fmt] = atomic_write_text(stem.with_name(stem.name + "." + fmt), render[fmt](result),
                                     protect=[result.video.path])
    return out
