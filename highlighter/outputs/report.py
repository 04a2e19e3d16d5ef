"""An HTML page per video that an editor can work from, and an index page for folder runs.

The page: a player (``<video>`` whose ``src`` is the source's path relative to the page's
folder, so page and footage can move together), the score curve with the chosen segments
as bands, a filmstrip of the whole video aligned under the curve (chosen moments outlined,
the others shown too), each segment's first, middle and last frame, and a table. Whatever
has a time plays the video from there when clicked: a band, the curve (the time under the
pointer), a frame, a card, a row; ``page.html#t=12.5`` opens the page at 12.5 s.

Frames are counted as the editor timelines count them (`timeline.frame_at` at the video's
exact rate, `timeline.video_rate`): the thumbnails are those exact frames, the player seeks
to the middle of a frame's display interval, and timecodes label frames at the video's own
rate (`smpte`: as the EDL does at a SMPTE rate, drop-frame at 29.97/59.94; non-drop at the
rounded rate otherwise, where the EDL counts at another rate), so the page, the player and
the cuts name the same frame.

Scores read on the scale ``--threshold`` uses: the smoothed curve min-max normalised to
0-1 per video, plus the share of the video that scores as high; raw values are in tooltips.

No external assets: SVG, CSS and JS are inline, frames are JPEGs from ffmpeg embedded as
``data:`` URIs. Only the video is linked.
"""

from __future__ import annotations

import base64
import html
import math
import os
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote

import numpy as np
import opentimelineio as otio

from highlighter.outputs.schema import DetectResult
from highlighter.outputs.segments import smoothed_curve
from highlighter.outputs.timeline import frame_at, timecode_rate, video_rate
from highlighter.outputs.writers import atomic_write_text

THUMB_WIDTH, SMALL_WIDTH = 320, 160
PLOT_W, PLOT_H = 1000, 250
MARGIN = dict(left=56, right=40, top=16, bottom=44)
STRIP_SECONDS, STRIP_MIN, STRIP_MAX = 2.0, 6, 24  # filmstrip: a frame per 2 s, 6 to 24 frames
WORKERS = 2  # ffmpeg seeks run side by side (each one decodes one GOP at most)
TIME_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
INDEX_NAMES = ("index.html", "highlights-index.html")  # the second when a video named "index" took the first
esc = html.escape


# --------------------------------------------------------------------------- frames and time (pure)
def page_rate(result: DetectResult) -> Fraction:
    """The video's exact frame rate (25 when unknown), as the timelines take it."""
    return video_rate(result.video.fps)


def frame_count(duration: float, rate: Fraction) -> int:
    return max(1, frame_at(duration, rate))


def segment_frames(start: float, end: float, rate: Fraction, duration: float) -> tuple[int, int, int]:
    """First, middle and last frame of ``[start, end)``: the frames the timelines' cuts keep."""
    total = frame_count(duration, rate)
    a = min(max(0, frame_at(start, rate)), total - 1)
    last = max(a, min(frame_at(end, rate), total) - 1)
    return a, (a + last) // 2, last


def strip_frames(duration: float, rate: Fraction) -> list[int]:
    """The filmstrip: the middle frame of each of equal cells covering the whole video."""
    total = frame_count(duration, rate)
    count = min(total, STRIP_MAX, max(STRIP_MIN, math.ceil(duration / STRIP_SECONDS)))
    return [min(total - 1, frame_at((i + 0.5) * duration / count, rate)) for i in range(count)]


def smpte(n: int, rate: Fraction) -> str:
    """Frame ``n`` labelled as the timelines label it: at a SMPTE rate by OpenTimelineIO (drop-frame
    ``;`` at 29.97 and 59.94, as in the EDL), else HH:MM:SS:FF non-drop counted to the rounded rate."""
    if timecode_rate(rate) == rate:
        return otio.opentime.to_timecode(otio.opentime.RationalTime(max(0, n), float(rate)), float(rate))
    secs, ff = divmod(max(0, n), max(1, round(float(rate))))
    return f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}:{ff:02d}"


