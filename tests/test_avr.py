"""AVR: recurrence pseudo-highlights, pseudo-categories, the AV network, BCE, persistence."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from highlighter.errors import InputError, UsageError
from highlighter.methods.data import VideoFeatures
from highlighter.methods import create_method, load_method
from highlighter.methods.avr import bce_loss, category_means, choose_k, recurrence, top_fraction, unit_rows

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

torch.set_num_threads(1)


def _videos(n_per: int = 4, dv: int = 12, da: int = 8, seed: int = 0) -> list[VideoFeatures]:
    """Two well-separated kinds of video; within each, clips near the kind's prototype recur."""
    rng = np.random.default_rng(seed)
    protos = [(rng.normal(size=dv) * 3, rng.normal(size=da) * 3) for _ in range(2)]
    out = []
    for kind, (pv, pa) in enumerate(protos):
        for i in range(n_per):
            t = int(rng.integers(6, 12))
            w = rng.uniform(0, 1, size=(t, 1))  # how much each clip shows the recurring moment
            vis = (w * pv + rng.normal(size=(t, dv))).astype(np.float32)
            aud = (w * pa + rng.normal(size=(t, da))).astype(np.float32)
            out.append(VideoFeatures(f"k{kind}v{i}", f"kind{kind}", "train", vis, aud, np.zeros(t, np.int64)))
    return out


def test_recurrence_equals_mean_pairwise_cosine():
    rng = np.random.default_rng(1)
    a, others = rng.normal(size=(3, 5)), [rng.normal(size=(4, 5)), rng.normal(size=(2, 5))]
    allc = np.concatenate([a] + others)
    want = np.array([[np.dot(x, y) / np.linalg.norm(x) / np.linalg.norm(y) for y in allc] for x in a]).mean(1)
    got = recurrence(a, category_means([a] + others))
    assert np.allclose(got, want)


def test_pcc_is_cosine_of_centred_vectors():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(1, 6)), rng.normal(size=(1, 6))
    def sim(p, q, kind="cosine"):
        return float((unit_rows(p, kind) @ unit_rows(q, kind).T)[0, 0])

    pcc = sim(x, y, "pcc")
    assert pcc == pytest.approx(np.corrcoef(x[0], y[0])[0, 1])
    # PCC ignores a constant offset; cosine does not
    assert sim(x + 5, y, "pcc") == pytest.approx(pcc)
    assert sim(x + 5, y) != pytest.approx(sim(x, y))


def test_top_fraction_marks_half_with_stable_ties():
    assert top_fraction(np.array([0.1, 0.9, 0.5, 0.7]), 50).tolist() == [0, 1, 0, 1]
    assert top_fraction(np.array([1.0, 1.0, 1.0]), 50).tolist() == [1, 1, 0]  # ceil(1.5) = 2
    assert top_fraction(np.array([0.3]), 50).tolist() == [1]


def test_bce_loss_hand_value():
    logits, y = torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 0.0]])
    want = (math.log(2) + math.log(1 + math.exp(2))) / 2
    assert float(bce_loss(logits, y)) == pytest.approx(want, rel=1e-6)


def test_choose_k_finds_separated_clusters():
    rng = np.random.default_rng(3)
    emb = np.concatenate([rng.normal(c, 0.1, size=(6, 2)) for c in (0, 5, 10)])
    k, labels, centers, sil = choose_k(emb, 2, 4, seed=0, n_init=2)
    assert k == 3 and len(set(labels[:6])) == 1 and centers.shape == (3, 2) and sil[3] == max(sil.values())


@pytest.mark.parametrize(
    "fusion,modalities", [("bimodal", "av"), ("early", "av"), ("late", "av"), ("bimodal", "v"), ("bimodal", "a")]
)
def test_network_variants_give_one_score_per_clip(fusion, modalities):
    det = create_method("avr", visual_dim=12, audio_dim=8, d=16, fusion=fusion, modalities=modalities)
    v = _videos(1)[0]
    s = det.score(v.visual, v.audio if modalities != "v" else None)
    assert s.shape == (v.num_clips,) and ((s > 0) & (s < 1)).all()


def test_fit_pseudo_labels_learned_deterministic_round_trip(tmp_path):
    vids = _videos()
    cfg = dict(d=16, reducer="pca", n_components=3, epochs=12, lr=1e-2, k_max=3, kmeans_restarts=2)
    a, b = create_method("avr", preset="paper", **cfg), create_method("avr", preset="paper", **cfg)
    rep = a.fit(vids, seed=1)
    b.fit(vids, seed=1)
    assert a.info["pseudo_categories"]["k"] == 2  # the two kinds of video
    assert rep.losses[-1]["bce"] < rep.losses[0]["bce"]
    for v in vids:
        assert np.array_equal(a.score(v.visual, v.audio), b.score(v.visual, v.audio))
    # the network learned the recurring moment: scores follow the pseudo-highlight scores
    v = vids[0]
    a.config.score_mode = "pseudo"
    ph = a.score(v.visual, v.audio)
    a.config.score_mode = "network"
    assert np.corrcoef(ph, a.score(v.visual, v.audio))[0, 1] > 0.5
    path = a.save(tmp_path / "avr.safetensors")
    c = load_method(path)
    assert c.config.reducer == "pca" and "centroids" in c.cluster
    assert np.allclose(c.score(v.visual, v.audio), a.score(v.visual, v.audio), atol=5e-3)
    # test-time assignment puts each video in its own kind's category
    kinds = {c.assign(x.visual, x.audio) for x in vids[:4]}, {c.assign(x.visual, x.audio) for x in vids[4:]}
    assert len(kinds[0]) == 1 and len(kinds[1]) == 1 and kinds[0] != kinds[1]


