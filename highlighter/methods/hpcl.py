"""HPCL: supervised audio-visual highlight detection with hard-pairs guided contrastive
learning (Li et al., "Probing Visual-Audio Representation for Video Highlight Detection
via Hard-Pairs Guided Contrastive Learning", 2022).

Per modality, a transformer encoder models within-modality relations and a decoder
with one query abstracts a global context that is added back to every clip
(Sec. 3.2). Two co-occurrence decoders let each modality's clips attend over the
concatenated visual+audio sequence (2T keys, Sec. 3.3), so a clip can pick what it
needs from either modality at any time rather than assuming sync. Three heads score
the co-occurrence, visual and audio streams; the final score is their weighted sum
(Sec. 3.4). Training adds to the segment-wise CE a supervised dense contrastive loss
over the clips of a sample (eq. 8) and a margin loss that pushes apart the clip pairs
that straddle highlight boundaries (eq. 9): L = CE + 0.3 HPCL + 0.1 rank (eq. 11).

Choices where the paper is silent or ambiguous (config fields where it matters):

* Encoder layer (eqs. 1-3): 8 heads over d_k = d_v = 512 (64 per head); the residual
  is the *value* projection (eq. 2: softmax(QK^T/sqrt(d_k))S + S); eq. 3's FFN maps
  d_v -> d_v -> d. We add a linear d_v -> d shortcut around that FFN and a LayerNorm
  (the "standard transformer encoder [53]" has both; without them 2 layers of 0.5
  dropout train poorly). The global-context and co-occurrence decoders are canonical
  post-LN cross-attention decoder layers (residual, LayerNorm, FFN d -> 2d -> d),
  n = 2 layers each; the memory (keys/values) stays the encoder output.
* No positional encoding (none is mentioned); ``pos_encoding=true`` adds sinusoidal ones.
* Global context query (Table 5): ``global_init`` = mean (mean of the encoder's clip
  embeddings, the paper's default) | random (a learned vector) | none (w/o G).
* Heads output one logit per clip; "CE" is binary cross-entropy with logits, summed
  over the three heads (eq. 10). The final score is the weighted sum of the heads'
  sigmoid probabilities, weights ``head_weights`` (co, visual, audio), equal by
  default (the paper gives no weights).
* HPCL (eq. 8) runs on the L2-normalised eq.-7 embeddings with temperature ``tau`` =
  0.1 (not given); the stray un-tempered exp(q.k+) in the printed denominator is read
  as exp(q.k+/tau). Positives exclude the query itself. Mean over positives, then over
  the queries that have >=1 positive and >=1 negative, then over samples.
* Hard pairs (Sec. 3.5.3): for a boundary between clips b and b+1 of a sample
  (labels differ), the pairs are (b+1-k, b+k), k = 1..L (k = 1 is the adjacent pair),
  indices clamped to the sample; only pairs whose labels differ are kept (the paper:
  "negative data ... are true negative"). d(p) is the Euclidean distance of the
  L2-normalised embeddings (raw 512-d features would sit far beyond margin 0.7 and
  the loss would vanish). Eq. 9's sum over pairs is per sample, then averaged over
  the batch.
* Sampling (Sec. 4.2): a random window of T = 20 consecutive clips; if its minority
  class has fewer than ceil(T/3) clips (ratio below 1:2), that many clips of the
  minority class are drawn from elsewhere in the same video to replace random
  majority clips, and the indices are re-sorted (temporal order). Videos shorter than
  T repeat clips in order. An epoch draws ``samples_per_video`` samples per video (1:
  a dataset item is a video; 0 = round(clips / T), covering each video once); videos
  with a single class are skipped (nothing to contrast). Batch size 8 (not given).
* Training labels: YouTube ``match > 0``; TVSum: the clip's mean over the 20 annotators
  strictly above the video's median (the paper: "select the higher 50% of the scores").
* Inference scores the whole video at once (``infer_window = 0``); a positive value
  scores consecutive windows of that length (repeat-padded) instead.

Default = the paper's settings with one departure: an epoch is one pass over the clips
(``samples_per_video = 0``; the paper does not say; 1 sample per video per epoch under-trains).
It measured best over 3 seeds (docs/hpcl.md: TVSum val 0.616 / 0.840 under UMT's / the papers'
protocol). ``presets["paper"]`` is the literal setting (1 sample per video per epoch);
``presets["fast"]`` is the cheaper variant measured this round: per-video standardised inputs
(``input_norm``) plus the norm channel, d = d_k = d_v = 128, lr 5e-4 for 8 epochs (3.5x cheaper;
YouTube CV 0.574 +- 0.016, TVSum val 0.552 / 0.797: not better). ``per_domain`` (one model per domain, as the
UMT lineage trains; a video goes to the domain whose scene it resembles) is available
and off: worse on YouTube CV (0.543 vs 0.576, folds 0+1), better on TVSum val for one
seed (0.632 vs 0.543, 10 videos).

Ablation flags (paper tables): ``variant`` co-av | cr-av | av | v | a (Table 3),
``w_hpcl = 0`` / ``w_rank = 0`` (Table 4), ``global_init`` (Table 5).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from highlighter.errors import InputError
from highlighter.methods.base import Detector, NetStateMixin, TrainReport, register_method
from highlighter.methods.config import BadValue, choice
from highlighter.methods.data import check_features
from highlighter.methods.torch_utils import training_run
from highlighter.methods.windows import score_by_windows

VARIANTS = ("co-av", "cr-av", "av", "v", "a")
GLOBAL_INITS = ("mean", "random", "none")
INPUT_NORMS = ("none", "scale", "center", "zscore", "l2")
HEADS = {"co-av": ("co", "visual", "audio"), "cr-av": ("co", "visual", "audio"), "av": ("visual",),
         "v": ("visual",), "a": ("audio",)}  # the score heads each variant has


@dataclass
class HPCLConfig:
    """The paper's settings (Sec. 4.2 / eq. 11) except the fields marked *departure*, each
    measured in docs/hpcl.md; ``HPCL.presets["paper"]`` restores the paper's values.
    Feature dims (and ``domains``) are set from the data at fit."""

    visual_dim: int = 1024
    audio_dim: int = 2048
    # The paper's widths (the narrower d = d_k = d_v = 128 of the "fast" preset is 3.5x cheaper
    # per clip but lost on TVSum val over 3 seeds, docs/hpcl.md).
    d: int = 256
    d_k: int = 512
    d_v: int = 512
    heads: int = 8
    layers: int = 2
    dropout: float = 0.5
    variant: str = choice(*VARIANTS)  # Table 3: co-av (ours) | cr-av | av | v | a
    global_init: str = choice(*GLOBAL_INITS)  # Table 5: mean | random | none
    pos_encoding: bool = False
    w_ce: float = 1.0  # lambda_1
    w_hpcl: float = 0.3  # lambda_2; 0 = Table 4 "CE" baseline
    w_rank: float = 0.1  # lambda_3; 0 = Table 4 "CE + HPCL"
    tau: float = 0.1
    margin: float = 0.7
    region: int = 3  # L
    seq_len: int = 20  # T segments per sample
    min_minority: float = 1 / 3  # minority share of a sample (ratio >= 1:2)
    head_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)  # co, visual, audio
    lr: float = 1e-4  # the paper's (the "fast" preset: 5e-4 for 8 epochs on standardised inputs)
    epochs: int = 20
    batch_size: int = 8
    # *departure*: 0 = round(clips / seq_len) samples per video per epoch, i.e. an epoch is
    # one pass over the clips (the paper does not say; 1 per video under-trains: ~600 steps).
    samples_per_video: int = 0
    infer_window: int = 0  # 0 = whole video
    # *departure*: per-video standardisation of each modality (paper: raw features). Raw
    # I3D/PANN features are non-negative with a video-dependent level; on them the loss
    # stays at chance for lr >= 5e-4 (measured), standardised it trains.
    input_norm: str = choice("none", *[m for m in INPUT_NORMS if m != "none"])
    # *departure*: append each clip's feature norm (standardised within the video) as one
    # more input per modality. Standardising removes the level that the training-free
    # feature-norm baseline ranks by; this gives it back as one explicit channel.
    norm_channel: bool = False
    per_domain: bool = False  # one model per training domain (UMT lineage), a video routed to its nearest
    domains: tuple[str, ...] = ()  # set at fit when per_domain (the routed models' names)
    device: str = "auto"  # auto | cpu | cuda | cuda:N (training)
    threads: int = 1  # torch intra-op threads while training (determinism)

    def check(self) -> None:
        if self.d_k % self.heads:
            raise BadValue("d_k", f"a multiple of heads ({self.heads})")
        if self.d_v % self.heads:
            raise BadValue("d_v", f"a multiple of heads ({self.heads})")
        w = dict(zip(("co", "visual", "audio"), self.head_weights))
        if sum(w[h] for h in HEADS[self.variant]) <= 0:
            raise BadValue("head_weights", f"(co, visual, audio) weights whose {'+'.join(HEADS[self.variant])} "
                                           f"sum is > 0 for variant {self.variant}")


# --- labels and sampling --------------------------------------------------------------------


def binary_labels(labels: np.ndarray) -> np.ndarray:
    """Training targets (T,) in {0, 1}: YouTube ``match > 0``; TVSum (A, T) annotator
    scores -> clip mean strictly above the video's median (top half)."""
    labels = np.asarray(labels)
    if labels.ndim == 1:
        return (labels > 0).astype(np.int64)
    if labels.ndim == 2:
        mean = labels.astype(np.float64).mean(axis=0)
        return (mean > np.median(mean)).astype(np.int64)
    raise InputError(f"hpcl: labels must be (T,) or (annotators, T), got shape {labels.shape}")


