"""Editor timelines (outputs/timeline.py) read back with OpenTimelineIO's own adapters.

Each file is checked the way an editor's import would see it: clip count, each clip's source
range against the JSON's segment to the video frame, the media reference pointing at the video
(byte for byte, whatever its name), the audio, and the rate the EDL says to import it at.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
from fractions import Fraction
from pathlib import Path
from xml.etree import ElementTree

import pytest

from highlighter.outputs.timeline import clean_name, convert_frame, timecode_rate, video_rate
from highlighter.outputs.writers import EXTENSIONS, write_outputs
from test_outputs import make_result

otio = pytest.importorskip("opentimelineio")

TIMELINES = ("otio", "fcpxml", "premiere", "edl")
ADAPTER = {"otio": "otio_json", "fcpxml": "fcpx_xml", "premiere": "fcp_xml", "edl": "cmx_3600"}
# A name that broke the hand-written EDL (newline) and trips XML writers (quote, <, &, %), plus
# a byte that is not UTF-8, as os.fsdecode gives it.
ODD_PATH = "/videos/it's <my> & 100% \"best\"\nnew \udcff.mp4"


def url_path(url: str) -> str:
    """The file path a file:// URL points at, byte for byte (independent of the code under test)."""
    parts = urllib.parse.urlsplit(url)
    assert parts.scheme == "file", url
    return os.fsdecode(urllib.parse.unquote_to_bytes(parts.path))


def edl_rate(text: str) -> float:
    """The import rate the EDL names in its first event (an EDL header cannot carry one), as OTIO spells it."""
    said = float(re.search(r"^\* EDL RATE ([\d.]+) FPS", text, re.M).group(1))
    return otio.opentime.RationalTime.nearest_smpte_timecode_rate(said)


def read_back(path: Path, fmt: str):
    kw = {"rate": edl_rate(path.read_text(encoding="utf-8"))} if fmt == "edl" else {}
    return otio.adapters.read_from_file(str(path), adapter_name=ADAPTER[fmt], **kw)


def video_clips(tl) -> list:
    (track,) = [t for t in tl.tracks if t.kind == otio.schema.TrackKind.Video]
    return list(track.find_clips())


def range_in_track(clip):
    """Where a clip sits in its track, counted from the track's first frame (an EDL track starts at its record in)."""
    return clip.parent().range_of_child(clip)


def video_frames(rt_range, fps: float) -> tuple[int, int]:
    """A read-back source range as frames of the video (what the editor will cut)."""
    return (round(rt_range.start_time.to_seconds() * fps), round(rt_range.end_time_exclusive().to_seconds() * fps))


def expected_frames(result, fps: float) -> list[tuple[int, int]]:
    """The JSON's segments as video frames, in time order (the timeline's order)."""
    return [(round(g.start * fps), round(g.end * fps)) for g in sorted(result.segments, key=lambda g: g.start)]


@pytest.mark.parametrize("fps", [25.0, 19.62, 30000 / 1001, 15000 / 1001])
@pytest.mark.parametrize("fmt", TIMELINES)
def test_timeline_reads_back_with_otio(tmp_path, fmt, fps):
    result = make_result(video_path=ODD_PATH, fps=fps, has_audio=True)
    path = write_outputs(result, tmp_path / "match", (fmt,))[fmt]
    assert path.name == "match" + EXTENSIONS[fmt] and not list(tmp_path.glob(".*")), "temp files left behind"
    path.read_bytes().decode("utf-8")  # valid UTF-8 whatever the name's bytes
    tl = read_back(path, fmt)
    clips = video_clips(tl)
    assert len(clips) == len(result.segments)
    for clip in clips:
        assert url_path(clip.media_reference.target_url) == ODD_PATH
        assert "\n" not in clip.name and clip.name.startswith("it's <my> & 100%")
    if fmt == "fcpxml" and fps != int(fps):
        return  # the fcpx_xml reader counts in int(rate): ranges are checked exactly from the XML below
    assert [video_frames(c.source_range, fps) for c in clips] == expected_frames(result, fps)
    if fmt == "otio":  # the video's own rate, kept exactly
        assert all(c.source_range.start_time.rate == pytest.approx(fps, abs=1e-9) for c in clips)
    # laid end to end from zero on the record side
    spans = [(r.start_time.to_seconds(), r.end_time_exclusive().to_seconds()) for r in map(range_in_track, clips)]
    assert spans[0][0] == 0 and all(b[0] == pytest.approx(a[1]) for a, b in zip(spans, spans[1:]))


@pytest.mark.parametrize("fps", [19.62, 30000 / 1001, 24.0])
def test_fcpxml_times_are_exact_rationals(tmp_path, fps):
    """Every FCPXML time is a whole number of the video's frames; connected audio starts with its picture."""
    result = make_result(fps=fps, has_audio=True)
    root = ElementTree.fromstring(write_outputs(result, tmp_path / "m", ("fcpxml",))["fcpxml"].read_bytes())
    rate = video_rate(fps)
    (fmt,) = root.iter("format")
    assert fmt.get("frameDuration") == f"{rate.denominator}/{rate.numerator}s" and fmt.get("width") == "320"
    assert "name" not in fmt.attrib  # FCP knows its own format names only
    assert len(root.findall("asset-clip")) == 1, "the video once in the editor's browser"

    def seconds(v: str | None) -> Fraction:
        return Fraction((v or "0s").rstrip("s"))

    spine = root.find("project/sequence/spine")
    got = []
    for clip in spine.findall("clip"):
        start, dur = seconds(clip.get("start")), seconds(clip.get("duration"))
        assert (start * rate).denominator == 1 and (dur * rate).denominator == 1
        got.append((int(start * rate), int((start + dur) * rate)))
        (audio,) = clip.findall("clip[@lane='-1']")
        assert seconds(audio.get("offset")) == start and audio.get("duration") == clip.get("duration")
    assert got == expected_frames(result, fps)


