"""Issue 14 (peak RSS of `extract-features` per backbone): the memory fixes change no feature.

Each fix trades a copy for an in-place or windowed op (measured by benchmarks/memory.py); these
tests pin that the results are those of the plain path: uint8 cropping before the float
conversion, I3D's in-place eval BatchNorm and copy-free SAME max-pools, the extractor handing
I3D one clip at a time on CPU, and PANN's in-place blocks and weight-reorder-free deep convs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import media
from highlighter.features.extract import ExtractConfig, Extractor
from highlighter.features.grid import ClipGrid
from highlighter.features.visual import i3d
from highlighter.features.visual.common import center_crop, frames_to_crops, resize_short_side


def _frames(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _float_path(frames: np.ndarray, short: int, crop: int) -> torch.Tensor:
    """The conversion before issue 14: the whole frame to float, then resize and crop."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255.0)
    return center_crop(resize_short_side(x, short), crop)


@pytest.mark.parametrize("h,w", [(256, 455), (455, 256), (256, 256), (300, 400)])  # the last: resized
def test_uint8_crop_equals_the_float_path(h, w):
    frames = _frames(3, h, w)
    assert torch.equal(frames_to_crops(frames, 256, 224), _float_path(frames, 256, 224))


def test_i3d_preprocess_equals_the_float_path():
    bb = i3d.I3DBackbone(pretrained=False)
    frames = _frames(5, 256, 341)
    old = (_float_path(frames, 256, 224) * 2.0 - 1.0)[torch.arange(i3d.MIN_FRAMES) % 5].permute(1, 0, 2, 3)
    assert torch.equal(bb.preprocess(frames), old)


@pytest.mark.parametrize("k,s", [((1, 3, 3), (1, 2, 2)), ((3, 3, 3), (2, 2, 2)), ((2, 2, 2), (2, 2, 2)),
                                 ((3, 3, 3), (1, 1, 1))])
@pytest.mark.parametrize("size", [(50, 112, 112), (25, 56, 56), (13, 14, 14), (25, 28, 28), (7, 15, 9), (1, 5, 4)])
def test_i3d_pool_takes_same_windows_without_a_copy(k, s, size):
    """SAME zero padding and torch's -inf padding + ceil mode agree on post-ReLU inputs, bit for bit."""
    x = torch.relu(torch.randn(1, 4, *size, generator=torch.Generator().manual_seed(1)))
    ref = F.max_pool3d(i3d._pad3d(x, k, s), k, s)
    assert torch.equal(i3d.MaxPool3dSame(k, s)(x), ref)


def test_i3d_pools_of_a_clip_take_the_copy_free_path():
    """At I3D's own sizes (50 frames, 224 px) every pool runs without a padded copy."""
    for size, k, s in [((25, 112, 112), (1, 3, 3), (1, 2, 2)), ((25, 56, 56), (1, 3, 3), (1, 2, 2)),
                       ((25, 28, 28), (3, 3, 3), (2, 2, 2)), ((13, 14, 14), (2, 2, 2), (2, 2, 2)),
                       ((25, 28, 28), (3, 3, 3), (1, 1, 1)), ((13, 14, 14), (3, 3, 3), (1, 1, 1))]:
        assert i3d._pool_front_pad(size, k, s) is not None, (size, k, s)


def test_i3d_inplace_batchnorm_equals_the_module():
    torch.manual_seed(0)
    unit = i3d.Unit3D(3, 8, 3, 2).eval()
    bn = unit.bn
    with torch.no_grad():  # non-trivial running statistics
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 2), bn.bias.uniform_(-1, 1)
    x = torch.randn(2, 3, 9, 20, 20)
    ref = unit(x).detach()  # grad mode: the module's BatchNorm
    with torch.inference_mode():
        got = unit(x)
    assert torch.allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_i3d_cpu_extraction_one_clip_per_call_equals_batches_of_8(tmp_path):
    """On CPU the extractor decodes 16 frames at a time and hands I3D one clip at a time (it holds
    1 clip of frames, not 8): the features equal those of 64-frame chunks and batches of 8 clips."""
    video = media.make_video(tmp_path / "two.mp4", 0.8, size=(64, 48), colors=[(0, "red"), (0.4, "blue")],
                             audio=False)
    torch.manual_seed(0)
    ex = Extractor(ExtractConfig(visual="i3d", audio=None, pretrained=False, device="cpu", grid=ClipGrid(0.4)))
    bb = ex.visual
    calls: list[int] = []
    embed = bb.embed_clips
    bb.embed_clips = lambda clips: calls.append(len(clips)) or embed(clips)  # a spy: the real call runs
    one = ex.extract(video).visual
    assert calls == [1, 1]
    bb.max_batch_clips, bb.max_chunk_frames, bb.clips_per_batch = None, None, 8  # the extractor's defaults
    calls.clear()
    eight = ex.extract(video).visual
    assert calls == [2]
    assert one.shape == eight.shape == (2, 1024)
    cos = (one * eight).sum(1) / np.linalg.norm(one, axis=1) / np.linalg.norm(eight, axis=1)
    assert cos.min() >= 0.9999 and np.allclose(one, eight, rtol=1e-4, atol=1e-4 * np.abs(eight).max())
    assert not np.allclose(one[0], one[1], rtol=1e-3, atol=0)  # the two colours gave two different features


