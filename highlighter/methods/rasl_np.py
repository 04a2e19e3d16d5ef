"""RASL's per-video pretraining in numpy: the per-clip network, forward and backward written out.

Why: per-video RASL (the default) is the only user of torch in an offline ``detect``, and importing
torch costs ~1.8 s of wall (of 13.7 s on the 173-s benchmark join) and ~0.5 GB of RSS (issue 14).
The network the default trains (`VIDEO_PRETRAIN`: no self-attention, ``kernel_t`` = 1) is small and
works on each clip alone: three stride-2 convolutions along the feature axis, ψ, a weighted sum, three
transposed convolutions. So it is written here with numpy, together with its losses (eqs. 5-10 as
`rasl_net` reads them: L1 reconstruction, k-point contrast, CLIP-style SCL, masked auxiliary
reconstruction) and `torch_utils.RMSprop`'s update. `tests/test_rasl_np.py` checks the loss and
every gradient against torch autograd on `rasl_net.RASLNet` with the same weights (float64, to
1e-9). What differs from the torch engine is only where the random draws come from (numpy's
generator for the initial weights, the window order and the masks), so a run with a given seed is a
different run; the per-video rows of the results table are measured with this engine.

Arrays are channels-last, one row per clip: (M, L, C), M = clips in the batch, L = the feature axis, so
that im2col and the matrix products need no transposed copies. A flattened z or r is therefore ordered
(L, C) where torch's is (C, L): the weighted sum and the k-point projections are stored in that order
(`from_torch_state` permutes them; every loss is otherwise the same, cosines and norms being order-free).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from highlighter.methods.windows import gather_windows, make_windows, score_by_windows

LN_EPS = 1e-5  # F.layer_norm's default
NORM_EPS = 1e-12  # F.normalize's default
LOG_SCALE_MAX = math.log(100.0)  # Γ clamp, as in CLIP and rasl_net.scl_loss
RMS_ALPHA, RMS_EPS = 0.99, 1e-8  # torch.optim.RMSprop's defaults


def supports(cfg: Any) -> bool:
    """The configurations this engine covers: the per-clip network (no SA, one clip per conv) with vision."""
    return not cfg.use_sa and cfg.kernel_t == 1 and cfg.use_visual


# ----------------------------------------------------------------------------- layers (channels-last)


def _im2col(xp: np.ndarray, k: int, stride: int, n: int) -> np.ndarray:
    """(M, L, C) padded -> (M, n, K*C): the inputs each of n output positions sees, tap-major. Stride 2 with
    K = 4 (every encoder layer) reads the axis as pairs: two contiguous slices instead of four strided ones."""
    m, length, c = xp.shape
    if stride == 2 and k == 4 and length == 2 * (n + 1):
        pairs = xp.reshape(m, n + 1, 2 * c)
        return np.concatenate([pairs[:, :n], pairs[:, 1:]], axis=2)
    return np.concatenate([xp[:, t: t + stride * (n - 1) + 1: stride] for t in range(k)], axis=2)


def _col2im(cols: np.ndarray, k: int, stride: int, n: int, length: int) -> np.ndarray:
    """The adjoint of `_im2col`: cols (M, n, K*C) summed back onto a new (M, length, C) at the positions they
    came from. With the pairs of `_im2col` each pair of positions gets one slice of each half: built in one
    pass, without a zeroed buffer to add into."""
    m, _, kc = cols.shape
    c = kc // k
    if stride == 2 and k == 4 and length == 2 * (n + 1):
        pairs = np.empty((m, n + 1, 2 * c), dtype=cols.dtype)
        pairs[:, 0] = cols[:, 0, : 2 * c]
        np.add(cols[:, 1:, : 2 * c], cols[:, :-1, 2 * c:], out=pairs[:, 1:n])
        pairs[:, n] = cols[:, n - 1, 2 * c:]
        return pairs.reshape(m, length, c)
    out = np.zeros((m, length, c), dtype=cols.dtype)
    for t in range(k):
        out[:, t: t + stride * (n - 1) + 1: stride] += cols[:, :, t * c: (t + 1) * c]
    return out


def _sum_rows(g: np.ndarray) -> np.ndarray:
    """Column sums of a tall (rows, O) matrix as one matrix-vector product (numpy's axis-0 sum is slow here)."""
    return np.ones(g.shape[0], dtype=g.dtype) @ g


def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> tuple[np.ndarray, tuple]:
    """Conv1d along L (torch's Conv2d with kernel (1, K) on one clip): x (M, L, C), w (O, C, K) -> (M, L', O)."""
    m, length, c = x.shape
    o, _, k = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (0, 0))) if pad else x
    n = (length + 2 * pad - k) // stride + 1
    cols = _im2col(xp, k, stride, n).reshape(m * n, k * c)
    y = (cols @ w.transpose(2, 1, 0).reshape(k * c, o)).reshape(m, n, o) + b
    return y, (cols, x.shape, n, stride, pad)


