"""CHD: the SimCSE loss, the highlight selector, training, persistence, shipped weights."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from highlighter.errors import InputError, UsageError
from highlighter.methods.data import VideoFeatures
from highlighter.methods import create_method, load_method
from highlighter.methods.chd import simcse_loss
from highlighter.methods.layers import AttnLayer, pad_batch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

torch.set_num_threads(1)


def _videos(n: int, dim: int = 16, seed: int = 0) -> list[VideoFeatures]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        t = int(rng.integers(5, 12))
        vis = rng.normal(size=(t, dim)).astype(np.float32)
        out.append(VideoFeatures(f"v{i}", "d", "train", vis, None, np.zeros(t, dtype=np.int64)))
    return out


def test_simcse_loss_matches_hand_computation():
    h1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    h2 = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    tau = 0.5
    # row 0: sims (1, 1/sqrt2), positive 1; row 1: sims (0, 1/sqrt2), positive 1/sqrt2
    s = 1 / math.sqrt(2)
    l0 = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(s / tau)))
    l1 = -math.log(math.exp(s / tau) / (math.exp(0) + math.exp(s / tau)))
    assert float(simcse_loss(h1, h2, tau)) == pytest.approx((l0 + l1) / 2, rel=1e-6)


def test_simcse_loss_is_low_for_matching_views_and_high_for_swapped():
    h = torch.eye(4) * 3
    good = float(simcse_loss(h, h, 0.1))
    bad = float(simcse_loss(h, h[[1, 0, 3, 2]], 0.1))
    assert good < 1e-3 and bad > 5
    # scale invariance: cosine similarity ignores vector length
    assert float(simcse_loss(h * 7, h, 0.1)) == pytest.approx(good, abs=1e-6)


def test_attention_layer_masks_padding_and_drops_residual_for_k_ne_l():
    torch.manual_seed(0)
    layer = AttnLayer(8, p=0.0).eval()
    x = torch.randn(1, 5, 8)
    mask = torch.tensor([[True, True, True, False, False]])
    alpha, z = layer(x, x, mask)
    assert torch.allclose(alpha[0, :, 3:], torch.zeros(5, 2))
    assert torch.allclose(alpha.sum(-1), torch.ones(1, 5))
    sel = AttnLayer(8, p=0.0, residual=False).eval()
    a1, h = sel(x[:, :1], x)
    assert a1.shape == (1, 1, 5) and h.shape == (1, 1, 8)


def test_scores_are_attention_weights_and_padding_free():
    det = create_method("chd", visual_dim=16, d=32)
    vids = _videos(3)
    s = det.score(vids[0].visual)
    assert s.shape == (vids[0].num_clips,) and s.dtype == np.float32
    assert s.sum() == pytest.approx(1.0, abs=1e-5) and (s > 0).all()
    # padded in a batch with a longer video, a video's attention is unchanged
    x, mask = pad_batch([vids[0].visual, vids[1].visual, np.ones((20, 16), np.float32)])
    with torch.no_grad():
        alpha, _ = det.net(x, mask)
    assert np.allclose(alpha[0, : len(s)].numpy(), s, atol=1e-5)


def test_dropout_makes_two_views_differ_and_ablation_removes_it():
    vids = _videos(4)
    for p, differ in ((0.1, True), (0.0, False)):
        det = create_method("chd", visual_dim=16, d=32, dropout=p)
        det.net.train()
        x, mask = pad_batch([v.visual for v in vids])
        _, h1 = det.net(x, mask)
        _, h2 = det.net(x, mask)
        assert (not torch.allclose(h1, h2)) == differ


def test_fit_lowers_loss_is_deterministic_and_round_trips(tmp_path):
    vids = _videos(8)
    cfg = dict(d=32, lr=1e-3, epochs=15, batch_size=8)
    a, b = create_method("chd", **cfg), create_method("chd", **cfg)
    ra = a.fit(vids, seed=3)
    b.fit(vids, seed=3)
    assert ra.losses[-1]["contrastive"] < ra.losses[0]["contrastive"]
    assert a.config.visual_dim == 16
    for v in vids:
        assert np.array_equal(a.score(v.visual), b.score(v.visual))
    path = a.save(tmp_path / "chd.safetensors")
    c = load_method(path)
    assert c.name == "chd" and c.config.d == 32
    # fp16 storage: scores agree to fp16 precision
    assert np.allclose(c.score(vids[0].visual), a.score(vids[0].visual), atol=2e-3)


def test_bad_input_is_one_clear_error():
    det = create_method("chd", visual_dim=16, d=32)
    with pytest.raises(InputError, match="expected"):
        det.score(np.zeros((4, 15), np.float32))
    with pytest.raises(InputError, match="at least 2"):
        det.fit(_videos(1))
    with pytest.raises(UsageError, match="query='bogus' is not allowed; allowed: attended, input"):
        create_method("chd", query="bogus")


@pytest.mark.shared
@pytest.mark.parametrize("target", ["youtube", "tvsum"])
def test_shipped_weights_load_and_score(target):
    path = REPO / "weights" / f"chd-{target}.safetensors"
    if not path.is_file():
        pytest.skip(f"{path.name} not shipped")
    data = SHARED / "data" / target
    if not data.is_dir():
        pytest.skip("../shared/data not present")
    det = load_method(path, "chd")
    vis = np.load(sorted((data / "video_features").glob("*_rgb.npy"))[0]).astype(np.float32)
    s = det.score(vis)
    assert s.shape == (len(vis),) and np.isfinite(s).all()
    assert det.info.get("seed") is not None and det.info.get("data")
