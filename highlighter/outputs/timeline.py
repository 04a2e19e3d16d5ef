"""Editor timelines from a `DetectResult`: OTIO, FCPXML, Premiere/FCP7 XML and CMX3600 EDL.

One `otio.schema.Timeline` (`build_timeline`) is written by OpenTimelineIO's own adapters, so
every format says the same thing: one clip per segment, in time order, laid end to end from
00:00:00:00, each pointing at the video through an ``ExternalReference`` whose ``target_url``
is the video's ``file://`` URL (percent-encoded bytes: exact for any name, one line always).
Clips are named after the file (editors relink by clip name), cleaned of what breaks a format
(`clean_name`: newlines, control characters, bytes that are not UTF-8); rank and score ride in
the clip's metadata, a marker and, in the EDL, a comment.

Frame rates. Times are counted in frames of the video's exact rate (`video_rate`: 19.62 is
981/50, 29.97 is 30000/1001), which OTIO and FCPXML keep as they are. CMX3600 and FCP7 XML can
only count at a SMPTE timecode rate (OTIO refuses any other), so those two are written at
`timecode_rate`: the video's own rate when it is one, else the lowest SMPTE rate that is a
whole multiple of it (15 -> 30, 14.985 -> 29.97), else the lowest above it (19.62 -> 24).
Each cut is the SMPTE frame nearest to the video frame's start: never more than half a video
frame away, so converting back gives the same video frame (above 60 fps, 60 is used and
cuts are to the nearest 1/60 s). The EDL's first event says the rate to import it at
("* EDL RATE 24 FPS ..."): an EDL header has no field for it. 29.97 and 59.94 are written as
drop-frame timecode (OTIO's choice for those rates; the FCM line says so).

Adapter gaps filled (each small, documented where it is done): the CMX3600 writer emits
only the video track and no FCM line (`_edl_fixups`); the FCPXML writer rounds rates to
whole numbers and names formats Final Cut Pro does not define (`_FcpxWriter`).
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
import urllib.parse
from fractions import Fraction
from pathlib import Path
from typing import Callable

import opentimelineio as otio
from otio_fcpx_xml_adapter import fcpx_xml

from highlighter.errors import InputError
from highlighter.outputs.schema import DetectResult

RT, TR = otio.opentime.RationalTime, otio.opentime.TimeRange
NTSC = Fraction(1000, 1001)
SMPTE_INTEGER = tuple(Fraction(r) for r in (24, 25, 30, 48, 50, 60))
SMPTE_NTSC = tuple(Fraction(r) * NTSC for r in (24, 30, 48, 60))
DROP_FRAME = (Fraction(30000, 1001), Fraction(60000, 1001))  # OTIO writes these as drop-frame timecode
DEFAULT_RATE = Fraction(25)  # a result without a frame rate (never written by detect)
TITLE_CHARS = 70  # CMX3600 title field


def video_rate(fps: float | None) -> Fraction:
    """The exact rational rate behind the probe's float (981/50, 30000/1001), snapping NTSC rates."""
    if not fps or not math.isfinite(fps) or fps <= 0:
        return DEFAULT_RATE
    ntsc = Fraction(round(fps / NTSC)) * NTSC
    if ntsc and abs(float(ntsc) - fps) < 5e-4 and ntsc.denominator != 1:
        return ntsc
    return Fraction(fps).limit_denominator(1001)


def timecode_rate(rate: Fraction) -> Fraction:
    """The SMPTE rate an EDL / FCP7 XML counts in for a video at ``rate`` (module docstring)."""
    family = SMPTE_NTSC if rate.denominator % 1001 == 0 else SMPTE_INTEGER
    if rate in family:
        return rate
    multiples = [r for r in family if r >= rate and (r / rate).denominator == 1]
    above = [r for r in family if r >= rate]
    return min(multiples or above or [max(family)])


def frame_at(seconds: float, rate: Fraction) -> int:
    """The frame that starts nearest ``seconds`` (half-up, so a cut never moves by the rounding mode)."""
    return math.floor(Fraction(seconds) * rate + Fraction(1, 2))


def convert_frame(frame: int, src: Fraction, dst: Fraction) -> int:
    """Frame ``frame`` at rate ``src`` as the nearest frame at rate ``dst`` (exact arithmetic)."""
    return math.floor(frame * dst / src + Fraction(1, 2))