def conv_back(dy: np.ndarray, w: np.ndarray, cache: tuple, need_dx: bool = True):
    """(dx or None, dw, db) of `conv`."""
    cols, (m, length, c), n, stride, pad = cache
    o, _, k = w.shape
    g = dy.reshape(m * n, o)
    dw = (cols.T @ g).reshape(k, c, o).transpose(2, 1, 0)
    db = _sum_rows(g)
    if not need_dx:
        return None, dw, db
    dcols = (g @ w.transpose(2, 1, 0).reshape(k * c, o).T).reshape(m, n, k * c)
    return _col2im(dcols, k, stride, n, length + 2 * pad)[:, pad: pad + length], dw, db


def deconv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> tuple[np.ndarray, tuple]:
    """ConvTranspose1d along L (torch's ConvTranspose2d with kernel (1, K)): x (M, L, C), w (C, O, K) -> (M, L', O)."""
    m, length, c = x.shape
    _, o, k = w.shape
    full = (length - 1) * stride + k
    xm = x.reshape(m * length, c)
    parts = (xm @ w.transpose(0, 2, 1).reshape(c, k * o)).reshape(m, length, k * o)
    return _col2im(parts, k, stride, length, full)[:, pad: full - pad] + b, (xm, x.shape, stride, pad)


def deconv_back(dy: np.ndarray, w: np.ndarray, cache: tuple):
    """(dx, dw, db) of `deconv`."""
    xm, (m, length, c), stride, pad = cache
    _, o, k = w.shape
    full = (length - 1) * stride + k
    dfull = np.zeros((m, full, o), dtype=dy.dtype)
    dfull[:, pad: full - pad] = dy
    dparts = _im2col(dfull, k, stride, length).reshape(m * length, k * o)
    wr = w.transpose(0, 2, 1).reshape(c, k * o)
    dw = (xm.T @ dparts).reshape(c, k, o).transpose(0, 2, 1)
    dx = (dparts @ wr.T).reshape(m, length, c)
    return dx, dw, _sum_rows(dy.reshape(-1, o))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warning for large |x|


def resample_dim(x: np.ndarray, d: int) -> np.ndarray:
    """`rasl_net.resample_dim`: linear interpolation along the last axis, corners aligned: (..., Da) -> (..., d)."""
    da = x.shape[-1]
    if da == d:
        return x
    src = np.arange(d, dtype=np.float64) * ((da - 1) / (d - 1) if d > 1 else 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), da - 1)
    i1 = np.minimum(i0 + 1, da - 1)
    frac = (src - i0).astype(x.dtype)
    return x[..., i0] * (1 - frac) + x[..., i1] * frac


# ----------------------------------------------------------------------------- parameters

BRANCH = ("enc0_w", "enc0_b", "enc1_w", "enc1_b", "enc2_w", "enc2_b", "psi_w", "psi_b", "wsum",
          "dec0_w", "dec0_b", "dec1_w", "dec1_b", "dec2_w", "dec2_b")


