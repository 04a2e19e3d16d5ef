"""The detector contract and the registry of detectors by name.

A detector maps a video's feature sequences to one score per clip (higher =
more of a highlight). Every detector — RASL, CHD, AVR, HPCL and the training-free
baselines — implements `Detector`, registers itself with `@register_method`, and
is built by name with `create_method` (like timm's ``create_model``).

Weights are safetensors files whose metadata holds ``method`` (registry name),
``config`` (JSON of the method's config dataclass) and ``info`` (JSON: training
data, feature backbones, seed, command). `load_method` rebuilds a detector from
such a file alone.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from highlighter.errors import InputError, UsageError


@dataclass
class TrainReport:
    """What a training run did: per-epoch losses and wall time."""

    method: str
    seed: int
    epochs: int
    seconds: float
    losses: list[dict[str, float]] = field(default_factory=list)


class Detector(ABC):
    """Score clips of one video from its feature sequences."""

    name: ClassVar[str] = ""
    supervised: ClassVar[bool] = False  # needs labels to train
    uses_audio: ClassVar[bool] = False  # needs the audio FVS at inference
    trainable: ClassVar[bool] = True

    config: Any  # the method's config dataclass
    info: dict[str, Any]

    @abstractmethod
    def score(self, visual: np.ndarray, audio: np.ndarray | None = None) -> np.ndarray:
        """(T, Dv) [+ (T, Da)] -> (T,) float scores."""

    def fit(self, videos: list, seed: int = 0, log: Callable[[str], None] | None = None) -> TrainReport:
        """Train on a list of `highlighter.eval.datasets.VideoFeatures`."""
        raise UsageError(f"method '{self.name}' is training-free; nothing to train")

    # --- persistence -------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Tensors to save; detectors backed by a torch module return its state dict."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # pragma: no cover - default no-op
        return None

    def save(self, path: str | Path) -> Path:
        """Write weights as fp16 safetensors with method/config/info metadata, atomically."""
        import torch
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().to(torch.float16).contiguous() if v.is_floating_point() else v.contiguous()
                   for k, v in self.state_dict().items()}
        meta = {
            "method": self.name,
            "config": json.dumps(asdict(self.config) if self.config is not None else {}),
            "info": json.dumps(self.info or {}),
        }
        from highlighter.atomic import default_mode

        tmp = path.with_name(path.name + ".part")
        save_file(tensors, str(tmp), metadata=meta)
        os.chmod(tmp, default_mode())  # safetensors creates 0600; give the usual umask-based mode
        tmp.replace(path)
        return path


_REGISTRY: dict[str, type[Detector]] = {}


def register_method(name: str):
    """Class decorator: make a detector available by name."""

    def deco(cls: type[Detector]) -> type[Detector]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


# Built-in methods register themselves on import (keep sorted).
BUILTIN_MODULES = (
    "highlighter.methods.avr",
    "highlighter.methods.baselines",
    "highlighter.methods.chd",
    "highlighter.methods.hpcl",
    "highlighter.methods.rasl",
)


def load_builtin_methods() -> None:
    import importlib

    for mod in BUILTIN_MODULES:
        importlib.import_module(mod)


_ensure_loaded = load_builtin_methods


def available_methods() -> list[str]:
    _ensure_loaded()
    return sorted(_REGISTRY)


def method_class(name: str) -> type[Detector]:
    _ensure_loaded()
    if name not in _REGISTRY:
        raise UsageError(f"unknown method '{name}'; valid methods: {', '.join(available_methods())}")
    return _REGISTRY[name]


def create_method(name: str, **config: Any) -> Detector:
    """A fresh (untrained) detector; keyword args override its config dataclass fields."""
    return method_class(name)(**config)


def read_metadata(path: str | Path) -> dict[str, Any]:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: weights file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # safetensors raises several types for bad files
        raise InputError(f"{path}: not a safetensors weights file ({exc})") from None
    return {
        "method": meta.get("method", ""),
        "config": json.loads(meta.get("config", "{}")),
        "info": json.loads(meta.get("info", "{}")),
    }


def load_method(path: str | Path, name: str | None = None) -> Detector:
    """Rebuild a trained detector from its safetensors file."""
    from safetensors.torch import load_file

    meta = read_metadata(path)
    method = name or meta["method"]
    if name and meta["method"] and meta["method"] != name:
        raise InputError(f"{path}: weights are for method '{meta['method']}', not '{name}'")
    det = create_method(method, **meta["config"])
    det.info = meta["info"]
    det.load_state_dict(load_file(str(path)))
    return det
