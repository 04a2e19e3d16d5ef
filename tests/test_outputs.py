"""Result schema (jsonschema), JSON round trip, CSV, CMX3600 EDL (parsed by pycmx), HTML report content.

The other editor timelines, read back with OpenTimelineIO, are in test_timelines.py.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from highlighter.errors import InputError
from highlighter.outputs.report import render_html, write_report
from highlighter.outputs.schema import DetectResult, MethodInfo, VideoInfo, WeightsInfo, load_result, load_schema
from highlighter.outputs.segments import SelectConfig, select_segments
from highlighter.outputs.writers import (DEFAULT_FORMATS, FORMATS, atomic_write_text, timecode, to_csv, to_edl,
                                         write_outputs)

jsonschema = pytest.importorskip("jsonschema")


def make_result(video_path: str = "/videos/match.mp4", duration: float = 30.0, fps: float = 25.0,
                has_audio: bool = True, fallback: str | None = None) -> DetectResult:
    starts = np.arange(0, duration, 2.0)
    ends = np.minimum(starts + 2.0, duration)
    scores = np.sin(starts / 5.0) + 0.1 * np.arange(starts.size)
    sel = SelectConfig(top=3, smooth=0)
    segs = select_segments(starts, ends, scores, sel, duration)
    return DetectResult(
        video=VideoInfo(path=video_path, name=Path(video_path).name, duration=duration, width=320, height=240,
                        fps=fps, has_audio=has_audio, size_bytes=1234),
        method=MethodInfo(name="rasl", weights=WeightsInfo(id="rasl-video.safetensors", sha256="ab" * 32,
                                                             path="/w/rasl-video.safetensors"),
                          requested="rasl", fallback=fallback),
        visual_backbone="i3d:pretrained", audio_backbone=None, clip_seconds=2.0,
        starts=starts, ends=ends, scores=scores, segments=segs, selection=sel,
        timings={"features": 1.5, "detector": 0.01}, notes=["features loaded from the cache"])


def validate(doc: dict) -> None:
    v = jsonschema.Draft202012Validator(load_schema(), format_checker=jsonschema.FormatChecker())
    errors = sorted(v.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def test_schema_is_valid_and_result_validates():
    jsonschema.Draft202012Validator.check_schema(load_schema())
    doc = make_result().to_dict()
    validate(doc)
    assert doc["schema_version"] == "1.4"
    assert len(doc["clips"]) == 15 and len(doc["segments"]) == 3
    # the schema is strict: unknown fields and wrong types are rejected
    bad = json.loads(json.dumps(doc))
    bad["segments"][0]["rank"] = 0
    with pytest.raises(AssertionError):
        validate(bad)
    bad = json.loads(json.dumps(doc))
    bad["surprise"] = 1
    with pytest.raises(AssertionError):
        validate(bad)


def test_fallback_and_training_free_validate():
    r = make_result(fallback="weights missing — using offline fallback", has_audio=False)
    r.method.weights = None
    validate(r.to_dict())


def test_json_round_trip(tmp_path):
    r = make_result()
    paths = write_outputs(r, tmp_path / "sub" / "match")
    assert sorted(p.name for p in paths.values()) == ["match.csv", "match.edl", "match.json"]
    assert not list((tmp_path / "sub").glob(".*")), "temp files left behind"
    back = load_result(paths["json"])
    assert back.segments == r.segments
    assert np.allclose(back.scores, r.scores) and np.allclose(back.starts, r.starts)
    assert back.method.weights.sha256 == "ab" * 32 and back.selection == r.selection
    validate(json.loads(paths["json"].read_text()))


def test_load_result_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_result(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_result(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"hello": 1}')
    with pytest.raises(InputError, match="not a highlighter detect result"):
        load_result(tmp_path / "other.json")
    doc = make_result().to_dict()
    doc["schema_version"] = "2.0"
    (tmp_path / "v2.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="not supported"):
        load_result(tmp_path / "v2.json")


def test_csv_rows_match_segments():
    r = make_result()
    rows = list(csv.DictReader(io.StringIO(to_csv(r))))
    assert [int(x["rank"]) for x in rows] == [g.rank for g in r.segments]
    assert [float(x["start"]) for x in rows] == pytest.approx([g.start for g in r.segments])
    assert rows[0]["start_time"].count(":") == 2


def test_timecode():
    assert timecode(0, 25) == "00:00:00:00"
    assert timecode(3661.4, 25) == "01:01:01:10"
    # 29.97 fps: frames counted at the real rate, labelled at 30 (non-drop): 100 s = frame 2997 = 99 s 27 f
    assert timecode(100.0, 30000 / 1001) == "00:01:39:27"


def dropframe_frames(tc: str) -> int:
    """Frame number of a 29.97 drop-frame timecode (HH:MM:SS;FF): 2 labels skipped a minute, not every 10th."""
    h, m, s, f = map(int, re.split("[:;]", tc))
    minutes = h * 60 + m
    return ((h * 3600 + m * 60 + s) * 30 + f) - 2 * (minutes - minutes // 10)


@pytest.mark.parametrize("fps,has_audio", [(25.0, True), (29.97, False), (24.0, True)])
def test_edl_parses_with_pycmx(fps, has_audio):
    """An independent CMX3600 reader sees one event per segment, the file's name, its sound, exact frames."""
    pycmx = pytest.importorskip("pycmx")
    r = make_result(fps=fps, has_audio=has_audio)
    edl = pycmx.parse_cmx3600(io.StringIO(to_edl(r)))
    assert edl.title == "match highlights"
    events = list(edl.events)
    assert len(events) == len(r.segments)
    base = round(fps)
    rec = 0
    for ev, g in zip(events, sorted(r.segments, key=lambda g: g.start)):
        (edit,) = ev.edits
        assert edit.clip_name == "match.mp4"
        assert edit.channels.video
        assert edit.channels.get_audio_channel(1) is has_audio and edit.channels.get_audio_channel(2) is has_audio

        def frames(tc: str) -> int:
            if ";" in tc:
                return dropframe_frames(tc)
            h, m, s, f = map(int, tc.split(":"))
            return ((h * 60 + m) * 60 + s) * base + f

        assert frames(edit.source_in) == round(g.start * fps)
        assert frames(edit.source_out) == round(g.end * fps)
        assert frames(edit.record_in) == rec  # laid end to end
        rec += frames(edit.source_out) - frames(edit.source_in)
        assert frames(edit.record_out) == rec