def init_params(cfg: Any, d: int, audio: bool, rng: np.random.Generator, dtype=np.float32) -> dict[str, np.ndarray]:
    """Fresh weights with torch's default initialisation (uniform in ±1/sqrt(fan_in), weights and biases),
    drawn from ``rng``: the visual branch (prefix ``v.``), the audio one (``a.``) when ``audio``, the k-point
    projections (``kp_v.top.i`` ...) and Γ (``temperature``)."""
    dp = -(-d // 8) * 8
    c1, c2, c3 = cfg.channels
    cp = cfg.psi_channels
    zdim = cp * dp // 8

    def uniform(shape: tuple, fan_in: int) -> np.ndarray:
        bound = 1.0 / math.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape).astype(dtype)

    p: dict[str, np.ndarray] = {}
    for m in ("v", "a") if audio else ("v",):
        for i, (ci, co) in enumerate(((1, c1), (c1, c2), (c2, c3))):
            p[f"{m}.enc{i}_w"], p[f"{m}.enc{i}_b"] = uniform((co, ci, 4), ci * 4), uniform((co,), ci * 4)
        p[f"{m}.psi_w"], p[f"{m}.psi_b"] = uniform((cp, c3, 3), c3 * 3), uniform((cp,), c3 * 3)
        p[f"{m}.wsum"] = uniform((zdim,), zdim)
        for i, (ci, co) in enumerate(((c3, c2), (c2, c1), (c1, 1))):  # ConvTranspose: fan_in from dim 1
            p[f"{m}.dec{i}_w"], p[f"{m}.dec{i}_b"] = uniform((ci, co, 4), co * 4), uniform((co,), co * 4)
        if cfg.use_rasl:
            for side in ("top", "bot"):
                for i in range(cfg.k):
                    p[f"kp_{m}.{side}.{i}"] = uniform((cfg.proj_dim, zdim), zdim)
    p["temperature"] = np.asarray(cfg.temperature_init, dtype=dtype)
    return p


def from_torch_state(state: dict) -> dict[str, np.ndarray]:
    """`rasl_net.RASLNet`'s state dict (tensors or arrays) under this module's names (the tests compare the engines)."""
    out: dict[str, np.ndarray] = {}
    psi = next(v for k, v in state.items() if k.endswith("psi.weight"))
    cpsi = int(psi.shape[0])

    def z_order(w: np.ndarray) -> np.ndarray:  # last axis (C, L) -> (L, C)
        return w.reshape(*w.shape[:-1], cpsi, -1).swapaxes(-1, -2).reshape(w.shape)

    torch_names = {"enc0": "enc.0", "enc1": "enc.2", "enc2": "enc.4", "dec0": "dec.0", "dec1": "dec.2",
                   "dec2": "dec.4", "psi": "psi"}
    for key, value in state.items():
        arr = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value)
        head, _, rest = key.partition(".")
        if head in ("visual", "audio"):
            m = head[0]
            if rest == "wsum.weight":
                out[f"{m}.wsum"] = z_order(arr.reshape(-1))
                continue
            mod, _, kind = rest.rpartition(".")
            name = next(n for n, t in torch_names.items() if t == mod)
            out[f"{m}.{name}_{kind[0]}"] = arr[:, :, 0, :] if arr.ndim == 4 else arr
        elif head in ("kp_v", "kp_a"):
            out[f"{head}.{rest.removesuffix('.weight')}"] = z_order(arr)
        elif key == "temperature":
            out[key] = arr
    return out


# ----------------------------------------------------------------------------- the branch


