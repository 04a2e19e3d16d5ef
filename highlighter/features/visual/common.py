"""Shared pieces of the visual backbones: checkpoint reading, strict key checks, pixels,
and the two inference loops (a clip stack through a 3-D net; a frame mean of a 2-D net).

Every backbone loads its published checkpoint through `read_checkpoint` +
`load_strict`, so a file of the wrong layout fails with ONE line that names the
file and the first keys that did not map, instead of a page of torch errors.
"""

from __future__ import annotations

from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from highlighter.errors import HighlighterError, InputError

if TYPE_CHECKING:  # torch is imported where it is used: an ONNX Runtime backbone never imports it (~2 s)
    import torch


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """A flat state dict from a .safetensors file or a torch pickle (weights only).

    Unwraps the containers people wrap state dicts in (``state_dict``, ``model``)
    and the ``module.`` prefix that DataParallel adds.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path), device="cpu")
        else:
            from highlighter.features.audio._ckpt import torch_load_safe  # never runs code from the file

            sd = torch_load_safe(path)
    except Exception as exc:  # corrupt / truncated / not a checkpoint
        raise InputError(f"cannot read weights file {path}: {type(exc).__name__}: {exc}".split("\n")[0]) from exc
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise InputError(f"weights file {path} does not hold a state dict of tensors")
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return dict(sd)


def load_strict(model: torch.nn.Module, sd: dict[str, torch.Tensor], source: str | Path,
                optional: tuple[str, ...] = ("num_batches_tracked",), assign: bool = False) -> None:
    """load_state_dict(strict) with one clear line on mismatch.

    Keys ending in one of ``optional`` may be absent from the file (checkpoints
    saved before PyTorch 0.4.1 have no BatchNorm ``num_batches_tracked``); every
    other key must match in name and shape, and nothing may be left over.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith(optional)]
    unexpected = [k for k in sd if k not in own]
    shape = [f"{k} {tuple(sd[k].shape)}!={tuple(own[k].shape)}" for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or shape:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shape)):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {', '.join(keys[:3])})")
        raise HighlighterError(
            f"weights file {source} does not fit {type(model).__name__}: {'; '.join(parts)}; "
            "is it the published checkpoint named by `highlighter weights list`?"
        )
    full = {k: sd[k] if k in sd else own[k] for k in own}
    if assign or any(t.is_meta for t in own.values()):  # built on the meta device: nothing to copy into
        full, assign = {k: _assignable(k, v, own[k]) for k, v in full.items()}, True
    model.load_state_dict(full, strict=True, assign=assign)  # assign: sd's tensors become the weights


def _assignable(key: str, value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``value`` as ``like.copy_(value)`` would leave it: ``like``'s dtype (an fp16 file gives float32
    weights), contiguous (both free when already so). An absent ``num_batches_tracked`` of a meta-built
    net gets torch's initial 0; any other meta tensor stays meta (`TorchVisualBackbone` then refuses it)."""
    import torch

    if value.is_meta:
        return torch.zeros(like.shape, dtype=like.dtype) if key.endswith("num_batches_tracked") else value
    return value.to(like.dtype).contiguous()


def clip_tensor(frames: np.ndarray, index: int = 0, crop: int | None = None) -> torch.Tensor:
    """uint8 (n, H, W, 3) RGB -> float32 (n, 3, H, W) in [0, 1]; ``crop``: center-cropped while
    still uint8, so the float copy is the crop's size, not the frame's (issue 14)."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"clip {index}: expected uint8 (n, H, W, 3) RGB frames, got {frames.dtype} {frames.shape}")
    if frames.shape[0] == 0:
        raise ValueError(f"clip {index} has no frames (the extractor must give every clip at least one)")
    import torch

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    return (x if crop is None else center_crop(x, crop)).float().div_(255.0)


def resize_short_side(x: torch.Tensor, short: int, mode: str = "bilinear") -> torch.Tensor:
    """Resize (n, 3, H, W) so min(H, W) == short, keeping the aspect ratio.

    The decoder already delivers frames at the backbone's ``short_side``; this
    only acts when a caller hands frames of another size.
    """
    h, w = x.shape[-2:]
    if min(h, w) == short:
        return x
    scale = short / min(h, w)
    size = (max(short, round(h * scale)), max(short, round(w * scale)))
    import torch.nn.functional as F

    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=True).clamp_(0.0, 1.0)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"frames {h}x{w} are smaller than the {size}x{size} crop")
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top:top + size, left:left + size]


def frames_to_crops(frames: np.ndarray, short: int, crop: int, index: int = 0, mode: str = "bilinear") -> torch.Tensor:
    """uint8 frames -> (n, 3, crop, crop) in [0, 1]: short side to `short`, then center crop.
    Frames already at `short` (the decoder's size) are cropped before the float conversion."""
    if frames.ndim == 4 and min(frames.shape[1:3]) == short:
        return clip_tensor(frames, index, crop)
    return center_crop(resize_short_side(clip_tensor(frames, index), short, mode), crop)


def sample_indices(n: int, k: int) -> np.ndarray:
    """k frame indices spread evenly over n frames (repeats frames when n < k)."""
    return np.minimum((np.arange(k) * n / k + n / (2 * k)).astype(np.int64), n - 1)


def normalise(x: torch.Tensor, mean: tuple[float, float, float], std: tuple[float, float, float]) -> torch.Tensor:
    """Channel normalisation of (..., 3, H, W) or (3, T, H, W)-ordered tensors given the channel dim."""
    import torch

    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x - m) / s


