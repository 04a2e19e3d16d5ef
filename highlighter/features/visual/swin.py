"""Swin-B (Liu et al. 2021) per frame, mean-pooled per clip, 1024-d.

RASL-style visual features: an image transformer on frames sampled at a low
rate. We use timm's ``swin_base_patch4_window7_224`` (ImageNet-22k pre-trained,
ImageNet-1k fine-tuned; base rather than tiny because base is the published
RASL-style choice and gives 1024-d, the same width as I3D).

Weights: timm's own file on the Hugging Face hub (``model.safetensors`` of
``timm/swin_base_patch4_window7_224.ms_in22k_ft_in1k``), in timm's key layout.
Loading does what timm's ``checkpoint_filter_fn`` does for this size (`timm_layout`: drops the
non-persistent ``relative_position_index`` / ``attn_mask`` buffers and also accepts Microsoft's
original ``swin_base_patch4_window7_224_22kto1k.pth`` layout), drops ``head.*``, then loads
strictly into `SwinB`: timm's network with timm's module names, written here so that timm
(and the torchvision it imports, +195 MB of RSS) is not loaded (issue 14); it gives timm's
outputs bit for bit (tests/test_memory_backbones.py).

Contract: 1 fps (2 frames per 2-s clip; more are resampled evenly to 2), short
side 248 (= 224 / timm's crop_pct 0.9), bicubic, 224x224 center crop, ImageNet
mean/std; pooled 1024-d per frame, mean over the clip's frames.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from highlighter.features.base import Backbone, BackboneSpec, register_backbone
from highlighter.features.visual.common import FrameMeanBackbone, load_strict, read_checkpoint
from highlighter.features.weights import WeightSpec, register_weights

ARCH = "swin_base_patch4_window7_224"

WEIGHTS = register_weights(WeightSpec(
    name="swin-base-in22k-in1k",
    url="https://huggingface.co/timm/swin_base_patch4_window7_224.ms_in22k_ft_in1k/resolve/main/model.safetensors",
    sha256=None,  # the hub shows the LFS sha256 on the file page; it could not be read offline here, so none is recorded
    size=None,
    licence="MIT (Microsoft Swin Transformer weights, redistributed by timm)",
    filename="swin_base_patch4_window7_224.ms_in22k_ft_in1k.safetensors",
    description="timm swin_base_patch4_window7_224.ms_in22k_ft_in1k (safetensors, timm key layout)",
    source="https://huggingface.co/timm/swin_base_patch4_window7_224.ms_in22k_ft_in1k",
    check=lambda path: SwinBackbone(weights_path=path),  # `weights import`: must load strictly into Swin-B
))


@register_backbone
class SwinBackbone(FrameMeanBackbone, Backbone):
    spec = BackboneSpec(
        name="swin",
        modality="visual",
        dim=1024,
        weights=WEIGHTS.name,
        description="Swin-B (timm swin_base_patch4_window7_224, IN-22k -> IN-1k) per frame, mean per clip",
        contract="1 fps -> 2 frames per 2-s clip; short side 248 bicubic, 224x224 center crop, ImageNet mean/std; "
                 "pooled 1024-d per frame, mean over the clip",
    )
    fps = 1.0
    short_side = 248
    crop = 224
    resize_mode = "bicubic"
    frames_per_clip = 2
    batch_frames = 8
    meta_init = True  # a checkpoint's 350 MB in memory once, not twice (1.20 GB peak at load before; issue 14)

    def __init__(self, device: str = "cpu", pretrained: bool = True, weights_path=None):
        super().__init__(device=device, pretrained=pretrained, weights_path=weights_path)
        self._setup()
        if device == "cpu":  # 1 frame per forward: 8 put +220 MB of activations on the weights, 2 +20 MB (issue 14)
            self.batch_frames = 1
            self.max_chunk_frames = 16  # decoded 16 frames at a time (5 MB), not 64 (21 MB, several alive)

    def build(self) -> nn.Module:
        return SwinB()

    def load_weights(self, model: nn.Module, path: Path) -> None:
        load_strict(model, timm_layout(read_checkpoint(path)), path)  # meta-built: assigned, as float32


def timm_layout(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A Swin-B state dict in timm's layout, as timm's ``checkpoint_filter_fn`` makes it (for a model of
    the published size): the non-persistent buffers dropped; Microsoft's original layout (the patch
    merging at the end of a stage, ``head.*``) renamed; the classifier dropped (we keep the pooled vector)."""
    import re

    old = "layers.0.downsample.reduction.weight" in sd
    out = {}
    for k, v in sd.items():
        if "relative_position_index" in k or "attn_mask" in k:
            continue
        if old:
            k = re.sub(r"layers.(\d+).downsample", lambda m: f"layers.{int(m.group(1)) + 1}.downsample", k)
        if not k.startswith("head."):
            out[k] = v
    return out


