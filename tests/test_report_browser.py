"""The HTML report in a real headless Chromium, driven over the DevTools protocol.

Clicks are real mouse events at the pixel where an element is drawn (so a band covered by
something else, or a handler that is not wired, fails); what the player did is read back
from the page's own <video> element when its ``seeked`` event fires. Chromium speaks the
protocol over a pipe (``--remote-debugging-pipe``: fds 3/4, NUL-terminated JSON), so no
port and no websocket package are needed.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import select
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from highlighter.outputs.report import segment_frames, strip_frames, write_report

CHROMIUM = Path("/usr/bin/chromium")
W, H = 1280, 1300
FPS = 25.0
RATE = Fraction(25)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="/usr/bin/chromium not installed (Debian: apt-get install -y chromium)")


class Browser:
    """One headless Chromium page; `call` sends a DevTools command and returns its result."""

    def __init__(self, profile: Path):
        to_chrome, self._out = os.pipe()
        self._in, from_chrome = os.pipe()

        def fds() -> None:  # Chromium reads commands on fd 3 and writes replies on fd 4
            a, b = os.dup(to_chrome), os.dup(from_chrome)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--mute-audio", f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome)
        os.close(from_chrome)
        self._buf, self._id, self.session = b"", 0, None
        page = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", width=W, height=H, deviceScaleFactor=1, mobile=False)

    def call(self, method: str, **params) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self._out, json.dumps(msg).encode() + b"\0")
        while True:  # replies and events share the pipe: skip to ours
            while b"\0" not in self._buf:
                assert select.select([self._in], [], [], 60)[0], f"chromium did not answer {method} in 60 s"
                chunk = os.read(self._in, 1 << 20)
                assert chunk, "chromium closed the DevTools pipe"
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                assert "error" not in reply, reply["error"]
                return reply["result"]

    def eval(self, expr: str, wait: bool = False):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=wait)
        assert "exceptionDetails" not in r, r["exceptionDetails"]
        return r["result"].get("value")

    def open(self, url: str) -> None:
        """A fresh load of ``url`` (via about:blank: never a jump within the page already shown)."""
        for target in ("about:blank", url):
            self.call("Page.navigate", url=target)
            base = json.dumps(target.split("#")[0])
            for _ in range(200):
                if self.eval(f"document.readyState === 'complete' && location.href.split('#')[0] === {base}"):
                    break
                time.sleep(0.05)
            else:
                raise AssertionError(f"{target} did not load")

    def center(self, selector: str) -> tuple[float, float]:
        """Scroll ``selector`` into view; the viewport pixel at its middle."""
        return tuple(self.eval(f"(() => {{const e = document.querySelector({json.dumps(selector)}); "
                               "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); "
                               "return [r.x + r.width / 2, r.y + r.height / 2];})()"))

    def click_seek(self, x: float, y: float) -> float:
        """A real left click at (x, y); the player's time when its seek lands (-1: no seek in 10 s)."""
        self.eval("window.__seek = new Promise(ok => {const p = document.getElementById('player'); "
                  "p.addEventListener('seeked', () => ok(p.currentTime), {once: true}); "
                  "setTimeout(() => ok(-1), 10000);})")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
        return self.eval("window.__seek", wait=True)

    def screenshot(self) -> np.ndarray:
        from PIL import Image

        png = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def report(media_dir, tmp_path_factory) -> tuple[Path, object]:
    """A 30-s red/blue/lime video under a name a URL must escape, its report in a sibling folder."""
    media = pytest.importorskip("media")
    from test_outputs import make_result

    root = tmp_path_factory.mktemp("site")
    (root / "footage").mkdir()
    src = media.make_video(root / "footage" / "take #1 été.mp4", 30.0, fps=FPS, size=(320, 240),
                           colors=[(0, "red"), (10, "blue"), (20, "lime")])
    r = make_result(video_path=str(src), duration=30.0, fps=FPS)
    return write_report(r, root / "reports" / "page.html"), r


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("profile"))
    yield b
    b.close()


@pytest.fixture
def page(browser, report):
    path, r = report
    browser.open(path.as_uri())
    # metadata loaded through the relative link (a broken link would leave readyState 0 and set error)
    for _ in range(200):
        if browser.eval("document.getElementById('player').readyState") >= 1:
            break
        time.sleep(0.05)
    return browser, r


