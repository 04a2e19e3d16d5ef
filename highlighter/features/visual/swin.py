"""Swin-B (Liu et al. 2021) per frame, mean-pooled per clip, 1024-d.

RASL-style visual features: an image transformer on frames sampled at a low
rate. We use timm's ``swin_base_patch4_window7_224`` (ImageNet-22k pre-trained,
ImageNet-1k fine-tuned; base rather than tiny because base is the published
RASL-style choice and gives 1024-d, the same width as I3D).

Weights: timm's own file on the Hugging Face hub (``model.safetensors`` of
``timm/swin_base_patch4_window7_224.ms_in22k_ft_in1k``), in timm's key layout.
Loading runs timm's ``checkpoint_filter_fn`` (drops the non-persistent
``relative_position_index`` / ``attn_mask`` buffers and also accepts Microsoft's
original ``swin_base_patch4_window7_224_22kto1k.pth`` layout), drops ``head.*``,
then loads strictly into ``create_model(..., num_classes=0)``.

Contract: 1 fps (2 frames per 2-s clip; more are resampled evenly to 2), short
side 248 (= 224 / timm's crop_pct 0.9), bicubic, 224x224 center crop, ImageNet
mean/std; pooled 1024-d per frame, mean over the clip's frames.
"""

from __future__ import annotations

from pathlib import Path

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

    def __init__(self, device: str = "cpu", pretrained: bool = True, weights_path=None):
        super().__init__(device=device, pretrained=pretrained, weights_path=weights_path)
        self._setup()

    def build(self) -> nn.Module:
        import timm

        return timm.create_model(ARCH, pretrained=False, num_classes=0)

    def load_weights(self, model: nn.Module, path: Path) -> None:
        from timm.models.swin_transformer import checkpoint_filter_fn

        sd = checkpoint_filter_fn(read_checkpoint(path), model)
        load_strict(model, {k: v for k, v in sd.items() if not k.startswith("head.")}, path)
