"""RASL's networks and losses (torch): the branch (SA -> encoder -> RASL module -> decoder),
the k-point projections, and eqs. 5-10. Split from `methods/rasl.py` so that building a RASL
detector by name (the per-video default) imports no torch: `detect` starts decoding while the
detector's torch code is needed only when it scores. Design choices: `methods/rasl.py`'s docstring.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention(nn.Module):
    """Eqs. 1-2: ρ̄ = ρ + softmax(ρW_Q (ρW_K)^T / sqrt(d)) ρW_V W_O."""

    def __init__(self, d: int):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.scale = 1.0 / math.sqrt(d)

    def forward(self, x):
        att = torch.softmax(self.q(x) @ self.k(x).transpose(1, 2) * self.scale, dim=-1)
        return x + self.o(att @ self.v(x))


class Branch(nn.Module):
    """SA -> encoder -> RASL (ψ, weighted sum) -> decoder, for one modality."""

    def __init__(self, cfg, d: int):
        super().__init__()
        self.d = d
        self.dp = -(-d // 8) * 8  # feature axis padded to a multiple of 8
        kt, pt = cfg.kernel_t, cfg.kernel_t // 2
        c1, c2, c3 = cfg.channels
        self.sa = SelfAttention(d) if cfg.use_sa else None

        def conv(i, o):
            return nn.Conv2d(i, o, (kt, 4), stride=(1, 2), padding=(pt, 1))

        def deconv(i, o):
            return nn.ConvTranspose2d(i, o, (kt, 4), stride=(1, 2), padding=(pt, 1))

        self.enc = nn.Sequential(conv(1, c1), nn.ReLU(), conv(c1, c2), nn.ReLU(), conv(c2, c3), nn.ReLU())
        self.psi = nn.Conv2d(c3, cfg.psi_channels, (1, 3), padding=(0, 1))
        self.wsum = nn.Linear(cfg.psi_channels * self.dp // 8, 1, bias=False)
        self.dec = nn.Sequential(deconv(c3, c2), nn.ReLU(), deconv(c2, c1), nn.ReLU(), deconv(c1, 1), nn.ReLU())
        self.sigmoid = cfg.score_activation == "sigmoid"

    def forward(self, rho):
        """(B, N, d) -> dict(r (B,N,c3*dp/8), z (B,N,cψ*dp/8), s and its pre-activation logit (B,N), recon (B,N,d))."""
        x = self.sa(rho) if self.sa is not None else rho
        if self.dp != self.d:
            x = F.pad(x, (0, self.dp - self.d))
        r = self.enc(x.unsqueeze(1))  # (B, c3, N, dp/8)
        z = self.psi(r)  # (B, cψ, N, dp/8)
        b, _, n, _ = z.shape
        z_flat = z.permute(0, 2, 1, 3).reshape(b, n, -1)
        logit = self.wsum(z_flat).squeeze(-1)  # (B, N)
        s = torch.sigmoid(logit) if self.sigmoid else logit
        recon = self.dec(s[:, None, :, None] * r).squeeze(1)[..., : self.d]
        r_flat = r.permute(0, 2, 1, 3).reshape(b, n, -1)
        return {"r": r_flat, "z": z_flat, "s": s, "logit": logit, "recon": recon}


class KPoint(nn.Module):
    """Eq. 8: per-rank projections Ŵ_i, W̌_i and the k-point contrastive loss."""

    def __init__(self, k: int, zdim: int, proj: int, contrast: bool):
        super().__init__()
        self.k, self.contrast = k, contrast
        self.top = nn.ModuleList(nn.Linear(zdim, proj, bias=False) for _ in range(k))
        self.bot = nn.ModuleList(nn.Linear(zdim, proj, bias=False) for _ in range(k))
        self.proj = proj

    def forward(self, s, z):
        return kpoint_loss(s, z, self.k, self.top if self.contrast else None, self.bot, self.proj)


class RASLNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg.visual_dim
        self.visual = Branch(cfg, d) if cfg.use_visual else None
        self.audio = Branch(cfg, d) if cfg.use_audio else None
        zdim = cfg.psi_channels * (-(-d // 8) * 8) // 8
        self.kp_v = KPoint(cfg.k, zdim, cfg.proj_dim, cfg.kpoint_contrast) if cfg.use_rasl and cfg.use_visual else None
        self.kp_a = KPoint(cfg.k, zdim, cfg.proj_dim, cfg.kpoint_contrast) if cfg.use_rasl and cfg.use_audio else None
        self.temperature = nn.Parameter(torch.tensor(float(cfg.temperature_init)))


def l1_recon(target, recon):
    """Eqs. 5 / 10: mean absolute reconstruction error."""
    return (target - recon).abs().mean()


def kpoint_loss(s, z, k: int, top_proj=None, bot_proj=None, proj_dim: int = 0):
    """Eqs. 6-8 over a batch of windows: s (B, N), z (B, N, C) -> scalar.

    Top-k and bottom-k indices are each sorted by ascending s (Φ^k, Π^k); the i-th of
    each is projected by its own matrix, layer-normalised, and compared by cosine.
    ``top_proj=None`` drops the contrast: η = mean of the top-k s (Fig. 6 ablation).
    """
    top = torch.topk(s, k, dim=1, largest=True).indices.flip(1)  # ascending s
    bot = torch.topk(s, k, dim=1, largest=False).indices  # ascending s
    s_top = torch.gather(s, 1, top)  # (B, k)
    if top_proj is None:
        eta = s_top.mean(1)
    else:
        zt = torch.gather(z, 1, top[..., None].expand(-1, -1, z.shape[-1]))
        zb = torch.gather(z, 1, bot[..., None].expand(-1, -1, z.shape[-1]))
        pt = torch.stack([top_proj[i](zt[:, i]) for i in range(k)], 1)
        pb = torch.stack([bot_proj[i](zb[:, i]) for i in range(k)], 1)
        pt, pb = F.layer_norm(pt, (pt.shape[-1],)), F.layer_norm(pb, (pb.shape[-1],))
        sim = F.cosine_similarity(pt, pb, dim=-1)  # (B, k)
        eta = (s_top * (1.0 - sim)).mean(1)
    return F.softplus(-eta).mean()  # -log(1 / (1 + e^-η))


def scl_loss(ra, rv, log_scale, source=None):
    """Eq. 9, CLIP-style: symmetric cross-entropy over cosine logits scaled by exp(Γ).

    ``ra``, ``rv``: (M, C) paired rows. ``source`` (M,) ids the clip each row came
    from; rows repeating the same clip are removed from each other's negatives.
    """
    a, v = F.normalize(ra, dim=-1), F.normalize(rv, dim=-1)
    logits = log_scale.clamp(max=math.log(100.0)).exp() * (a @ v.T)
    if source is not None:
        same = source[:, None] == source[None, :]
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def resample_dim(x, d: int):
    """Linear interpolation along the feature axis: (..., Da) -> (..., d)."""
    if x.shape[-1] == d:
        return x
    shape = x.shape[:-1]
    y = F.interpolate(x.reshape(-1, 1, x.shape[-1]), size=d, mode="linear", align_corners=True)
    return y.reshape(*shape, d)