# --------------------------------------------------------------------------- Swin-B, timm's names
# Written here, not taken from timm, because `import timm` imports torchvision, whose ops import
# torch._dynamo and sympy: +195 MB of RSS before the 350-MB model (issue 14). The module names and
# the arithmetic are timm 1.0's `SwinTransformer` (non-fused attention), so its state dict loads
# strictly and its outputs are ours (tests/test_memory_backbones.py compares them).

def _windows(x: torch.Tensor, w: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * H/w * W/w, w*w, C)."""
    b, h, wd, c = x.shape
    return x.view(b, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, c)


def _unwindows(x: torch.Tensor, w: int, h: int, wd: int) -> torch.Tensor:
    c = x.shape[-1]
    return x.view(-1, h // w, wd // w, w, w, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, h, wd, c)


@functools.lru_cache(maxsize=None)
@torch.inference_mode(False)  # cached: a plain tensor, usable in and out of inference mode
def _relative_index(w: int) -> torch.Tensor:
    coords = torch.stack(torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (w - 1)
    return rel[:, :, 0] * (2 * w - 1) + rel[:, :, 1]


@functools.lru_cache(maxsize=None)
@torch.inference_mode(False)
def _shift_mask(res: int, w: int, shift: int) -> torch.Tensor:
    """(windows, w*w, w*w): 0 within a region of the rolled map, -100 across regions (timm's values)."""
    img = torch.zeros(1, res, res, 1)
    cnt = 0
    for hs in ((0, -w), (-w, -shift), (-shift, None)):
        for ws in ((0, -w), (-w, -shift), (-shift, None)):
            img[:, hs[0]:hs[1], ws[0]:ws[1], :] = cnt
            cnt += 1
    win = _windows(img, w).squeeze(-1)
    diff = win.unsqueeze(1) - win.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int, w: int):
        super().__init__()
        self.heads, self.w, self.scale = heads, w, (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * w - 1) ** 2, heads))
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        index = _relative_index(self.w).to(x.device)  # made once per size (a buffer would not survive the meta device)
        bias = self.relative_position_bias_table[index.view(-1)].view(n, n, -1).permute(2, 0, 1)
        attn = (q * self.scale) @ k.transpose(-2, -1) + bias.unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = (attn.view(-1, nw, self.heads, n, n) + mask.unsqueeze(1).unsqueeze(0)).view(-1, self.heads, n, n)
        return self.proj((attn.softmax(-1) @ v).transpose(1, 2).reshape(b, n, -1))


class _Mlp(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, dim * 4), nn.Linear(dim * 4, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, res: int, w: int, shifted: bool):
        super().__init__()
        self.w = min(w, res)
        self.shift = w // 2 if shifted and res > w else 0
        self.res = res
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = _Attention(dim, heads, self.w)
        self.mlp = _Mlp(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, wd, c = x.shape
        y = self.norm1(x)
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), (1, 2))
        mask = _shift_mask(self.res, self.w, self.shift).to(x.device, x.dtype) if self.shift else None
        y = _unwindows(self.attn(_windows(y, self.w), mask), self.w, h, wd)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), (1, 2))
        x = (x + y).reshape(b, -1, c)
        x = x + self.mlp(self.norm2(x))
        return x.reshape(b, h, wd, c)


class _Merge(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        return self.reduction(self.norm(x.reshape(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 4, 2, 5).flatten(3)))


class _Stage(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, res: int, merge: bool):
        super().__init__()
        self.downsample = _Merge(dim // 2) if merge else nn.Identity()
        self.blocks = nn.Sequential(*[_Block(dim, heads, res, 7, i % 2 == 1) for i in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class _PatchEmbed(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, 4, 4)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class SwinB(nn.Module):
    """``swin_base_patch4_window7_224`` with ``num_classes=0``: (B, 3, 224, 224) -> pooled (B, 1024)."""

    def __init__(self):
        super().__init__()
        self.patch_embed = _PatchEmbed(128)
        self.layers = nn.Sequential(*[_Stage(128 * 2 ** i, d, h, 56 // 2 ** i, i > 0)
                                      for i, (d, h) in enumerate(zip((2, 2, 18, 2), (4, 8, 16, 32)))])
        self.norm = nn.LayerNorm(1024)
        for m in self.modules():  # timm's init (random weights: the same distributions)
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, _Attention):
                nn.init.trunc_normal_(m.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.layers(self.patch_embed(x))).mean(dim=(1, 2))
