"""Our own log-mel front ends, one per audio backbone (numpy / torch; no librosa, no torchaudio).

Each pretrained audio model was trained on features made by one particular library,
and the mel filter banks of those libraries differ (mel scale, triangle shape, area
normalisation), so each model gets the filter bank of the library it was trained with:

* PANN CNN14 (torchlibrosa → ``librosa.filters.mel`` defaults): Slaney mel scale
  (linear below 1 kHz, log above), triangles in Hz, Slaney area normalisation
  ``2 / (f[i+2] - f[i])``; ``10 * log10(max(mel_power, 1e-10))``.
* Mockingjay (s3prl ``OnlinePreprocessor`` → ``torchaudio.transforms.MelScale`` defaults):
  HTK mel scale ``2595 log10(1 + f/700)``, triangles in Hz, no normalisation;
  ``log(mel_power + 1e-10)`` then per-utterance CMVN.
* YAMNet (``tf.signal.linear_to_mel_weight_matrix``): HTK mel scale ``1127 ln(1 + f/700)``,
  triangles in the *mel* domain, DC bin zeroed, no normalisation, applied to the STFT
  *magnitude*; ``log(mel + 0.001)``.

Windows are periodic Hann (what librosa, torch.hann_window and tf.signal.hann_window
use by default). Everything is computed in float64 and returned as float32.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

# ----------------------------------------------------------------------------- windows, framing


def hann_periodic(n: int) -> np.ndarray:
    """Periodic Hann window (the STFT default of librosa, torch and TF)."""
    k = np.arange(n, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * math.pi * k / n)


def frame_signal(x: np.ndarray, frame_length: int, hop: int) -> np.ndarray:
    """Frames (n_frames, frame_length) starting at 0, no padding (like tf.signal.frame)."""
    if len(x) < frame_length:
        return np.zeros((0, frame_length), dtype=x.dtype)
    n = 1 + (len(x) - frame_length) // hop
    idx = hop * np.arange(n)[:, None] + np.arange(frame_length)[None, :]
    return x[idx]


def dft_conv_weights(n_fft: int, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Real/imag DFT kernels for a Conv1d STFT, shape (n_fft//2+1, 1, n_fft).

    Same layout as torchlibrosa's ``STFT.conv_real/conv_imag`` (kernel k of bin f is
    ``w[k] * exp(-2πi f k / n_fft)``), so PANN's published state dict loads into it.
    """
    n_bins = n_fft // 2 + 1
    k = np.arange(n_fft, dtype=np.float64)
    f = np.arange(n_bins, dtype=np.float64)
    ang = -2.0 * math.pi * np.outer(f, k) / n_fft
    real = (np.cos(ang) * window[None, :])[:, None, :]
    imag = (np.sin(ang) * window[None, :])[:, None, :]
    return real.astype(np.float32), imag.astype(np.float32)


# ----------------------------------------------------------------------------- mel scales


