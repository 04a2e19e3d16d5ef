"""Training-free baselines: unit behaviour, and their numbers on the real benchmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from highlighter.errors import InputError, UsageError
from highlighter.eval import evaluate_method, load_dataset
from highlighter.eval.metrics import rank_labels, ranked_ap, tvsum_positives
from highlighter.methods import available_methods, create_method, load_method
from highlighter.methods.base import method_class
from highlighter.methods.shipped import PACKAGE_WEIGHTS_DIR, shipped_dir, shipped_targets, shipped_weights

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def test_registered_and_training_free():
    for name in ("random", "feature-norm"):
        assert name in available_methods()
        cls = method_class(name)
        assert cls.trainable is False and cls.uses_audio is False
        with pytest.raises(UsageError, match="training-free"):
            create_method(name).fit([])


def test_feature_norm_is_the_l2_norm():
    v = np.array([[3, 4, 0], [0, 0, 0], [1, 1, 1]], np.float32)
    assert np.allclose(create_method("feature-norm").score(v), [5, 0, np.sqrt(3)])
    with pytest.raises(InputError, match="clips, dims"):
        create_method("feature-norm").score(np.ones(3))


def test_random_scores_shape_range_and_seed():
    v = np.random.default_rng(0).normal(size=(50, 16)).astype(np.float32)
    a, b = create_method("random", seed=1).score(v), create_method("random", seed=1).score(v)
    assert a.shape == (50,) and np.array_equal(a, b) and (a >= 0).all() and (a < 1).all()
    assert not np.array_equal(a, create_method("random", seed=2).score(v))
    assert not np.array_equal(a, create_method("random", seed=1).score(v + 1))  # another video


def test_baseline_save_and_load_keeps_config(tmp_path):
    v = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    det = create_method("random", seed=7)
    back = load_method(det.save(tmp_path / "random.safetensors"))
    assert back.name == "random" and back.config.seed == 7
    assert np.array_equal(back.score(v), det.score(v))


def test_shipped_weights_lookup(tmp_path, monkeypatch):
    monkeypatch.delenv("HIGHLIGHTER_WEIGHTS_DIR", raising=False)
    assert shipped_dir() == PACKAGE_WEIGHTS_DIR and PACKAGE_WEIGHTS_DIR.name == "weights"
    monkeypatch.setenv("HIGHLIGHTER_WEIGHTS_DIR", str(tmp_path))
    assert shipped_weights("rasl", "tvsum") is None
    create_method("random").save(tmp_path / "rasl-tvsum.safetensors")
    (tmp_path / "rasl-video.safetensors").write_bytes(b"")
    assert shipped_weights("rasl", "tvsum") == tmp_path / "rasl-tvsum.safetensors"
    assert shipped_targets("rasl") == ["tvsum", "video"]
    with pytest.raises(ValueError):
        shipped_weights("../x", "tvsum")


# --- real benchmarks (../shared) ---------------------------------------------------


def _chance(ds, per_video_labels, k=None, perms=40, seed=0) -> float:
    """Expected metric of a uniformly random ranking, by shuffling labels directly
    (a code path independent of the detector and the harness)."""
    rng = np.random.default_rng(seed)
    per_domain = []
    for videos in ds.by_domain().values():
        vals = []
        for v in videos:
            rows = per_video_labels(v)
            aps = [ranked_ap(rng.permutation(r)[:k]) for r in rows for _ in range(perms)]
            vals.append(np.mean(aps))
        per_domain.append(np.mean(vals))
    return float(np.mean(per_domain))


def _real(name: str, split: str):
    root = SHARED / "data" / name
    if not (root / "splits.json").is_file():
        pytest.skip(f"{root} not present (the shared benchmark features are not in this checkout)")
    return load_dataset(root, split)


@pytest.mark.shared
def test_baselines_on_youtube_highlights():
    ds = _real("youtube", "train")
    assert len(ds.domains()) == 6
    rnd = evaluate_method(create_method("random", seed=0), ds)
    norm = evaluate_method(create_method("feature-norm"), ds)
    for r in (rnd, norm):
        assert 0.0 <= r.overall <= 1.0 and all(0.0 <= x <= 1.0 for x in r.per_domain.values())
        assert r.num_videos == len(ds.videos)
    chance = _chance(ds, lambda v: [v.labels > 0])
    assert abs(rnd.overall - chance) < 0.04  # measured sd of random over seeds ~0.01


@pytest.mark.shared
def test_baselines_on_tvsum_all():
    ds = _real("tvsum", "all")
    assert len(ds.videos) == 50 and len(ds.domains()) == 10
    rnd = evaluate_method(create_method("random", seed=0), ds)
    norm = evaluate_method(create_method("feature-norm"), ds)
    for r in (rnd, norm):
        assert 0.0 <= r.overall <= 1.0
    chance = _chance(ds, lambda v: tvsum_positives(v.labels), k=5, perms=10)
    assert abs(rnd.overall - chance) < 0.07  # measured sd of random over seeds ~0.02


@pytest.mark.shared
def test_constant_scores_get_no_credit_on_real_tvsum():
    # every clip tied: the pessimistic tie rule fills the top 5 with negatives
    ds = _real("tvsum", "val")
    assert all(len(v.labels) == 20 for v in ds.videos)
    for v in ds.videos:
        for pos in tvsum_positives(v.labels):
            assert not rank_labels(np.zeros(v.num_clips), pos)[:5].any()
