"""Backbone contract and registry by name.

A backbone turns the media of one clip into one feature vector. The extractor
(`features/extract.py`) decodes at the backbone's own rate and size, cuts the
stream on the clip grid, and hands the backbone batches of clips:

* visual: ``embed_clips([uint8 (n_i, H, W, 3) RGB frames of clip i, ...]) -> (B, D)``
  — frames are those decoded at ``fps`` whose timestamps fall in the clip, resized
  by the decoder to ``short_side``; the backbone does its own crop / normalisation /
  temporal resampling (documented in its ``contract``).
* audio: ``embed_clips([float32 (s_i,) mono samples at sample_rate, ...]) -> (B, D)``.

Backbones are created by name (`create_backbone`), like timm's ``create_model``.
``pretrained=False`` gives the same architecture with random weights (benchmarks,
tests); ``pretrained=True`` loads the published checkpoint via the weights manager.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np


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

    def __init__(self, device: str = "cpu", pretrained: bool = True, weights_path: str | Path | None = None):
        self.device = device
        self.pretrained = pretrained
        self.weights_path = weights_path

    @abstractmethod
    def embed_clips(self, clips: list[np.ndarray]) -> np.ndarray:
        """One feature vector per clip, float32 (len(clips), spec.dim)."""

    @property
    def id(self) -> str:
        """Identity recorded in feature files (name + weights)."""
        return f"{self.spec.name}:{'pretrained' if self.pretrained else 'random'}"


_REGISTRY: dict[str, type[Backbone]] = {}


def register_backbone(cls: type[Backbone]) -> type[Backbone]:
    _REGISTRY[cls.spec.name] = cls
    return cls


BUILTIN_MODULES = ("highlighter.features.audio", "highlighter.features.visual")


def load_builtin_backbones() -> None:
    """Import the built-in backbone packages; their modules register on import."""
    import importlib

    for mod in BUILTIN_MODULES:
        importlib.import_module(mod)


_ensure_loaded = load_builtin_backbones


def available_backbones(modality: str | None = None) -> list[BackboneSpec]:
    _ensure_loaded()
    return [c.spec for n, c in sorted(_REGISTRY.items()) if modality in (None, c.spec.modality)]


def backbone_class(name: str) -> type[Backbone]:
    _ensure_loaded()
    if name not in _REGISTRY:
        from highlighter.errors import UsageError

        raise UsageError(f"unknown backbone '{name}'; valid: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_backbone(name: str, device: str = "cpu", pretrained: bool = True,
                    weights_path: str | Path | None = None) -> Backbone:
    return backbone_class(name)(device=device, pretrained=pretrained, weights_path=weights_path)
