"""HPCL: loss terms on tiny tensors, sampling, and the detector contract on small synthetic data."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from highlighter.errors import InputError, UsageError
from highlighter.methods.data import VideoFeatures
from highlighter.eval.metrics import youtube_video_ap
from highlighter.methods import create_method, load_method
from highlighter.methods.base import method_class
from highlighter.methods.hpcl import (
    VARIANTS,
    binary_labels,
    ce_loss,
    hard_pairs,
    normalize_features,
    prepare_inputs,
    hpcl_loss,
    rank_loss,
    sample_indices,
)

TINY = dict(d=16, d_k=16, d_v=16, heads=2, layers=1, epochs=3, batch_size=4, device="cpu",
            visual_dim=12, audio_dim=6, seq_len=10, samples_per_video=2)


# --- losses -------------------------------------------------------------------------------


def _hpcl_naive(emb: torch.Tensor, y: torch.Tensor, tau: float) -> float:
    """Eq. 8 written as loops, one sequence."""
    z = F.normalize(emb, dim=-1)
    total, count = 0.0, 0
    for q in range(len(y)):
        pos = [k for k in range(len(y)) if k != q and y[k] == y[q]]
        neg = [k for k in range(len(y)) if y[k] != y[q]]
        if not pos or not neg:
            continue
        negsum = sum(math.exp(float(z[q] @ z[k]) / tau) for k in neg)
        acc = 0.0
        for k in pos:
            e = math.exp(float(z[q] @ z[k]) / tau)
            acc += -math.log(e / (e + negsum))
        total += acc / len(pos)
        count += 1
    return total / count


def test_hpcl_loss_matches_equation_8():
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(2, 6, 4, generator=g)
    y = torch.tensor([[0, 0, 1, 1, 1, 0], [1, 0, 0, 0, 0, 1]])
    got = float(hpcl_loss(emb, y, tau=0.5))
    want = np.mean([_hpcl_naive(emb[b], y[b], 0.5) for b in range(2)])
    assert got == pytest.approx(want, rel=1e-5)


def test_hpcl_loss_rewards_separated_classes():
    y = torch.tensor([[0, 0, 0, 1, 1, 1]])
    sep = torch.tensor([[[1.0, 0.0]] * 3 + [[-1.0, 0.0]] * 3])
    mixed = torch.tensor([[[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]]])
    assert float(hpcl_loss(sep, y, 0.1)) < 1e-3
    assert float(hpcl_loss(mixed, y, 0.1)) > 1.0


def test_hpcl_loss_single_class_is_zero_and_differentiable():
    emb = torch.randn(1, 4, 3, requires_grad=True)
    loss = hpcl_loss(emb, torch.zeros(1, 4, dtype=torch.long))
    assert float(loss.detach()) == 0.0
    loss.backward()


def test_hard_pairs_straddle_boundaries():
    y = np.array([0, 0, 0, 1, 1, 0, 0])
    pairs = {tuple(p) for p in hard_pairs(y, region=3)}
    assert pairs == {(2, 3), (1, 4), (4, 5), (3, 6)}
    assert all(y[i] != y[j] for i, j in pairs)
    assert hard_pairs(np.zeros(5, dtype=int)).shape == (0, 2)
    # clamped at the edges: boundary between 0 and 1 -> (0,1); (0,2) for k=2 is same-label 0|1? y=[1,0,0]
    assert {tuple(p) for p in hard_pairs(np.array([1, 0, 0]), 3)} == {(0, 1), (0, 2)}


def test_rank_loss_hinge_on_normalised_distance():
    # unit vectors at 0 and 60 degrees: distance 1.0 (> margin 0.7 -> 0); at 0 and 30 degrees: 2 sin(15deg)
    a = [1.0, 0.0]
    b60 = [math.cos(math.pi / 3), math.sin(math.pi / 3)]
    b30 = [math.cos(math.pi / 6), math.sin(math.pi / 6)]
    emb = torch.tensor([[a, b60], [a, b30]]) * 5.0  # scale must not matter
    pairs = [np.array([[0, 1]]), np.array([[0, 1]])]
    d30 = 2 * math.sin(math.pi / 12)
    assert float(rank_loss(emb, pairs, 0.7)) == pytest.approx((0.0 + (0.7 - d30)) / 2, rel=1e-5)
    assert float(rank_loss(emb, [np.zeros((0, 2), dtype=int)] * 2, 0.7)) == 0.0


def test_ce_loss_sums_heads():
    y = torch.tensor([[1, 0, 1]])
    z1 = torch.tensor([[2.0, -1.0, 0.5]])
    z2 = torch.tensor([[0.0, 0.0, 0.0]])
    p1 = torch.sigmoid(z1)
    manual = -(y * p1.log() + (1 - y) * (1 - p1).log()).mean() + math.log(2)
    assert float(ce_loss([z1, z2], y)) == pytest.approx(float(manual), rel=1e-5)


# --- labels and sampling ------------------------------------------------------------------


def test_binary_labels_youtube_and_tvsum():
    assert binary_labels(np.array([1, 0, -1, 1])).tolist() == [1, 0, 0, 1]
    anno = np.array([[1, 2, 3, 4, 5, 5], [1, 2, 3, 4, 5, 4]], dtype=float)  # (A, T)
    assert binary_labels(anno).tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(InputError):
        binary_labels(np.zeros((2, 2, 2)))


@pytest.mark.parametrize("n,pos", [(100, [50]), (100, list(range(40, 80))), (7, [3]), (30, list(range(25)))])
def test_sample_indices_holds_both_classes_at_ratio(n, pos):
    y = np.zeros(n, dtype=np.int64)
    y[pos] = 1
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = sample_indices(y, 20, rng)
        assert idx.shape == (20,) and np.all(np.diff(idx) >= 0)
        assert idx.min() >= 0 and idx.max() < n
        k = int(y[idx].sum())
        assert min(k, 20 - k) >= 7  # minority : majority >= 1 : 2


# --- detector -----------------------------------------------------------------------------


def _videos(n: int, seed: int, t: int = 30) -> list[VideoFeatures]:
    """Highlights are a contiguous block whose visual AND audio features are shifted."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        y = np.zeros(t, dtype=np.int64)
        s = int(rng.integers(0, t - 10))
        y[s : s + 8] = 1
        v = (rng.normal(size=(t, 12)) + 1.5 * y[:, None]).astype(np.float32)
        a = (rng.normal(size=(t, 6)) + 1.0 * y[:, None]).astype(np.float32)
        out.append(VideoFeatures(f"v{seed}_{i}", "dom", "train", v, a, y))
    return out


