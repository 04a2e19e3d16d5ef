"""Mockingjay (Liu et al., ICASSP 2020): a BERT-style transformer encoder on log-mel frames.

Checkpoint: s3prl's default ``mockingjay`` upstream = ``mockingjay_origin`` =
``mockingjay_logMelLinearLarge_T_AdamW_b32_500k_360hr_drop1``, which s3prl's hubconf
resolves to ``https://www.dropbox.com/s/zwsfa6w2iy2cc68/states-500000.ckpt?dl=0``
(we fetch it with ``dl=1``, which serves the file itself instead of Dropbox's preview
page). Input 80-d log-mel, target 201-d linear spectrogram, LibriSpeech 360 h, 500k steps.

Checkpoint container (s3prl ``torch.save`` of a dict): ``Transformer`` (state dict of
``TransformerModel``: ``input_representations.spec_transform.*``,
``input_representations.LayerNorm.*``, ``encoder.layer.N.attention.self.{query,key,value}.*``,
``...attention.output.{dense,LayerNorm}.*``, ``...intermediate.dense.*``,
``...output.{dense,LayerNorm}.*``), ``SpecHead`` (the masked-reconstruction head; only for
pretraining, ignored here), the model config under ``Upstream_Config`` (new ckpts) or
``Config`` (legacy ckpts, where ``Config`` holds ``transformer``/``task``/``audio``),
plus optimizer / step / argparse ``Args`` objects that we do not load (see _ckpt.py).
Older checkpoints name LayerNorm parameters ``gamma``/``beta``; they are renamed as s3prl does.

The architecture is built from the checkpoint's own ``transformer`` config (layers, heads,
sizes, input dim, pre/post LayerNorm), so every published Mockingjay variant loads
(``Base``: 3 layers; ``Large``/origin: 12 layers per s3prl's config_model_large.yaml; all
768 hidden, 12 heads, 3072 FFN). Without a checkpoint (``pretrained=False``) we build
the Large config of the default checkpoint.

Front end (s3prl OnlinePreprocessor, ``feat_type: mel, log: True, delta: 0, cmvn: True``):
16 kHz, wav scaled to -25 dB RMS, 25 ms / 10 ms periodic-Hann |STFT|² (n_fft 400),
80 HTK mel bins (torchaudio MelScale defaults), log(x + 1e-10), per-utterance CMVN.
One frame per 10 ms: no frame stacking (s3prl reports a downsample rate of 160 samples);
a legacy config with ``downsample_rate`` > 1 stacks that many frames, as old s3prl did.
The brief guessed 160-d input / 3 layers / downsample 3: that is the paper's first
release, not the s3prl checkpoint; the checkpoint's config decides.

Choices: the clip embedding is the mean over frames of the LAST layer's hidden states
(s3prl's ``last_hidden_state``; select_layer=-1); sequences longer than the config's
``task.sequence_length`` are cut into equal chunks as s3prl does; each clip is encoded
alone, so no padding mask is needed (s3prl masks by all-zero frames instead).
"""

from __future__ import annotations

import copy
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from highlighter.errors import InputError
from highlighter.features.audio._ckpt import LoadReport, load_pickle_checkpoint, load_strict
from highlighter.features.audio.mel import MOCKINGJAY_SR, mockingjay_features
from highlighter.features.base import Backbone, BackboneSpec, register_backbone
from highlighter.features.weights import WeightSpec, register_weights

S3PRL_URL = "https://www.dropbox.com/s/zwsfa6w2iy2cc68/states-500000.ckpt?dl=0"

WEIGHTS = register_weights(WeightSpec(
    name="mockingjay",
    url=S3PRL_URL.replace("dl=0", "dl=1"),
    sha256=None,  # s3prl publishes no checksum
    size=None,
    licence="Apache-2.0 (s3prl)",
    filename="mockingjay_logMelLinearLarge_T_AdamW_b32_500k_360hr_drop1.ckpt",
    description="s3prl mockingjay_origin: 80-d log-mel input, LibriSpeech 360 h, 500k steps",
    source="https://github.com/s3prl/s3prl (upstream/mockingjay/hubconf.py)",
    check=lambda path: load_mockingjay_checkpoint(path),  # `weights import`: must build and load strictly
))

# s3prl pretrain/mockingjay/config_model_large.yaml (the origin checkpoint's model)
DEFAULT_CONFIG: dict = {
    "transformer": {
        "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
        "intermediate_size": 3072, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02, "layer_norm_eps": 1e-12,
        "share_layer": False, "pre_layer_norm": False,
    },
    "task": {"sequence_length": 500},
    "audio": {"target_level": -25, "win_ms": 25, "hop_ms": 10, "n_freq": 201, "n_mels": 80,
              "input": {"feat_type": "mel", "channel": 0, "log": True, "delta": 0, "cmvn": True}},
}


