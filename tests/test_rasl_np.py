"""The numpy engine of per-video RASL (`methods/rasl_np.py`) against torch autograd on `rasl_net.RASLNet`.

Same weights, same batch, same mask: the losses and every parameter gradient must agree (float64, so a
wrong term cannot hide in rounding), for the default configuration and for the ablation flags the engine
covers. Then the whole per-video path: it never imports torch, and it is deterministic.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from highlighter.methods import rasl_np
from highlighter.methods.rasl import RASL, RASLConfig
from highlighter.methods.rasl_net import RASLNet


def _cfg(**kw) -> RASLConfig:
    base = RASLConfig(visual_dim=44, audio_dim=20, window=10, k=2, channels=(2, 3, 4), psi_channels=3, proj_dim=6,
                      use_sa=False, kernel_t=1)
    return replace(base, **kw)


def _batch(cfg: RASLConfig, audio: bool, rng: np.random.Generator):
    b = 3
    rho_v = rng.gamma(2.0, 1.0, (b, cfg.window, cfg.visual_dim))
    rho_a = rasl_np.resample_dim(rng.gamma(2.0, 1.0, (b, cfg.window, cfg.audio_dim)), cfg.visual_dim) if audio else None
    mask = np.ones((b, cfg.window))
    for row in mask:
        row[rng.permutation(cfg.window)[: cfg.window // 2]] = 0.0
    source = np.stack([np.r_[np.arange(cfg.window - 2), [0, 1]] + 100 * i for i in range(b)])  # repeat-padded tails
    return rho_v, rho_a, mask, source


def _torch_grads(cfg: RASLConfig, net: RASLNet, rho_v, rho_a, mask, source):
    det = RASL(**{**cfg.__dict__, "pretrain": "weights"})
    det.net = net
    t = lambda x: None if x is None else torch.from_numpy(x)  # noqa: E731
    total, parts = det._losses(t(rho_v), t(rho_a), t(mask), t(source))
    net.zero_grad()
    total.backward()
    grads = rasl_np.from_torch_state({k: p.grad if p.grad is not None else torch.zeros_like(p)
                                      for k, p in net.named_parameters()})
    return float(total.detach()), parts, grads


@pytest.mark.parametrize("change", [
    {},  # the default per-video network, audio on (SCL), k-point contrast, auxiliary task
    {"use_audio": False},
    {"kpoint_contrast": False},
    {"use_rasl": False},
    {"use_aux": False},
    {"score_activation": "none"},
    {"visual_dim": 40},  # a feature axis padded to a multiple of 8 inside the branch
], ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
def test_losses_and_gradients_match_torch_autograd(change):
    cfg = _cfg(**change)
    torch.manual_seed(0)
    net = RASLNet(cfg).double()
    p = rasl_np.from_torch_state(net.state_dict())
    rho_v, rho_a, mask, source = _batch(cfg, cfg.use_audio, np.random.default_rng(1))
    total, parts, grads = rasl_np.losses_and_grads(p, cfg, rho_v, rho_a, mask, source)
    ttotal, tparts, tgrads = _torch_grads(cfg, net, rho_v, rho_a, mask, source)
    assert parts.keys() == tparts.keys()
    for key in parts:
        assert parts[key] == pytest.approx(tparts[key], rel=1e-10, abs=1e-12), key
    assert total == pytest.approx(ttotal, rel=1e-10)
    assert set(grads) <= set(tgrads)
    for key, g in tgrads.items():
        mine = grads.get(key, np.zeros_like(g))
        scale = max(np.abs(g).max(), 1e-12)
        assert np.abs(mine - g).max() / scale < 1e-9, key
        if key in grads and np.abs(g).max() > 0:
            assert np.abs(mine).max() > 0  # a gradient that is there, not zeros that happen to match


def test_init_shapes_and_scale_follow_torch_defaults():
    """The fresh weights have torch's shapes, and the uniform bound 1/sqrt(fan_in) (ConvTranspose: fan_in from dim 1)."""
    cfg = _cfg()
    p = rasl_np.init_params(cfg, cfg.visual_dim, True, np.random.default_rng(0), dtype=np.float64)
    ref = rasl_np.from_torch_state(RASLNet(cfg).state_dict())
    assert p.keys() == ref.keys()
    for key in ref:
        assert p[key].shape == ref[key].shape, key
    dec = p["v.dec0_w"]  # (c3, c2, 4): fan_in = c2 * 4
    assert np.abs(dec).max() <= 1 / np.sqrt(cfg.channels[1] * 4) and np.abs(dec).max() > 0.8 / np.sqrt(cfg.channels[1] * 4)