@pytest.mark.parametrize("fps,rate,drop", [(25.0, 25, False), (19.62, 24, False), (30000 / 1001, 29.97, True),
                                           (15.0, 30, False)])
def test_edl_rate_header_and_channels(tmp_path, fps, rate, drop):
    result = make_result(fps=fps, has_audio=True)
    text = write_outputs(result, tmp_path / "m", ("edl",))["edl"].read_text()
    lines = text.splitlines()
    assert lines[0] == "TITLE: match highlights"
    assert lines[1] == ("FCM: DROP FRAME" if drop else "FCM: NON-DROP FRAME")
    assert edl_rate(text) == pytest.approx(rate, abs=0.01)
    events = [ln for ln in lines if re.match(r"\d{3}  ", ln)]
    assert len(events) == len(result.segments) and all(ln.split()[1:4] == ["AX", "AA/V", "C"] for ln in events)
    assert all(not ln or ln[0] in "TF*0123456789" for ln in lines), "every line is a header, an event or a comment"
    assert "* FROM CLIP: file:///videos/match.mp4" in lines
    tl = read_back(tmp_path / "m.edl", "edl")
    assert [t.name for t in tl.tracks] == ["V", "A1", "A2"]  # picture and stereo sound
    # without sound: picture only
    text = write_outputs(make_result(fps=fps, has_audio=False), tmp_path / "q", ("edl",))["edl"].read_text()
    assert {ln.split()[2] for ln in text.splitlines() if re.match(r"\d{3}  ", ln)} == {"V"}


def test_premiere_xml_has_sound_and_a_whole_timebase(tmp_path):
    result = make_result(fps=19.62)
    root = ElementTree.fromstring(write_outputs(result, tmp_path / "m", ("premiere",))["premiere"].read_bytes())
    assert {e.findtext("timebase") for e in root.iter("rate")} == {"24"}
    assert {e.findtext("ntsc") for e in root.iter("rate")} == {"FALSE"}
    n = len(result.segments)
    assert len(root.findall(".//media/audio/track/clipitem")) == len(root.findall(".//media/video/track/clipitem")) == n


@pytest.mark.parametrize("fps", [19.62, 15000 / 1001, 12.5, 23.0, 47.0, 59.0])
def test_timecode_rate_keeps_every_video_frame(fps):
    """Any rate goes to a SMPTE rate that cuts within half a video frame: back again, the same frame."""
    src = video_rate(fps)
    tc = timecode_rate(src)
    assert otio.opentime.RationalTime.is_smpte_timecode_rate(float(tc)) and tc >= src
    assert all(convert_frame(convert_frame(n, src, tc), tc, src) == n for n in range(0, 20000, 7))


def test_rates():
    assert video_rate(19.62) == Fraction(981, 50) and video_rate(25.0) == 25
    assert video_rate(30000 / 1001) == video_rate(29.97) == Fraction(30000, 1001)
    assert video_rate(None) == 25
    assert [timecode_rate(video_rate(f)) for f in (25, 19.62, 15, 15000 / 1001, 12.5, 120)] == \
        [25, 24, 30, Fraction(30000, 1001), 25, 60]


def test_clean_name():
    assert clean_name("a\nb\tc\x00d  e") == "a b c d e"
    assert clean_name("clip-\udcff.mp4") == "clip-\ufffd.mp4" and clean_name("\n") == "video"


def test_no_segments_still_writes_valid_files(tmp_path):
    result = make_result()
    result.segments = []
    paths = write_outputs(result, tmp_path / "m", TIMELINES)
    for fmt in TIMELINES:
        kw = {"rate": 25} if fmt == "edl" else {}
        tl = otio.adapters.read_from_file(str(paths[fmt]), adapter_name=ADAPTER[fmt], **kw)
        assert list(tl.find_clips()) == []


def test_detect_cli_writes_every_timeline(media_dir, tmp_path):
    """End to end at a rate no timecode has (19.62 fps, as the weightlifting clip): real probe, real files."""
    media = pytest.importorskip("media")
    src = media.make_video(media_dir / "odd rate.mp4", 3.0, fps=19.62, size=(64, 48),
                           colors=[(0, "red"), (1, "blue"), (2, "green")])
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "highlighter", "detect", str(src), "-o", str(out), "--method",
                          "feature-norm", "--backbone", "efficientnet-lite0", "--top", "1", "--no-cache",
                          "--format", "json,edl,otio,fcpxml,premiere"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    stem = "odd rate"
    assert sorted(p.name for p in out.iterdir()) == sorted(stem + e for e in (".json", ".edl", ".otio", ".fcpxml",
                                                                                ".xml"))
    doc = json.loads((out / f"{stem}.json").read_text())
    assert doc["video"]["fps"] == pytest.approx(19.62)
    (seg,) = doc["segments"]
    for fmt in TIMELINES:
        (clip,) = video_clips(read_back(out / (stem + EXTENSIONS[fmt]), fmt))
        assert url_path(clip.media_reference.target_url) == str(src.resolve())
        if fmt != "fcpxml":
            assert video_frames(clip.source_range, 19.62) == (round(seg["start"] * 19.62), round(seg["end"] * 19.62))