def test_registered_flags():
    cls = method_class("hpcl")
    assert cls.supervised is True and cls.uses_audio is True and cls.trainable is True


def test_fit_learns_is_deterministic_and_roundtrips(tmp_path):
    torch.set_num_threads(1)
    train, test = _videos(12, 0), _videos(4, 1)
    a = create_method("hpcl", **TINY)
    rep = a.fit(train, seed=3)
    assert len(rep.losses) == TINY["epochs"] and all(np.isfinite(r["total"]) for r in rep.losses)
    b = create_method("hpcl", **TINY)
    b.fit(train, seed=3)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    c = create_method("hpcl", **{**TINY, "epochs": 15})
    c.fit(train, seed=0)
    aps = [youtube_video_ap(c.score(v.visual, v.audio), v.labels) for v in test]
    assert np.mean(aps) > 0.8  # base rate is 8/30
    path = c.save(tmp_path / "hpcl.safetensors")
    d = load_method(path)
    s1, s2 = c.score(test[0].visual, test[0].audio), d.score(test[0].visual, test[0].audio)
    assert s1.shape == (30,)
    np.testing.assert_allclose(s1, s2, atol=5e-3)  # fp16 weights


@pytest.mark.parametrize("variant", VARIANTS)
def test_ablation_variants_train_and_score(variant):
    torch.set_num_threads(1)
    det = create_method("hpcl", **{**TINY, "epochs": 1, "variant": variant})
    det.fit(_videos(4, 2), seed=0)
    v = _videos(1, 3)[0]
    s = det.score(v.visual, v.audio)
    assert s.shape == (30,) and np.all(np.isfinite(s)) and np.all((s >= 0) & (s <= 1))


