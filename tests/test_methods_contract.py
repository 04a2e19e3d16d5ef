"""The detector contract, the same for every registered method: registry, config, labels, training control."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from highlighter.errors import InputError, UsageError
from highlighter.methods import (
    BUILTIN_METHODS,
    DEFAULT_METHOD,
    Detector,
    TrainReport,
    available_methods,
    create_method,
    describe_methods,
    load_method,
    method_class,
)
from highlighter.methods.data import VideoFeatures
from highlighter.registry import Registry
from highlighter.scores import normalize_scores

torch.set_num_threads(1)

# One bad value per method: (key, value, text the error must show).
BAD_VALUES = {
    "avr": ("fusion", "mid", "allowed: bimodal, early, late"),
    "chd": ("query", "bogus", "allowed: attended, input"),
    "hpcl": ("d_k", 100, "a multiple of heads (8)"),
    "random": ("seed", "one", "expected int"),
    "rasl": ("channels", (4, 8), "expected 3 values"),
}


def _videos(n: int, dv: int = 12, da: int = 8, seed: int = 0) -> list[VideoFeatures]:
    """Videos whose labels hold both classes (what a supervised method needs)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        t = int(rng.integers(8, 14))
        labels = np.zeros(t, dtype=np.int64)
        labels[: t // 2] = 1
        out.append(VideoFeatures(f"v{i}", f"d{i % 2}", "train", np.abs(rng.normal(size=(t, dv))).astype(np.float32),
                                 np.abs(rng.normal(size=(t, da))).astype(np.float32), labels))
    return out


# --- registry -----------------------------------------------------------------------------------


def test_listing_methods_and_cli_help_import_no_torch():
    code = ("import sys\n"
            "import highlighter.methods as m\n"
            "assert m.available_methods() == sorted(m.BUILTIN_METHODS), m.available_methods()\n"
            "from highlighter.cli.main import main\n"
            "sys.argv = ['highlighter', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("name", sorted(BUILTIN_METHODS))
def test_lazy_entries_are_what_their_modules_register(name):
    cls = method_class(name)
    assert cls.name == name and cls.__module__ == BUILTIN_METHODS[name]
    assert issubclass(cls, Detector) and cls.config_class is not None


def test_unknown_method_is_one_usage_error_with_a_suggestion():
    with pytest.raises(UsageError, match=r"unknown method 'rasll' \(did you mean 'rasl'\?\); available: avr, chd"):
        method_class("rasll")


def test_registry_register_get_unregister_and_lazy_modules():
    reg: Registry = Registry("thing")
    reg.register("a", 1)

    @reg.register("b")
    class B:
        pass

    assert reg.get("b") is B and reg.names() == ["a", "b"] and "a" in reg
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", 2)
    assert reg.unregister("a") == 1 and "a" not in reg and reg.unregister("a") is None
    reg.register_lazy("j", "json")  # a real module that registers nothing here
    assert reg.names() == ["b", "j"] and "json" in sys.modules
    with pytest.raises(RuntimeError, match="did not register thing 'j'"):
        reg.get("j")
    with pytest.raises(UsageError, match="unknown thing 'c'; available: b, j"):
        reg.get("c")


# --- config: one way to reject unknown keys and bad values ---------------------------------------


@pytest.mark.parametrize("name", sorted(BUILTIN_METHODS))
def test_unknown_config_key_is_a_usage_error_naming_allowed_keys(name):
    with pytest.raises(UsageError) as err:
        create_method(name, bogus_key=1)
    msg = str(err.value)
    assert err.value.exit_code == 2 and "\n" not in msg
    assert msg.startswith(f"{name}: unknown config key 'bogus_key'; allowed keys:")
    fields = list(method_class(name).config_class.__dataclass_fields__)
    assert all(f in msg for f in fields)


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_bad_config_value_is_a_usage_error_naming_key_and_allowed(name):
    key, value, allowed = BAD_VALUES[name]
    with pytest.raises(UsageError) as err:
        create_method(name, **{key: value})
    msg = str(err.value)
    assert err.value.exit_code == 2 and "\n" not in msg
    assert msg.startswith(f"{name}: {key}=") and allowed in msg


def test_stored_config_is_type_checked_and_bad_one_is_an_input_error(tmp_path):
    from safetensors.torch import save_file

    det = create_method("hpcl", visual_dim=6, audio_dim=4, d=8, d_k=8, d_v=8, heads=2, layers=1)
    path = det.save(tmp_path / "h.safetensors")
    back = load_method(path)  # JSON lists come back as the config's tuples
    assert back.config.head_weights == (1.0, 1.0, 1.0) and back.config == det.config
    bad = tmp_path / "bad.safetensors"
    save_file({"x": torch.zeros(1)}, str(bad), metadata={"method": "rasl", "config": json.dumps({"nope": 1}),
                                                         "info": "{}"})
    with pytest.raises(InputError, match=r"bad\.safetensors: the stored config does not fit.*'nope'"):
        load_method(bad)


# --- training: one label rule, one training-loop control -----------------------------------------


def _recording(cls: type[Detector], seen: list) -> type[Detector]:
    """The real detector class with its training step replaced by a recorder of what it was given."""

    def _fit(self, videos, seed, log):
        seen.extend(v.labels for v in videos)
        return TrainReport(method=self.name, seed=seed, epochs=0, seconds=0.0)

    return type(f"Recording{cls.__name__}", (cls,), {"_fit": _fit})


@pytest.mark.parametrize("name", [n for n in sorted(BUILTIN_METHODS) if method_class(n).trainable])
def test_fit_hides_labels_from_unsupervised_methods_only(name):
    cls = method_class(name)
    seen: list = []
    videos = _videos(3)
    _recording(cls, seen)().fit(videos, seed=0)
    assert len(seen) == 3
    if cls.supervised:
        assert all(np.array_equal(a, v.labels) for a, v in zip(seen, videos))
    else:
        assert all(a.size == 0 for a in seen)
    assert all(v.labels.size for v in videos)  # the caller's videos are not modified


def test_a_detector_cannot_bypass_the_label_rule():
    with pytest.raises(TypeError, match="implement _fit, not fit"):
        type("Sneaky", (Detector,), {"fit": lambda self, videos, seed=0, log=None: None,
                                     "score": lambda self, visual, audio=None: visual[:, 0]})


TINY = {
    "rasl": dict(window=8, k=2, channels=(2, 2, 4), psi_channels=2, proj_dim=8, batch_size=4, epochs=1),
    "chd": dict(d=8, epochs=1, batch_size=4),
    "avr": dict(d=8, epochs=1, reducer="pca", k_max=2, kmeans_restarts=1),
    "hpcl": dict(d=8, d_k=8, d_v=8, heads=2, layers=1, epochs=1, seq_len=6),
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_trainable_method_has_the_same_training_control(name):
    assert set(TINY) == {n for n in BUILTIN_METHODS if method_class(n).trainable}
    fields = method_class(name).config_class.__dataclass_fields__
    assert {"device", "threads", "epochs"} <= set(fields)
    with pytest.raises(UsageError, match="unknown device 'tpu'"):
        create_method(name, **TINY[name], device="tpu").fit(_videos(4), seed=0)
    runs = [create_method(name, **TINY[name], device="cpu", threads=1) for _ in range(2)]
    torch.set_num_threads(2)
    try:
        for det in runs:
            det.fit(_videos(4), seed=5)
        assert torch.get_num_threads() == 2  # the run's own thread count is undone afterwards
    finally:
        torch.set_num_threads(1)
    v = _videos(1, seed=9)[0]
    a, b = (det.score(v.visual, v.audio if det.uses_audio else None) for det in runs)
    assert a.shape == (v.num_clips,) and np.array_equal(a, b)  # same seed, same scores


# --- catalog and shared helpers -----------------------------------------------------------------


def test_describe_methods_reads_classes_weights_metadata_and_results(tmp_path, monkeypatch):
    monkeypatch.setenv("HIGHLIGHTER_WEIGHTS_DIR", str(tmp_path))
    det = create_method("random", seed=2)
    det.info = {"data": [{"name": "tvsum", "split": "all", "videos": 50}], "seed": 2, "train_seconds": 1.5,
                "command": "made by a test"}
    det.save(tmp_path / "random-video.safetensors")
    (tmp_path / "random.md").write_text("# card\n")
    table = tmp_path / "results.md"
    table.write_text("intro\n\n| Method | Supervised | TVSum |\n|---|---|---|\n| random | no | 0.41 |\n"
                     "| hpcl | yes | 0.62 |\n\ntext\n")
    rows = {m.name: m for m in describe_methods(table)}
    assert sorted(rows) == available_methods()
    assert rows[DEFAULT_METHOD].default and sum(m.default for m in rows.values()) == 1
    assert rows["hpcl"].supervised and rows["hpcl"].modalities == ("visual", "audio")
    assert rows["rasl"].modalities == ("visual",) and not rows["rasl"].supervised
    assert rows["hpcl"].results == {"TVSum": "0.62"} and rows["chd"].results == {}
    rnd = rows["random"]
    assert not rnd.trainable and rnd.model_card == tmp_path / "random.md"
    (w,) = rnd.weights
    assert (w.target, w.data, w.seed, w.train_seconds, w.command) == (
        "video", ("tvsum:all (50 videos)",), 2, 1.5, "made by a test")


def test_normalize_scores_flat_curves_and_dtype():
    assert np.all(normalize_scores(np.full(4, 7.0)) == 0)
    assert np.all(normalize_scores(np.array([1.0, 1.0 + 1e-15])) == 0)  # float noise is flat
    out = normalize_scores(np.array([2.0, 4.0, 3.0]), dtype=np.float64)
    assert out.dtype == np.float64 and list(out) == [0.0, 1.0, 0.5]
    with pytest.raises(UsageError, match="unknown score normalisation 'max'"):
        normalize_scores(np.ones(3), "max")