def dropped_per_minute(rate: Fraction) -> int:
    """Frame numbers a drop-frame label skips each minute (2 at 29.97, 4 at 59.94; 0: non-drop), for the page's JS."""
    return round(float(rate)) // 15 if ";" in smpte(0, rate) else 0


def tick_step(span: float, target: int = 10) -> float:
    """A time step people read (1, 2, 5, 10, 15, 30 s, 1, 2, 5 min, ...) giving at most ``target`` ticks."""
    for step in TIME_STEPS:
        if span / step <= target:
            return float(step)
    return 3600.0 * math.ceil(span / target / 3600.0)


def tick_label(t: float, step: float, span: float) -> str:
    """``M:SS`` (``H:MM:SS`` past an hour) with as many decimals as the step needs, so the
    ticks of a 1-s clip read 0:00.0, 0:00.1, ... instead of 0:00:00 eleven times."""
    dec = 0 if step >= 1 else len(f"{step:g}".split(".")[1])
    units = int(round(t * 10 ** dec))
    whole, frac = divmod(units, 10 ** dec)
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    sec = f"{s:02d}" + (f".{frac:0{dec}d}" if dec else "")
    return f"{h}:{m:02d}:{sec}" if span >= 3600 else f"{m}:{sec}"


def unit_score(v: float | np.ndarray, lo: float, hi: float) -> Any:
    """``v`` on the 0-1 scale of the smoothed curve's range ``[lo, hi]`` (a flat curve: 0)."""
    return (np.asarray(v, dtype=np.float64) - lo) / (hi - lo) if hi - lo > 1e-12 * max(1.0, abs(hi)) \
        else np.zeros_like(np.asarray(v, dtype=np.float64))


def readable(v: float, curve: np.ndarray) -> tuple[str, str]:
    """A segment's score as people read it: ("0.87", "top 8 %"); a flat curve (or one clip) has nothing
    to rank: ("–", "–"), not "0.00, top 100 %"."""
    lo, hi = (float(curve.min()), float(curve.max())) if curve.size else (0.0, 0.0)
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return "–", "–"
    return f"{float(unit_score(v, lo, hi)):.2f}", f"top {top_percent(v, curve)} %"


def top_percent(v: float, curve: np.ndarray) -> int:
    """The share of the video's clips scoring at least ``v``, in whole percent (at least 1)."""
    if curve.size == 0:
        return 100
    return max(1, int(math.ceil(100.0 * float(np.mean(curve >= v - 1e-9 * max(1.0, abs(v)))))))


def video_href(video: str | Path, page: str | Path) -> str:
    """The video as a URL relative to the page's folder (percent-encoded, any file-name bytes);
    a ``file:`` URL when no relative path exists (another drive)."""
    v, d = Path(os.path.abspath(video)), Path(os.path.abspath(page)).parent
    try:
        rel = os.path.relpath(v, d)
    except ValueError:
        return v.as_uri()
    return quote(os.fsencode(rel.replace(os.sep, "/")), safe="/")


# --------------------------------------------------------------------------- frames from the video
def extract_thumbnail(video: str | Path, t: float, width: int = THUMB_WIDTH, fps: float | None = None) -> bytes | None:
    """One JPEG frame, ``width`` pixels wide (None if ffmpeg finds none): with ``fps``, exactly
    frame ``round(t * fps)`` (seeking half a frame early lands on it), else the first at ``t``."""
    from highlighter.io.ffmpeg import FfmpegFailedError, run_ffmpeg

    seek = t - 0.5 / fps if fps else t
    try:
        proc = run_ffmpeg(["-threads", "1", "-ss", f"{max(0.0, seek):.6f}", "-i", str(video), "-frames:v", "1",
                           "-an", "-vf", f"scale={width}:-2", "-q:v", "4", "-f", "image2pipe", "-c:v", "mjpeg", "-"],
                          what=f"thumbnail of {video} at {t:.2f}s", timeout=120)
    except FfmpegFailedError:
        return None
    return proc.stdout or None


