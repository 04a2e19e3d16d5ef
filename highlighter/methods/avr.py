"""AVR: unsupervised highlight detection from audio and visual recurrence (Islam et al., 2024).

Moments that recur across videos of the same kind, in sound and in image, are
highlights. Without labels: (1) cluster the training videos into pseudo-categories
(video-level mean of visual and audio features -> UMAP to 10-d -> K-means, K chosen
by silhouette), (2) score each clip by its mean cosine similarity to every clip of its
pseudo-category, per modality, average the two and take the top t = 50 % as
pseudo-highlights, (3) train an audio-visual attention network on them with BCE.

Departures (config fields; ``presets["paper"]`` restores the paper): ``prior="feature-norm"``
ranks the clips by their visual feature norm instead of recurrence before the top t % are
taken (recurrence scores at chance on the shared I3D/PANN features, docs/avr.md), which
skips the clustering; ``epochs=20``; ``length_batches`` (batching, where the paper is silent).

Choices where the paper is silent (each a config field):

* Network width ``d = 128`` (not given; [1] by the same group uses small layers and
  the paper's learning rates, 5e-3 / 2.5e-3, only suit a small network). Inputs are
  projected to ``d`` per modality so that cross-attention can mix them.
* Attention layers are CHD's generic attention layer (same group; dropout on inputs
  and on the attended output, residual + LayerNorm + FF). Dropout 0.1.
* Score regressor: the four streams (v^v, a^a, v^a, a^v) are mixed with softmax-
  normalised learnable weights, then FC(d, d) -> ReLU -> FC(d, 1); scores are the
  sigmoid of that logit.
* Batches of 8 videos, padded and masked (batch size not given; 8 keeps 100 YouTube
  epochs to minutes on a CPU). Adam, lr and epochs per dataset from Sec. 4.1 through
  ``schedule`` (youtube: 5e-3, 100 epochs; tvsum: 2.5e-3, 20).
* K is searched over 2..``k_max`` (10; "a range of values" in the paper), K-means
  with 10 restarts. A clip's recurrence includes its own video's clips (eq. 1 sums
  over all clips of the pseudo-category).
* Test-time assignment (Table 12, ``score_mode="pseudo"``): a new video is embedded
  as UMAP's own transform initialisation does, a distance-weighted mean of the
  embeddings of its nearest training videos (without UMAP's extra optimisation
  epochs), then given the nearest centroid. With ``reducer="pca"`` the projection is
  exact. Everything needed (training video vectors and embeddings or PCA basis,
  centroids, per-category mean unit features) is stored in the weights file.

Ablation flags (paper tables): ``pseudo_labels`` a|v|av (5), ``modalities`` a|v|av (6),
``similarity`` cosine|pcc (7), ``fusion`` bimodal|early|late (8), ``categories``
pseudo|real (10), ``score_mode`` network|pseudo (12), and ``reducer`` umap|pca.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from highlighter.errors import InputError
from highlighter.methods.base import Detector, TrainReport, register_method
from highlighter.methods.config import choice
from highlighter.methods.data import check_features
from highlighter.methods.layers import AttnLayer, pad_batch
from highlighter.methods.torch_utils import iter_batches, iter_length_batches, training_run

SCHEDULES = {"youtube": (5e-3, 100), "tvsum": (2.5e-3, 20)}  # Sec. 4.1: (lr, epochs) per dataset


@dataclass
class AVRConfig:
    """The paper's full model except the fields marked *departure* (``presets["paper"]`` undoes them).

    ``lr``/``epochs`` None = from ``schedule``.
    """

    visual_dim: int = 1024
    audio_dim: int = 2048
    d: int = 128
    dropout: float = 0.1
    schedule: str = choice(*SCHEDULES)
    lr: float | None = None
    # *departure*: 20 epochs (paper: 100 on YouTube). With the feature-norm prior the YouTube score
    # is flat from epoch 8 to 40 (0.584-0.590) while TVSum drifts down; 5x less CPU.
    epochs: int | None = 20
    batch_size: int = 8
    top_percent: float = 50.0
    # *departure*: what ranks the clips before the top t % become pseudo-highlights. The paper's
    # "recurrence" (eqs. 1-2) scores at chance on these ReLU features (docs/avr.md); "feature-norm",
    # the training-free L2 norm of the visual feature, is a label-free prior that does carry signal.
    prior: str = choice("feature-norm", "recurrence")
    # Batches of videos of similar length (the paper gives no batching; kept under "paper"): ~3x faster.
    length_batches: bool = True
    n_components: int = 10
    k_min: int = 2
    k_max: int = 10
    kmeans_restarts: int = 10
    n_neighbors: int = 15
    reducer: str = choice("umap", "pca")
    categories: str = choice("pseudo", "real")
    similarity: str = choice("cosine", "pcc")
    pseudo_labels: str = choice("av", "a", "v")
    modalities: str = choice("av", "a", "v")
    fusion: str = choice("bimodal", "early", "late")
    score_mode: str = choice("network", "pseudo")
    device: str = "auto"  # auto | cpu | cuda | cuda:N (training)
    threads: int = 1  # torch intra-op threads while training (determinism)


# --- pseudo-highlights (pure numpy) --------------------------------------------------------------


def unit_rows(x: np.ndarray, similarity: str = "cosine") -> np.ndarray:
    """Rows scaled to unit length; for PCC each row is first centred (PCC = cosine of centred)."""
    x = np.asarray(x, dtype=np.float64)
    if similarity == "pcc":
        x = x - x.mean(axis=1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def category_means(feats: list[np.ndarray], similarity: str = "cosine") -> np.ndarray:
    """Mean of the unit clip vectors over all S clips of a category: (D,).

    Eq. 1's mean over k of cos(a_i, a_k) equals unit(a_i) . mean_k unit(a_k).
    """
    return unit_rows(np.concatenate(feats, axis=0), similarity).mean(axis=0)


def recurrence(x: np.ndarray, cat_mean: np.ndarray, similarity: str = "cosine") -> np.ndarray:
    """Eq. 1/2: each clip's mean similarity to every clip of its pseudo-category, (T,)."""
    return unit_rows(x, similarity) @ cat_mean


