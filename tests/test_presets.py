"""Named configs (`--preset`): the paper's literal settings next to our defaults, and which
detector a method name resolves to when no weights file is given."""

from __future__ import annotations

import numpy as np
import pytest

from highlighter.errors import UsageError, WeightsMissingError
from highlighter.eval.harness import select_detectors
from highlighter.methods import create_method
from highlighter.methods.base import method_class, preset_config
from highlighter.methods.rasl import PAPER, VIDEO_PRETRAIN
from highlighter.methods.shipped import resolve_detector, shipped_weights
from highlighter.train import train_detector
from tests.cli_helpers import run_cli_in_process
from tests.test_train_cli import make_dataset

TINY = ["window=8", "k=2", "channels=2,2,4", "psi_channels=2", "proj_dim=8", "batch_size=4"]


def test_preset_values_apply_under_keyword_overrides():
    det = create_method("rasl", preset="paper", epochs=1)
    assert det.config.use_sa is True and det.config.pretrain == "weights" and det.config.epochs == 1
    assert det.info["preset"] == "paper"
    video = create_method("rasl", preset="video", use_sa=True)  # keywords win over the preset
    assert video.config.pretrain == "video" and video.config.use_sa is True
    assert preset_config("rasl", None) == {}
    assert method_class("rasl").presets == {"video": {**VIDEO_PRETRAIN, "pretrain": "video"}, "paper": PAPER}


def test_unknown_preset_is_one_usage_line_listing_the_presets():
    with pytest.raises(UsageError, match=r"method 'rasl' has no preset 'papr'; its presets: paper, video"):
        create_method("rasl", preset="papr")
    with pytest.raises(UsageError, match=r"method 'feature-norm' has no preset 'paper'; its presets: none"):
        create_method("feature-norm", preset="paper")


def test_rasl_by_name_pretrains_on_each_video_and_paper_is_the_shipped_weights(monkeypatch, tmp_path):
    r = resolve_detector("rasl", None, "youtube")
    assert r.weights is None and r.detector.config.pretrain == "video" and r.detector.info == {"preset": "video"}
    assert not r.detector.needs_weights(r.detector.config)
    # "paper" needs weights: the shipped file of the target when it was trained with the paper's settings ...
    if shipped_weights("rasl", "youtube") is not None:
        paper = resolve_detector("rasl", None, "youtube", preset="paper")
        assert paper.weights is not None and paper.detector.config.use_sa is True
    # ... and a file trained otherwise does not stand in for it
    root = make_dataset(tmp_path / "yt")
    monkeypatch.setenv("HIGHLIGHTER_WEIGHTS_DIR", str(tmp_path / "w"))
    train_detector("rasl", [f"{root}:train"], tmp_path / "w" / "rasl-youtube.safetensors", epochs=1,
                   overrides=[*TINY, "use_sa=false"])
    with pytest.raises(WeightsMissingError, match=r"no shipped weights for preset 'paper' .*differs in use_sa"):
        resolve_detector("rasl", None, "youtube", preset="paper")


def test_train_records_the_preset_and_evaluate_labels_it(monkeypatch, capsys, tmp_path):
    root = make_dataset(tmp_path / "yt")
    out = tmp_path / "p.safetensors"
    res = train_detector("rasl", [f"{root}:train"], out, epochs=1, overrides=TINY, preset="paper")
    assert res.info["preset"] == "paper" and res.detector.config.use_sa is True
    code, _, err = run_cli_in_process(monkeypatch, capsys, "train", "-m", "rasl", "-d", f"{root}:train",
                                      "-o", str(tmp_path / "x.safetensors"), "--preset", "nope")
    assert code == 2 and "has no preset 'nope'" in err and not (tmp_path / "x.safetensors").exists()
    entries = select_detectors("youtube", ["rasl"], preset="video", baselines=True)
    assert [e.label for e in entries] == ["rasl (video)", "random", "feature-norm"]
    code, _, err = run_cli_in_process(monkeypatch, capsys, "evaluate", "--data", str(root), "-m", "rasl",
                                      "--preset", "nope")
    assert code == 2 and "has no preset 'nope'" in err


def test_detect_config_checks_the_preset_before_any_model():
    from highlighter.api import DetectConfig

    with pytest.raises(UsageError, match="no preset 'x'"):
        DetectConfig(method="rasl", preset="x")
    assert DetectConfig(method="rasl", preset="paper").preset == "paper"
    assert np.isfinite(create_method("rasl", preset="video", **{k: v for k, v in dict(
        window=8, k=2, channels=(2, 2, 4), psi_channels=2, proj_dim=8, batch_size=4, epochs=1, video_seeds=1).items()}
    ).score(np.abs(np.random.default_rng(0).normal(size=(10, 16))).astype(np.float32))).all()


def test_methods_list_names_the_presets_default_first():
    from highlighter.methods.catalog import describe_methods

    rows = {m.name: m for m in describe_methods()}
    assert rows["rasl"].presets == ("video", "paper") and rows["feature-norm"].presets == ()


def test_default_detect_plans_without_importing_torch_and_knows_the_i3d_file():
    """Start-up: the plan (per-video RASL, CPU default) must not import torch, so decoding starts at once."""
    import subprocess
    import sys

    from highlighter.api import I3D_CHECKPOINT_FILE
    from highlighter.features.weights import get_weight_spec

    assert get_weight_spec("i3d-rgb-imagenet-kinetics").filename == I3D_CHECKPOINT_FILE
    code = ("import sys; from highlighter.api import DetectConfig, Pipeline; "
            "p = Pipeline(DetectConfig(), log=lambda m: None); "
            "print(p.plan.method, p.plan.mode, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    method, mode, torch_loaded = out.stdout.split()
    assert (method, mode) == ("rasl", "video")
    from highlighter.api import cpu_only

    if cpu_only("auto"):  # the offline pair: ONNX Runtime features, torch only when RASL trains
        assert torch_loaded == "False"
