"""The HTML report without a browser: time ticks, frames and timecodes (checked against the editor
timelines), readable scores, the link to the video, exact frames extracted by real ffmpeg, and the
index page of a folder run through the real pipeline. The page in Chromium: test_report_browser.py."""

from __future__ import annotations

import base64
import dataclasses
import io
import math
import os
import re
from fractions import Fraction
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from highlighter.outputs import timeline
from highlighter.outputs.report import (extract_thumbnail, index_path, readable, render_html, segment_frames, smpte,
                                        strip_frames, tick_label, tick_step, top_percent, unit_score, video_href,
                                        write_report)
from highlighter.outputs.segments import Segment, smoothed_curve

media = pytest.importorskip("media")
from test_outputs import make_result  # noqa: E402


def ticks(span: float) -> list[str]:
    step = tick_step(span)
    return [tick_label(i * step, step, span) for i in range(int(math.floor(span / step + 1e-9)) + 1)]


def rgb(jpg: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(jpg)).convert("RGB"), dtype=float).reshape(-1, 3).mean(axis=0)


def test_time_ticks_are_distinct_and_readable_at_any_length():
    assert ticks(1.0) == [f"0:00.{i}" for i in range(10)] + ["0:01.0"]  # was 0:00:00 eleven times
    assert ticks(2.4) == ["0:00.0", "0:00.5", "0:01.0", "0:01.5", "0:02.0"]
    assert ticks(180.0) == ["0:00", "0:30", "1:00", "1:30", "2:00", "2:30", "3:00"]
    assert ticks(7200.0)[:3] == ["0:00:00", "0:15:00", "0:30:00"]
    for span in (0.3, 1.0, 2.4, 14.0, 18.1, 42.0, 59.9, 600.0, 3599.0, 5 * 3600.0):
        labels = ticks(span)
        assert 3 <= len(labels) <= 11 and len(set(labels)) == len(labels), (span, labels)
    r = make_result(duration=1.0)  # a 1-s clip (one clip): the page's own axis, and its curve is drawn
    svg = render_html(r, {}, "v.mp4")
    assert re.findall(r'<text class="tick"[^>]*>([^<]+)</text>', svg) == ticks(1.0)
    assert re.search(r'<path id="score-curve" d="M[0-9.]+,[0-9.]+ L[0-9.]+,[0-9.]+"', svg)


@pytest.mark.parametrize("fps", [25.0, 29.97, 19.62])
def test_frames_and_timecodes_are_the_ones_the_timelines_cut(fps):
    segs = [Segment(1.37, 5.02, 1.0, 2), Segment(12.0, 20.55, 2.0, 1), Segment(59.01, 61.3, 0.5, 3)]  # off-grid
    r = dataclasses.replace(make_result(fps=fps, duration=61.3), segments=segs)
    rate = timeline.video_rate(fps)
    clips = list(timeline.build_timeline(r).tracks[0])
    assert len(clips) == len(segs)
    page = render_html(r, {}, "v.mp4")
    edl = timeline.to_edl(r)
    for clip, g in zip(clips, segs):
        first, mid, last = segment_frames(g.start, g.end, rate, r.video.duration)
        assert clip.source_range.start_time.value == first
        assert clip.source_range.end_time_exclusive().value == last + 1
        assert first <= mid <= last
        assert f"in {smpte(first, rate)}" in page and f"last {smpte(last, rate)}" in page
        if timeline.timecode_rate(rate) == rate:  # the EDL counts at the video's rate: same labels
            assert re.search(rf"^\d{{3}} .* {re.escape(smpte(first, rate))} {re.escape(smpte(last + 1, rate))} ",
                             edl, re.M), (smpte(first, rate), edl)
    assert smpte(1800, Fraction(30000, 1001)) == "00:01:00;02"  # drop-frame, as the EDL writes 29.97
    assert smpte(40, timeline.video_rate(19.62)) == "00:00:02:00"  # 19.62 fps: frames counted to 20
    assert "data-drop='2'" in render_html(make_result(fps=29.97), {}, "v.mp4")


def test_filmstrip_covers_the_whole_video():
    rate = Fraction(25)
    assert len(strip_frames(30.0, rate)) == 15 and len(strip_frames(1.0, rate)) == 6
    assert len(strip_frames(3 * 3600.0, rate)) == 24 and len(strip_frames(0.08, rate)) == 2  # not more than frames
    f = strip_frames(30.0, rate)
    assert f == sorted(set(f)) and f[0] == 25 and f[-1] == 725  # the middles of 2-s cells


def test_scores_are_read_on_the_threshold_scale():
    r = make_result()
    sm = smoothed_curve(r.starts, r.ends, r.scores, r.selection)
    lo, hi = sm.min(), sm.max()
    u = {g.rank: float(unit_score(g.score, lo, hi)) for g in r.segments}
    assert all(0 <= v <= 1 for v in u.values()) and u[1] == max(u.values())
    assert top_percent(hi, sm) == math.ceil(100 / sm.size) and top_percent(lo, sm) == 100
    assert float(unit_score(5.0, 5.0, 5.0)) == 0.0  # a flat curve reads 0, like the selection's normalisation
    assert readable(5.0, np.full(4, 5.0)) == ("–", "–")  # nothing to rank: not "0.00, top 100 %"
    assert readable(hi, sm) == ("1.00", f"top {math.ceil(100 / sm.size)} %")
    page = render_html(r, {}, "v.mp4")
    shown = [float(x) for x in re.findall(r"<td><b>([0-9.]+)</b></td>", page)]
    assert sorted(shown) == sorted(round(v, 2) for v in u.values())
    assert "17.9" not in page and f"{r.segments[0].score:.4g}" in page  # raw only as a detail


