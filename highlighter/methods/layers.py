"""Torch building blocks shared by several detectors.

CHD's generic attention layer is reused by AVR (same group of authors), and
padded, masked batches of videos are how CHD and AVR train; they live here so no
method module imports another.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def pad_batch(seqs: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, D) zero-padded float tensor and (B, T) bool mask of real clips."""
    t = max(s.shape[0] for s in seqs)
    x = torch.zeros(len(seqs), t, seqs[0].shape[1])
    mask = torch.zeros(len(seqs), t, dtype=torch.bool)
    for i, s in enumerate(seqs):
        x[i, : s.shape[0]] = torch.from_numpy(np.ascontiguousarray(s, dtype=np.float32))
        mask[i, : s.shape[0]] = True
    return x, mask


class AttnLayer(nn.Module):
    """CHD's generic attention layer (Sec. 3.1, Fig. 3): X queries Y.

    dropout(X), dropout(Y) -> q, k, v -> softmax over keys -> dropout(z_hat)
    -> [+X] -> LayerNorm -> FF [+] -> LayerNorm. Residuals only when ``residual``.
    """

    def __init__(self, d: int, p: float, scale: float | None = None, residual: bool = True):
        super().__init__()
        self.wq = nn.Linear(d, d, bias=False)
        self.wk = nn.Linear(d, d, bias=False)
        self.wv = nn.Linear(d, d, bias=False)
        self.drop_in = nn.Dropout(p)
        self.drop_out = nn.Dropout(p)
        self.ln1 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.ln2 = nn.LayerNorm(d)
        self.scale = 1.0 / math.sqrt(d) if scale is None else scale
        self.residual = residual

    def forward(self, x: torch.Tensor, y: torch.Tensor, key_mask: torch.Tensor | None = None,
                logit_bias: torch.Tensor | None = None):
        """x (B, K, d), y (B, L, d), key_mask (B, L) True = real -> alpha (B, K, L), z (B, K, d).

        ``logit_bias`` (B, K, L), optional, is added to the attention logits (a prior over keys).
        """
        x = self.drop_in(x)
        y = self.drop_in(y)
        logits = torch.einsum("bkd,bld->bkl", self.wq(x), self.wk(y)) * self.scale
        if logit_bias is not None:
            logits = logits + logit_bias
        if key_mask is not None:
            logits = logits.masked_fill(~key_mask[:, None, :], float("-inf"))
        alpha = logits.softmax(dim=-1)
        z = self.drop_out(alpha @ self.wv(y))
        if self.residual:
            z = z + x
        z = self.ln1(z)
        z = self.ln2(z + self.ff(z) if self.residual else self.ff(z))
        return alpha, z