def normalize_features(x: np.ndarray, mode: str) -> np.ndarray:
    """One modality (T, D) of one video, rescaled so that videos are comparable.

    The released features are raw, non-negative and their scale varies by video, so a
    model trained on raw values partly learns each video's level, which a per-video
    ranking cannot use. ``scale``: divide by the video's mean clip L2 norm (keeps the
    contrast between clips); ``center``: subtract the video's mean clip, divide by one
    scalar (the spread), so relative sizes of dims survive; ``zscore``: per-dim
    standardisation over the video's clips;
    ``l2``: each clip to unit norm; ``none``: raw (the paper).
    """
    x = np.asarray(x, dtype=np.float32)
    if mode == "none":
        return x
    if mode == "scale":
        return x / max(float(np.linalg.norm(x, axis=1).mean()), 1e-6)
    if mode == "center":
        c = x - x.mean(0)
        return c / (float(c.std()) + 1e-6)
    if mode == "zscore":
        return (x - x.mean(0)) / (x.std(0) + 1e-3 * (float(x.std()) + 1e-6))
    if mode == "l2":
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-6)
    raise InputError(f"hpcl: unknown input_norm '{mode}' (use {', '.join(INPUT_NORMS)})")


def prepare_inputs(x: np.ndarray, c: "HPCLConfig") -> np.ndarray:
    """One modality of one video as the network reads it: `normalize_features`, plus the
    clip's feature norm standardised within the video when ``norm_channel``."""
    out = normalize_features(x, c.input_norm)
    if not c.norm_channel:
        return out
    n = np.linalg.norm(np.asarray(x, dtype=np.float32), axis=1, keepdims=True)
    return np.concatenate([out, (n - n.mean()) / (float(n.std()) + 1e-6)], axis=1).astype(np.float32)