def test_default_formats_and_unknown_format(tmp_path):
    r = make_result()
    assert set(DEFAULT_FORMATS) < set(FORMATS) and {"otio", "fcpxml", "premiere"} <= set(FORMATS)
    with pytest.raises(InputError, match="unknown output format 'xml'"):
        write_outputs(r, tmp_path / "m", ("json", "xml"))


def test_atomic_write_protects_input(tmp_path):
    video = tmp_path / "v.json"
    video.write_text("original")
    with pytest.raises(InputError, match="input video"):
        atomic_write_text(video, "x", protect=[video])
    assert video.read_text() == "original"
    p = atomic_write_text(tmp_path / "a" / "b.txt", "hello")
    assert p.read_text() == "hello" and oct(p.stat().st_mode & 0o777) != "0o600"


def test_report_html_with_thumbnails(media_dir, tmp_path):
    media = pytest.importorskip("media")
    src = media.make_video(media_dir / "report_src.mp4", 30.0, fps=25, size=(160, 120),
                           colors=[(0, "red"), (10, "blue"), (20, "green")])
    r = make_result(video_path=str(src), duration=30.0)
    out = write_report(r, tmp_path / "r.html")
    page = out.read_text()
    assert page.count("class='thumbnail'") == len(r.segments) == 3
    assert 'id="score-curve"' in page and page.count('class="segment"') == 3
    assert not re.search(r"(src|href)=['\"]https?:", page), "report must not load external assets"
    # each thumbnail is a real JPEG of the frame at the segment's midpoint
    import base64

    jpgs = [base64.b64decode(m) for m in re.findall(r"base64,([A-Za-z0-9+/=]+)", page)]
    assert all(j[:2] == b"\xff\xd8" for j in jpgs)
    # a page without frames still renders (no thumbnails, placeholders instead)
    html = render_html(r, {})
    assert "no frame" in html and "<svg" in html