def file_url(path: str) -> str:
    """``file://`` URL of ``path``, each byte of the name percent-encoded (newlines, non-UTF-8 too)."""
    return "file://" + urllib.parse.quote_from_bytes(_utf8(os.path.abspath(path)))


def _utf8(text: str) -> bytes:
    """The bytes of a name: a non-UTF-8 byte that os.fsdecode escaped becomes that byte again
    (any other lone surrogate, e.g. from a hand-edited JSON, is kept as its UTF-8 form)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def clean_name(text: str, fallback: str = "video") -> str:
    """``text`` made safe for every format: valid Unicode (a byte that is not UTF-8 reads as
    U+FFFD), no control or separator characters (a newline ends an EDL line), one space between words."""
    text = _utf8(text).decode("utf-8", "replace")
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    return " ".join(text.split()) or fallback


def _clip(result: DetectResult, start: int, end: int, rate: Fraction, rank: int, score: float) -> otio.schema.Clip:
    """One highlight: frames ``start``..``end`` of the video at ``rate``."""
    v, r = result.video, float(rate)
    ref = otio.schema.ExternalReference(target_url=file_url(v.path),
                                        available_range=TR(RT(0, r), RT(frame_at(v.duration, rate), r)))
    ref.name = clean_name(v.name)
    clip = otio.schema.Clip(name=ref.name, media_reference=ref,
                            source_range=TR(RT(start, r), RT(end - start, r)))
    note = f"highlight {rank} score {score:.4g}"
    clip.markers.append(otio.schema.Marker(name=note, marked_range=TR(RT(start, r), RT(0, r))))
    clip.metadata["highlighter"] = {"rank": rank, "score": float(score)}
    clip.metadata["cmx_3600"] = {"reel": "AX"}  # a file-based clip, as Premiere and Resolve write it
    return clip


def build_timeline(result: DetectResult, rate: Fraction | None = None) -> otio.schema.Timeline:
    """The highlights as one timeline counted at ``rate`` (default: the video's own rate).

    Segment bounds are taken to the video's frames first, then converted, so every format cuts
    at the same video frames. A video with sound gets an audio track with the same clips.
    """
    src = video_rate(result.video.fps)
    at = rate or src
    total = frame_at(result.video.duration, src)
    tl = otio.schema.Timeline(name=clean_name(f"{Path(clean_name(result.video.name)).stem} highlights")[:TITLE_CHARS],
                              global_start_time=RT(0, float(at)))
    tl.metadata["highlighter"] = {"video_rate": str(src), "timeline_rate": str(at),
                                  "video": file_url(result.video.path)}
    video = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    audio = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    for g in sorted(result.segments, key=lambda g: g.start):
        a, b = frame_at(g.start, src), min(frame_at(g.end, src), total)
        a, b = convert_frame(a, src, at), convert_frame(b, src, at)
        if b <= a:
            continue
        video.append(_clip(result, a, b, at, g.rank, g.score))
        audio.append(_clip(result, a, b, at, g.rank, g.score))
    tl.tracks.append(video)
    if result.video.has_audio:
        tl.tracks.append(audio)
    return tl


def _written(kind: str, result: DetectResult, write: Callable[[], str]) -> str:
    """``write()``, with an adapter's failure as one line naming the video (never a traceback)."""
    try:
        return write()
    except (otio.exceptions.OTIOError, ValueError, KeyError, AttributeError, TypeError) as exc:
        raise InputError(f"{result.video.path}: could not write the {kind} timeline ({type(exc).__name__}: {exc}); "
                         "write the other formats (--format json,csv) and report this") from exc


def to_otio(result: DetectResult) -> str:
    """OpenTimelineIO JSON at the video's exact rate."""
    return _written("OTIO", result, lambda: otio.adapters.write_to_string(build_timeline(result), "otio_json") + "\n")


def to_fcpxml(result: DetectResult) -> str:
    """FCPXML 1.8 (Final Cut Pro, DaVinci Resolve) at the video's exact rate."""
    v = result.video
    return _written("FCPXML", result, lambda: _FcpxWriter(build_timeline(result), v.width, v.height).to_xml())


def _seconds(value: str | None) -> Fraction:
    """An FCPXML time ("1300/327s", "4s", "0s") as an exact fraction of seconds."""
    return Fraction((value or "0s").rstrip("s"))


class _FcpxWriter(fcpx_xml.FcpxOtio):
    """The fcpx_xml adapter's writer, with exact rational time where the adapter rounds.

    The adapter knows eight frame rates (19.62, 23.976 and 30000/1001 get an empty
    ``frameDuration``, and then a crash), places connected audio by ``int(rate)`` (audio
    out of sync at any fractional rate), names formats after an ffprobe of the file
    ("FFVideoFormat320x240p19.62", not a format Final Cut Pro defines) and lists the video
    once per clip in the browser. These overrides give the exact frame duration, the audio
    its picture's start, a format by size and one browser clip per video.
    """

    def __init__(self, timeline: otio.schema.Timeline, width: int | None, height: int | None):
        super().__init__(timeline)
        self._size = {"width": str(width), "height": str(height)} if width and height else {}

    @staticmethod
    def _framerate_to_frame_duration(framerate: float) -> str:
        rate = video_rate(framerate)
        return f"{rate.denominator}/{rate.numerator}s"

    def _clip_format_name(self, clip) -> str:
        return ""

    def _asset_clip_by_name(self, name: str) -> bool:
        # The adapter tests the found element's truth, which is False for an element without
        # children: every clip added another copy of the video to the editor's browser.
        return any(e.get("name") == name for e in self.event_resource.iter("asset-clip"))

    def _find_or_create_format_from(self, clip):
        element = super()._find_or_create_format_from(clip)
        element.attrib.pop("name", None)
        element.attrib.update(self._size)
        return element

    def _find_parent_element(self, spine, trimmed_range, format_id):
        at = Fraction(trimmed_range.value) / video_rate(trimmed_range.rate)
        for item in spine:
            start = _seconds(item.get("offset"))
            if item.get("lane") is None and start <= at < start + _seconds(item.get("duration")):
                return item
        return None

    def _offset_based_on_parent(self, child, parent, default_format_id):
        at = _seconds(child.get("offset")) - _seconds(parent.get("offset")) + _seconds(parent.get("start"))
        return RT(at.numerator, at.denominator)


def to_fcp7_xml(result: DetectResult) -> str:
    """Premiere / FCP7 XML (xmeml), counted at `timecode_rate` (its timebase is a whole number)."""
    tl = build_timeline(result, timecode_rate(video_rate(result.video.fps)))
    return _written("Premiere/FCP7 XML", result, lambda: otio.adapters.write_to_string(tl, "fcp_xml"))


def to_edl(result: DetectResult) -> str:
    """CMX3600 EDL at `timecode_rate`, file-based events (reel AX) with '* FROM CLIP:' links."""
    src = video_rate(result.video.fps)
    rate = timecode_rate(src)
    tl = build_timeline(result, rate)
    for clip in tl.find_clips():  # the writer prints these comments as they are
        info = clip.metadata["highlighter"]
        clip.metadata["cmx_3600"]["comments"] = [f"HIGHLIGHT RANK {info['rank']} SCORE {info['score']:.4g}"]
    first = next(iter(tl.tracks[0]), None)
    if first is not None:
        first.metadata["cmx_3600"]["comments"].append(rate_note(src, rate))
        text = _written("EDL", result, lambda: otio.adapters.write_to_string(tl, "cmx_3600"))
    else:  # the writer cannot write an empty track: a header alone is a valid EDL
        text = f"TITLE: {tl.name}\n\n"
    return _edl_fixups(text, result.video.has_audio, drop_frame=rate in DROP_FRAME)


def rate_note(src: Fraction, rate: Fraction) -> str:
    """The EDL comment that says which rate to import it at (EDLs carry none)."""
    say = lambda r: f"{float(r):.6g}"  # noqa: E731
    if src == rate:
        return f"EDL RATE {say(rate)} FPS"
    return f"EDL RATE {say(rate)} FPS (VIDEO {say(src)} FPS, CUTS TO THE NEAREST EDL FRAME)"


def _edl_fixups(text: str, has_audio: bool, drop_frame: bool) -> str:
    """Add the FCM line the writer leaves out, and picture + stereo sound (AA/V) for a video with audio.

    The cmx_3600 writer emits the first video track only, always as channel ``V``; its event
    line is fixed-width (``NNN  REEL____ KIND_ C``), so the channel is replaced in place.
    """
    fcm = "FCM: DROP FRAME" if drop_frame else "FCM: NON-DROP FRAME"
    head, sep, body = text.partition("\n")
    if has_audio:
        body = re.sub(r"(?m)^(\d{3}  \S.{7} )V    (?= C )", r"\1AA/V ", body)
    return f"{head}\n{fcm}{sep}{body}"
