"""What of the GPU check (benchmarks/gpu_check.py) can be proven on CPU: batching does not change
features, device selection, the agreement maths, the --cpu-dry-run path end to end, the no-CUDA exit."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from highlighter.errors import UsageError
from highlighter.features.base import Backbone, BackboneSpec, create_backbone, register_backbone, unregister_backbone
from highlighter.features.device import cuda_problem, inference, resolve_device

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


@functools.cache
def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


# --- batching: a batch of clips gives the features of one clip at a time ---------------------------
RNG = np.random.default_rng(0)


def _frames(n: int) -> np.ndarray:
    return RNG.integers(0, 256, (n, 48, 64, 3), dtype=np.uint8)


def _audio(seconds: float, sr: int) -> np.ndarray:
    return (0.1 * RNG.standard_normal(int(seconds * sr))).astype(np.float32)


BATCH_CASES = {  # backbone -> (pretrained, clips); uneven clips exercise the "new shape starts a batch" paths
    "logmel": (True, lambda: [_audio(1.0, 16000), np.zeros(16000, np.float32), _audio(0.5, 16000)]),
    "panns": (False, lambda: [_audio(1.0, 32000), _audio(1.25, 32000), _audio(1.0, 32000)]),  # regrouped by length
    "efficientnet-lite0": (True, lambda: [_frames(2), _frames(1), _frames(2)]),
}


@pytest.mark.parametrize("name", sorted(BATCH_CASES))
def test_batched_clips_give_the_features_of_one_clip_at_a_time(name):
    pretrained, make = BATCH_CASES[name]
    torch.manual_seed(0)
    bb = create_backbone(name, "cpu", pretrained)
    clips = make()
    with inference("cpu", False):
        batched = bb.embed_clips(clips)
        single = np.concatenate([bb.embed_clips([c]) for c in clips])
    assert batched.shape == (len(clips), bb.spec.dim) and np.isfinite(batched).all()
    scale = float(np.abs(single).max())
    assert scale > 0
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-5 * scale)


def test_panns_front_end_stays_float32_under_fp16_autocast():
    """fp16 rounds the 1e-10 power floor to 0: silence became log10(0) = -inf and NaN features."""
    from highlighter.features.audio.panns import Cnn14

    model = Cnn14().eval()
    wav = torch.zeros(1, 32000)
    wav[0, 16000:] = 0.5 * torch.sin(torch.arange(16000) * (2 * torch.pi * 440 / 32000))  # silence, then a tone
    with torch.inference_mode():
        ref = model.logmel(wav)
        with torch.autocast("cpu", dtype=torch.float16):
            half = model.logmel(wav)
    assert half.dtype == torch.float32 and torch.isfinite(half).all()
    assert torch.equal(half, ref) and float(ref.min()) == -100.0  # the floor, not -inf


# --- device selection ------------------------------------------------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_auto_is_cpu_and_cuda_is_one_line_saying_why_and_what_to_do():
    assert resolve_device("auto") == "cpu"
    with pytest.raises(UsageError) as err:
        resolve_device("cuda")
    msg = str(err.value)
    assert err.value.exit_code == 2 and "\n" not in msg
    assert cuda_problem() in msg and "--device cpu" in msg and "CUDA_VISIBLE_DEVICES" in msg


def test_cuda_problem_tells_a_cpu_only_torch_build_apart(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    msg = cuda_problem()
    assert "no CUDA support" in msg and "install a CUDA build of torch" in msg and torch.__version__ in msg


# --- the agreement maths ---------------------------------------------------------------------------
def test_cosines_and_agreement():
    gc = _gpu_check()
    a = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [3.0, 4.0]])
    b = np.array([[0.0, 2.0], [2.0, 2.0], [0.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(gc.cosines(a, b), [0.0, 1.0, 1.0, 0.0])
    assert gc.agreement(a[1:3], b[1:3], 0.999, "x") == (pytest.approx(1.0), [])
    low, problems = gc.agreement(a, b, 0.999, "fp32")
    assert low == 0.0 and problems == ["fp32: min cosine 0.000000 < 0.999"]
    a[1, 0] = np.nan
    low, problems = gc.agreement(a, b, 0.99, "fp16")
    assert low is None and "1 of 4 clip(s) have non-finite" in problems[0]


# --- the script: dry run end to end, failure, usage errors, no CUDA ---------------------------------
class _TinyConv(Backbone):
    """A real (small) torch visual backbone, so the dry run covers the torch path in seconds."""

    spec = BackboneSpec(name="test-gpucheck-conv", modality="visual", dim=8, weights=None,
                        description="test: conv + mean pool", contract="2 fps, short side 32")
    fps = 2.0
    short_side = 32

    def __init__(self, device: str = "cpu", pretrained: bool = True, weights_path=None):
        super().__init__(device, pretrained, weights_path)
        self.model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                         torch.nn.Flatten()).eval().to(device)

    def clip_features(self, clips: list[np.ndarray]) -> np.ndarray:
        xs = [torch.from_numpy(c).permute(0, 3, 1, 2).float().div(255).to(self.device) for c in clips]
        return np.stack([self.model(x).mean(0).float().cpu().numpy() for x in xs])

    def embed_clips(self, clips: list[np.ndarray]) -> np.ndarray:
        return self.clip_features(clips)


class _BatchDependent(_TinyConv):
    """A broken backbone: each clip's features depend on the rest of its batch."""

    spec = BackboneSpec(name="test-gpucheck-batchdep", modality="visual", dim=8, weights=None,
                        description="test: minus the batch mean", contract="2 fps, short side 32")

    def embed_clips(self, clips: list[np.ndarray]) -> np.ndarray:
        f = self.clip_features(clips)
        return f - f.mean(axis=0, keepdims=True)