def sample_indices(y: np.ndarray, length: int, rng: np.random.Generator, min_share: float = 1 / 3) -> np.ndarray:
    """``length`` sorted clip indices of one video holding both classes, the minority
    at least ceil(length * min_share) times (Sec. 4.2); see the module docstring."""
    n = y.shape[0]
    if n >= length:
        start = int(rng.integers(0, n - length + 1))
        idx = np.arange(start, start + length)
    else:
        idx = np.sort(np.resize(np.arange(n), length))
    need = int(math.ceil(length * min_share - 1e-9))
    pos = int(y[idx].sum())
    minority = 1 if pos <= length - pos else 0
    have = pos if minority == 1 else length - pos
    deficit = need - have
    if deficit > 0:
        cand = np.flatnonzero(y == minority)
        outside = np.setdiff1d(cand, idx)
        if outside.size >= deficit:
            extra = rng.choice(outside, size=deficit, replace=False)
        else:
            extra = rng.choice(cand, size=deficit, replace=True)
        majority_slots = np.flatnonzero(y[idx] != minority)
        slots = rng.choice(majority_slots, size=deficit, replace=False)
        idx = idx.copy()
        idx[slots] = extra
        idx = np.sort(idx)
    return idx


def hard_pairs(y: np.ndarray, region: int = 3) -> np.ndarray:
    """(P, 2) clip index pairs straddling the label boundaries of a sample (Sec. 3.5.3)."""
    y = np.asarray(y).reshape(-1)
    t = y.shape[0]
    pairs = []
    for b in np.flatnonzero(y[:-1] != y[1:]):
        for k in range(1, region + 1):
            i, j = max(b + 1 - k, 0), min(b + k, t - 1)
            if y[i] != y[j]:
                pairs.append((i, j))
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64)
    return np.unique(np.asarray(pairs, dtype=np.int64), axis=0)