def first_frame(seg, duration: float = 30.0) -> float:
    return segment_frames(seg.start, seg.end, RATE, duration)[0] / FPS


def test_player_loads_the_source_through_a_relative_link(page, report):
    b, r = page
    raw = b.eval("document.getElementById('player').getAttribute('src')")
    assert raw == "../footage/take%20%231%20%C3%A9t%C3%A9.mp4"
    assert b.eval("document.getElementById('player').error") is None
    assert b.eval("document.getElementById('player').duration") == pytest.approx(30.0, abs=0.05)
    folder = report[0].parent.parent.as_uri()
    assert b.eval("document.getElementById('player').currentSrc") == f"{folder}/footage/take%20%231%20%C3%A9t%C3%A9.mp4"


def test_clicking_a_band_plays_from_the_segment_start(page):
    b, r = page
    for g in r.segments:
        x, y = b.center(f"#score-plot .segment[data-rank='{g.rank}']")
        t = b.click_seek(x, y + 20)  # below the rank label
        start = first_frame(g)
        assert start <= t < start + 1.5 / FPS, (g, t)
        assert b.eval("location.hash") == f"#t={start:.3f}"
    assert b.eval("new Promise(ok => {const p = document.getElementById('player'); "
                  "if (!p.paused) ok(true); p.addEventListener('playing', () => ok(true)); "
                  "setTimeout(() => ok(!p.paused), 5000);})", wait=True), "the click did not start playback"


def test_clicking_a_thumbnail_a_row_the_filmstrip_and_the_curve(page):
    b, r = page
    g = max(r.segments, key=lambda g: g.rank)
    assert b.click_seek(*b.center(f"#seg-{g.rank} img.thumbnail")) == pytest.approx(first_frame(g) + 0.5 / FPS,
                                                                                     abs=1 / FPS)
    last = segment_frames(g.start, g.end, RATE, 30.0)[2] / FPS
    assert b.click_seek(*b.center(f"#seg-{g.rank} img.frame-out")) == pytest.approx(last + 0.5 / FPS, abs=1 / FPS)
    best = min(r.segments, key=lambda g: g.rank)
    assert b.click_seek(*b.center("table tr[data-t]")) == pytest.approx(first_frame(best) + 0.5 / FPS, abs=1 / FPS)
    n = strip_frames(30.0, RATE)[4]
    assert b.click_seek(*b.center(".filmstrip .frame:nth-child(5)")) == pytest.approx((n + 0.5) / FPS, abs=1 / FPS)
    # the curve between bands: the time under the pointer (a gap with no segment, found from the geometry)
    gap = next(t for t in np.arange(0.5, 30, 0.5) if not any(s.start <= t < s.end for s in r.segments))
    left, top, width, height = b.eval("(() => {const e = document.querySelector('#score-plot .plot-area'); "
                                      "e.scrollIntoView({block: 'center'}); const q = e.getBoundingClientRect(); "
                                      "return [q.x, q.y, q.width, q.height];})()")
    t = b.click_seek(left + width * gap / 30.0, top + height * 0.6)
    assert t == pytest.approx(gap + 0.5 / FPS, abs=30.0 / width + 1 / FPS)
    now = b.eval("document.getElementById('now').textContent")
    assert re.fullmatch(r"00:00:\d\d:\d\d · frame \d+", now)


def test_url_fragment_opens_the_page_at_that_time(browser, report):
    path, _ = report
    settled = ("new Promise(ok => {const p = document.getElementById('player'); const f = () => "
               "(p.readyState >= 1 && !p.seeking) ? ok(p.currentTime) : setTimeout(f, 50); f();})")
    browser.open(path.as_uri() + "#t=21.49")  # frame 537 (21.48 s) is the nearest: shown from its middle
    assert browser.eval(settled, wait=True) == pytest.approx(21.48 + 0.5 / FPS, abs=1e-3)
    assert browser.eval("document.getElementById('now').textContent") == "00:00:21:12 · frame 537"
    browser.eval("location.hash = '#t=3'")  # edited in the address bar: the page follows
    time.sleep(0.2)
    assert browser.eval(settled, wait=True) == pytest.approx(3.0 + 0.5 / FPS, abs=1e-3)