@pytest.mark.slow  # numba compiles UMAP on first use (~20 s of CPU)
def test_umap_reducer_and_real_categories():
    pytest.importorskip("umap")
    vids = _videos(n_per=5)
    det = create_method("avr", preset="paper", d=16, epochs=1, n_components=2, n_neighbors=4, k_max=3,
                        kmeans_restarts=2)
    det.fit(vids, seed=0)
    assert det.info["pseudo_categories"]["k"] == 2
    assert det.assign(vids[0].visual, vids[0].audio) != det.assign(vids[-1].visual, vids[-1].audio)
    real = create_method("avr", preset="paper", d=16, epochs=1, reducer="pca", n_components=2, categories="real")
    real.fit(vids, seed=0)
    assert real.info["pseudo_categories"]["sizes"] == [5, 5]


def test_bad_input_is_one_clear_error():
    det = create_method("avr", visual_dim=12, audio_dim=8, d=16)
    v = _videos(1)[0]
    with pytest.raises(InputError, match="audio"):
        det.score(v.visual, None)
    with pytest.raises(InputError, match="expected"):
        det.score(v.visual[:, :5], v.audio)
    with pytest.raises(UsageError, match="fusion='mid' is not allowed; allowed: bimodal, early, late"):
        create_method("avr", fusion="mid")
    vids = _videos()
    vids[2].audio = None
    with pytest.raises(InputError, match="no audio"):
        create_method("avr").fit(vids)


@pytest.mark.shared
@pytest.mark.parametrize("target", ["youtube", "tvsum"])
def test_shipped_weights_load_and_score(target):
    path = REPO / "weights" / f"avr-{target}.safetensors"
    if not path.is_file():
        pytest.skip(f"{path.name} not shipped")
    data = SHARED / "data" / target
    if not data.is_dir():
        pytest.skip("../shared/data not present")
    det = load_method(path, "avr")
    vid = sorted((data / "video_features").glob("*_rgb.npy"))[0].name[: -len("_rgb.npy")]
    vis = np.load(data / "video_features" / f"{vid}_rgb.npy").astype(np.float32)
    aud = np.load(data / "audio_features" / f"{vid}.npy").astype(np.float32)
    s = det.score(vis, aud)
    t = min(len(vis), len(aud))
    assert s.shape == (t,) and np.isfinite(s).all()
    if det.config.prior == "recurrence":  # the paper's pseudo-categories are stored
        assert 0 <= det.assign(vis[:t], aud[:t]) < det.cluster["centroids"].shape[0]


def test_padded_batch_scores_like_the_video_alone():
    det = create_method("avr", visual_dim=12, audio_dim=8, d=16)
    from highlighter.methods.layers import pad_batch

    vids = _videos()
    v, mask = pad_batch([vids[0].visual, vids[1].visual])
    a, _ = pad_batch([vids[0].audio, vids[1].audio])
    with torch.no_grad():
        logits = det.net(v, a, mask)
    alone = det.score(vids[0].visual, vids[0].audio)
    assert np.allclose(torch.sigmoid(logits[0, : vids[0].num_clips]).numpy(), alone, atol=1e-5)
    y = torch.zeros(2, v.shape[1])
    full = bce_loss(logits, y, mask)
    assert float(full) == pytest.approx(float(bce_loss(logits[mask], y[mask])), rel=1e-6)


def test_feature_norm_prior_labels_the_top_half_by_norm_and_is_learned():
    vids = _videos()
    det = create_method("avr", d=16, epochs=15, lr=1e-2)
    assert det.config.prior == "feature-norm"
    targets = det.pseudo_highlights(vids, np.zeros(len(vids), dtype=int))
    for v, y in zip(vids, targets):
        assert np.array_equal(y, top_fraction(np.linalg.norm(v.visual, axis=1), 50.0))
    rep = det.fit(vids, seed=0)
    assert "pseudo_categories" not in det.info  # no clustering is needed for this prior
    assert rep.losses[-1]["bce"] < rep.losses[0]["bce"]
    r = [np.corrcoef(det.score(v.visual, v.audio), np.linalg.norm(v.visual, axis=1))[0, 1] for v in vids]
    assert np.mean(r) > 0.5
    det.config.score_mode = "pseudo"  # the prior itself, no pseudo-category to assign
    assert np.allclose(det.score(vids[0].visual, vids[0].audio), np.linalg.norm(vids[0].visual, axis=1), rtol=1e-5)


def test_paper_preset_restores_recurrence_and_the_papers_schedule():
    c = create_method("avr", preset="paper").config
    assert (c.prior, c.epochs, c.schedule, c.top_percent) == ("recurrence", None, "youtube", 50.0)
    assert create_method("avr").config.epochs == 20