# --- losses ---------------------------------------------------------------------------------


def ce_loss(logits: list[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    """Eq. 10: sum over the heads of the segment-wise binary CE (mean over clips)."""
    return sum(F.binary_cross_entropy_with_logits(z, y.float()) for z in logits)


def hpcl_loss(emb: torch.Tensor, y: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """Eq. 8 on (B, T, D) embeddings with (B, T) binary labels.

    For query q and each positive k+: -log e^{q.k+/tau} / (e^{q.k+/tau} + sum_neg e^{q.k-/tau}).
    """
    z = F.normalize(emb, dim=-1)
    sim = z @ z.transpose(1, 2) / tau  # (B, T, T)
    same = y[:, :, None] == y[:, None, :]
    eye = torch.eye(y.shape[1], dtype=torch.bool, device=y.device)[None]
    pos = same & ~eye
    neg = ~same
    neg_lse = sim.masked_fill(~neg, float("-inf")).logsumexp(-1, keepdim=True)  # (B, T, 1)
    term = torch.logaddexp(sim, neg_lse) - sim  # -log(softmax over {k+} U negatives)
    n_pos = pos.sum(-1)
    valid = (n_pos > 0) & neg.any(-1)  # (B, T)
    per_q = (term * pos).sum(-1) / n_pos.clamp_min(1)
    per_q = torch.where(valid, per_q, torch.zeros_like(per_q))
    n_valid = valid.sum(-1)
    has = n_valid > 0
    if not bool(has.any()):
        return emb.sum() * 0.0
    per_sample = per_q.sum(-1)[has] / n_valid[has]
    return per_sample.mean()


def rank_loss(emb: torch.Tensor, pairs: list[np.ndarray], margin: float = 0.7) -> torch.Tensor:
    """Eq. 9: sum over hard pairs of max(margin - ||z_i - z_j||, 0), z L2-normalised;
    ``pairs[b]`` are sample b's (P, 2) index pairs. Mean over samples."""
    z = F.normalize(emb, dim=-1)
    total = emb.sum() * 0.0
    for b, p in enumerate(pairs):
        if len(p) == 0:
            continue
        p = torch.as_tensor(p, device=emb.device)
        d = (z[b, p[:, 0]] - z[b, p[:, 1]]).norm(dim=-1)
        total = total + F.relu(margin - d).sum()
    return total / max(len(pairs), 1)


# --- network --------------------------------------------------------------------------------


class MultiHead(nn.Module):
    """Multi-head dot-product attention with separate query/key/value widths (d_k, d_v divisible by heads: see HPCLConfig.check)."""

    def __init__(self, d_q: int, d_kv: int, d_k: int, d_v: int, heads: int, dropout: float):
        super().__init__()
        self.wq = nn.Linear(d_q, d_k)
        self.wk = nn.Linear(d_kv, d_k)
        self.wv = nn.Linear(d_kv, d_v)
        self.heads = heads
        self.p = dropout

    def forward(self, x: torch.Tensor, y: torch.Tensor, value_residual: bool = False) -> torch.Tensor:
        b, tq, _ = x.shape
        tk = y.shape[1]
        h = self.heads
        q = self.wq(x).view(b, tq, h, -1).transpose(1, 2)
        k = self.wk(y).view(b, tk, h, -1).transpose(1, 2)
        s = self.wv(y)
        out = F.scaled_dot_product_attention(q, k, s.view(b, tk, h, -1).transpose(1, 2),
                                             dropout_p=self.p if self.training else 0.0)
        out = out.transpose(1, 2).reshape(b, tq, -1)
        return out + s if value_residual else out  # eq. 2's "+ S" (self-attention only)


class EncoderLayer(nn.Module):
    """Eqs. 1-3: F' = softmax(QK^T/sqrt(d_k))S + S; F = LN(W F' + FFN(F'))."""

    def __init__(self, d: int, d_k: int, d_v: int, heads: int, p: float):
        super().__init__()
        self.attn = MultiHead(d, d, d_k, d_v, heads, p)
        self.ffn = nn.Sequential(nn.Linear(d_v, d_v), nn.ReLU(), nn.Dropout(p), nn.Linear(d_v, d))
        self.short = nn.Linear(d_v, d)
        self.drop = nn.Dropout(p)
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.attn(x, x, value_residual=True))
        return self.norm(self.short(h) + self.drop(self.ffn(h)))


class DecoderLayer(nn.Module):
    """Canonical post-LN cross-attention decoder layer: queries attend to a memory."""

    def __init__(self, d: int, d_k: int, d_v: int, heads: int, p: float):
        super().__init__()
        self.attn = MultiHead(d, d, d_k, d_v, heads, p)
        self.out = nn.Linear(d_v, d)
        self.norm1 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, 2 * d), nn.ReLU(), nn.Dropout(p), nn.Linear(2 * d, d))
        self.norm2 = nn.LayerNorm(d)
        self.drop = nn.Dropout(p)

    def forward(self, q: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        q = self.norm1(q + self.drop(self.out(self.attn(q, memory))))
        return self.norm2(q + self.drop(self.ffn(q)))


class Decoder(nn.Module):
    def __init__(self, n: int, *args):
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(*args) for _ in range(n))

    def forward(self, q: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            q = layer(q, memory)
        return q


def sinusoid(t: int, d: int, device=None) -> torch.Tensor:
    pos = torch.arange(t, dtype=torch.float32, device=device)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / d))
    pe = torch.zeros(t, d, device=device)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe


