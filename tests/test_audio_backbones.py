"""Audio backbones: published checkpoint layouts load strictly; front ends match numpy references.

No network: the PANN and Mockingjay checkpoints are rebuilt here in their PUBLISHED
container and key layout (key names and shapes written out below, not taken from our
model), saved to disk and loaded through the real ``weights_path=`` code path. YAMNet
uses the real TFLite file from ../shared (skipped when absent).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from highlighter.errors import InputError
from highlighter.features import create_backbone
from highlighter.features.audio import mel

torch.set_num_threads(1)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
YAMNET_FILE = SHARED / "weights" / "yamnet" / "yamnet_spectra_in.tflite"


def tone(sr: int, seconds: float = 2.0, hz: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def tone_plus_noise(sr: int, seconds: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (tone(sr, seconds, 1000.0, 0.3) + 0.05 * rng.standard_normal(int(sr * seconds))).astype(np.float32)


# ----------------------------------------------------------------------------- independent references
# Written with loops and the textbook formulas, separately from highlighter/features/audio/mel.py.


def ref_hann(n):
    return np.array([math.sin(math.pi * k / n) ** 2 for k in range(n)])  # = 0.5 - 0.5 cos(2πk/n)


def ref_slaney_mel(sr, n_fft, n_mels, fmin, fmax):
    def hz2mel(f):
        return f / (200 / 3) if f < 1000 else 15 + 27 * math.log(f / 1000) / math.log(6.4)

    def mel2hz(m):
        return m * (200 / 3) if m < 15 else 1000 * math.exp((m - 15) * math.log(6.4) / 27)

    lo, hi = hz2mel(fmin), hz2mel(fmax)
    edges = [mel2hz(lo + (hi - lo) * i / (n_mels + 1)) for i in range(n_mels + 2)]
    w = np.zeros((n_fft // 2 + 1, n_mels))
    for m in range(n_mels):
        a, c, b = edges[m], edges[m + 1], edges[m + 2]
        for k in range(n_fft // 2 + 1):
            f = k * sr / n_fft
            v = (f - a) / (c - a) if f <= c else (b - f) / (b - c)
            w[k, m] = max(0.0, v) * 2 / (b - a)
    return w


def ref_htk_hz_mel(sr, n_freq, n_mels):
    def hz2mel(f):
        return 2595 * math.log10(1 + f / 700)

    top = hz2mel(sr / 2)
    edges = [700 * (10 ** (top * i / (n_mels + 1) / 2595) - 1) for i in range(n_mels + 2)]
    w = np.zeros((n_freq, n_mels))
    for m in range(n_mels):
        a, c, b = edges[m], edges[m + 1], edges[m + 2]
        for k in range(n_freq):
            f = k * (sr / 2) / (n_freq - 1)
            w[k, m] = max(0.0, min((f - a) / (c - a), (b - f) / (b - c)))
    return w


def ref_htk_mel_domain(sr, n_freq, n_mels, fmin, fmax):
    def hz2mel(f):
        return 1127 * math.log(1 + f / 700)

    lo, hi = hz2mel(fmin), hz2mel(fmax)
    edges = [lo + (hi - lo) * i / (n_mels + 1) for i in range(n_mels + 2)]
    w = np.zeros((n_freq, n_mels))
    for k in range(1, n_freq):
        mk = hz2mel(k * (sr / 2) / (n_freq - 1))
        for m in range(n_mels):
            a, c, b = edges[m], edges[m + 1], edges[m + 2]
            w[k, m] = max(0.0, min((mk - a) / (c - a), (b - mk) / (b - c)))
    return w


def ref_power_stft_centered(x, n_fft, hop, win_len):
    x = np.asarray(x, dtype=np.float64)
    xp = np.concatenate([x[1:n_fft // 2 + 1][::-1], x, x[-n_fft // 2 - 1:-1][::-1]])  # reflect pad
    win = np.zeros(n_fft)
    off = (n_fft - win_len) // 2
    win[off:off + win_len] = ref_hann(win_len)
    n = 1 + (len(xp) - n_fft) // hop
    return np.stack([np.abs(np.fft.rfft(xp[i * hop:i * hop + n_fft] * win)) ** 2 for i in range(n)])


# ----------------------------------------------------------------------------- mel filter banks


def test_filterbanks_match_references():
    np.testing.assert_allclose(mel.mel_filterbank_slaney(32000, 1024, 64, 50, 14000),
                               ref_slaney_mel(32000, 1024, 64, 50, 14000), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(mel.mel_filterbank_htk_hz(16000, 201, 80), ref_htk_hz_mel(16000, 201, 80),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(mel.mel_filterbank_htk_mel(16000, 257, 64, 125, 7500),
                               ref_htk_mel_domain(16000, 257, 64, 125, 7500), rtol=1e-4, atol=1e-6)
    # Slaney anchors: 1 kHz = 15 mel; 50 Hz = 0.75 mel
    assert float(mel.hz_to_mel_slaney(1000.0)) == pytest.approx(15.0)
    assert float(mel.hz_to_mel_slaney(50.0)) == pytest.approx(0.75)


# ----------------------------------------------------------------------------- PANN CNN14


def test_pann_logmel_matches_numpy():
    from highlighter.features.audio.panns import Cnn14

    x = tone_plus_noise(32000)
    with torch.inference_mode():
        got = Cnn14().logmel(torch.from_numpy(x)[None])[0, 0].numpy()
    power = ref_power_stft_centered(x, 1024, 320, 1024)
    want = 10 * np.log10(np.maximum(power @ ref_slaney_mel(32000, 1024, 64, 50, 14000), 1e-10))
    assert got.shape == want.shape == (201, 64)
    np.testing.assert_allclose(got, want, atol=0.02)


def published_cnn14_layout() -> dict[str, tuple[int, ...]]:
    """Key names and shapes of Cnn14_mAP=0.431.pth['model'] (audioset_tagging_cnn + torchlibrosa)."""
    lay = {
        "spectrogram_extractor.stft.conv_real.weight": (513, 1, 1024),
        "spectrogram_extractor.stft.conv_imag.weight": (513, 1, 1024),
        "logmel_extractor.melW": (513, 64),
    }

    def bn(prefix, c):
        for s in ("weight", "bias", "running_mean", "running_var"):
            lay[f"{prefix}.{s}"] = (c,)
        lay[f"{prefix}.num_batches_tracked"] = ()

    bn("bn0", 64)
    chans = [1, 64, 128, 256, 512, 1024, 2048]
    for i in range(1, 7):
        cin, cout = chans[i - 1], chans[i]
        lay[f"conv_block{i}.conv1.weight"] = (cout, cin, 3, 3)
        lay[f"conv_block{i}.conv2.weight"] = (cout, cout, 3, 3)
        bn(f"conv_block{i}.bn1", cout)
        bn(f"conv_block{i}.bn2", cout)
    lay.update({"fc1.weight": (2048, 2048), "fc1.bias": (2048,),
                "fc_audioset.weight": (527, 2048), "fc_audioset.bias": (527,)})
    return lay


def fake_published_cnn14(path: Path, drop: str | None = None) -> dict:
    g = torch.Generator().manual_seed(0)
    sd = {}
    for k, shape in published_cnn14_layout().items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(1000, dtype=torch.long)
        elif k.endswith(("running_var", "bn0.weight")) or (".bn" in k and k.endswith("weight")):
            sd[k] = 0.5 + torch.rand(shape, generator=g)
        elif k.endswith(("running_mean", "bias")):
            sd[k] = 0.1 * torch.randn(shape, generator=g)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            sd[k] = torch.randn(shape, generator=g) * math.sqrt(2.0 / fan_in)
    # the published front-end tensors are the DFT and mel matrices: put the reference ones
    n = np.arange(1024)
    win = ref_hann(1024)
    ang = -2 * np.pi * np.outer(np.arange(513), n) / 1024
    sd["spectrogram_extractor.stft.conv_real.weight"] = torch.tensor((np.cos(ang) * win)[:, None], dtype=torch.float32)
    sd["spectrogram_extractor.stft.conv_imag.weight"] = torch.tensor((np.sin(ang) * win)[:, None], dtype=torch.float32)
    sd["logmel_extractor.melW"] = torch.tensor(ref_slaney_mel(32000, 1024, 64, 50, 14000), dtype=torch.float32)
    sd["bn0.running_mean"] = torch.full((64,), -40.0)  # dB scale, like the trained model
    sd["bn0.running_var"] = torch.full((64,), 400.0)
    if drop:
        del sd[drop]
    torch.save({"model": sd, "iteration": 660000}, path)
    return sd


def test_pann_published_checkpoint_loads_and_embeds(tmp_path):
    ckpt = tmp_path / "Cnn14_mAP=0.431.pth"
    sd = fake_published_cnn14(ckpt)
    bb = create_backbone("panns", weights_path=ckpt)
    assert bb.load_report.loaded == sorted(published_cnn14_layout())  # every published key mapped
    assert bb.load_report.filled == [] and bb.load_report.ignored == []
    own = bb.model.state_dict()
    assert set(own) == set(sd)  # none left over on either side
    assert torch.equal(own["fc1.weight"], sd["fc1.weight"])
    # our computed front end equals the published-layout tensors to float32 precision
    from highlighter.features.audio.panns import Cnn14

    fresh = Cnn14().state_dict()
    for k in ("spectrogram_extractor.stft.conv_real.weight", "logmel_extractor.melW"):
        torch.testing.assert_close(fresh[k], sd[k], atol=1e-5, rtol=1e-4)

    emb = bb.embed_clips([np.zeros(64000, np.float32), tone(32000), tone(32000)[:5000]])
    assert emb.shape == (3, 2048) and emb.dtype == np.float32 and np.isfinite(emb).all()
    assert (emb >= 0).all()  # fc1 + ReLU
    assert np.abs(emb[0] - emb[1]).max() > 1e-3  # silence and a loud tone differ


def test_pann_wrong_checkpoint_is_one_line_input_error(tmp_path):
    ckpt = tmp_path / "bad.pth"
    fake_published_cnn14(ckpt, drop="fc1.bias")
    with pytest.raises(InputError, match="missing") as exc:
        create_backbone("panns", weights_path=ckpt)
    assert "\n" not in str(exc.value)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable"):
        create_backbone("panns", weights_path=junk)


# ----------------------------------------------------------------------------- Mockingjay


def test_mockingjay_frontend_matches_numpy():
    x = tone_plus_noise(16000)
    got = mel.mockingjay_features(x).numpy()
    xs = x.astype(np.float64)
    xs = xs * (10 ** (-25 / 20)) / (math.sqrt(np.mean(xs ** 2)) + 1e-10)
    m = np.log(ref_power_stft_centered(xs, 400, 160, 400) @ ref_htk_hz_mel(16000, 201, 80) + 1e-10)
    want = (m - m.mean(0)) / (m.std(0, ddof=1) + 1e-10)
    assert got.shape == want.shape == (201, 80)
    np.testing.assert_allclose(got, want, atol=2e-3)


def published_mockingjay_layout(layers: int, input_dim: int = 80, hidden: int = 768, ffn: int = 3072,
                                legacy: bool = False) -> tuple[dict, dict]:
    """s3prl 'Transformer' and 'SpecHead' key names/shapes (legacy ckpts: LayerNorm gamma/beta)."""
    w, b = ("gamma", "beta") if legacy else ("weight", "bias")

    def ln(prefix, d):
        d[f"{prefix}.LayerNorm.{w}"] = (hidden,)
        d[f"{prefix}.LayerNorm.{b}"] = (hidden,)

    tr = {"input_representations.spec_transform.weight": (hidden, input_dim),
          "input_representations.spec_transform.bias": (hidden,)}
    ln("input_representations", tr)
    for i in range(layers):
        p = f"encoder.layer.{i}"
        for q in ("query", "key", "value"):
            tr[f"{p}.attention.self.{q}.weight"] = (hidden, hidden)
            tr[f"{p}.attention.self.{q}.bias"] = (hidden,)
        tr[f"{p}.attention.output.dense.weight"] = (hidden, hidden)
        tr[f"{p}.attention.output.dense.bias"] = (hidden,)
        ln(f"{p}.attention.output", tr)
        tr[f"{p}.intermediate.dense.weight"] = (ffn, hidden)
        tr[f"{p}.intermediate.dense.bias"] = (ffn,)
        tr[f"{p}.output.dense.weight"] = (hidden, ffn)
        tr[f"{p}.output.dense.bias"] = (hidden,)
        ln(f"{p}.output", tr)
    head = {"dense.weight": (hidden, hidden), "dense.bias": (hidden,), "LayerNorm.weight": (hidden,),
            "LayerNorm.bias": (hidden,), "output.weight": (201, hidden), "output.bias": (201,)}
    return tr, head


def fake_s3prl_checkpoint(path: Path, layers: int, legacy: bool) -> dict:
    g = torch.Generator().manual_seed(1)
    tr_l, head_l = published_mockingjay_layout(layers, legacy=legacy)

    def init(layout):
        return {k: (1 + 0.1 * torch.randn(s, generator=g) if ("LayerNorm" in k and k.endswith(("weight", "gamma")))
                    else 0.02 * torch.randn(s, generator=g)) for k, s in layout.items()}

    upstream = {
        "transformer": {"hidden_size": 768, "num_hidden_layers": layers, "num_attention_heads": 12,
                        "intermediate_size": 3072, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
                        "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02,
                        "layer_norm_eps": 1e-12, "share_layer": False, "pre_layer_norm": False},
        "task": {"loss": "L1", "sequence_length": 500, "position_encoding_size": 768},
        "audio": {"target_level": -25, "win_ms": 25, "hop_ms": 10, "n_freq": 201, "n_mels": 80, "n_mfcc": 13,
                  "input": {"feat_type": "mel", "channel": 0, "log": True, "delta": 0, "cmvn": True},
                  "target": {"feat_type": "linear", "channel": 1, "log": True, "delta": 0, "cmvn": True}},
    }
    tr = init(tr_l)
    states = {
        "Transformer": tr,
        "SpecHead": init(head_l),
        "Optimizer": {"state": {}, "param_groups": [{"lr": 2e-4}]},
        "Step": 500000,
        "Args": argparse.Namespace(upstream="mockingjay", seed=1337),  # pickled class: not weights_only-safe
    }
    if legacy:
        states["Config"] = upstream  # legacy: upstream config under 'Config'
    else:
        states["Config"] = {"runner": {"total_steps": 500000}}
        states["Upstream_Config"] = upstream
    torch.save(states, path)
    return tr


@pytest.mark.parametrize("legacy", [False, True], ids=["upstream_config", "legacy_gamma_beta"])
def test_mockingjay_published_checkpoint_loads_and_embeds(tmp_path, legacy):
    ckpt = tmp_path / "states-1000000.ckpt"
    tr = fake_s3prl_checkpoint(ckpt, layers=3, legacy=legacy)  # the published Base models have 3 layers
    bb = create_backbone("mockingjay", weights_path=ckpt)
    renamed = sorted(k.replace("gamma", "weight").replace("beta", "bias") for k in tr)
    assert bb.load_report.loaded == renamed
    assert set(bb.model.state_dict()) == set(renamed)  # every key mapped, none left over
    assert len(bb.load_report.ignored) == 6 and all(k.startswith("SpecHead.") for k in bb.load_report.ignored)
    assert len(bb.model.encoder.layer) == 3  # architecture from the checkpoint's config
    k = "encoder.layer.2.output.LayerNorm." + ("gamma" if legacy else "weight")
    assert torch.equal(bb.model.state_dict()["encoder.layer.2.output.LayerNorm.weight"], tr[k])

    emb = bb.embed_clips([np.zeros(32000, np.float32), tone(16000), tone(16000, seconds=7.0)])
    assert emb.shape == (3, 768) and np.isfinite(emb).all()
    assert np.abs(emb[0] - emb[1]).max() > 1e-3


def test_mockingjay_rejects_non_s3prl_file(tmp_path):
    p = tmp_path / "x.ckpt"
    torch.save({"model": {"a": torch.zeros(1)}}, p)
    with pytest.raises(InputError, match="no Mockingjay config"):
        create_backbone("mockingjay", weights_path=p)


# ----------------------------------------------------------------------------- YAMNet


def test_yamnet_frontend_matches_numpy():
    x = tone_plus_noise(16000)
    padded = mel.yamnet_pad(x)
    assert len(padded) == 38640  # 15600 + 3 * 7680: four patches for a 2-s clip
    win = ref_hann(400)
    n = 1 + (len(padded) - 400) // 160
    mag = np.stack([np.abs(np.fft.rfft(padded[i * 160:i * 160 + 400] * win, 512)) for i in range(n)])
    want = np.log(mag @ ref_htk_mel_domain(16000, 257, 64, 125, 7500) + 0.001)
    got = mel.yamnet_log_mel(padded)
    np.testing.assert_allclose(got, want, atol=1e-4)
    patches = mel.yamnet_patches(x)
    assert patches.shape == (4, 96, 64)
    np.testing.assert_array_equal(patches[1], got[48:144])


needs_yamnet = pytest.mark.skipif(not YAMNET_FILE.is_file(), reason=f"{YAMNET_FILE} not present (../shared)")


@needs_yamnet
@pytest.mark.shared
def test_yamnet_real_model_embeds_and_classifies():
    pytest.importorskip("ai_edge_litert", reason="optional dependency: pip install 'highlighter[yamnet]'")
    from highlighter.features.weights import sha256_file, get_weight_spec

    spec = get_weight_spec("yamnet")
    assert sha256_file(YAMNET_FILE) == spec.sha256 and YAMNET_FILE.stat().st_size == spec.size
    bb = create_backbone("yamnet", weights_path=YAMNET_FILE)
    emb = bb.embed_clips([np.zeros(32000, np.float32), tone(16000), tone(16000, seconds=0.3)])
    assert emb.shape == (3, 1024) and np.isfinite(emb).all() and (emb >= 0).all()
    assert np.abs(emb[0] - emb[1]).max() > 0.1
    names = [line.split(",", 2)[2].strip().strip('"') for line in
             (YAMNET_FILE.parent / "yamnet_class_map.csv").read_text().splitlines()[1:]]
    assert names[int(np.argmax(bb.scores(np.zeros(32000, np.float32))))] == "Silence"
    assert names[int(np.argmax(bb.scores(tone(16000))))] == "Sine wave"


def test_yamnet_has_no_random_variant():
    from highlighter.errors import UsageError

    with pytest.raises(UsageError, match="no random-weights"):
        create_backbone("yamnet", pretrained=False)


def test_yamnet_damaged_cached_file_reads_as_unreadable(tmp_path, monkeypatch):
    """A cached YAMNet that no longer loads is reported like every other backbone's (one line, how to re-fetch),
    so `detect` can fall back, rather than as a bad input file."""
    pytest.importorskip("ai_edge_litert", reason="optional dependency: pip install 'highlighter[yamnet]'")
    from highlighter.features import weights as W

    monkeypatch.setenv("HIGHLIGHTER_CACHE", str(tmp_path))
    monkeypatch.setenv("HIGHLIGHTER_OFFLINE", "1")
    spec = W.get_weight_spec("yamnet")
    W.weights_dir().mkdir(parents=True)
    cached = W.weights_dir() / spec.filename
    cached.write_bytes(b"not a tflite model" * 100)
    W._write_stamp(cached)  # as `weights import` leaves it
    with pytest.raises(W.CachedWeightsUnreadableError) as ei:
        create_backbone("yamnet")
    msg = str(ei.value)
    assert "\n" not in msg and str(cached) in msg and "highlighter weights fetch yamnet" in msg
