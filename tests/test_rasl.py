"""RASL: each loss term on tiny tensors, windows, training, reproducibility, persistence."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from highlighter.errors import InputError, UsageError
from highlighter.methods import create_method, load_method
from highlighter.methods.data import VideoFeatures
from highlighter.methods.rasl_net import kpoint_loss, l1_recon, resample_dim, scl_loss
from highlighter.methods.windows import window_indices

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

torch.set_num_threads(1)

# A tiny model: 16-d visual, 24-d audio, 8-clip windows, k = 2.
TINY = dict(window=8, k=2, channels=(2, 2, 4), psi_channels=2, proj_dim=8, batch_size=4, epochs=3)


def _videos(n: int = 6, dv: int = 16, da: int | None = 24, seed: int = 0, lengths=None) -> list[VideoFeatures]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        t = int(lengths[i]) if lengths is not None else int(rng.integers(5, 20))
        vis = np.abs(rng.normal(size=(t, dv))).astype(np.float32)
        aud = np.abs(rng.normal(size=(t, da))).astype(np.float32) if da else None
        out.append(VideoFeatures(f"v{i}", "d", "train", vis, aud, np.zeros(t, dtype=np.int64)))
    return out


# --- loss terms ---------------------------------------------------------------------------


def test_l1_recon_zero_for_identical_and_positive_otherwise():
    x = torch.rand(2, 5, 7)
    assert l1_recon(x, x.clone()).item() == 0.0
    assert l1_recon(x, x + 0.5).item() == pytest.approx(0.5)


def test_kpoint_loss_lower_when_top_k_separated_from_bottom_k():
    torch.manual_seed(0)
    n, c, k = 10, 6, 2
    s = torch.linspace(0, 1, n)[None]  # top-k = last two, bottom-k = first two
    proj_t = torch.nn.ModuleList(torch.nn.Linear(c, 4, bias=False) for _ in range(k))
    proj_b = torch.nn.ModuleList(torch.nn.Linear(c, 4, bias=False) for _ in range(k))
    for i in range(k):  # identity-like projections so the geometry of z decides
        proj_b[i].weight.data = proj_t[i].weight.data.clone()
    base = torch.randn(1, 1, c)
    same = base.expand(1, n, c).clone()  # top and bottom identical -> sim 1 -> eta 0
    sep = same.clone()
    sep[0, -k:] = -base[0, 0]  # top-k opposite of bottom-k -> sim -1
    l_same = kpoint_loss(s, same, k, proj_t, proj_b).item()
    l_sep = kpoint_loss(s, sep, k, proj_t, proj_b).item()
    assert l_same == pytest.approx(math.log(2.0), abs=1e-5)  # -log sigmoid(0)
    assert l_sep < l_same - 0.3


def test_kpoint_loss_rewards_larger_top_activations_and_ablation_is_mean_top_k():
    z = torch.randn(1, 10, 4)
    low = torch.linspace(0, 1, 10)[None]
    high = low.clone()
    high[0, -2:] += 3.0
    assert kpoint_loss(high, z, 2).item() < kpoint_loss(low, z, 2).item()
    # without the contrast, eta = mean of the top-k activations
    eta = (low[0, -1] + low[0, -2]) / 2
    assert kpoint_loss(low, z, 2).item() == pytest.approx(torch.nn.functional.softplus(-eta).item(), abs=1e-6)


def test_scl_lower_for_matched_pairs_than_shuffled():
    torch.manual_seed(0)
    v = torch.randn(12, 16)
    a = v + 0.05 * torch.randn(12, 16)
    t = torch.tensor(3.1)
    matched = scl_loss(a, v, t).item()
    shuffled = scl_loss(a[torch.randperm(12)], v, t).item()
    assert matched < 0.1 < shuffled


def test_scl_ignores_repeated_clips_as_negatives():
    v = torch.randn(4, 8)
    dup_v = torch.cat([v, v[:1]])  # row 4 repeats clip 0 (repeat-padding)
    src = torch.tensor([0, 1, 2, 3, 0])
    t = torch.tensor(3.1)
    masked = scl_loss(dup_v, dup_v, t, src).item()
    unmasked = scl_loss(dup_v, dup_v, t).item()
    assert masked < unmasked  # the duplicate is no longer a hard negative
    assert math.isfinite(masked)


def test_temperature_is_a_learnable_parameter_initialised_at_3_1():
    det = create_method("rasl", **TINY, visual_dim=16)
    params = dict(det.net.named_parameters())
    assert "temperature" in params and params["temperature"].requires_grad
    assert params["temperature"].item() == pytest.approx(3.1)


def test_audio_is_resampled_to_the_visual_dimension():
    x = torch.arange(6, dtype=torch.float32).reshape(1, 1, 6)
    y = resample_dim(x, 11)
    assert y.shape == (1, 1, 11)
    assert y[0, 0, 0].item() == 0.0 and y[0, 0, -1].item() == 5.0


# --- windows ------------------------------------------------------------------------------


def test_windows_repeat_pad_and_cover_every_clip_once():
    w = window_indices(1, 8)
    assert len(w) == 1 and w[0][1] == 1 and list(w[0][2]) == [0] * 8
    w = window_indices(9, 8)  # window + 1
    assert [x[1] for x in w] == [8, 1] and list(w[1][2]) == [8] * 8
    w = window_indices(5, 8)  # fewer clips than the window
    assert list(w[0][2]) == [0, 1, 2, 3, 4, 0, 1, 2]
    w = window_indices(20, 8)
    valid = np.concatenate([idx[:n] for _, n, idx in w])
    assert list(valid) == list(range(20))
    with pytest.raises(InputError):
        window_indices(0, 8)


@pytest.mark.parametrize("t", [1, 8, 9, 5, 23])
def test_score_shape_and_range_for_edge_lengths(t):
    det = create_method("rasl", **TINY, visual_dim=16)
    s = det.score(np.abs(np.random.default_rng(t).normal(size=(t, 16))).astype(np.float32))
    assert s.shape == (t,) and np.all(np.isfinite(s))
    assert s.min() >= 0.0 and s.max() <= 1.0


def test_score_rejects_wrong_feature_size():
    det = create_method("rasl", **TINY, visual_dim=16)
    with pytest.raises(InputError, match="expects"):
        det.score(np.zeros((4, 15), dtype=np.float32))


def test_bad_config_is_a_usage_error():
    with pytest.raises(UsageError, match=r"k=5 is not allowed; allowed: 1\.\.window/2"):
        create_method("rasl", window=8, k=5)
    with pytest.raises(UsageError, match="unknown config key 'nope'; allowed keys: .*use_sa"):
        create_method("rasl", nope=1)


# --- training -----------------------------------------------------------------------------


def test_training_lowers_the_loss_and_is_reproducible_by_seed():
    vids = _videos()
    a = create_method("rasl", **TINY)
    rep = a.fit(vids, seed=3)
    assert rep.losses[-1]["total"] < rep.losses[0]["total"]
    assert {"rec_v", "kp_v", "aux_v", "rec_a", "kp_a", "aux_a", "scl"} <= set(rep.losses[0])
    b = create_method("rasl", **TINY)
    b.fit(vids, seed=3)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    x = vids[0].visual
    np.testing.assert_array_equal(a.score(x), b.score(x))
    c = create_method("rasl", **TINY)
    c.fit(vids, seed=4)
    assert not torch.equal(a.state_dict()["wsum.weight"], c.state_dict()["wsum.weight"])


@pytest.mark.parametrize(
    "flags,present,absent",
    [
        (dict(use_audio=False), {"rec_v", "kp_v", "aux_v"}, {"scl", "rec_a"}),
        (dict(use_rasl=False), {"rec_v", "scl"}, {"kp_v", "kp_a"}),
        (dict(use_aux=False), {"rec_v", "kp_v"}, {"aux_v", "aux_a"}),
        (dict(use_sa=False), {"rec_v", "scl"}, set()),
        (dict(use_visual=False), {"rec_a", "kp_a"}, {"rec_v", "scl"}),
    ],
)
def test_ablation_flags_switch_loss_terms(flags, present, absent):
    det = create_method("rasl", **{**TINY, "epochs": 1}, **flags)
    rep = det.fit(_videos(3), seed=0)
    assert present <= set(rep.losses[0]) and not (absent & set(rep.losses[0]))
    if flags.get("use_sa") is False:
        assert det.net.visual.sa is None
    v = _videos(1, seed=9)[0]
    s = det.score(v.visual, v.audio)
    assert s.shape == (v.num_clips,)


def test_training_without_audio_features_is_a_clear_error():
    with pytest.raises(InputError, match="use_audio=false"):
        create_method("rasl", **TINY).fit(_videos(2, da=None), seed=0)


def test_save_load_roundtrip(tmp_path):
    det = create_method("rasl", **{**TINY, "epochs": 1})
    det.fit(_videos(3), seed=1)
    det.info = {"seed": 1}
    path = det.save(tmp_path / "r.safetensors")
    back = load_method(path)
    assert back.name == "rasl" and back.info == {"seed": 1}
    assert back.config == det.config
    x = _videos(1, seed=5)[0].visual
    np.testing.assert_allclose(back.score(x), det.score(x), atol=2e-2)  # fp16 weights
    assert np.argmax(back.score(x)) == np.argmax(det.score(x))


# --- shipped weights ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rasl-tvsum", "rasl-youtube"])
def test_shipped_weights_load_and_score(name):
    path = REPO / "weights" / f"{name}.safetensors"
    if not path.is_file():
        pytest.skip(f"{path} not built yet")
    det = load_method(path)
    assert det.name == "rasl" and det.info.get("seed") == 0
    assert path.stat().st_size < 20 * 2**20
    s = det.score(np.abs(np.random.default_rng(0).normal(size=(40, det.config.visual_dim))).astype(np.float32))
    assert s.shape == (40,)


@pytest.mark.shared
def test_shipped_tvsum_weights_score_what_the_model_card_says():
    """The number in weights/rasl.md is what the shipped file measures (TVSum, all 50)."""
    path = REPO / "weights" / "rasl-tvsum.safetensors"
    data = SHARED / "data" / "tvsum"
    if not path.is_file() or not data.is_dir():
        pytest.skip("needs weights/rasl-tvsum.safetensors and ../shared/data/tvsum")
    from highlighter.eval.datasets import load_dataset
    from highlighter.eval.metrics import tvsum_video_top5_map

    det = load_method(path)
    ds = load_dataset(data, "all")
    per_domain = [np.mean([tvsum_video_top5_map(det.score(v.visual), v.labels) for v in vids])
                  for vids in ds.by_domain().values()]
    assert float(np.mean(per_domain)) == pytest.approx(0.4635, abs=5e-4)