def test_every_image_decodes_and_the_dom_has_plot_filmstrip_and_frames(page):
    b, r = page
    assert b.eval("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert b.eval("document.querySelectorAll('#score-plot .segment').length") == len(r.segments)
    curve = b.eval("document.getElementById('score-curve').getAttribute('d')")
    assert curve.count("L") == len(r.scores) - 1
    assert b.eval("document.querySelectorAll('img.thumbnail').length") == len(r.segments)
    assert b.eval("document.querySelectorAll('img.frame-in, img.frame-out').length") == 2 * len(r.segments)
    strip = strip_frames(30.0, RATE)
    assert b.eval("document.querySelectorAll('.filmstrip .frame img').length") == len(strip)
    chosen = sum(any(g.start <= n / FPS < g.end for g in r.segments) for n in strip)
    assert 0 < b.eval("document.querySelectorAll('.filmstrip .frame.chosen').length") == chosen < len(strip)


def test_screenshot_shows_plot_bands_and_frames(page, tmp_path):
    b, r = page
    b.eval("window.scrollTo(0, 0)")
    img = b.screenshot()
    from PIL import Image

    Image.fromarray(img).save(tmp_path / "report.png")  # to look at: pytest --basetemp=DIR
    assert img.shape == (H, W, 3)
    px = img.reshape(-1, 3).astype(int)

    def share(rgb, tol=40) -> float:
        return float((np.abs(px - np.array(rgb)).max(axis=1) <= tol).mean())

    assert share((0x1F, 0x4E, 0x9A)) > 1e-4  # smoothed curve
    assert share((0xFF, 0xD8, 0xA8), tol=25) > 5e-3  # segment bands (orange at 45 % over #fafafa)
    # the red/blue/green frames of the synthetic video: filmstrip, cards and the player
    assert min(share((255, 0, 0), 50), share((0, 0, 255), 50), share((0, 255, 0), 50)) > 0.005
    # the filmstrip row under the plot holds all three colours left to right
    strip = b.eval("(() => {const q = document.querySelector('.filmstrip').getBoundingClientRect(); "
                   "return [q.x, q.y, q.width, q.height];})()")
    row = img[int(strip[1] + strip[3] / 2), int(strip[0]):int(strip[0] + strip[2])].astype(int)
    reds, blues = np.flatnonzero(row[:, 0] > 200), np.flatnonzero(row[:, 2] > 200)
    assert reds.size and blues.size and reds.mean() < blues.mean()


def test_drop_frame_readout_matches_the_timelines_labels(browser, tmp_path):
    """29.97 fps past the first minute: the page's readout skips the frame numbers drop-frame skips, as the EDL."""
    media = pytest.importorskip("media")
    from test_outputs import make_result

    from highlighter.outputs.report import smpte
    from highlighter.outputs.timeline import frame_at, video_rate

    src = media.make_video(tmp_path / "ntsc.mp4", 70.0, fps=29.97, size=(64, 48), audio=False)
    page = write_report(make_result(video_path=str(src), duration=70.0, fps=29.97), tmp_path / "ntsc.html")
    browser.open(page.as_uri() + "#t=65")
    browser.eval("new Promise(ok => {const p = document.getElementById('player'); const f = () => "
                 "(p.readyState >= 1 && !p.seeking) ? ok(true) : setTimeout(f, 50); f();})", wait=True)
    rate = video_rate(29.97)
    n = frame_at(65.0, rate)
    assert browser.eval("document.getElementById('now').textContent") == f"{smpte(n, rate)} · frame {n}"
    assert smpte(n, rate) == "00:01:05;00"  # non-drop would read 00:01:04:28


def test_a_video_that_cannot_play_says_so(browser, report, tmp_path):
    from highlighter.outputs.report import render_html

    _, r = report
    page = tmp_path / "moved.html"
    page.write_text(render_html(r, {}, "gone/missing.mp4"))
    browser.open(page.as_uri())
    status = browser.eval("new Promise(ok => {const s = document.getElementById('player-status'); "
                          "const f = () => s.textContent ? ok(s.textContent) : setTimeout(f, 50); f(); "
                          "setTimeout(() => ok(''), 5000);})", wait=True)
    assert "cannot play the source here" in status