def extract_frames(video: str | Path, wanted: Iterable[tuple[int, int]],
                   fps: float) -> dict[tuple[int, int], bytes | None]:
    """JPEGs of (frame, width) pairs, a few ffmpeg seeks at a time."""
    keys = sorted(set(wanted))
    with ThreadPoolExecutor(WORKERS) as pool:
        jpgs = pool.map(lambda k: extract_thumbnail(video, k[0] / fps, k[1], fps), keys)
        return dict(zip(keys, jpgs))


def frames_wanted(result: DetectResult) -> set[tuple[int, int]]:
    """Every (frame, width) the page shows: three per segment and the filmstrip."""
    rate, d = page_rate(result), float(result.video.duration)
    out = {(n, SMALL_WIDTH) for n in strip_frames(d, rate)}
    for g in result.segments:
        a, mid, last = segment_frames(g.start, g.end, rate, d)
        out |= {(mid, THUMB_WIDTH), (a, SMALL_WIDTH), (last, SMALL_WIDTH)}
    return out


# --------------------------------------------------------------------------- the page
def img(jpg: bytes | None, cls: str, alt: str) -> str:
    if not jpg:
        return f"<div class='missing {cls}'>no frame</div>"
    return f"<img class='{cls}' alt='{esc(alt)}' src='data:image/jpeg;base64,{base64.b64encode(jpg).decode('ascii')}'>"


def seek_attrs(n: int, fps: float) -> str:
    """``href``/``data-t`` of something that plays the video from frame ``n``."""
    return f"href='#t={n / fps:.3f}' data-t='{n / fps:.6f}'"