class _LayerNorm(nn.Module):
    """TF-style LayerNorm (epsilon inside the sqrt), parameters ``weight``/``bias``."""

    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.bias = nn.Parameter(torch.zeros(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.weight, self.bias, self.eps)


class _InputRepresentations(nn.Module):
    def __init__(self, cfg: dict, input_dim: int):
        super().__init__()
        self.spec_transform = nn.Linear(input_dim, cfg["hidden_size"])
        self.LayerNorm = _LayerNorm(cfg["hidden_size"], cfg["layer_norm_eps"])

    def forward(self, spec: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.spec_transform(spec) + pos)


class _SelfAttention(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        h = cfg["hidden_size"]
        self.heads = cfg["num_attention_heads"]
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape

        def split(y):
            return y.view(b, t, self.heads, h // self.heads).transpose(1, 2)

        ctx = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)))
        return ctx.transpose(1, 2).reshape(b, t, h)


class _Residual(nn.Module):
    """``dense`` → + residual → LayerNorm (post-LN) or no norm (pre-LN); s3prl's *Output modules."""

    def __init__(self, cfg: dict, din: int):
        super().__init__()
        self.pre_ln = bool(cfg["pre_layer_norm"])
        self.dense = nn.Linear(din, cfg["hidden_size"])
        self.LayerNorm = _LayerNorm(cfg["hidden_size"], cfg["layer_norm_eps"])

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        y = self.dense(x) + residual
        return y if self.pre_ln else self.LayerNorm(y)


