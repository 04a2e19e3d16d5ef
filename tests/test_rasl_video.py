"""RASL's per-video mode (pretrain on the scored video itself) and the method-independent flatness signal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from highlighter.api import FLAT_SPREAD, clip_signal
from highlighter.errors import InputError
from highlighter.methods import create_method
from highlighter.methods.data import VideoFeatures
from highlighter.methods.rasl import RASL, VIDEO_PRETRAIN, RASLConfig, scale_per_dim

torch.set_num_threads(1)

TINY = dict(window=8, k=2, channels=(2, 2, 4), psi_channels=2, proj_dim=8, batch_size=4, epochs=2)


def sequence(t: int = 20, dv: int = 16, da: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A video's FVS: calm clips with a burst of distinct ones in the middle, visual and audio."""
    rng = np.random.default_rng(seed)
    vis = np.abs(rng.normal(0.0, 0.1, size=(t, dv))).astype(np.float32)
    aud = rng.normal(-40.0, 1.0, size=(t, da)).astype(np.float32)  # dB-like: negative, any units
    vis[t // 2: t // 2 + 3] += 2.0
    aud[t // 2: t // 2 + 3] += 20.0
    return vis, aud


def test_video_mode_is_deterministic_and_records_what_it_trained():
    vis, aud = sequence()
    det = create_method("rasl", **TINY, pretrain="video", video_seeds=2)
    a = det.score(vis, aud)
    assert a.shape == (20,) and np.all(np.isfinite(a)) and a.min() == 0.0 and a.max() == pytest.approx(1.0)
    assert det.last_run["audio"] is True and det.last_run["seeds"] == 2 and det.last_run["init"] == "scratch"
    np.testing.assert_array_equal(create_method("rasl", **TINY, pretrain="video", video_seeds=2).score(vis, aud), a)
    one = create_method("rasl", **TINY, pretrain="video", video_seeds=1).score(vis, aud)
    assert not np.array_equal(one, a)  # the ensemble really averages more runs
    silent = det.score(vis)  # no audio features: visual-only pretraining, said in last_run
    assert det.last_run["audio"] is False and not np.array_equal(silent, a)
    np.testing.assert_array_equal(det.score(vis), silent)


def test_video_mode_works_in_any_feature_space_and_needs_audio_at_inference():
    vis, aud = sequence(t=9, dv=21, da=5)  # sizes no weights exist for; fewer clips than a window
    det = create_method("rasl", **TINY, pretrain="video", video_seeds=1)
    assert det.score(vis, aud).shape == (9,) and det.config.pretrain == "video"
    assert RASL.audio_at_inference(RASLConfig(pretrain="video")) is True and det.uses_audio
    assert RASL.audio_at_inference(RASLConfig()) is False and not create_method("rasl", **TINY).uses_audio
    with pytest.raises(InputError, match="audio clips"):
        det.score(vis, aud[:5])


def test_per_video_defaults_come_from_one_place():
    det = RASL.per_video()
    assert det.config.pretrain == "video" and det.init_state is None
    assert {k: getattr(det.config, k) for k in VIDEO_PRETRAIN} == VIDEO_PRETRAIN
    assert VIDEO_PRETRAIN == {"use_sa": False, "epochs": 4, "video_seeds": 3}


def test_per_video_from_weights_starts_every_run_from_them():
    vis, aud = sequence()
    base = create_method("rasl", **TINY)
    base.fit([VideoFeatures("b", "d", "train", vis, aud, np.zeros(0))], seed=1)
    # with zero epochs each run is exactly the starting weights: same ranking as the base model
    start = RASL.per_video(base, epochs=0, video_seeds=2)
    assert start.config.use_sa == base.config.use_sa and start.config.video_scale == "none"
    np.testing.assert_allclose(start.score(vis, aud), base.score(vis), atol=1e-5)
    assert start.last_run["init"] == "weights"
    tuned = RASL.per_video(base, video_seeds=1)
    assert not np.allclose(tuned.score(vis, aud), base.score(vis), atol=1e-3)
    with pytest.raises(InputError, match="starting weights expect 16-d"):
        tuned.score(np.ones((5, 8), np.float32))


def test_scale_per_dim_modes():
    x = np.array([[1.0, -50.0, 3.0], [3.0, -10.0, 3.0], [2.0, -30.0, 3.0]])
    np.testing.assert_allclose(scale_per_dim(x, "minmax"), [[0, 0, 0], [1, 1, 0], [0.5, 0.5, 0]])
    np.testing.assert_allclose(scale_per_dim(x, "nonneg"), [[1, 0, 3], [3, 40, 3], [2, 20, 3]])  # dB-like column only
    pos = np.abs(x)
    assert np.array_equal(scale_per_dim(pos, "nonneg"), pos)
    assert RASLConfig().video_scale == "nonneg"  # I3D / PANN / EfficientNet features (>= 0) go in untouched


def test_clip_signal_flat_clear_and_too_short():
    rng = np.random.default_rng(0)
    flat = np.tile(np.abs(rng.normal(size=(1, 32))), (6, 1))
    s = clip_signal(flat + 1e-4 * rng.random(flat.shape))
    assert not s.clear and s.spread < 0.01 and s.threshold == FLAT_SPREAD
    assert "no clear highlight" in s.message
    busy = clip_signal(np.abs(rng.normal(size=(6, 32))))
    assert busy.clear and busy.spread > FLAT_SPREAD and busy.message is None
    one = clip_signal(flat[:1])
    assert one.clear and one.spread is None
    assert not clip_signal(np.zeros((4, 8))).clear  # all-zero features: nothing differs