class IntraModality(nn.Module):
    """Sec. 3.2: linear projection -> n encoder layers -> + global context G."""

    def __init__(self, dim_in: int, c: HPCLConfig):
        super().__init__()
        self.proj = nn.Linear(dim_in, c.d)
        self.drop = nn.Dropout(c.dropout)
        self.layers = nn.ModuleList(EncoderLayer(c.d, c.d_k, c.d_v, c.heads, c.dropout) for _ in range(c.layers))
        self.global_init = c.global_init
        self.pos = c.pos_encoding
        if c.global_init != "none":
            self.global_dec = Decoder(c.layers, c.d, c.d_k, c.d_v, c.heads, c.dropout)
        if c.global_init == "random":
            self.g_init = nn.Parameter(torch.randn(c.d) * 0.02)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, Din) -> F_n (B, T, d) and F_hat = F_n + G (B, T, d)."""
        f = self.proj(x)
        if self.pos:
            f = f + sinusoid(f.shape[1], f.shape[2], f.device)
        f = self.drop(f)
        for layer in self.layers:
            f = layer(f)
        if self.global_init == "none":
            return f, f
        g0 = f.mean(1, keepdim=True) if self.global_init == "mean" else self.g_init.expand(f.shape[0], 1, -1)
        return f, f + self.global_dec(g0, f)


def _head(d_in: int, d: int, p: float) -> nn.Module:
    """Sec. 3.4: Linear -> ReLU -> Dropout -> Linear, one logit per clip."""
    return nn.Sequential(nn.Linear(d_in, d), nn.ReLU(), nn.Dropout(p), nn.Linear(d, 1))


class HPCLNet(nn.Module):
    """Returns the per-head logits (list of (B, T)) and the eq.-7 embedding (B, T, D)."""

    def __init__(self, c: HPCLConfig):
        super().__init__()
        self.variant = c.variant
        args = (c.layers, c.d, c.d_k, c.d_v, c.heads, c.dropout)
        extra = 1 if c.norm_channel else 0  # the feature-norm channel of prepare_inputs
        if c.variant == "av":
            self.enc = IntraModality(c.visual_dim + c.audio_dim + 2 * extra, c)
            self.head_v = _head(c.d, c.d, c.dropout)
            return
        if c.variant in ("co-av", "cr-av", "v"):
            self.enc_v = IntraModality(c.visual_dim + extra, c)
            self.head_v = _head(c.d, c.d, c.dropout)
        if c.variant in ("co-av", "cr-av", "a"):
            self.enc_a = IntraModality(c.audio_dim + extra, c)
            self.head_a = _head(c.d, c.d, c.dropout)
        if c.variant in ("co-av", "cr-av"):
            self.dec_v = Decoder(*args)
            self.dec_a = Decoder(*args)
            self.head_co = _head(2 * c.d, c.d, c.dropout)

    def forward(self, v: torch.Tensor, a: torch.Tensor | None):
        if self.variant == "av":
            _, fh = self.enc(torch.cat([v, a], dim=-1))
            return {"visual": self.head_v(fh)[..., 0]}, fh
        if self.variant == "v":
            _, fh = self.enc_v(v)
            return {"visual": self.head_v(fh)[..., 0]}, fh
        if self.variant == "a":
            _, fh = self.enc_a(a)
            return {"audio": self.head_a(fh)[..., 0]}, fh
        fv, fhv = self.enc_v(v)
        fa, fha = self.enc_a(a)
        if self.variant == "co-av":  # eqs. 4-5: each modality attends over [F_v; F_a] (2T keys)
            mem = torch.cat([fv, fa], dim=1)
            tv, ta = self.dec_v(fv, mem), self.dec_a(fa, mem)
        else:  # cr-av: plain cross-attention, visual <-> audio (Joint-VA style)
            tv, ta = self.dec_v(fv, fa), self.dec_a(fa, fv)
        logits = {
            "co": self.head_co(torch.cat([tv, ta], dim=-1))[..., 0],
            "visual": self.head_v(fhv)[..., 0],
            "audio": self.head_a(fha)[..., 0],
        }
        emb = torch.cat([fhv + tv, fha + ta], dim=-1)  # eq. 7
        return logits, emb


# --- detector -------------------------------------------------------------------------------


def domain_key(visual: np.ndarray) -> np.ndarray:
    """A video's routing key: the mean of its unit-norm visual clips (what the scene is)."""
    v = np.asarray(visual, dtype=np.float32)
    return (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-6)).mean(0)


