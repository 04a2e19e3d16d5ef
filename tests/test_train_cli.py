"""`highlighter train` through the real CLI (subprocess) on tiny UMT-layout datasets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from highlighter.errors import InputError, UsageError
from highlighter.methods import load_method
from highlighter.methods.base import read_metadata
from highlighter.methods.config import parse_overrides
from highlighter.methods.rasl import RASLConfig
from highlighter.scores import normalize_scores
from highlighter.train import parse_data_spec, train_detector

TINY = ["--set", "window=8", "--set", "k=2", "--set", "channels=2,2,4", "--set", "psi_channels=2",
        "--set", "proj_dim=8", "--set", "batch_size=4"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    # Not `python -m highlighter.cli.main`: that registers the commands on a second copy of the module.
    cmd = [sys.executable, "-c", "from highlighter.cli.main import main; main()"]
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb", "OMP_NUM_THREADS": "1"}
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=180, env=env)


def make_dataset(root: Path, name: str = "youtube", n_train: int = 4, n_val: int = 2, dv: int = 16, da: int = 24,
                 seed: int = 0) -> Path:
    """A dataset directory in the UMT feature layout with random features."""
    rng = np.random.default_rng(seed)
    (root / "video_features").mkdir(parents=True)
    (root / "audio_features").mkdir()
    anno, splits = {}, {"dom": {"train": [], "val": []}}
    for i in range(n_train + n_val):
        vid = f"{name}{i}"
        t = int(rng.integers(6, 14))
        np.save(root / "video_features" / f"{vid}_rgb.npy", np.abs(rng.normal(size=(t, dv))).astype(np.float32))
        np.save(root / "audio_features" / f"{vid}.npy", np.abs(rng.normal(size=(t, da))).astype(np.float32))
        if name == "youtube":
            anno[vid] = {"match": json.dumps([int(x) for x in rng.integers(-1, 2, size=t)])}
        else:
            anno[vid] = {"anno": json.dumps(rng.integers(1, 6, size=(t, 3)).tolist())}
        splits["dom"]["train" if i < n_train else "val"].append(vid)
    (root / f"{name}_anno.json").write_text(json.dumps(anno))
    (root / "splits.json").write_text(json.dumps(splits))
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("train_cli")
    return make_dataset(base / "yt", "youtube"), make_dataset(base / "tv", "tvsum", seed=1)


def test_train_writes_weights_with_info_and_is_reproducible(data, tmp_path):
    yt, tv = data
    out1, out2 = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    args = ["train", "--method", "rasl", "--data", str(yt), "--data", f"{tv}:all", "--epochs", "2", "--seed", "0",
            "--device", "cpu", *TINY, "--set", "use_sa=false"]
    res = run_cli(*args, "-o", str(out1))
    assert res.returncode == 0, res.stderr
    assert "trained rasl on 10 videos" in res.stdout
    meta = read_metadata(out1)
    assert meta["method"] == "rasl" and meta["config"]["use_sa"] is False and meta["config"]["epochs"] == 2
    info = meta["info"]
    assert [(d["split"], d["videos"]) for d in info["data"]] == [("train", 4), ("all", 6)]
    assert info["num_videos"] == 10 and info["visual_dim"] == 16 and info["audio_dim"] == 24
    assert info["seed"] == 0 and info["train_seconds"] > 0 and "train --method rasl" in info["command"]
    # The same run through the API in this process gives bit-identical weights.
    sets = [a for a in TINY if a != "--set"] + ["use_sa=false"]
    train_detector("rasl", [str(yt), f"{tv}:all"], out2, seed=0, epochs=2, device="cpu", overrides=sets)
    assert _tensors(out1) == _tensors(out2)
    det = load_method(out1)
    assert det.score(np.ones((5, 16), dtype=np.float32)).shape == (5,)
    assert not list(tmp_path.glob("*.part"))


def _tensors(path: Path) -> dict:
    from safetensors.numpy import load_file

    return {k: v.tobytes() for k, v in load_file(str(path)).items()}


def test_unknown_set_key_lists_valid_keys(data, tmp_path):
    res = run_cli("train", "--method", "rasl", "--data", str(data[0]), "-o", str(tmp_path / "x.safetensors"),
                  "--set", "bogus=1")
    assert res.returncode == 2
    assert "bogus" in res.stderr and "use_sa" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "x.safetensors").exists()


def test_device_error_is_one_line_before_loading_data(data, tmp_path):
    res = run_cli("train", "--method", "rasl", "--data", str(data[0]), "-o", str(tmp_path / "x.safetensors"),
                  "--device", "tpu")
    assert res.returncode == 2 and "unknown device" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "kwargs,exc,text",
    [
        (dict(method="nope"), UsageError, "unknown method"),
        (dict(method="random"), UsageError, "training-free"),
        (dict(method="rasl", overrides=["use_sa=maybe"]), UsageError, "true or false"),
        (dict(method="rasl", splits=["train", "val", "all"]), UsageError, "once per dir"),
        (dict(method="rasl", data=["/nonexistent/dir"]), InputError, "dataset directory not found"),
    ],
)
def test_train_detector_errors(data, tmp_path, kwargs, exc, text):
    args = {"data": [str(data[0])], "out": tmp_path / "x.safetensors", **kwargs}
    with pytest.raises(exc, match=text):
        train_detector(**args)
    assert not (tmp_path / "x.safetensors").exists()


# --- the API under the command --------------------------------------------------------------


def test_parse_overrides_converts_types():
    got = parse_overrides(RASLConfig, ["k=3", "lr=0.01", "use_aux=no", "channels=1,2,3", "normalize=zscore"])
    assert got == {"k": 3, "lr": 0.01, "use_aux": False, "channels": (1, 2, 3), "normalize": "zscore"}
    with pytest.raises(UsageError, match="unknown config key 'x'; allowed keys: .*use_sa"):
        parse_overrides(RASLConfig, ["x=1"])
    with pytest.raises(UsageError, match="expected int"):
        parse_overrides(RASLConfig, ["k=two"])


def test_parse_data_spec():
    assert parse_data_spec("../shared/data/tvsum:all") == ("../shared/data/tvsum", "all")
    assert parse_data_spec("/d/yt") == ("/d/yt", "train")
    assert parse_data_spec("/d/yt", "val") == ("/d/yt", "val")
    assert parse_data_spec("C:/odd:path") == ("C:/odd:path", "train")


def test_normalize_scores():
    np.testing.assert_allclose(normalize_scores(np.array([1.0, 3.0, 2.0])), [0.0, 1.0, 0.5])
    assert np.all(normalize_scores(np.ones(4)) == 0)
    z = normalize_scores(np.array([1.0, 2.0, 3.0]), "zscore")
    assert abs(float(z.mean())) < 1e-6 and abs(float(z.std()) - 1) < 1e-6
