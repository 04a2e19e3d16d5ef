"""``logmel``: a weight-free audio backbone, 132-d per clip — the offline audio stream.

Why: RASL pretrains on (visual, audio) pairs, and the offline machine has no audio
checkpoint (PANN, Mockingjay and YAMNet are all downloads). Hand-made statistics of a
log-mel spectrogram need no weights, no torch, and describe what a clip sounds like
(timbre: band means; texture: band spreads) and how loud and how eventful it is.

Front end: our YAMNet front end (`mel.yamnet_log_mel`): mono 16 kHz, |STFT| with a 25-ms
periodic Hann window every 10 ms, FFT 512, 64 HTK mel bands 125-7500 Hz, ``log(mel + 0.001)``
(natural log; digital silence is log(0.001) = -6.91 in every band). A clip shorter than one
window is zero-padded to it.

Vector (`FIELDS`):

* ``[0:64]`` mean of each band's log-mel over the clip's frames;
* ``[64:128]`` standard deviation of each band over the frames (0 for a one-frame clip);
* ``[128]`` loudness: RMS of the whole clip in dBFS (full-scale sine = -3 dB), floored at
  `FLOOR_DB` (-100) so that digital silence is finite;
* ``[129]`` peak loudness: the loudest 100-ms window's RMS in dBFS (a short bang in a quiet
  clip shows here when the clip RMS barely moves);
* ``[130]`` / ``[131]`` spectral flux, mean / max over frames: the mean over bands of the
  positive frame-to-frame rise of the log-mel (onsets: hits, shouts, applause starts).

Units are the natural ones (log-mel, dB); methods that learn from the sequence normalise
per video.
"""

from __future__ import annotations

import numpy as np

from highlighter.features.audio.mel import YAMNET_HOP, YAMNET_MELS, YAMNET_SR, YAMNET_WIN, yamnet_log_mel
from highlighter.features.base import Backbone, BackboneSpec, register_backbone

FLOOR_DB = -100.0
PEAK_WINDOW = YAMNET_SR // 10  # 100 ms
FIELDS = (*(f"band_mean_{i}" for i in range(YAMNET_MELS)), *(f"band_std_{i}" for i in range(YAMNET_MELS)),
          "rms_dbfs", "peak_dbfs", "flux_mean", "flux_max")


def dbfs(rms: np.ndarray | float) -> np.ndarray:
    """RMS of samples in [-1, 1] -> dB relative to full scale, floored at `FLOOR_DB`."""
    return np.maximum(20.0 * np.log10(np.maximum(np.asarray(rms, dtype=np.float64), 1e-12)), FLOOR_DB)


def peak_rms(samples: np.ndarray, window: int = PEAK_WINDOW) -> float:
    """RMS of the loudest ``window``-sample stretch (hop = half a window; the clip when shorter)."""
    x = np.asarray(samples, dtype=np.float64)
    if len(x) <= window:
        return float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
    hop = window // 2
    power = np.cumsum(np.concatenate([[0.0], x * x]))
    starts = np.arange(0, len(x) - window + 1, hop)
    return float(np.sqrt(((power[starts + window] - power[starts]) / window).max()))


def clip_logmel(samples: np.ndarray) -> np.ndarray:
    """`FIELDS` of one mono 16-kHz clip: float32 (132,)."""
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    if len(x) < YAMNET_WIN:
        x = np.pad(x, (0, YAMNET_WIN - len(x)))
    lm = yamnet_log_mel(x).astype(np.float64)  # (frames, 64)
    rise = np.maximum(np.diff(lm, axis=0), 0.0).mean(axis=1) if len(lm) > 1 else np.zeros(1)
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    stats = [dbfs(rms), dbfs(peak_rms(x)), rise.mean(), rise.max()]
    return np.concatenate([lm.mean(axis=0), lm.std(axis=0), np.asarray(stats, dtype=np.float64)]).astype(np.float32)


@register_backbone
class LogMel(Backbone):
    spec = BackboneSpec(
        name="logmel",
        modality="audio",
        dim=len(FIELDS),
        weights=None,  # none at all: hand-made statistics
        description="log-mel band means + stds, loudness (RMS / peak dBFS), spectral flux; no weights (offline)",
        contract=(f"mono float32 at 16 kHz; 64 HTK mel bands 125-7500 Hz of |STFT| (25-ms Hann, "
                  f"{1000 * YAMNET_HOP // YAMNET_SR}-ms hop, FFT 512), log(mel + 0.001); [0:64] band means, "
                  "[64:128] band stds, [128] clip RMS dBFS, [129] loudest-100-ms RMS dBFS (floor -100), "
                  "[130:132] spectral flux mean / max"),
    )
    sample_rate = YAMNET_SR
    uses_torch = False  # numpy only: the extractor then never imports torch for it (~0.5 GB RSS)

    @classmethod
    def weights_status(cls) -> str:
        return "none needed"

    def embed_clips(self, clips: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(clips), self.spec.dim), dtype=np.float32)
        for i, clip in enumerate(clips):
            out[i] = clip_logmel(clip)
        return out