def test_i3d_cpu_inference_path_equals_the_plain_forward():
    """In-place BatchNorm, copy-free pools and the stem in pieces of frames (CPU inference) give the
    features of the plain forward (the one autograd runs)."""
    torch.manual_seed(0)
    net = i3d.InceptionI3d().eval()
    for m in net.modules():  # non-trivial running statistics, as a trained net has
        if isinstance(m, torch.nn.BatchNorm3d):
            torch.nn.init.uniform_(m.running_var, 0.5, 2), torch.nn.init.uniform_(m.running_mean, -0.2, 0.2)
    x = torch.rand(2, 3, 13, 64, 80) * 2 - 1  # 13 frames: 7 after the first conv, so pieces of 5 and 2
    ref = net.features(x).detach()
    with torch.inference_mode():
        got = net.features(x)
    assert got.shape == ref.shape == (2, 1024, 2, 2, 3)
    assert torch.allclose(got, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))


def test_r3d_is_torchvisions_r3d_18():
    """Our R3D-18 (no torchvision import: +164 MB) has torchvision's keys and gives its outputs."""
    from torchvision.models.video import r3d_18

    from highlighter.features.visual.r3d import R3D18

    tv = r3d_18(weights=None, num_classes=400).eval()
    ours = R3D18(400).eval()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in tv.state_dict().items()}
    ours.load_state_dict(tv.state_dict(), strict=True)
    x = torch.randn(1, 3, 8, 56, 56)
    with torch.inference_mode():
        assert torch.allclose(ours(x), tv(x), rtol=1e-5, atol=1e-6)


def test_panns_cpu_inference_path_equals_the_plain_forward():
    """PANN on CPU: in-place BatchNorm + ReLU and blocks 5-6 as matrix products against the weight
    (no oneDNN weight copy) give the plain forward's embedding."""
    from highlighter.features.audio.panns import Cnn14, _conv3x3

    torch.manual_seed(0)
    net = Cnn14().eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.running_var, 0.5, 2), torch.nn.init.uniform_(m.running_mean, -0.2, 0.2)
    wav = torch.randn(2, 32000) * 0.1
    ref = net(wav)["embedding"].detach()
    with torch.inference_mode():
        got = net(wav)["embedding"]
        x = torch.randn(2, 1024, 3, 2)  # block 6's input size: the matrix-product path
        assert torch.allclose(_conv3x3(net.conv_block6.conv1, x), net.conv_block6.conv1(x), rtol=1e-4, atol=1e-5)
    assert torch.allclose(got, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))


