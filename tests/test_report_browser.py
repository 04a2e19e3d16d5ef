"""The HTML report opened in a real headless Chromium: screenshot not blank, DOM has the plot and thumbnails."""

from __future__ import annotations

import re
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from highlighter.outputs.report import write_report

CHROMIUM = Path("/usr/bin/chromium")
W, H = 1280, 900

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="/usr/bin/chromium not installed (Debian: apt-get install -y chromium)")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                           "--no-first-run", "--disable-background-networking", "--disable-component-update",
                           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120)


def read_png(path: Path) -> np.ndarray:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes) without extra packages."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        (n,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0
    ch = 3 if ctype == 2 else 4
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * ch)
    out = np.zeros((h, w * ch), np.int32)
    prev = np.zeros(w * ch, np.int32)
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        cur = np.zeros(w * ch, np.int32)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 255
        else:  # sub / average / paeth need the left neighbour: do them per pixel
            for x in range(w * ch):
                a = cur[x - ch] if x >= ch else 0
                b, c = prev[x], (prev[x - ch] if x >= ch else 0)
                if f == 1:
                    p = a
                elif f == 3:
                    p = (a + b) // 2
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (line[x] + p) & 255
        out[y], prev = cur, cur
    return out.reshape(h, w, ch)[..., :3].astype(np.uint8)


@pytest.fixture(scope="module")
def report(media_dir, tmp_path_factory) -> tuple[Path, object]:
    media = pytest.importorskip("media")
    from test_outputs import make_result

    src = media.make_video(media_dir / "browser_src.mp4", 30.0, fps=25, size=(320, 240),
                           colors=[(0, "red"), (10, "blue"), (20, "lime")])
    r = make_result(video_path=str(src), duration=30.0)
    return write_report(r, tmp_path_factory.mktemp("report") / "page.html"), r


def test_dom_has_plot_segments_and_thumbnails(report, tmp_path):
    page, r = report
    proc = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    curve = re.search(r'<path id="score-curve" d="([^"]+)"', dom)
    assert curve and curve.group(1).count("L") == len(r.scores) - 1
    assert len(re.findall(r'<rect class="segment"', dom)) == len(r.segments)
    assert len(re.findall(r"<img class=\"thumbnail\"[^>]*src=\"data:image/jpeg;base64,", dom)) == len(r.segments)


def test_screenshot_is_rendered(report, tmp_path):
    page, r = report
    shot = tmp_path / "shot.png"
    proc = chromium(tmp_path, f"--screenshot={shot}", f"--window-size={W},{H}", page.as_uri())
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    img = read_png(shot)
    assert img.shape == (H, W, 3)
    assert img.std() > 20, "screenshot is blank"
    # the plot's blue curve, the orange segment shading and the thumbnails' colours are all drawn
    px = img.reshape(-1, 3).astype(int)

    def share(rgb, tol=40) -> float:
        return float((np.abs(px - np.array(rgb)).max(axis=1) <= tol).mean())

    assert share((0x1F, 0x4E, 0x9A)) > 1e-4  # smoothed curve
    assert share((0xFF, 0xD8, 0xA8), tol=25) > 5e-3  # segment shading (orange at 45 % over #fafafa)
    thumbs = share((255, 0, 0), 50) + share((0, 0, 255), 50) + share((0, 255, 0), 50)
    assert thumbs > 0.02  # the red/blue/green frames of the synthetic video
