"""RASL: unsupervised modality-transferable highlight detection (Li, Sun, Xiao; IEEE TMM).

Two identical branches, visual and audio, each: self-attention over the feature
vector sequence (FVS, eqs. 1-2) -> convolutional encoder E (3 conv, stride 2) ->
representations r -> RASL module: ψ conv -> z, bias-free weighted sum of z ->
activation sequence s (eq. 4) -> decoder D (3 deconv, stride 2) reconstructs the FVS
from s·r (eq. 5, L1). Because s gates what the decoder sees, clips that are hard to
reconstruct (distinct ones — the paper's argument for highlights) earn large s.
k-point contrastive learning (eqs. 6-8) enlarges the top-k activations weighted by
how unlike the bottom-k representations they are; symmetric contrastive learning
(SCL, eq. 9) pairs r^v with r^a so the visual branch learns audio-aware semantics;
a masked-FVS reconstruction (eq. 10, 50 % of the clips zeroed) is the auxiliary task.
L_total = sum_m (L_e^m + L_r^m + L_au^m) + L_s (eq. 11). At inference only the visual
branch runs; its s, per window, concatenated and normalised per video, is the score.

Choices where the paper is ambiguous or our data differ (config fields where it matters):

* Convolution axes. s must keep one entry per time step (top-k of N = 150 with k = 10),
  so the stride-2 convolutions cannot stride over time. The FVS is treated as a
  1-channel (time x feature) map; each layer has kernel (``kernel_t``, 4), stride (1, 2):
  it halves the feature axis and mixes ``kernel_t`` neighbouring clips. ReLU follows
  every conv and deconv (as written, also the last deconv; I3D/PANN features are >= 0).
  Defaults ``kernel_t`` = 1 and channels (4, 8, 16): the paper gives neither; temporal
  context already comes from SA, and this keeps a full pretraining run to minutes on
  one shared CPU core (kernel_t = 3 with (8, 16, 32) was ~2x slower; its one-epoch
  scores differed by less than the seed-to-seed spread, see docs/rasl.md).
* Window and k on 2-s clips. The paper has 0.2-s steps in 30-s windows (N = 150, k = 10,
  k/N = 1/15). Our features have one row per 2-s clip; we keep the proportion k/N = 1/15
  with ``window`` = 30 clips (60 s) and ``k`` = 2. (A 30-s window would be 15 clips and
  k = 1, too few points to contrast.)
* Audio is resampled along the feature axis to the visual dimension by linear
  interpolation (the paper: "linear interpolation is used to resample the vector length
  ρ_i^a to be equal to ρ_i^v"), so both branches share one architecture and r^a·r^v is
  defined. Feature axes not divisible by 8 are zero-padded.
* Eq. 8 pairs the i-th smallest of the top-k with the i-th smallest of the bottom-k,
  each with its own projection (Ŵ_i, W̌_i), then LayerNorm (no affine), cosine.
  ``kpoint_contrast=False`` is the paper's Fig. 6 ablation, η = mean of the top-k s.
* Eq. 9 as printed (logs of raw dot products scaled by Γ) is undefined for
  non-positive products and unbounded below; the text says it follows CLIP [30]
  ("symmetric contrastive learning"), so we use CLIP's loss: cosine similarities of
  the flattened r_i^a, r_j^v over all clips of the batch, logits scaled by exp(Γ)
  (Γ learnable, initialised 3.1, clamped to ln 100 like CLIP), cross-entropy in both
  directions. Positions that repeat the same clip (repeat-padding) are not negatives.
* Eq. 10: the masked pass runs the whole branch on the masked FVS, its own s included
  ("the difference ... lies solely in the input"). One mask M is shared by both
  modalities; it zeroes exactly round(mask_ratio * window) clips.
* Table III "w/o RASL" sets k = 0 and drops L_r (``use_rasl=False``); "w/o vision"
  pretrains the audio branch only and, having no visual branch, scores from audio.
* s = sigmoid(weighted sum) by default. Eq. 4 shows no activation, but with a raw,
  unbounded s the k-point loss -log σ(η) is solved by scale alone (we measured
  L_r -> 0.0000 within two epochs while nothing else changed); the text's "top-k
  activations with the highest probabilities" suggests s in (0, 1).
  ``score_activation="none"`` is eq. 4 as printed. Scores rank by the pre-activation
  (same order within a window; a saturated sigmoid would tie the top clips).
* Only the branch used at inference is saved (the visual one unless use_visual=False),
  which keeps the shipped weights small; the audio branch is needed only to pretrain.

Per-video pretraining (``pretrain="video"``, `RASL.per_video`; not in the paper, which
pretrains once on ActivityNet and then scores with those weights): at inference the
detector first pretrains on the scored video's own visual (+ audio) FVS, then scores it
visual-only as above. It needs no benchmark-trained weights, so it runs in any feature
space (the offline backbones included); when weights for the same feature space are given
it starts every run from them. Its defaults (`VIDEO_PRETRAIN`) come from the lead's
measurements on the benchmark features (visual I3D + audio PANN, each video trained alone):
use_sa=False, epochs=4, 3 seeds averaged. This implementation with them: TVSum top-5 mAP
0.5375 on all 50 videos (feature-norm: 0.537), 2.2 min for the 50 on one shared core.
Without audio features (a silent video, no audio backbone) it trains visual-only
(use_audio=False for that video) and says so in ``last_run``. The runs of the default network
(no SA, kernel_t 1, fresh weights) are done by `rasl_np` in numpy, so ``detect`` never imports
torch for them (``video_engine="torch"`` runs them in torch; other configurations always do).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from highlighter.errors import InputError
from highlighter.methods.base import Detector, TrainReport, register_method
from highlighter.methods.config import BadValue, choice
from highlighter.methods.data import VideoFeatures
from highlighter.methods.windows import gather_windows, make_windows, score_by_windows
from highlighter.scores import NORMALIZE_MODES, normalize_scores


@dataclass
class RASLConfig:
    """Every hyperparameter of RASL; the ``use_*`` flags are the ablations of Table III."""

    visual_dim: int = 1024  # set from the data at fit time
    audio_dim: int = 2048  # set from the data at fit time (resampled to visual_dim inside)
    window: int = 30  # clips per window (30 x 2 s = 60 s); paper: 150 steps of 0.2 s
    k: int = 2  # top-k / bottom-k points; k/window = 1/15 as in the paper (10/150)
    channels: tuple[int, int, int] = (4, 8, 16)  # encoder conv channels
    kernel_t: int = 1  # temporal kernel of the conv layers (stride 1 in time); SA gives the context
    psi_channels: int = 8  # channels of ψ's output z
    proj_dim: int = 128  # dim of the k-point projections Ŵ_i, W̌_i
    temperature_init: float = 3.1  # Γ of eq. 9 (log-scale of the SCL logits)
    mask_ratio: float = 0.5  # share of clips masked in the auxiliary task
    lr: float = 1e-3  # RMSprop
    batch_size: int = 8
    epochs: int = 4
    score_activation: str = choice("sigmoid", "none")  # applied to s in training (scores rank by s's logit)
    normalize: str = choice(*NORMALIZE_MODES)  # per-video score normalisation: minmax | zscore | none
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 1  # torch intra-op threads while training (determinism)
    # Table III ablations (all True = the full method)
    use_rasl: bool = True  # k-point contrastive loss L_r ("w/o RASL": k = 0, no L_r)
    kpoint_contrast: bool = True  # False: η = mean top-k s (Fig. 6 "w/o contrast")
    use_sa: bool = True  # intramodal self-attention ("w/o SA")
    use_aux: bool = True  # masked-FVS auxiliary task ("w/o auxiliary")
    use_visual: bool = True  # visual branch ("w/o vision" = False)
    use_audio: bool = True  # audio branch + SCL ("w/o audio" = False)
    # Per-video pretraining (departures from the paper, which pretrains once and scores with those weights)
    pretrain: str = choice("weights", "video")  # video: pretrain on the scored video's own FVS first (any feature space)
    video_seeds: int = 3  # video mode: runs per video, score = mean of their z-scores (one video is little data: one run is noisy)
    video_seed: int = 0  # video mode: seed of the first run (another value = an independent ensemble, for seed spreads)
    video_engine: str = choice("numpy", "torch")  # video mode: numpy runs the per-clip network without importing
    #   torch (methods/rasl_np.py: -1.8 s and ~0.5 GB per detect; issue 14) when `rasl_np.supports` the config, else torch
    video_scale: str = choice("nonneg", "minmax", "none")  # video mode, input per dim over the video. nonneg: a dim
    #   with negative values (logmel's dB) is shifted to min 0, since the decoder ends in a ReLU; >= 0 features (I3D, PANN,
    #   EfficientNet) are untouched. minmax: each dim to [0, 1] (TVSum 0.504 vs 0.538 untouched, so not the default)

    def check(self) -> None:
        if self.window < 1:
            raise BadValue("window", ">= 1 clip")
        if self.use_rasl and (self.k < 1 or 2 * self.k > self.window):
            raise BadValue("k", f"1..window/2 (= {self.window // 2})")
        if not (0.0 <= self.mask_ratio < 1.0):
            raise BadValue("mask_ratio", "[0, 1)")
        if not (self.use_visual or self.use_audio):
            raise BadValue("use_audio", "true when use_visual is false (a model needs one branch)")
        if self.kernel_t < 1 or self.kernel_t % 2 == 0:
            raise BadValue("kernel_t", "an odd number >= 1")
        if self.video_seeds < 1:
            raise BadValue("video_seeds", ">= 1")


# What `RASL.per_video` sets on top of the defaults (one place to change them). Why: measured by
# the lead on the benchmark features, per-video pretraining with SA off and 4 epochs, 3 seeds
# averaged, beats the feature-norm baseline on TVSum; SA adds d x d weights per branch that a
# single video's few windows cannot fit.
VIDEO_PRETRAIN = {"use_sa": False, "epochs": 4, "video_seeds": 3}

# The paper's literal settings where our defaults depart from it (the rest of `RASLConfig` is the
# paper's, or our reading of it where it is silent; see the module docstring): pretrained once
# on a corpus and scored with those weights, self-attention on. The shipped rasl-youtube /
# rasl-tvsum weights are this preset.
PAPER = {"use_sa": True, "pretrain": "weights"}


def scale_per_dim(x: np.ndarray, mode: str = "minmax") -> np.ndarray:
    """A video's (clips, dims) features per column: ``minmax`` to [0, 1] (a constant column -> 0);
    ``nonneg`` only columns with negative values shifted to min 0; ``none`` as they are."""
    x = np.asarray(x, dtype=np.float32)
    if mode == "none":
        return x
    lo = x.astype(np.float64).min(0)
    if mode == "nonneg":
        return (x - np.minimum(lo, 0.0)).astype(np.float32) if (lo < 0).any() else x
    span = np.ptp(x.astype(np.float64), axis=0)
    return np.where(span > 1e-12, (x - lo) / np.where(span > 1e-12, span, 1.0), 0.0).astype(np.float32)


@register_method("rasl")
class RASL(Detector):
    """RASL detector; scores from the visual branch only (audio is for pretraining)."""

    summary = "Li, Sun, Xiao (IEEE TMM): unsupervised, modality-transferable (audio only to pretrain)"
    config_class = RASLConfig
    supervised = False
    trainable = True
    presets = {"video": {**VIDEO_PRETRAIN, "pretrain": "video"}, "paper": PAPER}
    default_preset = "video"  # by name (detect, evaluate): pretrain on each video itself; "paper": shipped weights
    init_state: dict | None = None  # video mode: the weights every per-video run starts from (None: fresh)
    last_run: dict | None = None  # video mode: what the last `score` call trained (for the result record)

    @classmethod
    def audio_at_inference(cls, config: RASLConfig) -> bool:
        """Audio is needed to score without vision, and (optionally) to pretrain on the video itself."""
        return not config.use_visual or (config.pretrain == "video" and config.use_audio)

    @classmethod
    def needs_weights(cls, config: RASLConfig) -> bool:
        """Video mode pretrains on the scored video itself: it needs no trained weights."""
        return config.pretrain != "video"

    @property
    def uses_audio(self) -> bool:
        return self.audio_at_inference(self.config)

    @property
    def audio_optional(self) -> bool:
        """Video mode pretrains visual-only on a video without sound; scoring from audio needs it."""
        return self.config.use_visual

    @classmethod
    def per_video(cls, base: "RASL | None" = None, **overrides) -> "RASL":
        """A detector that pretrains on each video it scores (``pretrain="video"``).

        Fresh: the defaults + `VIDEO_PRETRAIN`. From ``base`` (loaded weights whose feature
        space fits the video's): base's architecture, every run starting from its weights.
        """
        video = dict(cls.presets["video"])
        if base is not None:  # keep base's architecture, and its input as it was trained on (no rescaling)
            video = {**{k: v for k, v in video.items() if k != "use_sa"}, "video_scale": "none"}
        cfg = {**(asdict(base.config) if base is not None else {}), **video, **overrides, "pretrain": "video"}
        det = cls(**cfg)
        if base is None and not overrides:
            det.info = {"preset": "video"}
        if base is not None:
            det.info = dict(base.info)
            det.init_state = base.state_dict()
        return det

    def _build(self) -> None:
        """The network, except for a fresh per-video detector: it trains new runs per video and never
        uses its own, so building it (and importing torch) waits until something asks for it."""
        self.device = "cpu"
        lazy = self.config.pretrain == "video" and self.init_state is None
        self.net = None if lazy else self._new_net()

    def _new_net(self):
        from highlighter.methods.rasl_net import RASLNet

        net = RASLNet(self.config)
        if self.init_state is not None:
            getattr(net, self.score_branch).load_state_dict(self.init_state)
        return net.eval()

    def _the_net(self):
        if self.net is None:
            self.net = self._new_net()
        return self.net

    @property
    def score_branch(self) -> str:
        return "visual" if self.config.use_visual else "audio"

    # --- training -------------------------------------------------------------------------
    def _losses(self, rho_v, rho_a, mask, source):
        """Eq. 11 on one batch; returns (total, dict of parts)."""
        from highlighter.methods.rasl_net import l1_recon, scl_loss

        parts = {}
        net, cfg = self.net, self.config
        outs = {}
        for m, rho, branch, kp in (("v", rho_v, net.visual, net.kp_v), ("a", rho_a, net.audio, net.kp_a)):
            if branch is None:
                continue
            out = branch(rho)
            outs[m] = out
            parts[f"rec_{m}"] = l1_recon(rho, out["recon"])
            if kp is not None:
                parts[f"kp_{m}"] = kp(out["s"], out["z"])
            if cfg.use_aux:
                masked = branch(rho * mask[..., None])
                parts[f"aux_{m}"] = l1_recon(rho, masked["recon"])
        if "v" in outs and "a" in outs:
            b, n, c = outs["v"]["r"].shape
            parts["scl"] = scl_loss(outs["a"]["r"].reshape(b * n, c), outs["v"]["r"].reshape(b * n, c),
                                    net.temperature, source.reshape(-1))
        total = sum(parts.values())
        return total, {k: float(v.detach()) for k, v in parts.items()}

    def _fit(self, videos: list, seed: int, log: Callable[[str], None] | None) -> TrainReport:
        """Pretrain without labels on the videos' visual (+ audio) features."""
        import torch

        from highlighter.methods.rasl_net import resample_dim
        from highlighter.methods.torch_utils import RMSprop, iter_batches, training_run

        cfg = self.config
        if not videos:
            raise InputError("rasl: no training videos; check --data and --split")
        dv = {v.visual.shape[1] for v in videos}
        if len(dv) != 1:
            raise InputError(f"rasl: training videos have different visual feature sizes {sorted(dv)}; use one backbone")
        if cfg.use_audio:
            no_audio = [v.vid for v in videos if v.audio is None]
            if no_audio:
                raise InputError(
                    f"rasl: {len(no_audio)} training video(s) have no audio features (e.g. {no_audio[0]}); "
                    "add audio_features/ or train with --set use_audio=false"
                )
            da = {v.audio.shape[1] for v in videos}
            if len(da) != 1:
                raise InputError(f"rasl: training videos have different audio feature sizes {sorted(da)}")
            cfg.audio_dim = da.pop()
        cfg.visual_dim = dv.pop()
        t0 = time.perf_counter()
        with training_run(seed, cfg.threads, cfg.device) as (gen, device):
            self.net = self._new_net()  # fresh weights from the seed, sized to the data
            net = self.net.to(device)
            self.device = device
            opt = RMSprop(net.parameters(), lr=cfg.lr)  # torch.optim's, without importing torch._dynamo
            vis = [v.visual.astype(np.float32) for v in videos]
            aud = [v.audio.astype(np.float32) for v in videos] if cfg.use_audio else None
            windows = make_windows([len(x) for x in vis], cfg.window)
            offsets = np.cumsum([0] + [len(x) for x in vis])
            n_mask = int(round(cfg.mask_ratio * cfg.window))
            losses: list[dict[str, float]] = []
            for epoch in range(cfg.epochs):
                net.train()
                sums: dict[str, float] = {}
                nb = 0
                for bidx in iter_batches(len(windows), cfg.batch_size, gen):
                    wins = [windows[i] for i in bidx]
                    rho_v = torch.from_numpy(gather_windows(vis, wins)).to(device)
                    rho_a = None
                    if aud is not None:
                        rho_a = resample_dim(torch.from_numpy(gather_windows(aud, wins)), cfg.visual_dim).to(device)
                    mask = torch.ones(len(wins), cfg.window)
                    for j in range(len(wins)):
                        mask[j, torch.randperm(cfg.window, generator=gen)[:n_mask]] = 0.0
                    source = torch.from_numpy(np.stack([offsets[w.video] + w.index for w in wins])).to(device)
                    total, parts = self._losses(rho_v, rho_a, mask.to(device), source)
                    opt.zero_grad(set_to_none=True)
                    total.backward()
                    opt.step()
                    for k_, v_ in {"total": float(total.detach()), **parts}.items():
                        sums[k_] = sums.get(k_, 0.0) + v_
                    nb += 1
                ep = {k_: v_ / max(nb, 1) for k_, v_ in sums.items()}
                losses.append(ep)
                if log:
                    log(f"epoch {epoch + 1}/{cfg.epochs}: " + " ".join(f"{k_}={v_:.4f}" for k_, v_ in ep.items()))
            net.eval()
        self.net = self.net.to("cpu")
        self.device = "cpu"
        secs = time.perf_counter() - t0
        return TrainReport(method=self.name, seed=seed, epochs=cfg.epochs, seconds=secs, losses=losses)

    # --- inference ------------------------------------------------------------------------
    def _window_scores(self, windows: np.ndarray) -> np.ndarray:
        import torch

        from highlighter.methods.rasl_net import resample_dim

        branch = getattr(self._the_net(), self.score_branch)
        x = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
        if self.score_branch == "audio":
            x = resample_dim(x, self.config.visual_dim)
        with torch.no_grad():
            # Rank by the pre-activation: a saturated sigmoid would tie the top clips.
            return branch(x)["logit"].float().numpy()

    def score(self, visual: np.ndarray, audio: np.ndarray | None = None) -> np.ndarray:
        """(T, Dv) -> (T,) scores in [0, 1] (minmax per video), visual branch only."""
        cfg = self.config
        if cfg.pretrain == "video":
            return self._score_video(visual, audio)
        seq = visual if cfg.use_visual else audio
        if seq is None:
            raise InputError("rasl: this model was pretrained without vision and scores from audio; no audio features given")
        seq = np.asarray(seq, dtype=np.float32)
        want = cfg.visual_dim if cfg.use_visual else cfg.audio_dim
        if seq.ndim != 2 or seq.shape[1] != want:
            raise InputError(
                f"rasl: features have shape {tuple(seq.shape)} but the model expects (clips, {want}); "
                "extract features with the backbone the weights were trained on"
            )
        import torch

        with torch.inference_mode():
            # the training batch, not 64 windows: each (64, 16, 30, D) activation is 158 MB at D = 1288
            return score_by_windows(self._window_scores, seq, cfg.window, batch_size=cfg.batch_size,
                                    normalize=cfg.normalize)

    def _score_video(self, visual: np.ndarray, audio: np.ndarray | None) -> np.ndarray:
        """Pretrain ``video_seeds`` runs on this video alone (seeds ``video_seed`` + 0..n-1), score each visual-only,
        average their z-scores, normalise once; deterministic given the features."""
        cfg = self.config
        vis = _clips_matrix(visual, "visual")
        aud = None if audio is None or not cfg.use_audio else _clips_matrix(audio, "audio")
        if aud is not None and aud.shape[0] != vis.shape[0]:
            raise InputError(f"rasl: {vis.shape[0]} visual clips but {aud.shape[0]} audio clips; "
                             "extract both on one clip grid")
        if not cfg.use_visual and aud is None:
            raise InputError("rasl: use_visual=false scores from audio; this video has no audio features")
        if self.init_state is not None and vis.shape[1] != cfg.visual_dim:
            raise InputError(f"rasl: the starting weights expect {cfg.visual_dim}-d visual features, got "
                             f"{vis.shape[1]}-d; start from scratch or use the backbone they were trained on")
        vis, aud = scale_per_dim(vis, cfg.video_scale), (None if aud is None else scale_per_dim(aud, cfg.video_scale))
        run_cfg = {**asdict(cfg), "pretrain": "weights", "normalize": "zscore", "use_audio": aud is not None,
                   "visual_dim": vis.shape[1], "audio_dim": cfg.audio_dim if aud is None else aud.shape[1]}
        video = VideoFeatures("video", "", "", vis, aud, np.zeros(0))
        t0 = time.perf_counter()
        engine = "numpy" if self._numpy_engine() else "torch"
        seeds = list(range(cfg.video_seed, cfg.video_seed + cfg.video_seeds))
        if engine == "numpy":  # no detector object: building one builds its torch network
            from highlighter.methods import rasl_np

            runs = rasl_np.runs(RASLConfig(**run_cfg), vis, aud, seeds)
        else:
            runs = []
            for seed in seeds:
                run = type(self)(**run_cfg)
                run.init_state = self.init_state  # `fit` rebuilds the net from it
                run.fit([video], seed=seed)
                runs.append(run.score(vis, aud))
        self.last_run = {"seeds": cfg.video_seeds, "epochs": cfg.epochs, "audio": aud is not None,
                         "init": "weights" if self.init_state is not None else "scratch", "engine": engine,
                         "seconds": round(time.perf_counter() - t0, 3)}
        return normalize_scores(np.mean(runs, axis=0), cfg.normalize)

    def _numpy_engine(self) -> bool:
        """Per-video runs in numpy: asked for, a configuration it covers, fresh weights, and not on a GPU."""
        from highlighter.methods import rasl_np

        cfg = self.config
        return (cfg.video_engine == "numpy" and rasl_np.supports(cfg) and self.init_state is None
                and not cfg.device.startswith("cuda"))

    # --- persistence ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        branch = getattr(self._the_net(), self.score_branch)
        return {k: v.detach().cpu() for k, v in branch.state_dict().items()}

    def load_state_dict(self, state: dict) -> None:
        branch = getattr(self._the_net(), self.score_branch)
        ref = branch.state_dict()
        missing = sorted(set(ref) - set(state))
        extra = sorted(set(state) - set(ref))
        if missing or extra:
            raise InputError(
                f"rasl: weights do not match the config (missing {missing[:3]}, unexpected {extra[:3]}); "
                "the file is from another version or was edited"
            )
        branch.load_state_dict({k: v.float() for k, v in state.items()})
        self.net.eval()

    def describe(self) -> dict:
        return asdict(self.config)


def _clips_matrix(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] < 1:
        raise InputError(f"rasl: {what} features must be a (clips, dims) matrix, got shape {tuple(x.shape)}")
    return x