@pytest.fixture
def tiny_backbones(monkeypatch):
    monkeypatch.setenv("HIGHLIGHTER_OFFLINE", "1")  # the script sets it; this puts it back afterwards
    for cls in (_TinyConv, _BatchDependent):
        register_backbone(cls)
    yield
    for cls in (_TinyConv, _BatchDependent):
        unregister_backbone(cls.spec.name)


def test_cpu_dry_run_end_to_end_writes_the_json(tiny_backbones, tmp_path, capsys):
    out = tmp_path / "deep" / "gpu_check.json"
    code = _gpu_check().main(["--cpu-dry-run", "--json", str(out), "--backbones", "logmel,test-gpucheck-conv"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    doc = json.loads(out.read_text())
    assert doc["schema"] == "highlighter-gpu-check/1" and doc["dry_run"] is True and doc["passed"] is True
    assert doc["thresholds"]["fp32_min_cosine"] == 0.999 and doc["thresholds"]["fp16_min_cosine"] == 0.99
    assert doc["environment"]["device"] == "cpu"
    rows = {r["backbone"]: r for r in doc["rows"]}
    assert list(rows) == ["logmel", "test-gpucheck-conv"]
    for r in rows.values():
        assert r["status"] == "ok" and r["clips"] == 2 and r["agree_clips"] == 2 and r["clips_timed"] == 2
        assert r["cos_fp32"] >= 0.999 and r["cos_fp16"] is None and r["precision"] == "fp32"
        assert r["model_video_s_per_s"] > 0 and r["extract_video_s_per_s"] > 0 and r["peak_gpu_mb_model"] is None
    assert rows["logmel"]["weights"] == "none" and rows["test-gpucheck-conv"]["weights"] == "pretrained"
    assert "cos fp32" in printed and "test-gpucheck-conv" in printed and "PASS" in printed
    assert sorted(p.name for p in out.parent.iterdir()) == ["gpu_check.json"]  # no temp file left


def test_cpu_dry_run_fails_when_batching_changes_features(tiny_backbones, tmp_path, capsys):
    out = tmp_path / "g.json"
    code = _gpu_check().main(["--cpu-dry-run", "--json", str(out), "--backbones", "test-gpucheck-batchdep"])
    assert code == 1
    doc = json.loads(out.read_text())
    (row,) = doc["rows"]
    assert doc["passed"] is False and row["status"] == "FAIL" and row["cos_fp32"] < 0.999
    assert row["problems"][0].startswith("fp32 GPU vs CPU: min cosine")
    assert "FAIL: test-gpucheck-batchdep" in capsys.readouterr().out


def test_video_made_elsewhere_is_checked_without_ffmpeg_at_run_time(tmp_path, capsys):
    """A machine without the ffmpeg CLI (a lent GPU box): make the video here, pass it with --video."""
    video = tmp_path / "synthetic.mp4"
    assert _gpu_check().main(["--cpu-dry-run", "--make-video", str(video)]) == 0 and video.is_file()
    out = tmp_path / "g.json"
    code = _gpu_check().main(["--cpu-dry-run", "--video", str(video), "--json", str(out), "--backbones", "logmel"])
    assert code == 0, capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert doc["input"]["source"] == str(video) and doc["rows"][0]["clips"] == 2  # 4 s dry-run video, 2-s clips


@pytest.mark.parametrize("args, words", [
    (["--video", "/nonexistent/v.mp4"], "no such video file"),
    (["--backbones", "nope"], "unknown backbone 'nope'"),
    (["--batch-size", "0"], "must be positive"),
    (["--size", "63x48"], "even"),
    (["--frobnicate"], "unrecognized arguments"),
])
def test_bad_options_are_one_line_and_exit_2(args, words, tmp_path, capsys):
    code = _gpu_check().main(["--cpu-dry-run", "--json", str(tmp_path / "g.json"), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and words in err and len(err.splitlines()) == 1 and err.startswith("gpu_check: ")
    assert not (tmp_path / "g.json").exists()


def test_without_cuda_it_exits_2_with_one_line(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # hides any GPU, so this holds on a CUDA machine too
    proc = subprocess.run([sys.executable, str(SCRIPT), "--json", str(tmp_path / "g.json")], env=env,
                          capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "CUDA" in lines[0] and "--cpu-dry-run" in lines[0] and "Traceback" not in proc.stderr
    assert proc.stdout == "" and not (tmp_path / "g.json").exists()
