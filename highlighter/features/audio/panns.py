"""PANN CNN14 (Kong et al. 2020, "PANNs: Large-Scale Pretrained Audio Neural Networks").

2048-d clip embedding = the ``fc1`` + ReLU output of CNN14 trained on AudioSet
(``Cnn14_mAP=0.431.pth``, Zenodo record 3987831). The audio features shipped with the
benchmark data (../shared/data, 2048-d per 2-s clip) are of this kind.

Why our own implementation (checked here against the panns-inference 0.1.1 wheel, torch 2.14.1):
* ``panns-inference`` is not usable: its ``config.py`` runs ``os.system('wget ...')`` AT
  IMPORT to fetch the AudioSet label CSV into ~/panns_data and then opens that file, so
  importing it offline (or without wget) fails; ``AudioTagging()`` then fetches the
  checkpoint with another ``os.system('wget ...')``, unverified.
* ``torchlibrosa`` (0.1.0) needs ``librosa`` (+ numba, soundfile, ...) only to build the
  DFT and mel matrices at construction; the published state dict already holds both.
* ``torchaudio`` has no build that loads with torch 2.14.

So the front end below re-creates torchlibrosa's modules with the *same names*
(``spectrogram_extractor.stft.conv_real/conv_imag``, ``logmel_extractor.melW``), and the
published state dict loads with ``strict=True``; the loaded DFT/mel tensors replace
the ones we compute (they agree to float32 precision, see tests).

Choices: clips shorter than 1 s are zero-padded to 1 s (CNN14 pools time by 32, so
shorter inputs would pool away to nothing); clips of equal length are batched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from highlighter.errors import InputError
from highlighter.features.audio._ckpt import LoadReport, load_pickle_checkpoint, load_strict
from highlighter.features.audio.mel import dft_conv_weights, hann_periodic, mel_filterbank_slaney
from highlighter.features.base import Backbone, BackboneSpec, register_backbone
from highlighter.features.device import batchnorm_eval_, cpu_inference
from highlighter.features.weights import WeightSpec, register_weights

SAMPLE_RATE = 32000
WINDOW = 1024
HOP = 320
MEL_BINS = 64
FMIN, FMAX = 50.0, 14000.0
CLASSES = 527
MIN_SAMPLES = SAMPLE_RATE  # 1 s

WEIGHTS = register_weights(WeightSpec(
    name="panns_cnn14",
    url="https://zenodo.org/record/3987831/files/Cnn14_mAP%3D0.431.pth?download=1",
    sha256=None,  # Zenodo publishes only md5 541141fa2ee191a88f24a3219fff024e for this file
    size=None,
    licence="MIT (audioset_tagging_cnn code); checkpoint published on Zenodo under CC-BY 4.0",
    filename="Cnn14_mAP=0.431.pth",
    description="PANN CNN14 trained on AudioSet (mAP 0.431), 32 kHz; dict {'model': state_dict}",
    source="https://zenodo.org/record/3987831",
    check=lambda path: load_cnn14_checkpoint(Cnn14(), path),  # `weights import`: must map onto CNN14
))


class _STFT(nn.Module):
    """torchlibrosa.stft.STFT layout: two frozen Conv1d DFT banks (bins, 1, n_fft)."""

    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        n_bins = n_fft // 2 + 1
        self.conv_real = nn.Conv1d(1, n_bins, n_fft, stride=hop, bias=False)
        self.conv_imag = nn.Conv1d(1, n_bins, n_fft, stride=hop, bias=False)
        real, imag = dft_conv_weights(n_fft, hann_periodic(n_fft))
        with torch.no_grad():
            self.conv_real.weight.copy_(torch.from_numpy(real))
            self.conv_imag.weight.copy_(torch.from_numpy(imag))
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.pad(x[:, None, :], (self.n_fft // 2, self.n_fft // 2), mode="reflect")  # center=True
        return self.conv_real(x), self.conv_imag(x)  # (B, bins, T)


class _Spectrogram(nn.Module):
    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.stft = _STFT(n_fft, hop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        real, imag = self.stft(x)
        return (real ** 2 + imag ** 2).transpose(1, 2)[:, None]  # power, (B, 1, T, bins)


class _LogMel(nn.Module):
    """torchlibrosa.stft.LogmelFilterBank layout: ``melW`` (bins, mels); power_to_db, ref 1, amin 1e-10."""

    def __init__(self, sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float):
        super().__init__()
        self.melW = nn.Parameter(torch.from_numpy(mel_filterbank_slaney(sr, n_fft, n_mels, fmin, fmax)),
                                 requires_grad=False)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return 10.0 * torch.log10(torch.clamp(spec @ self.melW, min=1e-10))


class _ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, pool: tuple[int, int]) -> torch.Tensor:
        if cpu_inference(x, self):  # issue 14: see below
            x = batchnorm_eval_(_conv3x3(self.conv1, x), self.bn1).relu_()
            x = batchnorm_eval_(_conv3x3(self.conv2, x), self.bn2).relu_()
        else:
            x = F.relu(self.bn1(self.conv1(x)))
            x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, pool)


def _conv3x3(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` (3x3, padding 1, stride 1, no bias) on CPU without a copy of a large weight.

    Why (issue 14): oneDNN reorders the weight into its own layout on every call, a transient
    copy of 151 MB for block 6's 2048x2048x3x3 conv (the peak of a PANN run). Where the
    unfolded input is smaller than the weight (blocks 5-6: a few time-frequency cells), a
    matrix product against the weight as it is gives the same result to float rounding."""
    w = conv.weight
    b, c, h, wd = x.shape
    if b * c * 9 * h * wd >= w.numel():
        return conv(x)
    cols = F.unfold(x, 3, padding=1).transpose(1, 2)  # (B, H*W, C*9), small here
    return (cols @ w.view(w.shape[0], -1).t()).transpose(1, 2).reshape(b, w.shape[0], h, wd)


