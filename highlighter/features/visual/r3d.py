"""R3D-18 (Tran et al. 2018), torchvision's Kinetics-400 checkpoint, 512-d.

A smaller 3D CNN than I3D (about 3x cheaper per 2-s clip at 112 px). Loads
torchvision's published ``r3d_18-b3b3357e.pth`` with torchvision's own key layout
(``stem.*``, ``layer1..4.*``, ``fc.*``) strictly into `R3D18`, torchvision's network written
here (same modules, same outputs bit for bit) so that torchvision is not imported (issue 14);
the embedding is the 512-d global average pool before ``fc``.

Contract (torchvision's ``R3D_18_Weights.KINETICS400_V1.transforms()``): 16
frames per clip (we decode at 8 fps so a 2-s clip has exactly 16; other counts
are resampled evenly to 16), resize to short side 128 (torchvision resizes to
128x171, i.e. short side 128 for 4:3), 112x112 center crop, Kinetics mean/std.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from highlighter.features.base import Backbone, BackboneSpec, register_backbone
from highlighter.features.visual.common import StackedClipBackbone, frames_to_crops, normalise, sample_indices
from highlighter.features.weights import WeightSpec, register_weights

WEIGHTS = register_weights(WeightSpec(
    name="r3d18-kinetics400",
    url="https://download.pytorch.org/models/r3d_18-b3b3357e.pth",
    # torchvision publishes the first 8 hex digits of the file's sha256 in its name (torch.hub convention);
    # that prefix is what we verify. Size: torchvision's meta `_file_size` says 127.359 MB (not exact bytes).
    sha256="b3b3357e",
    size=None,
    published_size="127.359 MB (torchvision)",
    licence="BSD-3-Clause (torchvision); trained on Kinetics-400",
    filename="r3d_18-b3b3357e.pth",
    description="torchvision R3D_18_Weights.KINETICS400_V1 (acc@1 63.2 on Kinetics-400)",
    source="https://pytorch.org/vision/stable/models/generated/torchvision.models.video.r3d_18.html",
    check=lambda path: R3DBackbone(weights_path=path),  # `weights import`: must load strictly into R3D-18
))

def _conv_bn(cin: int, cout: int, k, stride, padding, relu: bool) -> nn.Sequential:
    layers = [nn.Conv3d(cin, cout, k, stride, padding, bias=False), nn.BatchNorm3d(cout)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class _BasicBlock(nn.Module):
    """torchvision's video ``BasicBlock`` with ``Conv3DSimple``: keys ``conv1.{0,1}``, ``conv2.{0,1}``,
    ``downsample.{0,1}``."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = _conv_bn(cin, cout, 3, stride, 1, relu=True)
        self.conv2 = _conv_bn(cout, cout, 3, 1, 1, relu=False)
        self.downsample = _conv_bn(cin, cout, 1, stride, 0, relu=False) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        out += x if self.downsample is None else self.downsample(x)
        return out.relu_()


class R3D18(nn.Module):
    """torchvision's ``r3d_18`` (VideoResNet, BasicBlock x [2, 2, 2, 2], BasicStem) with its module names,
    so its published state dict loads strictly; written here because ``import torchvision`` alone pulls
    in torch._dynamo and sympy: +164 MB of RSS for a 127-MB model (issue 14)."""

    def __init__(self, num_classes: int = 400):
        super().__init__()
        self.stem = _conv_bn(3, 64, (3, 7, 7), (1, 2, 2), (1, 3, 3), relu=True)
        widths, cin = (64, 128, 256, 512), 64
        for i, w in enumerate(widths):
            setattr(self, f"layer{i + 1}", nn.Sequential(_BasicBlock(cin, w, 1 if i == 0 else 2), _BasicBlock(w, w, 1)))
            cin = w
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(512, num_classes)
        if self.fc.weight.is_meta:  # built for a checkpoint: normal_ on the meta device imports torch's
            return                  # Python meta kernels (sympy...: +150 MB, 2.4 s) to draw nothing
        for m in self.modules():  # torchvision's init (random weights: same distribution as r3d_18(weights=None))
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight), nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01), nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(self.avgpool(x).flatten(1))


KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
FRAMES = 16


@register_backbone
class R3DBackbone(StackedClipBackbone, Backbone):
    spec = BackboneSpec(
        name="r3d",
        modality="visual",
        dim=512,
        weights=WEIGHTS.name,
        description="torchvision R3D-18, Kinetics-400",
        contract="8 fps -> 16 frames per 2-s clip (resampled evenly to 16); short side 128, 112x112 center crop, "
                 "Kinetics mean/std; global avg pool before fc",
    )
    fps = 8.0
    short_side = 128
    crop = 112
    meta_init = True  # a checkpoint's 127 MB in memory once, not twice (peak at load 767 -> 513 MB; issue 14)

    def __init__(self, device: str = "cpu", pretrained: bool = True, weights_path=None):
        super().__init__(device=device, pretrained=pretrained, weights_path=weights_path)
        self._setup()
        self.model.fc = nn.Identity()  # after loading: the checkpoint's fc keys were checked and loaded
        if device == "cpu":  # one 16-frame stack per call: 4 clips put +195 MB of activations in layer1 (issue 14)
            self.clips_per_batch = 1

    def build(self) -> nn.Module:
        return R3D18(400)

    def preprocess(self, frames: np.ndarray, index: int = 0) -> torch.Tensor:
        """uint8 (n, H, W, 3) -> (3, 16, 112, 112) normalised."""
        frames = frames[sample_indices(len(frames), FRAMES)] if len(frames) else frames
        x = normalise(frames_to_crops(frames, self.short_side, self.crop, index), KINETICS_MEAN, KINETICS_STD)
        return x.permute(1, 0, 2, 3)
