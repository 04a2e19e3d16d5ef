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
from highlighter.methods.chd import norm_prior, simcse_loss
from highlighter.methods.layers import AttnLayer, pad_batch
from highlighter.methods.torch_utils import iter_length_batches

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
    with pytest.raises(UsageError, match="no preset 'bogus'"):
        create_method("chd", preset="bogus")


def test_simcse_extra_rows_of_h2_are_negatives():
    h1 = torch.tensor([[1.0, 0.0]])
    h2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # row 1: a background embedding, an extra negative
    tau = 0.5
    want = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(0.0)))
    assert float(simcse_loss(h1, h2, tau)) == pytest.approx(want, rel=1e-6)


def test_norm_prior_makes_attention_follow_the_feature_norm():
    vids = _videos(2)
    for w in (1.0, 3.0):
        det = create_method("chd", visual_dim=16, d=32, prior_weight=w)
        with torch.no_grad():
            det.net.select.wq.weight.zero_()  # no learned logits: the prior alone
        norms = np.linalg.norm(vids[0].visual.astype(np.float64), axis=1)
        want = norms**w / (norms**w).sum()
        assert np.allclose(det.score(vids[0].visual), want, atol=1e-5)
    # the prior is centred per video over its real clips, zero on padding
    x, mask = pad_batch([vids[0].visual, vids[1].visual])
    p = norm_prior(x, mask)
    assert torch.allclose((p * mask).sum(1), torch.zeros(2), atol=1e-5) and (p[~mask] == 0).all()


def test_background_embedding_weights_the_other_clips_and_ignores_padding():
    det = create_method("chd", visual_dim=16, d=32)
    vids = _videos(3)
    x, mask = pad_batch([v.visual for v in vids])
    with torch.no_grad():
        alpha, h, b = det.net(x, mask, background=True)
        _, h0, b0 = det.net(x[:1, : vids[0].num_clips], mask[:1, : vids[0].num_clips], background=True)
        # all attention on one clip: the background is the selector's embedding of the other clips
        one = torch.zeros_like(alpha)
        one[:, 0] = 1.0
        _, z = det.net.self_attn(det.net.proj(x), det.net.proj(x), mask)
        rest = det.net.background(one, z, mask)
        uniform = mask[:, 1:].float() / mask[:, 1:].sum(1, keepdim=True)
        sel = det.net.select
        want = sel.ln2(sel.ff(sel.ln1(torch.einsum("bl,bld->bd", uniform, sel.wv(z[:, 1:])))))
    assert torch.allclose(b[0], b0[0], atol=1e-5) and torch.allclose(h[0], h0[0], atol=1e-5)
    assert torch.allclose(rest, want, atol=1e-5)


def test_paper_preset_is_the_papers_settings():
    det = create_method("chd", preset="paper")
    c = det.config
    assert (c.prior_weight, c.background_negatives, c.epochs, c.lr, c.tau, c.dropout, c.d) == (
        0.0, False, 10, 1e-5, 0.1, 0.1, 512)
    assert det.info["preset"] == "paper"
    # the default departs from each of these (docs/chd.md): the preset must really undo them
    d = create_method("chd").config
    assert (d.prior_weight, d.background_negatives, d.epochs, d.lr) == (3.0, True, 15, 1e-4)


def test_length_batches_cover_every_video_once_with_similar_lengths():
    lengths = [5, 50, 6, 51, 7, 52, 8, 53, 9]
    g = torch.Generator().manual_seed(0)
    batches = list(iter_length_batches(lengths, 3, g))
    assert sorted(np.concatenate(batches).tolist()) == list(range(9))
    spans = sorted(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spans[:2] == [2, 2]  # the short and the long videos are batched together
    again = list(iter_length_batches(lengths, 3, torch.Generator().manual_seed(0)))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))


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
