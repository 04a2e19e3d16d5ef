"""A self-contained HTML page per video: score curve, chosen segments, a thumbnail each.

No external assets: the plot is inline SVG built here, thumbnails are JPEGs that
ffmpeg extracts at each segment's midpoint and that are embedded as base64
``data:`` URIs, the CSS is inline. The page opens from a file:// URL offline and can
be mailed as one file.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import numpy as np

from highlighter.outputs.schema import DetectResult
from highlighter.outputs.segments import smoothed_curve
from highlighter.outputs.writers import atomic_write_text, clock

THUMB_WIDTH = 320
PLOT_W, PLOT_H = 1000, 290
MARGIN = dict(left=56, right=40, top=16, bottom=56)


def extract_thumbnail(video: str | Path, t: float, width: int = THUMB_WIDTH) -> bytes | None:
    """One JPEG frame at ``t`` seconds, ``width`` pixels wide (None if ffmpeg finds no frame)."""
    from highlighter.io.ffmpeg import FfmpegFailedError, run_ffmpeg

    try:
        proc = run_ffmpeg(["-ss", f"{max(0.0, t):.3f}", "-i", str(video), "-frames:v", "1", "-an",
                           "-vf", f"scale={width}:-2", "-q:v", "4", "-f", "image2pipe", "-c:v", "mjpeg", "-"],
                          what=f"thumbnail of {video} at {t:.2f}s", timeout=120)
    except FfmpegFailedError:
        return None
    return proc.stdout or None


def _nice_step(span: float, target: int) -> float:
    raw = span / max(1, target)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def score_svg(result: DetectResult) -> str:
    """Inline SVG: raw scores (thin), the smoothed curve selection used (thick), segments shaded."""
    d = float(result.video.duration)
    s, e, x = result.starts, result.ends, np.asarray(result.scores, dtype=np.float64)
    sm = smoothed_curve(s, e, x, result.selection) if x.size else x
    lo = float(min(x.min(), sm.min())) if x.size else 0.0
    hi = float(max(x.max(), sm.max())) if x.size else 1.0
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    pw = PLOT_W - MARGIN["left"] - MARGIN["right"]
    ph = PLOT_H - MARGIN["top"] - MARGIN["bottom"]

    def X(t: float) -> float:
        return MARGIN["left"] + pw * (t / d if d > 0 else 0)

    def Y(v: float) -> float:
        return MARGIN["top"] + ph * (1 - (v - lo) / (hi - lo))

    mids = (s + e) / 2
    parts = [f'<svg id="score-plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {PLOT_W} {PLOT_H}" '
             f'width="100%" role="img" aria-label="highlight score over time">',
             f'<rect x="{MARGIN["left"]}" y="{MARGIN["top"]}" width="{pw}" height="{ph}" fill="#fafafa" '
             'stroke="#ccc"/>']
    for g in result.segments:
        parts.append(f'<rect class="segment" data-rank="{g.rank}" x="{X(g.start):.2f}" y="{MARGIN["top"]}" '
                     f'width="{max(1.0, X(g.end) - X(g.start)):.2f}" height="{ph}" fill="#ffb347" '
                     f'fill-opacity="0.45"><title>#{g.rank} {clock(g.start)}–{clock(g.end)} '
                     f'score {g.score:.3g}</title></rect>')
        parts.append(f'<text x="{(X(g.start) + X(g.end)) / 2:.2f}" y="{MARGIN["top"] + 12}" font-size="11" '
                     f'text-anchor="middle" fill="#a0522d">{g.rank}</text>')
    # axes ticks
    step = _nice_step(d, 10)
    t = 0.0
    while t <= d + 1e-9:
        parts.append(f'<line x1="{X(t):.2f}" y1="{MARGIN["top"] + ph}" x2="{X(t):.2f}" '
                     f'y2="{MARGIN["top"] + ph + 5}" stroke="#666"/>'
                     f'<text x="{X(t):.2f}" y="{MARGIN["top"] + ph + 18}" font-size="11" text-anchor="middle" '
                     f'fill="#444">{clock(t).split(".")[0]}</text>')
        t += step
    for v in np.linspace(lo, hi, 5):
        parts.append(f'<line x1="{MARGIN["left"] - 5}" y1="{Y(v):.2f}" x2="{MARGIN["left"]}" y2="{Y(v):.2f}" '
                     f'stroke="#666"/><text x="{MARGIN["left"] - 8}" y="{Y(v) + 4:.2f}" font-size="11" '
                     f'text-anchor="end" fill="#444">{v:.3g}</text>')
    if x.size:
        raw_pts = " ".join(f"{X(t):.2f},{Y(v):.2f}" for t, v in zip(mids, x))
        parts.append(f'<polyline class="raw" points="{raw_pts}" fill="none" stroke="#9ab" stroke-width="1"/>')
        path = "M" + " L".join(f"{X(t):.2f},{Y(v):.2f}" for t, v in zip(mids, sm))
        parts.append(f'<path id="score-curve" d="{path}" fill="none" stroke="#1f4e9a" stroke-width="2.2"/>')
    parts.append(f'<text x="{MARGIN["left"] + pw / 2}" y="{MARGIN["top"] + ph + 32}" font-size="11" text-anchor="middle" '
                 'fill="#444">time</text>'
                 f'<text x="{MARGIN["left"] + pw}" y="{MARGIN["top"] + ph + 48}" font-size="11" text-anchor="end" '
                 'fill="#444"><tspan fill="#9ab">— raw score</tspan>  <tspan fill="#1f4e9a">— smoothed</tspan>  '
                 '<tspan fill="#e8963a">■ segment</tspan></text></svg>')
    return "".join(parts)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px}
.meta{color:#555;font-size:13px;margin-bottom:14px}
.meta code{background:#f2f2f2;padding:1px 4px;border-radius:3px}
.note{background:#fff6e0;border-left:3px solid #f0a500;padding:6px 10px;font-size:13px;margin:8px 0}
.grid{display:flex;flex-wrap:wrap;gap:14px;margin-top:16px}
.thumb{width:320px;border:1px solid #ddd;border-radius:6px;overflow:hidden;background:#fafafa}
.thumb img{display:block;width:320px;height:auto;background:#000}
.thumb .cap{padding:6px 8px;font-size:13px}
.thumb .missing{height:180px;display:flex;align-items:center;justify-content:center;color:#999}
table{border-collapse:collapse;font-size:13px;margin-top:16px}
td,th{border-bottom:1px solid #eee;padding:3px 10px;text-align:right}
"""