def score_svg(result: DetectResult) -> str:
    """Inline SVG: raw scores (thin), the smoothed curve selection used (thick) on its 0-1 scale,
    segments as clickable bands, a playhead, time ticks readable at any duration."""
    d = float(result.video.duration) or 1.0
    rate = page_rate(result)
    fps = float(rate)
    s, e, x = result.starts, result.ends, np.asarray(result.scores, dtype=np.float64)
    sm = smoothed_curve(s, e, x, result.selection) if x.size else x
    lo, hi = (float(sm.min()), float(sm.max())) if x.size else (0.0, 1.0)
    raw_u, sm_u = unit_score(x, lo, hi), unit_score(sm, lo, hi)
    y_lo = min(0.0, float(raw_u.min())) if x.size else 0.0
    y_hi = max(1.0, float(raw_u.max())) if x.size else 1.0
    L, T = MARGIN["left"], MARGIN["top"]
    pw, ph = PLOT_W - L - MARGIN["right"], PLOT_H - T - MARGIN["bottom"]

    def X(t: float) -> float:
        return L + pw * min(max(t / d, 0.0), 1.0)

    def Y(v: float) -> float:
        return T + ph * (1 - (v - y_lo) / (y_hi - y_lo))

    mids = (s + e) / 2
    p = [f'<svg id="score-plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {PLOT_W} {PLOT_H}" width="100%" '
         f'role="img" aria-label="highlight score over time; click to play from there" data-duration="{d:.6f}" '
         f'data-x0="{L}" data-x1="{L + pw}">',
         f'<rect class="plot-area" x="{L}" y="{T}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>']
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        p.append(f'<line class="gridline" x1="{L}" x2="{L + pw}" y1="{Y(v):.2f}" y2="{Y(v):.2f}" stroke="#eee"/>'
                 f'<line x1="{L - 5}" y1="{Y(v):.2f}" x2="{L}" y2="{Y(v):.2f}" stroke="#666"/>'
                 f'<text x="{L - 8}" y="{Y(v) + 4:.2f}" font-size="11" text-anchor="end" fill="#444">{v:g}</text>')
    if result.selection.threshold is not None:
        yt = Y(result.selection.threshold)
        p.append(f'<line class="threshold" x1="{L}" x2="{L + pw}" y1="{yt:.2f}" y2="{yt:.2f}" stroke="#c33" '
                 f'stroke-dasharray="4 3"/>')
    for g in result.segments:
        a, _, last = segment_frames(g.start, g.end, rate, d)
        p.append(f'<rect class="segment" data-rank="{g.rank}" data-t="{a / fps:.6f}" x="{X(g.start):.2f}" y="{T}" '
                 f'width="{max(1.0, X(g.end) - X(g.start)):.2f}" height="{ph}" fill="#ffb347" fill-opacity="0.45">'
                 f'<title>#{g.rank} {smpte(a, rate)} – {smpte(frame_at(g.end, rate), rate)} · score '
                 f'{readable(g.score, sm)[0]} (raw {g.score:.4g}) · click to play</title></rect>'
                 f'<text class="rank" x="{(X(g.start) + X(g.end)) / 2:.2f}" y="{T + 12}" font-size="11" '
                 f'text-anchor="middle" fill="#a0522d">{g.rank}</text>')
    step = tick_step(d)
    for i in range(int(math.floor(d / step + 1e-9)) + 1):
        t = i * step
        p.append(f'<line x1="{X(t):.2f}" y1="{T + ph}" x2="{X(t):.2f}" y2="{T + ph + 5}" stroke="#666"/>'
                 f'<text class="tick" x="{X(t):.2f}" y="{T + ph + 18}" font-size="11" text-anchor="middle" '
                 f'fill="#444">{tick_label(t, step, d)}</text>')
    if x.size:
        raw_pts = " ".join(f"{X(t):.2f},{Y(v):.2f}" for t, v in zip(mids, raw_u))
        p.append(f'<polyline class="raw" points="{raw_pts}" fill="none" stroke="#9ab" stroke-width="1"/>')
        at = (mids, sm_u) if x.size > 1 else ([s[0], e[0]], [sm_u[0]] * 2)  # one clip: a level across it
        path = "M" + " L".join(f"{X(t):.2f},{Y(v):.2f}" for t, v in zip(*at))
        p.append(f'<path id="score-curve" d="{path}" fill="none" stroke="#1f4e9a" stroke-width="2.2"/>')
    p.append(f'<line id="playhead" x1="{L}" x2="{L}" y1="{T}" y2="{T + ph}" stroke="#d00" stroke-width="1.5" '
             'visibility="hidden"/>'
             f'<text x="{L + pw / 2}" y="{T + ph + 34}" font-size="11" text-anchor="middle" fill="#444">'
             f'time ({"h:mm:ss" if d >= 3600 else "m:ss"})</text>'
             f'<text transform="translate(14 {T + ph / 2}) rotate(-90)" font-size="11" text-anchor="middle" '
             'fill="#444">score (0 = lowest, 1 = highest here)</text>'
             f'<text x="{L + pw}" y="{T + ph + 34}" font-size="11" text-anchor="end" fill="#444">'
             '<tspan fill="#9ab">— raw</tspan>  <tspan fill="#1f4e9a">— smoothed</tspan>  '
             '<tspan fill="#e8963a">■ segment</tspan>'
             + ('  <tspan fill="#c33">-- threshold</tspan>' if result.selection.threshold is not None else "")
             + '</text></svg>')
    return "".join(p)