def hz_to_mel_slaney(f: np.ndarray | float) -> np.ndarray:
    """Slaney's Auditory Toolbox mel scale (librosa's default, htk=False)."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3.0
    min_log_hz, logstep = 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    lin = f / f_sp
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, lin)


def mel_to_hz_slaney(m: np.ndarray | float) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3.0
    min_log_hz, logstep = 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def _triangles_hz(freqs: np.ndarray, edges_hz: np.ndarray) -> np.ndarray:
    """Triangular filters (n_freqs, n_mels) with corners at edges_hz[i], [i+1], [i+2], in Hz."""
    fdiff = np.diff(edges_hz)
    ramps = edges_hz[:, None] - freqs[None, :]  # (n_mels+2, n_freqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    return np.maximum(0.0, np.minimum(lower, upper)).T


def mel_filterbank_slaney(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax) defaults, transposed: (n_fft//2+1, n_mels)."""
    freqs = np.linspace(0.0, sr / 2.0, n_fft // 2 + 1)
    edges = mel_to_hz_slaney(np.linspace(hz_to_mel_slaney(fmin), hz_to_mel_slaney(fmax), n_mels + 2))
    w = _triangles_hz(freqs, edges)
    enorm = 2.0 / (edges[2: n_mels + 2] - edges[:n_mels])
    return (w * enorm[None, :]).astype(np.float32)


def mel_filterbank_htk_hz(sr: int, n_freqs: int, n_mels: int, fmin: float = 0.0,
                          fmax: float | None = None) -> np.ndarray:
    """torchaudio.functional.melscale_fbanks defaults (HTK scale, no norm): (n_freqs, n_mels)."""
    fmax = sr / 2.0 if fmax is None else fmax
    freqs = np.linspace(0.0, sr // 2, n_freqs)

    def to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    m = np.linspace(to_mel(fmin), to_mel(fmax), n_mels + 2)
    edges = 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    return _triangles_hz(freqs, edges).astype(np.float32)


def mel_filterbank_htk_mel(sr: int, n_freqs: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """tf.signal.linear_to_mel_weight_matrix: triangles in the mel domain, DC row zero: (n_freqs, n_mels)."""

    def to_mel(f):
        return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)

    freqs = np.linspace(0.0, sr / 2.0, n_freqs)[1:]  # bands_to_zero = 1 (DC)
    bins_mel = to_mel(freqs)[:, None]
    edges = np.linspace(to_mel(fmin), to_mel(fmax), n_mels + 2)
    lo, ce, hi = edges[:-2][None, :], edges[1:-1][None, :], edges[2:][None, :]
    w = np.maximum(0.0, np.minimum((bins_mel - lo) / (ce - lo), (hi - bins_mel) / (hi - ce)))
    return np.concatenate([np.zeros((1, n_mels)), w], axis=0).astype(np.float32)


# ----------------------------------------------------------------------------- YAMNet front end

YAMNET_SR = 16000
YAMNET_WIN = 400  # 25 ms
YAMNET_HOP = 160  # 10 ms
YAMNET_NFFT = 512  # next power of two >= window
YAMNET_MELS = 64
YAMNET_PATCH = 96  # frames = 0.96 s
YAMNET_PATCH_HOP = 48  # frames = 0.48 s
YAMNET_LOG_OFFSET = 0.001


def yamnet_pad(samples: np.ndarray) -> np.ndarray:
    """YAMNet's ``pad_waveform``: zero-pad to >= one patch, then to a whole number of patch hops.

    One patch needs 0.96 + 0.025 - 0.010 = 0.975 s (15600 samples); after that every
    0.48 s (7680 samples) adds a patch. A 2-s clip (32000) becomes 38640 samples = 4 patches.
    """
    min_n = int((0.96 + 0.025 - 0.010) * YAMNET_SR)
    hop = int(0.48 * YAMNET_SR)
    n = len(samples)
    pad = max(0, min_n - n)
    n = max(n, min_n)
    after = n - min_n
    pad += hop * int(math.ceil(after / hop)) - after
    return np.pad(samples.astype(np.float64), (0, pad))


@lru_cache(maxsize=4)
def _yamnet_consts() -> tuple[np.ndarray, np.ndarray]:
    fb = mel_filterbank_htk_mel(YAMNET_SR, YAMNET_NFFT // 2 + 1, YAMNET_MELS, 125.0, 7500.0).astype(np.float64)
    return hann_periodic(YAMNET_WIN), fb


def yamnet_log_mel(samples: np.ndarray) -> np.ndarray:
    """log(mel(|STFT|) + 0.001), (frames, 64): 25 ms periodic Hann, 10 ms hop, FFT 512, 125-7500 Hz."""
    frames = frame_signal(np.asarray(samples, dtype=np.float64), YAMNET_WIN, YAMNET_HOP)
    win, fb = _yamnet_consts()
    mag = np.abs(np.fft.rfft(frames * win[None, :], n=YAMNET_NFFT, axis=1))
    return np.log(mag @ fb + YAMNET_LOG_OFFSET).astype(np.float32)


def yamnet_patches(samples: np.ndarray) -> np.ndarray:
    """The (P, 96, 64) log-mel patches YAMNet classifies for one waveform (padding included)."""
    lm = yamnet_log_mel(yamnet_pad(samples))
    n = 1 + (len(lm) - YAMNET_PATCH) // YAMNET_PATCH_HOP
    idx = YAMNET_PATCH_HOP * np.arange(n)[:, None] + np.arange(YAMNET_PATCH)[None, :]
    return np.ascontiguousarray(lm[idx])


# ----------------------------------------------------------------------------- Mockingjay front end (torch)

MOCKINGJAY_SR = 16000


def mockingjay_features(samples, n_mels: int = 80, n_freq: int = 201, win_ms: float = 25.0,
                        hop_ms: float = 10.0, target_level: float = -25.0, eps: float = 1e-10):
    """s3prl's on-the-fly Mockingjay input for one utterance: (T, n_mels) torch float32.

    wav scaled to ``target_level`` dB RMS → |STFT|² (n_fft=(n_freq-1)*2, 25 ms periodic
    Hann, 10 ms hop, centre + reflect pad) → HTK mel (torchaudio MelScale defaults) →
    ``log(x + 1e-10)`` → CMVN over time (unbiased std + 1e-10).
    """
    import torch

    wav = torch.as_tensor(np.asarray(samples, dtype=np.float32))
    rms = wav.pow(2).mean().sqrt()
    wav = wav * ((10.0 ** (target_level / 20.0)) / (rms + 1e-10))
    win = round(win_ms * MOCKINGJAY_SR / 1000)
    hop = round(hop_ms * MOCKINGJAY_SR / 1000)
    n_fft = (n_freq - 1) * 2
    spec = torch.stft(wav, n_fft=n_fft, hop_length=hop, win_length=win,
                      window=torch.hann_window(win), center=True, pad_mode="reflect",
                      normalized=False, onesided=True, return_complex=True)
    power = spec.real.pow(2) + spec.imag.pow(2)  # (n_freq, T)
    fb = torch.from_numpy(mel_filterbank_htk_hz(MOCKINGJAY_SR, n_freq, n_mels))
    mel = (power.T @ fb).T  # (n_mels, T)
    feat = (mel + eps).log()
    feat = (feat - feat.mean(dim=-1, keepdim=True)) / (feat.std(dim=-1, keepdim=True) + eps)
    return feat.T.contiguous()