def unloaded(model: torch.nn.Module) -> list[str]:
    """Names of the parameters and buffers still on the meta device (no values) after a load."""
    named = list(model.named_parameters()) + list(model.named_buffers())
    return [name for name, t in named if t.is_meta]


class TorchVisualBackbone:
    """Mixin for torch backbones: build the net, load published or given weights, eval mode.

    ``weights_path`` wins over the cache (a user's own copy of the published file);
    ``pretrained=True`` without it asks the weights manager (cache or download);
    ``pretrained=False`` keeps the random init (tests, benchmarks).
    """

    # Build on the meta device when a checkpoint will be loaded, so its tensors become the weights
    # (`load_weights` then assigns: one copy in memory, not a random init plus the file; issue 14).
    meta_init = False

    def _setup(self) -> None:
        path = self.resolve_weights()  # first: a missing checkpoint fails before the net is built
        if path is not None and self.meta_init:
            import torch

            with torch.device("meta"):
                torch_model = self.build()
        else:
            torch_model = self.build()
        if path is not None:
            self.read_weights(path, lambda p: self.load_weights(torch_model, p))
            unset = unloaded(torch_model)
            if unset:  # a tensor built at init and not in the file: no values on the meta device
                raise HighlighterError(f"weights file {path} left {len(unset)} tensors of {type(self).__name__} "
                                       f"unset (e.g. {', '.join(unset[:3])}); this is a bug in highlighter, "
                                       "please report it")
        self.model = torch_model.eval().to(self.device)

    @classmethod
    def weights_status(cls) -> str:
        """'cached' / 'missing' for `highlighter features list` (no hashing, no network)."""
        from highlighter.features.weights import is_cached

        return "cached" if is_cached(cls.spec.weights) else "missing"

    def build(self) -> torch.nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def load_weights(self, model: torch.nn.Module, path: Path) -> None:
        load_strict(model, read_checkpoint(path), path)


def embed_stacked(clips: list[np.ndarray], preprocess, forward, dim: int, device: str,
                  max_batch: int = 4) -> np.ndarray:
    """(len(clips), dim) float32 from a clip-level (3-D) network, ``max_batch`` clips per call.

    ``preprocess(frames, index)`` gives each clip's tensor; runs of consecutive clips
    whose tensors have the same shape (the usual case: equal clip lengths) are stacked
    into one ``forward`` call, and a clip of another shape starts the next batch.
    """
    import torch

    out = np.zeros((len(clips), dim), dtype=np.float32)
    i, ahead = 0, None  # ahead: the preprocessed clip i, when the previous batch stopped at it
    while i < len(clips):
        batch, ahead = [ahead if ahead is not None else preprocess(clips[i], i)], None
        j = i + 1
        while j < len(clips) and len(batch) < max_batch:
            x = preprocess(clips[j], j)
            if x.shape != batch[0].shape:
                ahead = x
                break
            batch.append(x)
            j += 1
        out[i:j] = forward(torch.stack(batch).to(device)).float().cpu().numpy()
        i = j
    return out


class StackedClipBackbone(TorchVisualBackbone):
    """A 3-D network that sees each clip as one (3, T, H, W) stack: subclasses give
    ``preprocess`` and, when the clip vector is not ``self.model(x)``, ``embed_batch``."""

    clips_per_batch: int = 4

    def embed_batch(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, dim)."""
        return self.model(x)

    def embed_clips(self, clips: list[np.ndarray]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return embed_stacked(clips, self.preprocess, self.embed_batch, self.spec.dim, self.device,
                                 self.clips_per_batch)


class FrameMeanBackbone(TorchVisualBackbone):
    """A 2-D image network applied to each decoded frame; the clip vector is the frame mean.

    Subclasses set ``short_side``, ``crop``, ``mean``, ``std``, ``resize_mode`` and
    ``frames_per_clip`` (frames are resampled evenly to at most that many), and
    make ``self.model(x)`` return pooled (n, dim) features.
    """

    crop: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    resize_mode: str = "bilinear"
    frames_per_clip: int = 2
    batch_frames: int = 16

    def preprocess(self, frames: np.ndarray, index: int = 0) -> torch.Tensor:
        if len(frames) > self.frames_per_clip:
            frames = frames[sample_indices(len(frames), self.frames_per_clip)]
        x = frames_to_crops(frames, self.short_side, self.crop, index, self.resize_mode)
        return normalise(x, self.mean, self.std)

    def embed_clips(self, clips: list[np.ndarray]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            xs = [self.preprocess(c, i) for i, c in enumerate(clips)]
            if not xs:
                return np.zeros((0, self.spec.dim), dtype=np.float32)
            allx = torch.cat(xs)
            feats = torch.cat([self.model(allx[i:i + self.batch_frames].to(self.device)).float().cpu()
                               for i in range(0, len(allx), self.batch_frames)])
        bounds = np.cumsum([0] + [len(x) for x in xs])
        return np.stack([feats[a:b].mean(0).numpy() for a, b in zip(bounds[:-1], bounds[1:])]).astype(np.float32)