class DomainNets(nn.Module):
    """One HPCLNet per training domain plus the domains' key centroids (``per_domain``).

    The UMT lineage trains one model per YouTube domain / TVSum category and tests each on
    its own domain. ``score`` gets no domain name (a user's video has none), so a video is
    routed to the domain whose mean key is nearest (cosine): on YouTube and TVSum the
    scene alone tells the domains apart.
    """

    def __init__(self, c: HPCLConfig):
        super().__init__()
        self.nets = nn.ModuleList(HPCLNet(c) for _ in c.domains)
        self.register_buffer("centroids", torch.zeros(len(c.domains), c.visual_dim))

    def route(self, visual: np.ndarray) -> int:
        key = torch.from_numpy(domain_key(visual))
        sim = F.cosine_similarity(self.centroids, key[None], dim=-1)
        return int(sim.argmax())


@register_method("hpcl")
class HPCL(NetStateMixin, Detector):
    """Supervised audio-visual detector; score = weighted sum of the heads' probabilities."""

    summary = "Li et al. (2022): supervised audio-visual, hard-pairs guided contrastive learning"
    config_class = HPCLConfig
    supervised = True
    uses_audio = True
    # The paper's literal settings (Sec. 4.2): every *departure* of HPCLConfig undone.
    presets: ClassVar[dict[str, dict]] = {
        "paper": {"d": 256, "d_k": 512, "d_v": 512, "lr": 1e-4, "epochs": 20, "samples_per_video": 1,
                  "input_norm": "none", "norm_channel": False, "per_domain": False, "dropout": 0.5, "batch_size": 8},
        "fast": {"d": 128, "d_k": 128, "d_v": 128, "lr": 5e-4, "epochs": 8, "samples_per_video": 0,
                 "input_norm": "zscore", "norm_channel": True},
    }

    def _build(self) -> None:
        c = self.config
        self.net = DomainNets(c) if c.per_domain and c.domains else HPCLNet(c)
        self.net.eval()

    # inference --------------------------------------------------------------------------
    def _needs_audio(self) -> bool:
        return self.config.variant != "v"

    def _combine(self, logits: dict[str, torch.Tensor]) -> torch.Tensor:
        w = dict(zip(("co", "visual", "audio"), self.config.head_weights))
        total = sum(w[k] for k in logits)  # > 0: HPCLConfig.check
        return sum(w[k] * torch.sigmoid(z) for k, z in logits.items()) / total

    @torch.no_grad()
    def _score_batch(self, net: nn.Module, v: np.ndarray, a: np.ndarray | None) -> np.ndarray:
        vt = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))
        at = None if a is None else torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        logits, _ = net(vt, at)
        return self._combine(logits).numpy()

    def score(self, visual: np.ndarray, audio: np.ndarray | None = None) -> np.ndarray:
        c = self.config
        v = check_features(visual, c.visual_dim, "visual", "hpcl")
        a = check_features(audio, c.audio_dim, "audio", "hpcl") if self._needs_audio() else None
        if a is not None and a.shape[0] != v.shape[0]:
            raise InputError(f"hpcl: {v.shape[0]} visual clips but {a.shape[0]} audio clips; "
                             "extract both on the same clip grid")
        self.net.eval()
        net = self.net.nets[self.net.route(v)] if isinstance(self.net, DomainNets) else self.net
        v = prepare_inputs(v, c)
        a = None if a is None else prepare_inputs(a, c)
        if c.infer_window <= 0:
            return self._score_batch(net, v[None], None if a is None else a[None])[0].astype(np.float32)
        seq = v if a is None else np.concatenate([v, a], axis=1)
        dv = v.shape[1]

        def fn(x: np.ndarray) -> np.ndarray:
            return self._score_batch(net, x[..., :dv], None if a is None else x[..., dv:])

        return score_by_windows(fn, seq, c.infer_window, normalize="none")

    # training ---------------------------------------------------------------------------
    def _prepare(self, videos: list, log: Callable[[str], None] | None) -> list[tuple]:
        """Check the training videos, set the feature dims; (domain, visual, audio, y) per usable video."""
        c = self.config
        if not videos:
            raise InputError("hpcl: no training videos")
        use_audio = c.variant != "v"
        for v in videos:
            if use_audio and v.audio is None:
                raise InputError(f"hpcl: training video {v.vid} has no audio features; variant '{c.variant}' needs them")
            if v.labels is None or np.asarray(v.labels).size == 0:
                raise InputError(f"hpcl: training video {v.vid} has no labels; hpcl is supervised")
        dims_v = {v.visual.shape[1] for v in videos}
        dims_a = {v.audio.shape[1] for v in videos if v.audio is not None}
        if len(dims_v) != 1 or len(dims_a) > 1:
            raise InputError(f"hpcl: training videos have mixed feature sizes (visual {sorted(dims_v)}, audio {sorted(dims_a)})")
        c.visual_dim = dims_v.pop()
        if dims_a:
            c.audio_dim = dims_a.pop()
        data = []
        skipped = 0
        for v in videos:
            y = binary_labels(v.labels)[: v.num_clips]
            if y.min() == y.max():
                skipped += 1
                continue
            data.append((v.domain, v.visual, prepare_inputs(v.visual, c),
                         prepare_inputs(v.audio, c) if use_audio else None, y))
        if not data:
            raise InputError("hpcl: every training video has a single class; need highlight and non-highlight clips")
        if log and skipped:
            log(f"hpcl: skipped {skipped} single-class videos")
        return data

    def _fit(self, videos: list, seed: int, log: Callable[[str], None] | None) -> TrainReport:
        c = self.config
        data = self._prepare(videos, log)
        c.domains = tuple(sorted({d[0] for d in data})) if c.per_domain else ()
        report = TrainReport(method=self.name, seed=seed, epochs=c.epochs, seconds=0.0)
        t0 = time.perf_counter()
        with training_run(seed, c.threads, c.device) as (_, device):
            self._build()
            if isinstance(self.net, DomainNets):
                rows = []
                for k, dom in enumerate(c.domains):
                    part = [d[2:] for d in data if d[0] == dom]
                    keys = [domain_key(d[1]) for d in data if d[0] == dom]
                    self.net.centroids[k] = torch.from_numpy(np.mean(keys, 0))
                    torch.manual_seed(seed * 1000 + k)
                    self.net.nets[k] = HPCLNet(c)
                    rows.append(self._train_net(self.net.nets[k], part, seed * 1000 + k, device, log, f" [{dom}]"))
                report.losses = [{key: (r[0][key] if key == "epoch" else round(float(np.mean([x[key] for x in r])), 5))
                                  for key in r[0]} for r in zip(*rows)]
            else:
                report.losses = self._train_net(self.net, [d[2:] for d in data], seed, device, log, "")
            self.net = self.net.to("cpu").eval()
        report.seconds = time.perf_counter() - t0
        return report

    def _train_net(self, net: nn.Module, data: list[tuple], seed: int, device: str,
                   log: Callable[[str], None] | None, tag: str) -> list[dict]:
        """The paper's loop (Sec. 4.2) on (visual, audio, y) videos; per-epoch mean losses."""
        c = self.config
        rng = np.random.default_rng(seed)
        use_audio = data[0][1] is not None
        net = net.to(device)
        opt = torch.optim.Adam(net.parameters(), lr=c.lr)
        per_video = [c.samples_per_video if c.samples_per_video > 0 else max(1, int(round(y.shape[0] / c.seq_len)))
                     for _, _, y in data]
        losses = []
        for epoch in range(c.epochs):
            net.train()
            samples = [i for i, k in enumerate(per_video) for _ in range(k)]
            order = rng.permutation(len(samples))
            sums = {"ce": 0.0, "hpcl": 0.0, "rank": 0.0, "total": 0.0}
            steps = 0
            for s in range(0, len(order), c.batch_size):
                batch = [samples[j] for j in order[s : s + c.batch_size]]
                idx = [sample_indices(data[i][2], c.seq_len, rng, c.min_minority) for i in batch]
                vb = torch.from_numpy(np.stack([data[i][0][ix] for i, ix in zip(batch, idx)])).to(device)
                ab = (torch.from_numpy(np.stack([data[i][1][ix] for i, ix in zip(batch, idx)])).to(device)
                      if use_audio else None)
                yn = np.stack([data[i][2][ix] for i, ix in zip(batch, idx)])
                yb = torch.from_numpy(yn).to(device)
                logits, emb = net(vb, ab)
                parts = {"ce": ce_loss(list(logits.values()), yb)}
                parts["hpcl"] = hpcl_loss(emb, yb, c.tau) if c.w_hpcl else emb.sum() * 0.0
                parts["rank"] = (rank_loss(emb, [hard_pairs(y, c.region) for y in yn], c.margin)
                                 if c.w_rank else emb.sum() * 0.0)
                total = c.w_ce * parts["ce"] + c.w_hpcl * parts["hpcl"] + c.w_rank * parts["rank"]
                opt.zero_grad()
                total.backward()
                opt.step()
                for k, val in parts.items():
                    sums[k] += float(val.detach())
                sums["total"] += float(total.detach())
                steps += 1
            row = {"epoch": epoch + 1, **{k: round(val / max(steps, 1), 5) for k, val in sums.items()}}
            losses.append(row)
            if log:
                log(f"hpcl{tag} epoch {epoch + 1}/{c.epochs} loss {row['total']:.4f} "
                    f"(ce {row['ce']:.4f}, hpcl {row['hpcl']:.4f}, rank {row['rank']:.4f})")
        net.to("cpu").eval()
        return losses