def test_video_link_is_relative_to_the_page_and_escaped(tmp_path):
    page = tmp_path / "out" / "sub" / "page.html"
    href = video_href(tmp_path / "footage" / "take #1 été.mp4", page)
    assert href == "../../footage/take%20%231%20%C3%A9t%C3%A9.mp4"
    assert video_href(tmp_path / "out" / "sub" / "clip.mp4", page) == "clip.mp4"
    odd = tmp_path / "out" / os.fsdecode(b"caf\xe9 ?.mp4")  # not UTF-8: each byte encoded as it is
    assert video_href(odd, page) == "../caf%E9%20%3F.mp4"
    cwd = os.getcwd()
    try:  # paths relative to the working directory, as the CLI passes them
        os.chdir(tmp_path)
        assert video_href("in/a.mp4", "out/a.html") == "../in/a.mp4"
    finally:
        os.chdir(cwd)


def test_page_is_self_contained_and_names_are_escaped(tmp_path):
    r = make_result(video_path=str(tmp_path / "<img src=x onerror=alert(1)>.mp4"))
    r.notes.append("<script>alert(2)</script>")
    page = render_html(r, {}, video_href(r.video.path, tmp_path / "r.html"))
    assert "<img src=x" not in page and "<script>alert" not in page
    links = re.findall(r"""(?:src|href)=['"]([^'"]*)['"]""", page)
    assert links and all(u.startswith(("#t=", "%3Cimg")) for u in links), links
    assert unquote(links[0]) == "<img src=x onerror=alert(1)>.mp4"
    assert page.count("<script>") == 1  # the page's own


def test_thumbnails_are_exact_frames(media_dir, tmp_path):
    """Colour changes on a known frame: the frame before it is red, the frame on it blue (25 and 19.62 fps)."""
    for fps, change in ((25.0, 50), (19.62, 41)):
        # the red source runs until mid-way between frames change-1 and change
        src = media.make_video(media_dir / f"exact_{fps}.mp4", 4.0, fps=fps, size=(64, 48), audio=False,
                               colors=[(0, "red"), ((change - 0.5) / fps, "blue")])
        rate = timeline.video_rate(fps)
        before = extract_thumbnail(src, float((change - 1) / rate), 64, float(rate))
        on = extract_thumbnail(src, float(change / rate), 64, float(rate))
        assert rgb(before)[0] > 200 > rgb(before)[2] and rgb(on)[2] > 200 > rgb(on)[0], fps
        # a segment cut at that frame: its first frame is blue, the segment before it ends on red
        r = dataclasses.replace(make_result(video_path=str(src), duration=4.0, fps=fps),
                                segments=[Segment(0.0, change / fps, 1.0, 1), Segment(change / fps, 4.0, 0.5, 2)])
        page = write_report(r, tmp_path / f"exact_{fps}.html").read_text()
        ins = re.findall(r"<img class='frame-in'[^>]*base64,([^']+)'", page)
        outs = re.findall(r"<img class='frame-out'[^>]*base64,([^']+)'", page)
        assert rgb(base64.b64decode(outs[0]))[0] > 200 and rgb(base64.b64decode(ins[1]))[2] > 200


def test_a_frame_past_the_end_is_a_placeholder(media_dir, tmp_path):
    src = media.make_video(media_dir / "short.mp4", 1.0, fps=25, size=(64, 48), audio=False)
    assert extract_thumbnail(src, 30.0, 64, 25.0) is None
    r = make_result(video_path=str(src), duration=2.0)  # says 2 s: frames past 1 s do not exist
    page = write_report(r, tmp_path / "r.html").read_text()
    assert "no frame" in page and page.count("data:image/jpeg") >= 1


def test_index_name_never_takes_a_videos_report(tmp_path):
    assert index_path(tmp_path, [tmp_path / "a.html"]) == tmp_path / "index.html"
    assert index_path(tmp_path, [tmp_path / "index.html"]) == tmp_path / "highlights-index.html"


def test_folder_run_writes_an_index_linking_every_report(media_dir, tmp_path):
    from highlighter.api import DetectConfig, detect_many
    from highlighter.outputs.segments import SelectConfig

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    media.make_video(src / "sub" / "two #2.mp4", 3.0, fps=25, size=(64, 48), colors=[(0, "red"), (1.5, "blue")])
    media.write_not_media(src / "broken.mp4")
    out = tmp_path / "out"
    config = DetectConfig(method="feature-norm", backbone="efficientnet-lite0", cache_dir=str(tmp_path / "cache"),
                          select=SelectConfig(top=1, smooth=0))
    outcomes = detect_many([src], config, out, formats=("json",), report=True)
    assert [o.status for o in outcomes] == ["failed", "done"]
    index = (out / "index.html").read_text()
    pages = [h for h in re.findall(r"<a href='([^'#]+)'", index)]
    assert sorted(set(pages)) == ["sub/two%20%232.html"]
    for h in set(pages):
        report = out / unquote(h)
        assert report.is_file()
        video = re.search(r"<video id='player' src='([^']+)'", report.read_text()).group(1)
        assert (report.parent / unquote(video)).resolve() == (src / report.relative_to(out)).with_suffix(".mp4")
    assert re.search(r"broken\.mp4</td><td colspan='5'>failed: .*broken\.mp4", index)
    assert index.count("class='poster'") == 1 and re.search(r"two%20%232\.html#t=\d+\.\d{3}'", index)
    single = tmp_path / "single"
    detect_many([src / "sub" / "two #2.mp4"], config, single, formats=("json",), report=True)
    assert sorted(p.name for p in single.iterdir()) == ["two #2.html", "two #2.json"]  # one video: no index