class _Attention(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.self = _SelfAttention(cfg)
        self.output = _Residual(cfg, cfg["hidden_size"])
        if self.output.pre_ln:  # s3prl registers the same LayerNorm twice in pre-LN models
            self.LayerNorm = self.output.LayerNorm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inp = self.output.LayerNorm(x) if self.output.pre_ln else x
        return self.output(self.self(inp), x)


class _Intermediate(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.dense = nn.Linear(cfg["hidden_size"], cfg["intermediate_size"])
        self.act = {"gelu": F.gelu, "relu": F.relu, "swish": F.silu}[cfg["hidden_act"]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class _Layer(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.attention = _Attention(cfg)
        self.intermediate = _Intermediate(cfg)
        self.output = _Residual(cfg, cfg["intermediate_size"])
        if self.output.pre_ln:
            self.LayerNorm = self.output.LayerNorm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.attention(x)
        inp = self.output.LayerNorm(a) if self.output.pre_ln else a
        return self.output(self.intermediate(inp), a)


class _Encoder(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        n = cfg["num_hidden_layers"]
        layer = _Layer(cfg)
        # share_layer (ALBERT-style) repeats ONE module, so its state dict has one set of keys per index
        self.layer = nn.ModuleList([layer] * n if cfg.get("share_layer") else [copy.deepcopy(layer) for _ in range(n)])
        if cfg["pre_layer_norm"]:
            self.LayerNorm = nn.ModuleList([_LayerNorm(cfg["hidden_size"], cfg["layer_norm_eps"]) for _ in range(n + 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x)
        return self.LayerNorm[-1](x) if hasattr(self, "LayerNorm") else x


class MockingjayTransformer(nn.Module):
    """s3prl ``TransformerModel`` (with input module), eval path, same state-dict keys."""

    def __init__(self, cfg: dict, input_dim: int):
        super().__init__()
        self.cfg = cfg
        self.input_representations = _InputRepresentations(cfg, input_dim)
        self.encoder = _Encoder(cfg)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """(B, T, input_dim) → last hidden states (B, T, hidden)."""
        pos = sinusoid_table(self.cfg["hidden_size"], spec.shape[1]).to(spec)
        return self.encoder(self.input_representations(spec, pos[None]))


@lru_cache(maxsize=8)
def sinusoid_table(hidden: int, length: int) -> torch.Tensor:
    """s3prl position encoding: sin on even dims, cos on odd, angle = pos / 10000^(2*(i//2)/H)."""
    pos = np.arange(length, dtype=np.float64)[:, None]
    i = np.arange(hidden)[None, :]
    ang = pos / np.power(10000.0, 2 * (i // 2) / hidden)
    ang[:, 0::2] = np.sin(ang[:, 0::2])
    ang[:, 1::2] = np.cos(ang[:, 1::2])
    return torch.from_numpy(ang.astype(np.float32))


def _merge(default: dict, override: dict) -> dict:
    out = copy.deepcopy(default)
    for k, v in (override or {}).items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def checkpoint_config(ckpt: dict, path: Path) -> dict:
    """The upstream config stored in an s3prl checkpoint (new: Upstream_Config; legacy: Config)."""
    for key in ("Upstream_Config", "Config"):
        cfg = ckpt.get(key)
        if isinstance(cfg, dict) and "transformer" in cfg:
            return _merge(DEFAULT_CONFIG, cfg)
    raise InputError(f"{path} has no Mockingjay config (no 'Upstream_Config' or 'Config' with a 'transformer' "
                     f"entry); is it an s3prl Mockingjay checkpoint?")


def input_dim_of(cfg: dict) -> int:
    """Input width: n_mels x (1 + delta) x downsample_rate (legacy pre-extracted: transformer.input_dim)."""
    inp = cfg["audio"].get("input", {})
    dim = int(cfg["audio"]["n_mels"]) * (1 + int(inp.get("delta", 0)))
    return dim * int(cfg["transformer"].get("downsample_rate", 1))


def load_mockingjay_checkpoint(path: str | Path) -> tuple[MockingjayTransformer, LoadReport]:
    path = Path(path)
    ckpt = load_pickle_checkpoint(path, "Mockingjay")
    cfg = checkpoint_config(ckpt, path)
    audio_in = cfg["audio"].get("input", {})
    if audio_in.get("feat_type", "mel") != "mel" or not audio_in.get("log", True):
        raise InputError(f"{path}: Mockingjay input features '{audio_in.get('feat_type')}' (log={audio_in.get('log')}) "
                         f"are not supported; use a log-mel checkpoint such as mockingjay_origin")
    sd = ckpt.get("Transformer")
    if not isinstance(sd, dict):
        raise InputError(f"{path} has no 'Transformer' state dict; is it an s3prl Mockingjay checkpoint?")
    sd = {k.replace("gamma", "weight").replace("beta", "bias"): v for k, v in sd.items()}  # legacy names
    with torch.device("meta"):  # the checkpoint's tensors become the weights: one copy in memory, not two
        model = MockingjayTransformer(cfg["transformer"], input_dim_of(cfg))
    model.full_config = cfg  # audio front end + task settings travel with the model
    sd = {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in sd.items()}
    load_strict(model, sd, path, "Mockingjay Transformer", assign=True)
    ignored = [f"SpecHead.{k}" for k in (ckpt.get("SpecHead") or {})]
    return model, LoadReport(loaded=sorted(sd), ignored=ignored)


@register_backbone
class Mockingjay(Backbone):
    spec = BackboneSpec(
        name="mockingjay",
        modality="audio",
        dim=768,
        weights=WEIGHTS.name,
        description="Mockingjay (s3prl mockingjay_origin) last-layer mean, 768-d",
        contract=(
            "mono float32 at 16 kHz; wav scaled to -25 dB RMS; |STFT|^2 n_fft 400, 25 ms periodic Hann, "
            "10 ms hop, centre + reflect pad; 80 HTK mel bins 0-8000 Hz (torchaudio MelScale defaults); "
            "log(x + 1e-10); per-clip CMVN; transformer (config from the checkpoint; origin: 12 layers, "
            "768 hidden); mean over frames of the last layer = 768-d. Clips < 25 ms zero-padded."
        ),
    )
    sample_rate = MOCKINGJAY_SR

    def __init__(self, device: str = "cpu", pretrained: bool = True, weights_path: str | Path | None = None):
        super().__init__(device, pretrained, weights_path)
        self.load_report: LoadReport | None = None
        path = self.resolve_weights()
        if path is not None:
            self.model, self.load_report = self.read_weights(path, load_mockingjay_checkpoint)
        else:
            self.model = MockingjayTransformer(DEFAULT_CONFIG["transformer"], input_dim_of(DEFAULT_CONFIG))
        self.cfg = _model_full_config(self.model)
        self.model.eval().to(device)

    def features(self, clip: np.ndarray) -> torch.Tensor:
        """(T', input_dim) model input for one clip (frames stacked when downsample_rate > 1)."""
        a = self.cfg["audio"]
        x = np.asarray(clip, dtype=np.float32).reshape(-1)
        if len(x) < 400:
            x = np.pad(x, (0, 400 - len(x)))
        feat = mockingjay_features(x, n_mels=int(a["n_mels"]), n_freq=int(a["n_freq"]), win_ms=float(a["win_ms"]),
                                   hop_ms=float(a["hop_ms"]), target_level=float(a["target_level"]))
        delta = int(a.get("input", {}).get("delta", 0))
        if delta:
            raise InputError("Mockingjay checkpoints with delta features are not supported; use mockingjay_origin")
        dr = int(self.cfg["transformer"].get("downsample_rate", 1))
        if dr > 1:
            t = (feat.shape[0] // dr) * dr or dr
            feat = F.pad(feat, (0, 0, 0, max(0, t - feat.shape[0])))[:t]
            feat = feat.reshape(t // dr, -1)
        return feat

    @torch.inference_mode()
    def embed_clips(self, clips: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(clips), self.spec.dim), dtype=np.float32)
        max_len = int(self.cfg["task"].get("sequence_length", 0))
        for i, clip in enumerate(clips):
            feat = self.features(clip).to(self.device)
            n = feat.shape[0]
            chunks = torch.chunk(feat, math.ceil(n / max_len), dim=0) if max_len and n > max_len else (feat,)
            hidden = torch.cat([self.model(c[None])[0] for c in chunks], dim=0)
            out[i] = hidden.mean(dim=0).float().cpu().numpy()
        return out


def _model_full_config(model: MockingjayTransformer) -> dict:
    return getattr(model, "full_config", None) or _merge(DEFAULT_CONFIG, {"transformer": model.cfg})