@pytest.mark.parametrize("override", [{"w_hpcl": 0.0, "w_rank": 0.0}, {"w_rank": 0.0}, {"global_init": "random"},
                                      {"global_init": "none"}, {"infer_window": 8, "pos_encoding": True}])
def test_loss_and_global_ablations(override):
    torch.set_num_threads(1)
    det = create_method("hpcl", **{**TINY, "epochs": 1, **override})
    rep = det.fit(_videos(4, 2), seed=0)
    if override.get("w_hpcl") == 0.0:
        assert rep.losses[-1]["hpcl"] == 0.0
    v = _videos(1, 3)[0]
    assert det.score(v.visual, v.audio).shape == (30,)


def test_bad_inputs_raise_one_line_errors():
    det = create_method("hpcl", **TINY)
    v = _videos(1, 0)[0]
    with pytest.raises(InputError, match="audio"):
        det.score(v.visual, None)
    with pytest.raises(InputError, match="visual features have shape"):
        det.score(v.visual[:, :5], v.audio)
    with pytest.raises(InputError, match="clips"):
        det.score(v.visual, v.audio[:10])
    with pytest.raises(UsageError, match="variant='xx' is not allowed"):
        create_method("hpcl", variant="xx")
    single = VideoFeatures("s", "d", "train", v.visual, v.audio, np.zeros(30, dtype=np.int64))
    with pytest.raises(InputError, match="single class"):
        det.fit([single], seed=0)


# --- results table helpers ----------------------------------------------------------------