def top_fraction(scores: np.ndarray, percent: float) -> np.ndarray:
    """0/1 labels marking the top ``percent`` % clips (at least one), ties broken by position."""
    n = len(scores)
    k = min(n, max(1, int(math.ceil(n * percent / 100.0))))
    labels = np.zeros(n, dtype=np.float32)
    labels[np.argsort(-scores, kind="stable")[:k]] = 1.0
    return labels


def video_vector(visual: np.ndarray, audio: np.ndarray) -> np.ndarray:
    """Sec. 3.1: f = [mean_i v_i ; mean_i a_i]."""
    return np.concatenate([visual.mean(axis=0), audio.mean(axis=0)])


def choose_k(
    emb: np.ndarray, k_min: int, k_max: int, seed: int, n_init: int = 10
) -> tuple[int, np.ndarray, np.ndarray, dict]:
    """K-means for each K in range; keep the K with the highest silhouette coefficient."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    best = None
    sil = {}
    for k in range(max(2, k_min), min(k_max, len(emb) - 1) + 1):
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(emb)
        sil[k] = float(silhouette_score(emb, km.labels_))
        if best is None or sil[k] > sil[best[0]]:
            best = (k, km.labels_, km.cluster_centers_)
    if best is None:  # too few videos to cluster: one category
        return 1, np.zeros(len(emb), dtype=int), emb.mean(axis=0, keepdims=True), sil
    return best[0], best[1], best[2], sil


def knn_embed(f: np.ndarray, train_f: np.ndarray, train_emb: np.ndarray, k: int) -> np.ndarray:
    """Embed a new vector like UMAP's transform initialisation: weighted mean of neighbours."""
    d = np.linalg.norm(train_f - f[None], axis=1)
    nn_idx = np.argsort(d, kind="stable")[: min(k, len(d))]
    dn = d[nn_idx]
    rho = dn[0]
    sigma = max(float(np.mean(dn - rho)), 1e-12)
    w = np.exp(-(dn - rho) / sigma)
    return (w[:, None] * train_emb[nn_idx]).sum(0) / w.sum()


# --- network ---------------------------------------------------------------------------------------