def test_swin_is_timms_swin_base():
    """Our Swin-B (no timm / torchvision import: +195 MB) has timm's keys and gives its outputs."""
    timm = pytest.importorskip("timm")
    from highlighter.features.visual.swin import SwinB, timm_layout

    torch.manual_seed(0)
    ref = timm.create_model("swin_base_patch4_window7_224", pretrained=False, num_classes=0).eval()
    with torch.device("meta"):  # as a pretrained load builds it: no random init, timm's tensors assigned
        ours = SwinB().eval()
    sd = ref.state_dict()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in sd.items()}
    ours.load_state_dict(timm_layout(sd), strict=True, assign=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        assert torch.allclose(ours(x), ref(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("module", ["highlighter.features.visual.r3d", "highlighter.features.visual.swin"])
def test_backbone_module_imports_neither_torchvision_nor_timm(module):
    import subprocess
    import sys

    code = f"import sys, {module}; print('torchvision' in sys.modules, 'timm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


HEAP_PROBE = """
import numpy as np
from highlighter.features.device import bound_heap
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1]) >> 10
bound_heap()
big = np.ones(20 << 20, np.uint8); del big  # without bound_heap glibc's mmap threshold rises to 20 MB here
r0 = rss()
blocks = [np.ones(4 << 20, np.uint8) for _ in range(10)]
keep = blocks[1::2]; del blocks  # every other block freed: holes a heap would keep
print(rss() - r0)
"""


@pytest.mark.skipif(__import__("platform").libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_bound_heap_returns_freed_blocks_to_the_system():
    """After `bound_heap`, freed 4-MB blocks leave RSS (40 MB would stay in heap holes without it)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", HEAP_PROBE], capture_output=True, text=True, check=True)
    assert int(out.stdout) <= 24  # the 5 blocks kept (20 MB), not the 10 made


def _published_checkpoint(name: str, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """A random state dict in the backbone's published layout: torchvision's r3d_18 keys (pinned
    equal to R3D18's above), piergiaj's rgb_imagenet.pt keys (no num_batches_tracked, as in 2018)."""
    from test_visual_backbones import published_i3d_state_dict

    from highlighter.features.visual.r3d import R3D18

    torch.manual_seed(1)
    sd = published_i3d_state_dict(with_nbt=False) if name == "i3d" else R3D18(400).state_dict()
    g = torch.Generator().manual_seed(2)  # BatchNorm statistics away from their init, so a lost one shows
    return {k: (v + 0.05 * torch.rand(v.shape, generator=g)).to(dtype) if v.is_floating_point() else v
            for k, v in sd.items()}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("name,frames", [("r3d", (16, 128, 170)), ("i3d", (8, 256, 256))])
def test_meta_built_load_equals_the_copy_into_random_init(tmp_path, monkeypatch, name, frames, dtype):
    """I3D / R3D are built on the meta device for a checkpoint and its tensors assigned (one copy of the
    weights at load, issue 14): the same float32 weights, BatchNorm counters and embeddings, bit for bit,
    as the random-init-then-copy load, and nothing left on the meta device."""
    from highlighter.features.visual.common import unloaded
    from highlighter.features.visual.r3d import R3DBackbone

    cls = i3d.I3DBackbone if name == "i3d" else R3DBackbone
    path = tmp_path / "ckpt.pt"
    torch.save(_published_checkpoint(name, dtype), path)
    clip = [_frames(*frames)]
    meta = cls(weights_path=path)
    assert cls.meta_init and unloaded(meta.model) == []
    monkeypatch.setattr(cls, "meta_init", False)
    copied = cls(weights_path=path)
    got, ref = meta.model.state_dict(), copied.model.state_dict()
    assert got.keys() == ref.keys()
    assert all(got[k].dtype == ref[k].dtype and torch.equal(got[k], ref[k]) for k in ref)
    assert {t.dtype for t in meta.model.parameters()} == {torch.float32}
    assert np.array_equal(meta.embed_clips(clip), copied.embed_clips(clip))


def test_random_r3d_is_still_torchvisions_init():
    """Without a checkpoint R3D is built as before: the same random draws as R3D18's init."""
    from highlighter.features.visual.r3d import R3D18, R3DBackbone

    torch.manual_seed(3)
    got = R3DBackbone(pretrained=False).model.state_dict()
    torch.manual_seed(3)
    ref = R3D18(400).state_dict()
    assert got.keys() == ref.keys() - {"fc.weight", "fc.bias"}
    assert all(torch.equal(got[k], ref[k]) for k in got)


class _InitBuffer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)
        self.register_buffer("table", torch.arange(4.0), persistent=False)  # computed at init, not in a file


def test_tensor_left_on_the_meta_device_is_one_clear_line(tmp_path):
    """A meta-built net whose init computes a tensor the checkpoint does not hold is refused at load,
    in one line naming it, instead of failing later inside a forward."""
    from highlighter.errors import HighlighterError
    from highlighter.features.base import Backbone, BackboneSpec
    from highlighter.features.visual.common import StackedClipBackbone

    class Probe(StackedClipBackbone, Backbone):
        spec = BackboneSpec("test-meta-probe", "visual", 4, None, "a net whose init computes a buffer", "-")
        meta_init = True

        def build(self):
            return _InitBuffer()

    path = tmp_path / "ckpt.pt"
    torch.save(_InitBuffer().state_dict(), path)
    bb = Probe(weights_path=path)
    with pytest.raises(HighlighterError) as ei:
        bb._setup()
    assert "\n" not in str(ei.value) and "1 tensors of Probe unset (e.g. table)" in str(ei.value)