def branch_forward(p: dict, m: str, rho: np.ndarray, sigmoid_s: bool = True) -> tuple[dict, dict]:
    """`rasl_net.Branch.forward` without SA: rho (B, N, d) -> (outputs as there, cache for `branch_backward`)."""
    b, n, d = rho.shape
    dp = -(-d // 8) * 8
    x = rho.reshape(b * n, d, 1)
    if dp != d:
        x = np.pad(x, ((0, 0), (0, dp - d), (0, 0)))
    c: dict[str, Any] = {"shape": (b, n, d), "sigmoid": sigmoid_s}
    h = x
    for i in range(3):
        a, c[f"enc{i}"] = conv(h, p[f"{m}.enc{i}_w"], p[f"{m}.enc{i}_b"], 2, 1)
        c[f"enc{i}_pos"] = a > 0
        h = np.maximum(a, 0)
    r = h
    z, c["psi"] = conv(r, p[f"{m}.psi_w"], p[f"{m}.psi_b"], 1, 1)
    zf = z.reshape(b * n, -1)
    logit = zf @ p[f"{m}.wsum"]
    s = sigmoid(logit) if sigmoid_s else logit
    h = s[:, None, None] * r
    for i in range(3):
        a, c[f"dec{i}"] = deconv(h, p[f"{m}.dec{i}_w"], p[f"{m}.dec{i}_b"], 2, 1)
        c[f"dec{i}_pos"] = a > 0
        h = np.maximum(a, 0)
    c.update(r=r, zf=zf, s=s)
    out = {"r": r.reshape(b, n, -1), "z": zf.reshape(b, n, -1), "s": s.reshape(b, n), "logit": logit.reshape(b, n),
           "recon": h[:, :d, 0].reshape(b, n, d)}
    return out, c


def branch_backward(p: dict, m: str, c: dict, d_recon: np.ndarray, d_s=None, d_z=None, d_r=None) -> dict:
    """Gradients of the branch's parameters from those of its outputs (recon; s, z, r when given)."""
    b, n, d = c["shape"]
    r, zf, s = c["r"], c["zf"], c["s"]
    g: dict[str, np.ndarray] = {}
    dh = np.zeros((b * n, -(-d // 8) * 8, 1), dtype=d_recon.dtype)
    dh[:, :d, 0] = d_recon.reshape(b * n, d)
    for i in (2, 1, 0):
        dh = dh * c[f"dec{i}_pos"]
        dh, g[f"{m}.dec{i}_w"], g[f"{m}.dec{i}_b"] = deconv_back(dh, p[f"{m}.dec{i}_w"], c[f"dec{i}"])
    ds = (dh * r).sum(axis=(1, 2))
    dr = dh * s[:, None, None]
    if d_s is not None:
        ds = ds + d_s.reshape(-1)
    if d_r is not None:
        dr = dr + d_r.reshape(r.shape)
    dlogit = ds * s * (1 - s) if c["sigmoid"] else ds
    g[f"{m}.wsum"] = zf.T @ dlogit
    dzf = np.outer(dlogit, p[f"{m}.wsum"])
    if d_z is not None:
        dzf = dzf + d_z.reshape(dzf.shape)
    dz = dzf.reshape(b * n, -1, p[f"{m}.psi_w"].shape[0])
    dr2, g[f"{m}.psi_w"], g[f"{m}.psi_b"] = conv_back(dz, p[f"{m}.psi_w"], c["psi"])
    dh = dr + dr2
    for i in (2, 1, 0):
        dh = dh * c[f"enc{i}_pos"]
        dh, g[f"{m}.enc{i}_w"], g[f"{m}.enc{i}_b"] = conv_back(dh, p[f"{m}.enc{i}_w"], c[f"enc{i}"], need_dx=i > 0)
    return g


# ----------------------------------------------------------------------------- losses with their gradients


def l1(target: np.ndarray, recon: np.ndarray) -> tuple[float, np.ndarray]:
    """Eqs. 5 / 10: mean |target - recon| and its gradient w.r.t. recon."""
    diff = recon - target
    return float(np.abs(diff).mean()), np.sign(diff) / diff.size


def _layer_norm(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = x.mean(-1, keepdims=True)
    inv = 1.0 / np.sqrt(x.var(-1, keepdims=True) + LN_EPS)
    return (x - mu) * inv, inv


def _layer_norm_back(du: np.ndarray, u: np.ndarray, inv: np.ndarray) -> np.ndarray:
    return inv * (du - du.mean(-1, keepdims=True) - u * (du * u).mean(-1, keepdims=True))


def kpoint(p: dict, m: str, s: np.ndarray, z: np.ndarray, k: int, contrast: bool):
    """`rasl_net.kpoint_loss` (eqs. 6-8) on s (B, N), z (B, N, Z): (loss, ds, dz, parameter gradients)."""
    b = s.shape[0]
    rows = np.arange(b)[:, None]
    top = np.argsort(-s, axis=1, kind="stable")[:, :k][:, ::-1]  # the top k, ascending s
    bot = np.argsort(s, axis=1, kind="stable")[:, :k]  # the bottom k, ascending s
    s_top = s[rows, top]
    ds, dz, g = np.zeros_like(s), np.zeros_like(z), {}
    if not contrast:
        eta = s_top.mean(1)
        deta = -sigmoid(-eta) / b
        ds[rows, top] += deta[:, None] / k
        return float(np.logaddexp(0, -eta).mean()), ds, dz, g
    zt, zb = z[rows, top], z[rows, bot]  # (B, k, Z)
    wt = [p[f"kp_{m}.top.{i}"] for i in range(k)]
    wb = [p[f"kp_{m}.bot.{i}"] for i in range(k)]
    ut, it_ = _layer_norm(np.stack([zt[:, i] @ wt[i].T for i in range(k)], 1))
    ub, ib = _layer_norm(np.stack([zb[:, i] @ wb[i].T for i in range(k)], 1))
    nt, nb = np.linalg.norm(ut, axis=-1), np.linalg.norm(ub, axis=-1)
    cos = (ut * ub).sum(-1) / (nt * nb)
    eta = (s_top * (1.0 - cos)).mean(1)
    deta = -sigmoid(-eta) / b  # d mean softplus(-eta) / d eta
    ds[rows, top] += deta[:, None] * (1.0 - cos) / k
    dcos = (-deta[:, None] * s_top / k)[..., None]
    dut = dcos * (ub / (nt * nb)[..., None] - cos[..., None] * ut / (nt ** 2)[..., None])
    dub = dcos * (ut / (nt * nb)[..., None] - cos[..., None] * ub / (nb ** 2)[..., None])
    dpt, dpb = _layer_norm_back(dut, ut, it_), _layer_norm_back(dub, ub, ib)
    for i in range(k):
        g[f"kp_{m}.top.{i}"] = dpt[:, i].T @ zt[:, i]
        g[f"kp_{m}.bot.{i}"] = dpb[:, i].T @ zb[:, i]
        np.add.at(dz, (np.arange(b), top[:, i]), dpt[:, i] @ wt[i])
        np.add.at(dz, (np.arange(b), bot[:, i]), dpb[:, i] @ wb[i])
    return float(np.logaddexp(0, -eta).mean()), ds, dz, g


def scl(ra: np.ndarray, rv: np.ndarray, log_scale: np.ndarray, source: np.ndarray):
    """`rasl_net.scl_loss` (eq. 9, CLIP-style) on paired rows (M, C): (loss, dra, drv, dΓ)."""
    na = np.maximum(np.linalg.norm(ra, axis=1, keepdims=True), NORM_EPS)
    nv = np.maximum(np.linalg.norm(rv, axis=1, keepdims=True), NORM_EPS)
    a, v = ra / na, rv / nv
    gamma = float(log_scale)
    scale = math.exp(min(gamma, LOG_SCALE_MAX))
    sim = a @ v.T
    logits = scale * sim
    same = source[:, None] == source[None, :]
    np.fill_diagonal(same, False)
    logits = np.where(same, -np.inf, logits)
    n = len(ra)
    diag = np.arange(n)
    lse_r = np.logaddexp.reduce(logits, axis=1)
    lse_c = np.logaddexp.reduce(logits, axis=0)
    loss = 0.5 * ((lse_r - logits[diag, diag]).mean() + (lse_c - logits[diag, diag]).mean())
    eye = np.eye(n, dtype=ra.dtype)
    dlog = 0.5 * ((np.exp(logits - lse_r[:, None]) - eye) + (np.exp(logits - lse_c[None, :]) - eye)) / n
    dsim = dlog * scale
    dgamma = float((dlog * sim).sum() * scale) if gamma <= LOG_SCALE_MAX else 0.0
    da, dv = dsim @ v, dsim.T @ a

    def back(dx, x, norm):
        return np.where(norm > NORM_EPS, (dx - x * (x * dx).sum(1, keepdims=True)) / norm, dx / NORM_EPS)

    return float(loss), back(da, a, na), back(dv, v, nv), dgamma


def losses_and_grads(p: dict, cfg: Any, rho_v: np.ndarray, rho_a: np.ndarray | None, mask: np.ndarray,
                     source: np.ndarray) -> tuple[float, dict[str, float], dict[str, np.ndarray]]:
    """Eq. 11 on one batch, as `RASL._losses` computes it: (total, parts, gradient of every parameter)."""
    sig = cfg.score_activation == "sigmoid"
    parts: dict[str, float] = {}
    grads: dict[str, np.ndarray] = {}
    upstream: dict[str, dict] = {}
    outs, caches = {}, {}

    def add(g: dict) -> None:
        for key, val in g.items():
            grads[key] = grads[key] + val if key in grads else val

    for m, rho in (("v", rho_v), ("a", rho_a)):
        if rho is None:
            continue
        outs[m], caches[m] = branch_forward(p, m, rho, sig)
        parts[f"rec_{m}"], d_recon = l1(rho, outs[m]["recon"])
        up = {"d_recon": d_recon}
        if cfg.use_rasl:
            parts[f"kp_{m}"], up["d_s"], up["d_z"], g = kpoint(p, m, outs[m]["s"], outs[m]["z"], cfg.k,
                                                              cfg.kpoint_contrast)
            add(g)
        if cfg.use_aux:
            masked, mc = branch_forward(p, m, rho * mask[..., None], sig)
            parts[f"aux_{m}"], d_aux = l1(rho, masked["recon"])
            add(branch_backward(p, m, mc, d_aux))
        upstream[m] = up
    if "v" in outs and "a" in outs:
        b, n, c = outs["v"]["r"].shape
        parts["scl"], dra, drv, grads["temperature"] = scl(outs["a"]["r"].reshape(b * n, c),
                                                           outs["v"]["r"].reshape(b * n, c),
                                                           p["temperature"], source.reshape(-1))
        upstream["a"]["d_r"], upstream["v"]["d_r"] = dra, drv
    for m, up in upstream.items():
        add(branch_backward(p, m, caches[m], **up))
    grads["temperature"] = np.asarray(grads.get("temperature", 0.0), dtype=rho_v.dtype)
    return sum(parts.values()), parts, grads


# ----------------------------------------------------------------------------- training and scoring


def pretrain(cfg: Any, visual: np.ndarray, audio: np.ndarray | None, seed: int) -> dict[str, np.ndarray]:
    """`RASL._fit` on one video, in numpy: RMSprop over shuffled windows for ``cfg.epochs``; the weights."""
    rng = np.random.default_rng(seed)
    d = visual.shape[1]
    p = init_params(cfg, d, audio is not None, rng)
    square = {key: np.zeros_like(val) for key, val in p.items()}
    windows = make_windows([len(visual)], cfg.window)
    n_mask = int(round(cfg.mask_ratio * cfg.window))
    for _ in range(cfg.epochs):
        order = rng.permutation(len(windows))
        for i in range(0, len(order), cfg.batch_size):
            wins = [windows[j] for j in order[i: i + cfg.batch_size]]
            rho_v = gather_windows([visual], wins)
            rho_a = None if audio is None else resample_dim(gather_windows([audio], wins), d)
            mask = np.ones((len(wins), cfg.window), dtype=np.float32)
            for row in mask:
                row[rng.permutation(cfg.window)[:n_mask]] = 0.0
            source = np.stack([w.index for w in wins])
            _, _, grads = losses_and_grads(p, cfg, rho_v, rho_a, mask, source)
            for key, g in grads.items():  # torch_utils.RMSprop, op for op
                square[key] = RMS_ALPHA * square[key] + (1 - RMS_ALPHA) * g * g
                p[key] = (p[key] - cfg.lr * g / (np.sqrt(square[key]) + RMS_EPS)).astype(p[key].dtype)
    return p


def runs(cfg: Any, visual: np.ndarray, audio: np.ndarray | None, seeds: list[int],
         workers: int | None = None) -> list[np.ndarray]:
    """Per-video runs (`pretrain` then `score`), one per seed, ``workers`` at a time in threads (default: all of
    them at once), each on one BLAS thread. Why: the matrices are small, so a run gains nothing from a second
    BLAS thread (on a 323-clip video two OpenBLAS threads took 7.2 s of CPU for the 3.6 s of wall one thread
    takes), while runs side by side use the cores (numpy releases the GIL in its array loops) when the detector
    is the only stage left. All 3 runs at once on 2 cores rather than 2 then 1, which leaves a core idle
    for the last run: 0.82-0.84 s of wall instead of 1.01-1.08 on the 173-s join (`benchmarks/detect.py`'s
    video). Each run has its own generator, so the scores do not depend on ``workers`` (tested)."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    def one(seed: int) -> np.ndarray:
        return score(pretrain(cfg, visual, audio, seed), cfg, visual)

    with threadpool_limits(limits=1, user_api="blas"):
        workers = len(seeds) if workers is None else workers
        if workers <= 1 or len(seeds) <= 1:
            return [one(seed) for seed in seeds]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="highlighter-rasl") as pool:
            return list(pool.map(one, seeds))


def score(p: dict, cfg: Any, visual: np.ndarray, normalize: str = "zscore") -> np.ndarray:
    """Visual-branch logits window by window (as `RASL.score`), normalised per video."""
    sig = cfg.score_activation == "sigmoid"
    return score_by_windows(lambda w: branch_forward(p, "v", w, sig)[0]["logit"], visual, cfg.window,
                            batch_size=cfg.batch_size, normalize=normalize)