class ScoreRegressor(nn.Module):
    """Learnable (softmax) fusion weights over the input streams, then two FC layers."""

    def __init__(self, n_streams: int, d_in: int, d: int, p: float):
        super().__init__()
        self.fusion = nn.Parameter(torch.zeros(n_streams))
        self.fc = nn.Sequential(nn.Linear(d_in, d), nn.ReLU(), nn.Dropout(p), nn.Linear(d, 1))

    def forward(self, streams: list[torch.Tensor]) -> torch.Tensor:
        w = self.fusion.softmax(0)
        x = sum(wi * s for wi, s in zip(w, streams))
        return self.fc(x)[..., 0]


class AVNet(nn.Module):
    """Sec. 3.3 (eqs. 3-7) and the ablation variants of Tables 6 and 8."""

    def __init__(self, c: AVRConfig):
        super().__init__()
        d, p = c.d, c.dropout
        self.modalities, self.fusion = c.modalities, c.fusion
        if c.modalities == "av" and c.fusion == "early":
            self.proj = nn.Linear(c.visual_dim + c.audio_dim, d)
            self.sa = AttnLayer(d, p)
            self.sr = ScoreRegressor(1, d, d, p)
            return
        if c.modalities in ("av", "v"):
            self.proj_v = nn.Linear(c.visual_dim, d)
            self.sa_v = AttnLayer(d, p)
        if c.modalities in ("av", "a"):
            self.proj_a = nn.Linear(c.audio_dim, d)
            self.sa_a = AttnLayer(d, p)
        if c.modalities != "av":
            self.sr = ScoreRegressor(1, d, d, p)
        elif c.fusion == "late":
            self.sr = ScoreRegressor(1, 2 * d, d, p)
        else:
            self.ca_av = AttnLayer(d, p)  # a^v: audio queries visual (eq. 5)
            self.ca_va = AttnLayer(d, p)  # v^a: visual queries audio (eq. 6)
            self.sr = ScoreRegressor(4, d, d, p)

    def forward(self, v: torch.Tensor | None, a: torch.Tensor | None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, Dv), (B, T, Da), (B, T) True = real clip -> (B, T) logits."""
        if self.modalities == "av" and self.fusion == "early":
            x = self.proj(torch.cat([v, a], dim=-1))
            return self.sr([self.sa(x, x, mask)[1]])
        vv = aa = None
        if v is not None and hasattr(self, "sa_v"):
            x = self.proj_v(v)
            vv = self.sa_v(x, x, mask)[1]
        if a is not None and hasattr(self, "sa_a"):
            x = self.proj_a(a)
            aa = self.sa_a(x, x, mask)[1]
        if self.modalities == "v":
            return self.sr([vv])
        if self.modalities == "a":
            return self.sr([aa])
        if self.fusion == "late":
            return self.sr([torch.cat([vv, aa], dim=-1)])
        av = self.ca_av(aa, vv, mask)[1]
        va = self.ca_va(vv, aa, mask)[1]
        return self.sr([vv, aa, va, av])


def bce_loss(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """BCE between predicted clip scores (as logits) and 0/1 pseudo-highlights, over real clips."""
    if mask is None:
        return F.binary_cross_entropy_with_logits(logits, labels)
    per_clip = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    return per_clip[mask].mean()


# --- detector ----------------------------------------------------------------------------------------


@register_method("avr")
class AVR(Detector):
    """Unsupervised audio-visual detector trained on recurrence pseudo-highlights."""

    summary = "Islam et al. (2024): unsupervised, audio-visual network trained on pseudo-highlights"
    # The paper's literal settings: recurrence pseudo-highlights, its epochs per dataset.
    presets = {"paper": {"prior": "recurrence", "epochs": None}}
    config_class = AVRConfig
    supervised = False

    @classmethod
    def audio_at_inference(cls, config: AVRConfig) -> bool:  # a visual-only ablation needs no audio
        return config.modalities != "v" or config.score_mode == "pseudo"

    @property
    def uses_audio(self) -> bool:
        return self.audio_at_inference(self.config)

    def __init__(self, **config):
        self.cluster: dict[str, torch.Tensor] = {}
        super().__init__(**config)

    def _build(self) -> None:
        self.net = AVNet(self.config)
        self.net.eval()

    # --- pseudo-categories and pseudo-highlights ---------------------------------------------------

    def _reduce_fit(self, feats: np.ndarray, seed: int) -> np.ndarray:
        c = self.config
        n_comp = min(c.n_components, len(feats) - 2) if c.reducer == "umap" else min(c.n_components, len(feats))
        if c.reducer == "pca":
            from sklearn.decomposition import PCA

            pca = PCA(n_components=n_comp, random_state=seed).fit(feats)
            self.cluster["pca_mean"] = torch.from_numpy(pca.mean_.astype(np.float32))
            self.cluster["pca_components"] = torch.from_numpy(pca.components_.astype(np.float32))
            return pca.transform(feats)
        try:
            import umap
        except ImportError:  # pragma: no cover - depends on the environment
            raise InputError("avr: reducer 'umap' needs the umap-learn package; pip install umap-learn, "
                             "or use --set reducer=pca") from None
        reducer = umap.UMAP(n_components=n_comp, n_neighbors=min(c.n_neighbors, len(feats) - 1),
                            random_state=seed, n_jobs=1)
        emb = reducer.fit_transform(feats)
        self.cluster["train_vectors"] = torch.from_numpy(feats.astype(np.float32))
        self.cluster["train_embedding"] = torch.from_numpy(emb.astype(np.float32))
        return emb

    def _reduce(self, f: np.ndarray) -> np.ndarray:
        if "pca_components" in self.cluster:
            return (f - self.cluster["pca_mean"].float().numpy()) @ self.cluster["pca_components"].float().numpy().T
        return knn_embed(f, self.cluster["train_vectors"].float().numpy(),
                         self.cluster["train_embedding"].float().numpy(), self.config.n_neighbors)

    def pseudo_categories(self, videos: list, seed: int) -> np.ndarray:
        """Sec. 3.1: one pseudo-category per training video (or the real domain, Table 10)."""
        c = self.config
        feats = np.stack([video_vector(v.visual, v.audio) for v in videos])
        emb = self._reduce_fit(feats, seed)
        if c.categories == "real":
            names = sorted({v.domain for v in videos})
            labels = np.array([names.index(v.domain) for v in videos])
            centers = np.stack([emb[labels == i].mean(0) for i in range(len(names))])
            k, sil = len(names), {}
        else:
            k, labels, centers, sil = choose_k(emb, c.k_min, c.k_max, seed, c.kmeans_restarts)
        self.cluster["centroids"] = torch.from_numpy(np.asarray(centers, dtype=np.float32))
        self.info["pseudo_categories"] = {"k": int(k), "silhouette": {str(a): round(b, 4) for a, b in sil.items()},
                                          "sizes": np.bincount(labels, minlength=k).tolist()}
        return labels

    def pseudo_highlights(self, videos: list, labels: np.ndarray) -> list[np.ndarray]:
        """Sec. 3.2: per-clip A-PH/V-PH recurrence -> average -> top t % -> 0/1 targets."""
        c = self.config
        cat_v, cat_a, out = [], [], []
        for k in range(int(labels.max()) + 1):
            members = [v for v, lab in zip(videos, labels) if lab == k]
            cat_v.append(category_means([m.visual for m in members], c.similarity))
            cat_a.append(category_means([m.audio for m in members], c.similarity))
        self.cluster["category_visual"] = torch.from_numpy(np.stack(cat_v).astype(np.float32))
        self.cluster["category_audio"] = torch.from_numpy(np.stack(cat_a).astype(np.float32))
        for v, k in zip(videos, labels):
            out.append(top_fraction(self._ph_scores(v.visual, v.audio, int(k)), c.top_percent))
        return out

    def _ph_scores(self, visual: np.ndarray, audio: np.ndarray, k: int) -> np.ndarray:
        c = self.config
        if c.prior == "feature-norm":
            return np.linalg.norm(np.asarray(visual, dtype=np.float64), axis=1)
        vph = recurrence(visual, self.cluster["category_visual"][k].double().numpy(), c.similarity)
        aph = recurrence(audio, self.cluster["category_audio"][k].double().numpy(), c.similarity)
        return {"av": (vph + aph) / 2, "a": aph, "v": vph}[c.pseudo_labels]

    def assign(self, visual: np.ndarray, audio: np.ndarray) -> int:
        """Test-time pseudo-category: nearest centroid of the video's reduced vector."""
        if "centroids" not in self.cluster:
            raise InputError("avr: these weights hold no pseudo-categories; train the model first")
        e = self._reduce(video_vector(visual, audio))
        return int(np.argmin(np.linalg.norm(self.cluster["centroids"].float().numpy() - e[None], axis=1)))

    # --- Detector API ------------------------------------------------------------------------------------

    def _inputs(self, visual, audio) -> tuple[np.ndarray | None, np.ndarray | None]:
        c = self.config
        need_v = c.modalities != "a" or c.score_mode == "pseudo"
        need_a = c.modalities != "v" or c.score_mode == "pseudo"
        v = check_features(visual, c.visual_dim, "visual", "avr") if need_v else None
        a = check_features(audio, c.audio_dim, "audio", "avr") if need_a else None
        if v is not None and a is not None and len(v) != len(a):
            t = min(len(v), len(a))
            v, a = v[:t], a[:t]
        return v, a

    @torch.no_grad()
    def score(self, visual: np.ndarray, audio: np.ndarray | None = None) -> np.ndarray:
        v, a = self._inputs(visual, audio)
        if self.config.score_mode == "pseudo":
            k = self.assign(v, a) if self.config.prior == "recurrence" else 0
            return self._ph_scores(v, a, k).astype(np.float32)
        self.net.eval()
        vt = None if v is None else torch.from_numpy(v)[None]
        at = None if a is None else torch.from_numpy(a)[None]
        return torch.sigmoid(self.net(vt, at))[0].numpy().astype(np.float32)

    def _fit(self, videos: list, seed: int, log: Callable[[str], None] | None) -> TrainReport:
        c = self.config
        if len(videos) < 3:
            raise InputError("avr: clustering into pseudo-categories needs at least 3 training videos")
        missing = [v.vid for v in videos if v.audio is None]
        if missing:
            raise InputError(f"avr: {len(missing)} training videos have no audio features (e.g. {missing[0]}); "
                             "AVR needs both modalities to build pseudo-highlights")
        c.visual_dim, c.audio_dim = int(videos[0].visual.shape[1]), int(videos[0].audio.shape[1])
        lr0, ep0 = SCHEDULES[c.schedule]
        c.lr = lr0 if c.lr is None else c.lr
        c.epochs = ep0 if c.epochs is None else c.epochs
        t0 = time.perf_counter()
        self.cluster = {}
        seqs = [self._inputs(v.visual, v.audio) for v in videos]
        # The feature-norm prior needs no pseudo-categories: one category, no clustering.
        cats = self.pseudo_categories(videos, seed) if c.prior == "recurrence" else np.zeros(len(videos), dtype=int)
        targets = self.pseudo_highlights(videos, cats)
        report = TrainReport(method=self.name, seed=seed, epochs=c.epochs, seconds=0.0)
        with training_run(seed, c.threads, c.device) as (g, device):
            self._build()
            net = self.net.to(device)
            opt = torch.optim.Adam(net.parameters(), lr=c.lr)
            net.train()
            for epoch in range(c.epochs):
                losses = []
                batches = (iter_length_batches([len(t) for t in targets], c.batch_size, g) if c.length_batches
                           else iter_batches(len(seqs), c.batch_size, g))
                for idx in batches:
                    v, mask = pad_batch([seqs[j][0] for j in idx]) if seqs[0][0] is not None else (None, None)
                    a, mask = pad_batch([seqs[j][1] for j in idx]) if seqs[0][1] is not None else (None, mask)
                    y, _ = pad_batch([targets[j][:, None] for j in idx])
                    v, a, mask, y = (t.to(device) if t is not None else None for t in (v, a, mask, y))
                    loss = bce_loss(net(v, a, mask), y[..., 0], mask)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    losses.append(float(loss.detach()))
                report.losses.append({"epoch": epoch + 1, "bce": float(np.mean(losses)), "total": float(np.mean(losses))})
                if log:
                    log(f"avr epoch {epoch + 1}/{c.epochs} bce {np.mean(losses):.4f}")
            self.net = net.to("cpu").eval()
        report.seconds = time.perf_counter() - t0
        return report

    def state_dict(self) -> dict[str, torch.Tensor]:
        out = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        out.update({f"cluster.{k}": v for k, v in self.cluster.items()})
        return out

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict({k[4:]: v.float() for k, v in state.items() if k.startswith("net.")})
        self.cluster = {k[8:]: v.float() for k, v in state.items() if k.startswith("cluster.")}
        self.net.eval()