def _results_table():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "results_table.py"
    spec = importlib.util.spec_from_file_location("results_table", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cv_folds_are_by_video_and_cover_every_domain():
    rt = _results_table()
    vids = [VideoFeatures(f"{d}{i}", d, "train", np.zeros((2, 1)), None, np.zeros(2))
            for d, n in (("a", 10), ("b", 7)) for i in range(n)]
    folds = rt.make_folds(vids, 5, seed=0)
    assert folds == rt.make_folds(list(reversed(vids)), 5, seed=0)[::-1]  # order-free
    for f in range(5):
        assert {v.domain for v, g in zip(vids, folds) if g == f} == {"a", "b"}
    counts = np.bincount([g for v, g in zip(vids, folds) if v.domain == "a"])
    assert counts.tolist() == [2, 2, 2, 2, 2]


def test_table_render_marks_protocols():
    rt = _results_table()
    rows = [
        {"method": "hpcl", "supervised": True, "paper": (0.747, 0.801), "seeds": 1,
         "cells": {"yt": [0.7], "tv_umt_val": [0.75], "tv_paper_val": [0.8]}, "notes": {"yt": "5-fold CV"},
         "seconds": {"youtube": [100.0], "tvsum": [50.0]}},
        {"method": "random", "supervised": False, "paper": None, "seeds": 3,
         "cells": {"yt": [0.4, 0.5, 0.6], "tv_umt_val": [0.5] * 3, "tv_umt_all": [0.55] * 3,
                   "tv_paper_val": [0.6] * 3, "tv_paper_all": [0.65] * 3}, "notes": {"yt": "direct"},
         "seconds": {}},
    ]
    text = rt.render(rows, 5)
    assert "| hpcl | yes | 1 | 0.700 (5-fold CV) | 0.750 | — | 0.800 | — | 0.747 | 0.801 | 100 / 50 |" in text
    assert "| random | no | 3 | 0.500 ± 0.082 (direct) | 0.500 ± 0.000 | 0.550 ± 0.000 | 0.600 ± 0.000 | " \
           "0.650 ± 0.000 | — | — | — |" in text
    assert "papers'" in text and "mean ± std" in text
    assert rt._overrides_from_command("highlighter train --set a=1 -o x --set b=2") == ["a=1", "b=2"]


# --- departures from the paper: input scaling, per-domain models, the paper preset ---------


@pytest.mark.parametrize("mode", ["scale", "center", "zscore", "l2"])
def test_input_norm_removes_a_videos_scale(mode):
    x = np.abs(np.random.default_rng(0).normal(size=(25, 7))).astype(np.float32)
    np.testing.assert_allclose(normalize_features(7.5 * x, mode), normalize_features(x, mode), rtol=1e-4, atol=1e-5)
    assert not np.allclose(normalize_features(x, mode)[0], normalize_features(x, mode)[1])  # clips still differ
    assert normalize_features(x, "none") is not None and np.array_equal(normalize_features(x, "none"), x)


def test_norm_channel_is_the_clips_standardised_feature_norm():
    x = np.abs(np.random.default_rng(1).normal(size=(9, 5))).astype(np.float32)
    c = create_method("hpcl", **{**TINY, "norm_channel": True}).config
    out = prepare_inputs(x, c)
    n = np.linalg.norm(x, axis=1)
    assert out.shape == (9, 6) and np.argmax(out[:, -1]) == np.argmax(n)
    np.testing.assert_allclose(out[:, -1], (n - n.mean()) / n.std(), rtol=1e-4, atol=1e-5)
    assert prepare_inputs(x, create_method("hpcl", **{**TINY, "norm_channel": False}).config).shape == (9, 5)


def test_paper_preset_is_the_papers_literal_settings():
    paper = create_method("hpcl", preset="paper").config
    assert (paper.d, paper.d_k, paper.d_v, paper.heads, paper.layers, paper.dropout) == (256, 512, 512, 8, 2, 0.5)
    assert (paper.lr, paper.epochs, paper.seq_len) == (1e-4, 20, 20)
    assert (paper.w_hpcl, paper.w_rank, paper.margin, paper.samples_per_video) == (0.3, 0.1, 0.7, 1)
    assert paper.input_norm == "none" and not paper.norm_channel and not paper.per_domain
    default = create_method("hpcl").config  # the paper's, one pass over the clips per epoch (measured best)
    assert default.input_norm == "none" and not default.norm_channel and default.samples_per_video == 0
    assert {k: getattr(default, k) for k in ("d", "lr", "epochs")} == {"d": 256, "lr": 1e-4, "epochs": 20}
    fast = create_method("hpcl", preset="fast").config
    assert fast.input_norm == "zscore" and fast.norm_channel and (fast.d, fast.lr, fast.epochs) == (128, 5e-4, 8)


def test_scores_do_not_depend_on_a_videos_feature_scale():
    torch.set_num_threads(1)
    det = create_method("hpcl", **{**TINY, "epochs": 1, "input_norm": "zscore"})
    det.fit(_videos(4, 2), seed=0)
    v = _videos(1, 3)[0]
    np.testing.assert_allclose(det.score(v.visual, v.audio), det.score(3 * v.visual + 0, 3 * v.audio), atol=1e-5)


def test_per_domain_models_route_by_scene_and_roundtrip(tmp_path):
    torch.set_num_threads(1)
    shift = np.zeros(12, dtype=np.float32)
    shift[:6] = 6.0  # domain "b" looks different: its clips point elsewhere in visual space
    train = _videos(4, 0) + [VideoFeatures(v.vid + "b", "b", "train", v.visual + shift, v.audio, v.labels)
                             for v in _videos(4, 1)]
    det = create_method("hpcl", **{**TINY, "epochs": 1, "per_domain": True})
    det.fit(train, seed=0)
    assert det.config.domains == ("b", "dom") and len(det.net.nets) == 2
    assert det.net.route(train[0].visual) == 1 and det.net.route(train[-1].visual) == 0
    other = det.net.nets[0] if det.net.route(train[0].visual) == 1 else det.net.nets[1]
    v = train[0]
    routed = det.score(v.visual, v.audio)
    det2 = load_method(det.save(tmp_path / "pd.safetensors"))
    assert det2.config.domains == ("b", "dom")
    np.testing.assert_allclose(det2.score(v.visual, v.audio), routed, atol=5e-3)
    vn = prepare_inputs(v.visual, det.config)[None]
    an = prepare_inputs(v.audio, det.config)[None]
    assert not np.allclose(det._score_batch(other, vn, an)[0], routed)  # the other domain's model differs