def test_per_video_default_runs_in_numpy_deterministically():
    rng = np.random.default_rng(3)
    vis, aud = rng.gamma(2.0, 1.0, (47, 64)).astype(np.float32), rng.gamma(2.0, 1.0, (47, 32)).astype(np.float32)
    a, b = RASL.per_video(), RASL.per_video()
    sa, sb = a.score(vis, aud), b.score(vis, aud)
    assert a.last_run["engine"] == "numpy" and np.array_equal(sa, sb) and sa.shape == (47,)
    assert np.isfinite(sa).all() and sa.min() == 0.0 and sa.max() == 1.0
    other = RASL.per_video(video_seed=5).score(vis, aud)
    assert not np.array_equal(sa, other)  # the seed reaches the draws
    # the torch engine is still there for configurations numpy does not cover, and on request
    assert RASL.per_video(use_sa=True)._numpy_engine() is False
    t = RASL.per_video(video_engine="torch")
    t.score(vis[:12], aud[:12])
    assert t.last_run["engine"] == "torch"


def test_training_lowers_the_loss():
    """Sanity of the whole update (RMSprop on these gradients): the batch loss falls over the epochs."""
    rng = np.random.default_rng(4)
    vis, aud = rng.gamma(2.0, 1.0, (40, 64)).astype(np.float32), rng.gamma(2.0, 1.0, (40, 64)).astype(np.float32)
    cfg = replace(RASLConfig(), visual_dim=64, use_sa=False, epochs=0)
    rho_v, rho_a = vis[None, :30], aud[None, :30]
    mask, source = np.ones((1, 30), np.float32), np.arange(30)[None]
    before = rasl_np.losses_and_grads(rasl_np.pretrain(cfg, vis, aud, 0), cfg, rho_v, rho_a, mask, source)[0]
    after = rasl_np.losses_and_grads(rasl_np.pretrain(replace(cfg, epochs=20), vis, aud, 0), cfg, rho_v, rho_a,
                                     mask, source)[0]
    assert after < 0.9 * before


def test_detect_path_never_imports_torch():
    """Per-video RASL scoring from a fresh interpreter leaves torch unimported (issue 14: -1.8 s, -0.5 GB)."""
    code = ("import sys, numpy as np; from highlighter.methods.rasl import RASL; "
            "r = np.random.default_rng(0); d = RASL.per_video(); "
            "d.score(r.random((35, 24), dtype=np.float32), r.random((35, 16), dtype=np.float32)); "
            "print('torch' in sys.modules, d.last_run['engine'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False", "numpy"]


def test_runs_in_threads_equal_runs_one_by_one():
    """Runs side by side (two, or all three: the default) give exactly the scores of the same runs one after
    the other."""
    rng = np.random.default_rng(5)
    vis, aud = rng.gamma(2.0, 1.0, (41, 48)).astype(np.float32), rng.gamma(2.0, 1.0, (41, 24)).astype(np.float32)
    cfg = replace(RASLConfig(), visual_dim=48, audio_dim=24, use_sa=False, pretrain="weights", normalize="zscore")
    both = rasl_np.runs(cfg, vis, aud, [0, 1, 2], workers=2)
    alone = rasl_np.runs(cfg, vis, aud, [0, 1, 2], workers=1)
    every = rasl_np.runs(cfg, vis, aud, [0, 1, 2])
    assert all(np.array_equal(a, b) and np.array_equal(a, c) for a, b, c in zip(both, alone, every))
    assert not np.array_equal(both[0], both[1])