def filmstrip(result: DetectResult, frames: dict[tuple[int, int], bytes | None]) -> str:
    """The whole video in equal cells under the plot's time axis; frames inside a segment are outlined."""
    rate, d = page_rate(result), float(result.video.duration)
    fps = float(rate)
    cells = []
    for n in strip_frames(d, rate):
        t = n / fps
        seg = next((g for g in result.segments if g.start <= t < g.end), None)
        what = f"segment #{seg.rank}" if seg else "not chosen"
        cells.append(f"<a class='frame{' chosen' if seg else ''}' {seek_attrs(n, fps)} "
                     f"title='{smpte(n, rate)} · {what} · click to play'>"
                     f"{img(frames.get((n, SMALL_WIDTH)), 'strip', smpte(n, rate))}</a>")
    left, right = 100 * MARGIN["left"] / PLOT_W, 100 * MARGIN["right"] / PLOT_W
    return (f"<div class='filmstrip' style='margin:0 {right:.3f}% 0 {left:.3f}%;"
            f"grid-template-columns:repeat({len(cells)},1fr)'>{''.join(cells)}</div>")


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:20px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px}
h2{font-size:15px;margin:18px 0 6px}
a{color:#1f4e9a}
.meta{color:#555;font-size:13px;margin-bottom:10px}
.meta code{background:#f2f2f2;padding:1px 4px;border-radius:3px}
.note{background:#fff6e0;border-left:3px solid #f0a500;padding:6px 10px;font-size:13px;margin:8px 0}
.top{display:flex;gap:18px;align-items:flex-start;flex-wrap:wrap}
.playerbox{flex:0 0 min(560px,100%)}
#player{width:100%;max-height:315px;background:#000;display:block}
.now{font-size:13px;color:#444;margin-top:4px;font-variant-numeric:tabular-nums}
#player-status{color:#b00}
.tablebox{flex:1 1 320px;max-height:340px;overflow:auto}
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
td,th{border-bottom:1px solid #eee;padding:3px 8px;text-align:right;white-space:nowrap}
tr[data-t]{cursor:pointer}
tr[data-t]:hover,tr.playing{background:#fff1dc}
#score-plot{display:block;margin-top:10px}
#score-plot .segment{cursor:pointer}
#score-plot .segment:hover{fill-opacity:.7}
#score-plot .plot-area{cursor:crosshair}
#score-plot text,#score-plot polyline,#score-plot path,#score-plot .gridline{pointer-events:none}
.filmstrip{display:grid;gap:1px;background:#ddd}
.filmstrip .frame{display:block;position:relative;opacity:.55;border-top:4px solid transparent;background:#000}
.filmstrip .frame.chosen{opacity:1;border-top-color:#f0a500}
.filmstrip .frame:hover{opacity:1;outline:2px solid #1f4e9a;z-index:2;transform:scale(3);transform-origin:50% 0}
.filmstrip img{display:block;width:100%;height:auto}
.filmstrip .missing{height:24px;color:#999;font-size:9px}
.grid{display:flex;flex-wrap:wrap;gap:14px}
.card{width:320px;border:1px solid #ddd;border-radius:6px;overflow:hidden;background:#fafafa}
.card.playing{border-color:#f0a500;box-shadow:0 0 0 2px #f0a500}
.card img{display:block;width:100%;height:auto;background:#000}
.card .ends{display:flex;gap:2px;border-top:2px solid #fff}
.card .ends a{flex:1 1 50%;text-decoration:none;color:#444;font-size:11px}
.card .ends span{display:block;padding:2px 4px}
.card .cap{padding:6px 8px;font-size:13px}
.missing{min-height:60px;display:flex;align-items:center;justify-content:center;color:#999;background:#eee}
.tc{font-variant-numeric:tabular-nums}
"""

# Click anything with data-t (or the plot area: the time under the pointer) -> seek the player to
# the middle of that frame's display interval and play; the readout, the playhead and the
# playing segment follow the player. #t=SECONDS in the URL seeks (on load, or when edited).
_JS = """
(function(){
const P=document.getElementById('player'),fps=+document.body.dataset.fps,D=+document.body.dataset.drop;
const svg=document.getElementById('score-plot');
const dur=+svg.dataset.duration,x0=+svg.dataset.x0,x1=+svg.dataset.x1,head=document.getElementById('playhead');
const now=document.getElementById('now'),status=document.getElementById('player-status');
const last=Math.max(0,Math.floor(dur*fps+0.5)-1);
const segs=[...document.querySelectorAll('[data-seg-start]')];
const p2=v=>String(v).padStart(2,'0');
function tc(t){const base=Math.max(1,Math.round(fps));let n=Math.max(0,Math.floor(t*fps+1e-6));
 if(D){const ten=base*600-9*D,one=base*60-D,k=Math.floor(n/ten),m=n%ten;n+=9*D*k+(m>D?D*Math.floor((m-D)/one):0);}
 const s=Math.floor(n/base);
 return [Math.floor(s/3600),Math.floor(s/60)%60,s%60].map(p2).join(':')+(D?';':':')+p2(n%base);}
function seek(t,play){const n=Math.min(last,Math.max(0,Math.round(t*fps)));P.currentTime=(n+0.5)/fps;
 history.replaceState(null,'','#t='+(n/fps).toFixed(3));
 if(play){const r=P.getBoundingClientRect();if(r.bottom<0||r.top>innerHeight)P.scrollIntoView({block:'nearest'});
  const q=P.play();if(q)q.catch(()=>{});}}
function show(){const t=P.currentTime,n=Math.min(last,Math.max(0,Math.floor(t*fps+1e-6)));
 now.textContent=tc(n/fps)+' · frame '+n;
 const x=x0+(x1-x0)*Math.min(1,Math.max(0,t/dur));head.setAttribute('x1',x);head.setAttribute('x2',x);
 head.setAttribute('visibility','visible');
 for(const el of segs){el.classList.toggle('playing',t>=+el.dataset.segStart&&t<+el.dataset.segEnd);}}
document.addEventListener('click',e=>{const el=e.target.closest('[data-t]');let t;
 if(el)t=+el.dataset.t;
 else if(e.target.closest('#score-plot .plot-area')){const pt=svg.createSVGPoint();pt.x=e.clientX;pt.y=e.clientY;
  t=(pt.matrixTransform(svg.getScreenCTM().inverse()).x-x0)/(x1-x0)*dur;}
 else return;
 e.preventDefault();seek(Math.min(Math.max(t,0),dur),true);});
P.addEventListener('timeupdate',show);P.addEventListener('seeked',show);
P.addEventListener('error',()=>{status.textContent=
 ' cannot play the source here (moved, or a codec this browser lacks); '
 +'the timecodes still name its frames';});
function fromHash(){const m=/^#t=([0-9.]+)$/.exec(location.hash);if(m)seek(+m[1],false);}
addEventListener('hashchange',fromHash);fromHash();
})();
"""


def render_html(result: DetectResult, frames: dict[tuple[int, int], bytes | None] | None = None,
                video_src: str | None = None) -> str:
    """The page as a string; ``frames`` maps (frame, width) -> JPEG bytes (`frames_wanted`),
    ``video_src`` is the player's URL (`video_href`; default: the file's absolute path)."""
    frames = frames or {}
    v, m = result.video, result.method
    rate, d = page_rate(result), float(v.duration)
    fps = float(rate)
    src = video_src if video_src is not None else Path(os.path.abspath(v.path)).as_uri()
    sm = smoothed_curve(result.starts, result.ends, result.scores, result.selection) if len(result.scores) \
        else np.zeros(0)
    weights = (f"{m.weights.id}" + (f" (sha256 {m.weights.sha256[:12]}…)" if m.weights.sha256 else "")) \
        if m.weights else ("none (pretrained on this video)" if getattr(m, "mode", None) == "video"
                           else "none (training-free)")
    size = f"{v.width}×{v.height}" if v.width and v.height else "?"
    speed = f"{v.fps:.4g} fps" if v.fps else f"fps unknown, frames counted at {fps:g}"
    head = (f"<h1>{esc(v.name)}</h1><div class='meta'>{smpte(frame_at(d, rate), rate)} ({d:.2f} s) · {size} · "
            f"{speed} · "
            f"{'audio' if v.has_audio else 'no audio'} · timecodes from the first frame at the video's rate"
            f"<br>method <code>{esc(m.name)}</code> · weights <code>{esc(weights)}</code> · visual "
            f"<code>{esc(result.visual_backbone or 'none')}</code> · audio "
            f"<code>{esc(result.audio_backbone or 'none')}</code> · {len(result.segments)} segments, "
            f"{sum(g.duration for g in result.segments):.1f} s</div>")
    notes = "".join(f"<div class='note'>{esc(n)}</div>" for n in ([m.fallback] if m.fallback else []) + [
        n for n in result.notes if n != m.fallback])
    player = (f"<div class='playerbox'><video id='player' src='{esc(src)}' controls preload='metadata' playsinline>"
              f"</video><div class='now'>now <output id='now' class='tc'>{smpte(0, rate)} · frame 0</output> · "
              f"source <a href='{esc(src)}'>{esc(v.name)}</a><span id='player-status'></span></div></div>")
    rows, cards = [], []
    for g in sorted(result.segments, key=lambda g: g.start):
        a, mid, last = segment_frames(g.start, g.end, rate, d)
        b = max(a + 1, frame_at(g.end, rate))
        u, top = readable(g.score, sm)
        span = f"data-seg-start='{a / fps:.6f}' data-seg-end='{b / fps:.6f}'"
        rows.append((g.rank, f"<tr {span} data-t='{a / fps:.6f}' title='click to play'><td>{g.rank}</td>"
                     f"<td class='tc'>{smpte(a, rate)}</td><td class='tc'>{smpte(b, rate)}</td>"
                     f"<td>{(b - a) / fps:.2f}</td><td>{b - a}</td><td><b>{u}</b></td><td>{top}</td>"
                     f"<td>{g.score:.4g}</td></tr>"))
        cards.append(
            f"<div class='card' id='seg-{g.rank}' {span}>"
            f"<a class='play' {seek_attrs(a, fps)} title='play segment {g.rank} from its first frame'>"
            f"{img(frames.get((mid, THUMB_WIDTH)), 'thumbnail', f'segment {g.rank}, frame {mid}')}</a>"
            f"<div class='ends'><a {seek_attrs(a, fps)} title='first frame'>"
            f"{img(frames.get((a, SMALL_WIDTH)), 'frame-in', f'first frame {a}')}"
            f"<span class='tc'>in {smpte(a, rate)}</span></a><a {seek_attrs(last, fps)} title='last frame'>"
            f"{img(frames.get((last, SMALL_WIDTH)), 'frame-out', f'last frame {last}')}"
            f"<span class='tc'>last {smpte(last, rate)}</span></a></div>"
            f"<div class='cap'><a {seek_attrs(a, fps)}><b>#{g.rank}</b></a> "
            f"<span class='tc'>{smpte(a, rate)} – {smpte(b, rate)}</span> · {(b - a) / fps:.2f} s · "
            f"score <b title='raw {g.score:.4g}'>{u}</b> · {top}</div></div>")
    table = ("<table><tr><th>rank</th><th>in</th><th>out</th><th>seconds</th><th>frames</th><th>score 0–1</th>"
             f"<th>share</th><th>raw</th></tr>{''.join(r for _, r in sorted(rows))}</table>") if rows \
        else "<p>No segment was selected.</p>"
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{esc(v.name)} highlights</title><style>{_CSS}</style></head>"
            f"<body data-fps='{fps:.10g}' data-drop='{dropped_per_minute(rate)}'>"
            f"{head}{notes}<div class='top'>{player}<div class='tablebox'>{table}</div></div>"
            f"<div class='timeline'>{score_svg(result)}{filmstrip(result, frames)}</div>"
            f"<h2>Segments in time order</h2><div class='grid'>{''.join(cards)}</div>"
            f"<p class='meta'>highlighter · {esc(result.created)} · click a band, the curve, a frame, a card or "
            f"a row to play from there</p><script>{_JS}</script></body></html>\n")


def write_report(result: DetectResult, path: str | Path, video: str | Path | None = None) -> Path:
    """Extract the page's frames from ``video`` (default: the result's source) and write the page,
    its player linked to the video by a path relative to the page's folder."""
    src = Path(video or result.video.path)
    frames = extract_frames(src, frames_wanted(result), float(page_rate(result)))
    return atomic_write_text(path, render_html(result, frames, video_href(src, path)), protect=[result.video.path])


# --------------------------------------------------------------------------- index of a folder run
def index_path(out_dir: str | Path, reports: Iterable[Path]) -> Path:
    """``OUT/index.html``, unless a video's own report already has that name."""
    taken = {Path(os.path.abspath(r)) for r in reports}
    return next(p for p in (Path(out_dir) / n for n in INDEX_NAMES) if Path(os.path.abspath(p)) not in taken)


def index_row(oc: Any, page: Path, poster: bytes | None) -> str:
    """One video of the index: its best frame, a link to its report (and to its best moment), or why it failed."""
    name = esc(Path(oc.source).name)
    r, rep = oc.result, oc.outputs.get("html") if oc.status == "done" else None
    if r is None or rep is None:
        return (f"<tr class='{esc(oc.status)}'><td></td><td class='name'>{name}</td>"
                f"<td colspan='5'>{esc(oc.status)}: {esc(oc.message)}</td></tr>")
    href, rate = video_href(rep, page), page_rate(r)
    best = min(r.segments, key=lambda g: g.rank, default=None)
    moment = "none"
    if best:
        a, b = frame_at(best.start, rate), frame_at(best.end, rate)
        moment = f"<a href='{esc(href)}#t={float(a / rate):.3f}' class='tc'>{smpte(a, rate)} – {smpte(b, rate)}</a>"
    clear = "" if r.signal is None or r.signal.clear else " <span class='flat'>no clear highlight</span>"
    return (f"<tr class='done'><td><a href='{esc(href)}'>{img(poster, 'poster', Path(oc.source).name)}</a></td>"
            f"<td class='name'><a href='{esc(href)}'>{name}</a>{clear}</td>"
            f"<td class='tc'>{smpte(frame_at(r.video.duration, rate), rate)}</td><td>{len(r.segments)}</td>"
            f"<td>{sum(g.duration for g in r.segments):.1f} s</td><td>{moment}</td>"
            f"<td><code>{esc(r.method.name)}</code></td></tr>")


def write_index(out_dir: str | Path, outcomes: Iterable[Any]) -> Path:
    """``OUT/index.html`` linking every video's report, with its best frame; failed videos say why.

    ``outcomes``: `api.VideoOutcome`-like items (``source``, ``status``, ``message``, ``result``,
    ``outputs`` with the report under ``"html"``), in input order."""
    outcomes = list(outcomes)
    page = index_path(out_dir, [oc.outputs["html"] for oc in outcomes if "html" in oc.outputs])

    def poster(oc: Any) -> bytes | None:
        r = oc.result
        if r is None or not r.segments or "html" not in oc.outputs:
            return None
        rate, best = page_rate(r), min(r.segments, key=lambda g: g.rank)
        mid = segment_frames(best.start, best.end, rate, r.video.duration)[1]
        return extract_thumbnail(oc.source, float(mid / rate), SMALL_WIDTH, float(rate))

    with ThreadPoolExecutor(WORKERS) as pool:
        posters = list(pool.map(poster, outcomes))
    done = sum(oc.status == "done" for oc in outcomes)
    rows = "".join(index_row(oc, page, p) for oc, p in zip(outcomes, posters))
    css = (_CSS + ".poster{width:160px;display:block}td.name{text-align:left;white-space:normal}"
           "th:nth-child(2){text-align:left}.flat{color:#b60;font-size:12px}tr.failed td,tr.skipped td{color:#b00}")
    text = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>highlights</title>"
            f"<style>{css}</style></head><body><h1>Highlights</h1><div class='meta'>{done} of {len(outcomes)} "
            "video(s) done · click a video for its report, a time to open the report there</div>"
            "<table><tr><th></th><th>video</th><th>duration</th><th>segments</th><th>total</th><th>best</th>"
            f"<th>method</th></tr>{rows}</table></body></html>\n")
    return atomic_write_text(page, text, protect=[oc.source for oc in outcomes])