class Cnn14(nn.Module):
    """CNN14 with the module names of audioset_tagging_cnn/pytorch/models.py (eval path only)."""

    def __init__(self, classes: int = CLASSES):
        super().__init__()
        self.spectrogram_extractor = _Spectrogram(WINDOW, HOP)
        self.logmel_extractor = _LogMel(SAMPLE_RATE, WINDOW, MEL_BINS, FMIN, FMAX)
        self.bn0 = nn.BatchNorm2d(MEL_BINS)
        chans = [1, 64, 128, 256, 512, 1024, 2048]
        for i in range(6):
            setattr(self, f"conv_block{i + 1}", _ConvBlock(chans[i], chans[i + 1]))
        self.fc1 = nn.Linear(2048, 2048)
        self.fc_audioset = nn.Linear(2048, classes)

    def logmel(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, S) waveform → (B, 1, T, 64) log-mel in dB (before bn0), always in float32: under fp16
        autocast the 1e-10 floor rounds to 0, so silence gave log10(0) = -inf and NaN features."""
        with torch.autocast(device_type=wav.device.type, enabled=False):
            return self.logmel_extractor(self.spectrogram_extractor(wav.float()))

    def forward(self, wav: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.logmel(wav)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)  # bn over mel bins
        for i in range(1, 7):
            x = getattr(self, f"conv_block{i}")(x, (2, 2) if i < 6 else (1, 1))
        x = x.mean(dim=3)  # over frequency
        x = x.max(dim=2).values + x.mean(dim=2)  # over time
        emb = F.relu(self.fc1(x))
        return {"embedding": emb, "clipwise_output": torch.sigmoid(self.fc_audioset(emb))}


def load_cnn14_checkpoint(model: Cnn14, path: str | Path, assign: bool = False) -> LoadReport:
    """Load a published ``{'model': state_dict}`` (or a bare state dict) strictly.

    ``assign``: the checkpoint's tensors become the parameters (for a model built on the meta
    device, `build_cnn14`), instead of being copied into already allocated ones."""
    path = Path(path)
    ckpt = load_pickle_checkpoint(path, "PANN CNN14")
    sd = ckpt.get("model", ckpt)
    if not isinstance(sd, dict):
        raise InputError(f"{path} is not a PANN checkpoint (its 'model' entry is {type(sd).__name__})")
    sd = {k.removeprefix("module."): v.float() if v.is_floating_point() else v
          for k, v in sd.items() if torch.is_tensor(v)}
    del ckpt  # the rest of the file (sampler state, statistics) is not kept while the model is built
    report = LoadReport(loaded=sorted(sd))
    for k in model.state_dict():  # checkpoints saved by torch<0.4.1 have no BN counters
        if k.endswith("num_batches_tracked") and k not in sd:
            sd[k] = torch.zeros((), dtype=torch.long)
            report.filled.append(k)
    load_strict(model, sd, path, "PANN CNN14", assign=assign)
    return report


def build_cnn14(path: str | Path) -> tuple[Cnn14, LoadReport]:
    """CNN14 holding the checkpoint's own tensors: built on the meta device and assigned, so the
    weights (320 MB) are in memory once, not twice (a random init, then the copy: 1.14 GB peak
    with torch, measured by benchmarks/memory.py; 0.83 GB this way)."""
    with torch.device("meta"):
        model = Cnn14()
    report = load_cnn14_checkpoint(model, path, assign=True)
    return model, report


@register_backbone
class PannsCnn14(Backbone):
    spec = BackboneSpec(
        name="panns",
        modality="audio",
        dim=2048,
        weights=WEIGHTS.name,
        description="PANN CNN14 (AudioSet) fc1 embedding, 2048-d",
        contract=(
            "mono float32 in [-1,1] at 32 kHz; torchlibrosa front end: |STFT|^2 with 1024-sample "
            "periodic Hann, hop 320, centre + reflect pad; 64 Slaney mel bins 50-14000 Hz "
            "(librosa.filters.mel defaults); 10*log10(max(mel, 1e-10)); bn0 over mel bins; CNN14; "
            "max+mean over time; fc1 + ReLU = 2048-d. Clips < 1 s zero-padded to 1 s."
        ),
    )
    sample_rate = SAMPLE_RATE

    def __init__(self, device: str = "cpu", pretrained: bool = True, weights_path: str | Path | None = None):
        super().__init__(device, pretrained, weights_path)
        self.load_report: LoadReport | None = None
        path = self.resolve_weights()
        if path is not None:
            self.model, self.load_report = self.read_weights(path, build_cnn14)
        else:
            self.model = Cnn14()
        self.model.eval().to(device)
        if device == "cpu":  # 2 clips per forward, not 8: their activations set the peak (issue 14, 3-min video:
            self.max_batch_clips = 2  # 980 -> 922 MB maxrss; 4 clips 940 MB; the forwards ~40 % slower, which
            # is noise beside I3D, PANN's companion on the CPU path, at 1/50 of its speed)

    @torch.inference_mode()
    def embed_clips(self, clips: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(clips), self.spec.dim), dtype=np.float32)
        padded = [_pad_to(np.asarray(c, dtype=np.float32).reshape(-1), MIN_SAMPLES) for c in clips]
        by_len: dict[int, list[int]] = {}
        for i, c in enumerate(padded):
            by_len.setdefault(len(c), []).append(i)
        for idx in by_len.values():
            wav = torch.from_numpy(np.stack([padded[i] for i in idx])).to(self.device)
            out[idx] = self.model(wav)["embedding"].float().cpu().numpy()
        return out


def _pad_to(x: np.ndarray, n: int) -> np.ndarray:
    return x if len(x) >= n else np.pad(x, (0, n - len(x)))