def render_html(result: DetectResult, thumbnails: dict[int, bytes | None] | None = None) -> str:
    """The page as a string; ``thumbnails`` maps segment rank -> JPEG bytes."""
    thumbnails = thumbnails or {}
    v, m = result.video, result.method
    esc = html.escape
    weights = f"{m.weights.id}" + (f" (sha256 {m.weights.sha256[:12]}…)" if m.weights and m.weights.sha256 else "") \
        if m.weights else "none (training-free)"
    size = f"{v.width}×{v.height}" if v.width and v.height else "?"
    fps = f"{v.fps:.3g} fps" if v.fps else ""
    head = (f"<h1>{esc(v.name)}</h1><div class='meta'>{clock(v.duration)} · {size} {fps} · "
            f"{'audio' if v.has_audio else 'no audio'}<br>method <code>{esc(m.name)}</code> · weights "
            f"<code>{esc(weights)}</code> · visual <code>{esc(result.visual_backbone or 'none')}</code> · audio "
            f"<code>{esc(result.audio_backbone or 'none')}</code> · {len(result.segments)} segments, "
            f"{sum(g.duration for g in result.segments):.1f} s</div>")
    notes = "".join(f"<div class='note'>{esc(n)}</div>" for n in ([m.fallback] if m.fallback else []) + [
        n for n in result.notes if n != m.fallback])
    cards = []
    for g in sorted(result.segments, key=lambda g: g.start):
        jpg = thumbnails.get(g.rank)
        img = (f"<img class='thumbnail' alt='segment {g.rank}' src='data:image/jpeg;base64,"
               f"{base64.b64encode(jpg).decode('ascii')}'>") if jpg else "<div class='missing'>no frame</div>"
        cards.append(f"<div class='thumb' id='seg-{g.rank}'>{img}<div class='cap'><b>#{g.rank}</b> "
                     f"{clock(g.start)} – {clock(g.end)} ({g.duration:.1f} s) · score {g.score:.3g}</div></div>")
    rows = "".join(f"<tr><td>{g.rank}</td><td>{clock(g.start)}</td><td>{clock(g.end)}</td>"
                   f"<td>{g.duration:.2f}</td><td>{g.score:.4g}</td></tr>"
                   for g in sorted(result.segments, key=lambda g: g.rank))
    table = ("<table><tr><th>rank</th><th>start</th><th>end</th><th>seconds</th><th>score</th></tr>"
             f"{rows}</table>") if rows else "<p>No segment was selected.</p>"
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{esc(v.name)} highlights</title><style>{_CSS}</style></head><body>"
            f"{head}{notes}{score_svg(result)}<div class='grid'>{''.join(cards)}</div>{table}"
            f"<p class='meta'>highlighter · {esc(result.created)}</p></body></html>\n")


def write_report(result: DetectResult, path: str | Path, video: str | Path | None = None) -> Path:
    """Extract a thumbnail per segment from ``video`` (default: the result's source) and write the page."""
    src = Path(video or result.video.path)
    thumbs = {g.rank: extract_thumbnail(src, (g.start + g.end) / 2) for g in result.segments}
    return atomic_write_text(path, render_html(result, thumbs), protect=[result.video.path])
