"""Hostile checkpoints: no loader and no `weights import` may run code from a pickle.

Each payload asks the unpickler to run ``touch MARKER`` through a different route
(os.system directly, torch's and numpy's re-exports of ``os``, builtins.eval, getattr
chains, the protocol-0 INST opcode, inside torch's zip and legacy containers). A
control test proves every payload really runs under a plain unpickler; the other
tests load them through the real backbone loaders and assert the marker never appears.
"""

from __future__ import annotations

import argparse
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from highlighter.errors import HighlighterError, InputError
from highlighter.features import create_backbone
from highlighter.features import weights as W

torch.set_num_threads(1)

BACKBONE_WEIGHTS = {"i3d": "i3d-rgb-imagenet-kinetics", "r3d": "r3d18-kinetics400", "swin": "swin-base-in22k-in1k",
                    "panns": "panns_cnn14", "mockingjay": "mockingjay"}


@pytest.fixture(autouse=True)
def _offline_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HIGHLIGHTER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HIGHLIGHTER_OFFLINE", "1")


# ----------------------------------------------------------------------------- payloads (raw pickle opcodes)


def _u(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b  # BINUNICODE


def _g(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"  # GLOBAL


def _sg(module: str, name: str) -> bytes:
    return _u(module) + _u(name) + b"\x93"  # STACK_GLOBAL (dotted names resolve under protocol 4)


def _call(fn: bytes, arg: str, proto: int = 2) -> bytes:
    return bytes([0x80, proto]) + fn + _u(arg) + b"\x85R."  # fn(arg): TUPLE1, REDUCE, STOP


def raw_payloads(cmd: str) -> dict[str, bytes]:
    getattr_os = _g("builtins", "getattr") + _g("torch.serialization", "os") + _u("system") + b"\x86R"
    getattr_import = (_g("builtins", "getattr") + _g("builtins", "__import__") + _u("os") + b"\x85R"
                      + _u("system") + b"\x86R")
    return {
        "os_system": _call(_g("os", "system"), cmd),
        "posix_system": _call(_g("posix", "system"), cmd),
        "torch_reexport": _call(_sg("torch.serialization", "os.system"), cmd, proto=4),
        "numpy_reexport": _call(_sg("numpy.lib._datasource", "os.system"), cmd, proto=4),
        "builtins_eval": _call(_g("builtins", "eval"), f"__import__('os').system({cmd!r})"),
        "getattr_chain": b"\x80\x02" + getattr_os + _u(cmd) + b"\x85R.",
        "import_getattr_chain": b"\x80\x02" + getattr_import + _u(cmd) + b"\x85R.",
        "inst_opcode": b"(S" + repr(cmd).encode() + b"\nios\nsystem\n.",  # protocol 0: INST calls the class
    }


class _Evil:
    def __init__(self, cmd: str):
        self.cmd = cmd

    def __reduce__(self):
        return os.system, (self.cmd,)


def torch_zip_with_pickle(path: Path, data_pkl: bytes) -> None:
    """A real torch zip checkpoint whose data.pkl is replaced by ``data_pkl``."""
    torch.save({"w": torch.zeros(2)}, path)
    with zipfile.ZipFile(path) as z:
        entries = [(i.filename, z.read(i)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries:
            z.writestr(name, data_pkl if name.endswith("/data.pkl") else data)


def write_payloads(d: Path, marker: Path) -> dict[str, Path]:
    """Every payload as a file in ``d``: raw pickles, torch zip, torch legacy, and one nested in a checkpoint."""
    cmd = f"touch {marker}"
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, data in raw_payloads(cmd).items():
        out[name] = d / f"{name}.pth"
        out[name].write_bytes(data)
    out["torch_zip_reexport"] = d / "torch_zip_reexport.pth"
    torch_zip_with_pickle(out["torch_zip_reexport"], raw_payloads(cmd)["torch_reexport"])
    out["torch_legacy_format"] = d / "torch_legacy_format.pth"
    torch.save({"model": _Evil(cmd)}, out["torch_legacy_format"], _use_new_zipfile_serialization=False)
    out["nested_in_checkpoint"] = d / "nested_in_checkpoint.pth"
    torch.save({"model": {"fc1.weight": torch.zeros(2, 2)}, "iteration": _Evil(cmd)}, out["nested_in_checkpoint"])
    return out


PAYLOADS = [*raw_payloads("x"), "torch_zip_reexport", "torch_legacy_format", "nested_in_checkpoint"]


@pytest.fixture()
def evil(tmp_path) -> tuple[dict[str, Path], Path]:
    marker = tmp_path / "pwned"
    return write_payloads(tmp_path / "payloads", marker), marker


def test_payloads_are_live_under_a_plain_unpickler(evil):
    """Control: each payload does run its command when unpickled the unsafe way (so the tests below can fail)."""
    files, marker = evil
    for name, path in files.items():
        if name in ("torch_zip_reexport", "torch_legacy_format", "nested_in_checkpoint"):
            torch.load(path, weights_only=False)
        else:
            pickle.loads(path.read_bytes())
        assert marker.exists(), name
        marker.unlink()


# ----------------------------------------------------------------------------- every loader refuses them


@pytest.mark.parametrize("backbone", sorted(BACKBONE_WEIGHTS))
def test_no_backbone_loader_runs_a_payload(evil, backbone):
    files, marker = evil
    for name, path in files.items():
        with pytest.raises(HighlighterError) as ei:
            create_backbone(backbone, weights_path=path)
        assert not marker.exists(), f"{backbone} ran payload {name}"
        assert "\n" not in str(ei.value) and str(path) in str(ei.value), (name, str(ei.value))


def test_efficientnet_and_detector_loaders_refuse_payloads(evil):
    from highlighter.methods.base import load_method

    files, marker = evil
    for name, path in files.items():
        with pytest.raises(HighlighterError):
            create_backbone("efficientnet-lite0", weights_path=path)
        with pytest.raises(InputError, match="not a safetensors"):
            load_method(path)
        assert not marker.exists(), name


@pytest.mark.parametrize("backbone", sorted(BACKBONE_WEIGHTS))
def test_weights_import_refuses_payloads_and_caches_nothing(evil, backbone):
    files, marker = evil
    name = BACKBONE_WEIGHTS[backbone]
    for payload in ("torch_zip_reexport", "numpy_reexport", "builtins_eval", "getattr_chain", "nested_in_checkpoint"):
        with pytest.raises(HighlighterError) as ei:
            W.import_weights(name, files[payload])
        assert not marker.exists(), f"importing {payload} as {name} ran it"
        assert "\n" not in str(ei.value) and str(files[payload]) in str(ei.value)
        assert not W.weights_dir().exists() or not list(W.weights_dir().iterdir())


@pytest.mark.parametrize("backbone", sorted(BACKBONE_WEIGHTS))
def test_payload_already_in_cache_never_runs_and_reads_as_unreadable(evil, backbone):
    """A file imported before the loader was fixed: loading it from the cache runs nothing and reads as missing."""
    files, marker = evil
    spec = W.get_weight_spec(BACKBONE_WEIGHTS[backbone])
    W.weights_dir().mkdir(parents=True)
    cached = W.weights_dir() / spec.filename
    cached.write_bytes(files["torch_zip_reexport"].read_bytes())
    W._write_stamp(cached)  # as `weights import` left it
    with pytest.raises(W.CachedWeightsUnreadableError) as ei:
        create_backbone(backbone)
    assert not marker.exists()
    msg = str(ei.value)
    assert "\n" not in msg and str(cached) in msg and f"highlighter weights fetch {spec.name}" in msg


def test_cli_import_of_payload_is_one_line_exit_1(evil, tmp_path):
    files, marker = evil
    env = {**os.environ, "HIGHLIGHTER_CACHE": str(tmp_path / "c"), "HIGHLIGHTER_OFFLINE": "1", "COLUMNS": "400"}
    p = subprocess.run([sys.executable, "-c", "from highlighter.cli.main import main; main()", "weights", "import",
                        "panns_cnn14", str(files["torch_reexport"])], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 1 and not marker.exists()
    err = p.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and str(files["torch_reexport"]) in err
    assert "refusing to call torch.serialization.os.system" in err
    assert not (tmp_path / "c" / "weights").exists() or not list((tmp_path / "c" / "weights").iterdir())


# ----------------------------------------------------------------------------- s3prl training objects still load


class WarmupLinearSchedule:
    """Stands for a class from s3prl's own modules pickled inside the optimizer state; its code must never run."""

    marker: Path | None = None

    def __init__(self, warmup: float = 0.07):
        self.warmup = warmup

    def __setstate__(self, state):  # a real unpickler would call this: the strict one never does
        Path(state["marker"]).touch()


def mockingjay_like_checkpoint(path: Path, schedule_marker: Path | None) -> dict:
    """s3prl layout (Transformer/SpecHead/Upstream_Config) plus Args (Namespace), optimizer and scheduler states."""
    from test_audio_backbones import published_mockingjay_layout

    g = torch.Generator().manual_seed(2)
    tr_l, head_l = published_mockingjay_layout(3)
    tr = {k: 0.02 * torch.randn(s, generator=g) for k, s in tr_l.items()}
    group = {"lr": 2e-4, "betas": (0.9, 0.999), "weight_decay": 0.01, "params": [0, 1]}
    if schedule_marker is not None:
        sched = WarmupLinearSchedule()
        sched.marker = str(schedule_marker)
        group["schedule"] = sched
    states = {
        "Transformer": tr,
        "SpecHead": {k: torch.zeros(s) for k, s in head_l.items()},
        "Optimizer": {"state": {0: {"step": torch.tensor(500000.0), "exp_avg": torch.zeros(4),
                                    "exp_avg_sq": torch.zeros(4)}}, "param_groups": [group]},
        "Scheduler": {"last_epoch": 500000, "_step_count": 500001, "base_lrs": [2e-4], "lr_lambdas": [None]},
        "Step": 500000,
        "Args": argparse.Namespace(upstream="mockingjay", seed=1337, config="config_model_large.yaml"),
        "Config": {"runner": {"total_steps": 500000}},
        "Upstream_Config": {
            "transformer": {"hidden_size": 768, "num_hidden_layers": 3, "num_attention_heads": 12,
                            "intermediate_size": 3072, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
                            "share_layer": False, "pre_layer_norm": False},
            "task": {"sequence_length": 500},
            "audio": {"target_level": -25, "win_ms": 25, "hop_ms": 10, "n_freq": 201, "n_mels": 80,
                      "input": {"feat_type": "mel", "channel": 0, "log": True, "delta": 0, "cmvn": True}},
        },
    }
    torch.save(states, path)
    return tr


@pytest.mark.parametrize("unknown_class", [False, True], ids=["namespace_and_optimizer", "plus_s3prl_class"])
def test_mockingjay_checkpoint_with_training_objects_loads(tmp_path, unknown_class):
    marker = tmp_path / "setstate-ran"
    ckpt = tmp_path / "states-500000.ckpt"
    tr = mockingjay_like_checkpoint(ckpt, marker if unknown_class else None)
    if unknown_class:  # control: a plain load would run the class's own __setstate__
        torch.load(ckpt, weights_only=False)
        assert marker.exists()
        marker.unlink()
    bb = create_backbone("mockingjay", weights_path=ckpt)
    assert not marker.exists()
    assert bb.load_report.loaded == sorted(tr) and len(bb.model.encoder.layer) == 3
    assert torch.equal(bb.model.state_dict()["encoder.layer.1.attention.self.query.weight"],
                       tr["encoder.layer.1.attention.self.query.weight"])
    emb = bb.embed_clips([np.zeros(16000, np.float32)])
    assert emb.shape == (1, 768) and np.isfinite(emb).all()
    dest = W.import_weights("mockingjay", ckpt)  # the import check accepts it too
    assert dest.is_file() and not marker.exists()
