"""The detector contract and the registry of detectors by name.

A detector maps a video's feature sequences to one score per clip (higher =
more of a highlight). Every detector — RASL, CHD, AVR, HPCL and the training-free
baselines — implements `Detector`, registers itself with `@register_method`, and
is built by name with `create_method` (like timm's ``create_model``).

The contract, the same for every detector:

* settings are one dataclass (``config_class``) built by `config.make_config`:
  unknown keys and bad values are one-line usage errors naming the key;
* training goes through `Detector.fit`, which applies the one label rule —
  unsupervised methods never see labels — before the method's own ``_fit``;
* importing this module (or listing method names) imports no method module and
  no torch: built-in methods are registered lazily by module path.

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
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from highlighter.errors import InputError, UsageError
from highlighter.methods.config import make_config
from highlighter.methods.data import VideoFeatures, without_labels
from highlighter.registry import lazy_registry


@dataclass
class TrainReport:
    """What a training run did: per-epoch losses and wall time."""

    method: str
    seed: int
    epochs: int
    seconds: float
    losses: list[dict[str, float]] = field(default_factory=list)


@dataclass
class NoConfig:
    """The config of a detector without settings."""


class Detector(ABC):
    """Score clips of one video from its feature sequences."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""  # one line for `highlighter methods list`
    config_class: ClassVar[type] = NoConfig
    supervised: ClassVar[bool] = False  # needs labels to train
    uses_audio: ClassVar[bool] = False  # needs the audio FVS at inference
    audio_optional: ClassVar[bool] = False  # uses audio when a video has it, scores without it otherwise
    trainable: ClassVar[bool] = True
    # Named configs (`--preset NAME`): config values on top of the defaults. "paper" is the paper's
    # literal settings wherever our defaults depart from it; each departure is a config field.
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    # The preset a detector built by name (no weights file) scores with, e.g. RASL's "video"
    # (pretrains on each video itself); None: the config defaults.
    default_preset: ClassVar[str | None] = None

    config: Any  # an instance of config_class
    info: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "fit" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: implement _fit, not fit (fit applies the label rule)")

    def __init__(self, **config: Any) -> None:
        self.config = make_config(self.config_class, self.name or type(self).__name__, config)
        self.info = {}
        self._build()

    def _build(self) -> None:
        """(Re)create the model from ``self.config``; called at init and before training."""

    @classmethod
    def audio_at_inference(cls, config: Any) -> bool:
        """Whether a detector with ``config`` needs the audio FVS to score."""
        return bool(cls.uses_audio)

    @classmethod
    def needs_weights(cls, config: Any) -> bool:
        """Whether a detector with ``config`` must load trained weights before it can score."""
        return bool(cls.trainable)

    @abstractmethod
    def score(self, visual: np.ndarray, audio: np.ndarray | None = None) -> np.ndarray:
        """(T, Dv) [+ (T, Da)] -> (T,) float scores."""

    def fit(self, videos: Sequence[VideoFeatures], seed: int = 0,
            log: Callable[[str], None] | None = None) -> TrainReport:
        """Train on ``videos``; an unsupervised method gets them without labels (the one rule)."""
        if not self.trainable:
            raise UsageError(f"method '{self.name}' is training-free; nothing to train")
        videos = list(videos) if self.supervised else [without_labels(v) for v in videos]
        return self._fit(videos, seed, log)

    def _fit(self, videos: list[VideoFeatures], seed: int, log: Callable[[str], None] | None) -> TrainReport:
        raise UsageError(f"method '{self.name}' has no training procedure")

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

        from highlighter.atomic import default_mode

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().to(torch.float16).contiguous() if v.is_floating_point() else v.contiguous()
                   for k, v in self.state_dict().items()}
        meta = {
            "method": self.name,
            "config": json.dumps(asdict(self.config) if self.config is not None else {}),
            "info": json.dumps(self.info or {}),
        }
        tmp = path.with_name(path.name + ".part")
        save_file(tensors, str(tmp), metadata=meta)
        os.chmod(tmp, default_mode())  # safetensors creates 0600; give the usual umask-based mode
        tmp.replace(path)
        return path


class NetStateMixin:
    """Persistence for detectors whose weights are exactly one torch module, ``self.net``.

    Put it before `Detector` in the bases; weights are stored fp16 and loaded back as fp32.
    """

    net: Any  # torch.nn.Module

    def state_dict(self) -> dict:
        return dict(self.net.state_dict())

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict({k: v.float() for k, v in state.items()})
        self.net.eval()


# --- the registry ---------------------------------------------------------------------------

# Built-in methods: name -> the module that registers it (imported on first use).
BUILTIN_METHODS = {
    "avr": "highlighter.methods.avr",
    "chd": "highlighter.methods.chd",
    "feature-norm": "highlighter.methods.baselines",
    "hpcl": "highlighter.methods.hpcl",
    "random": "highlighter.methods.baselines",
    "rasl": "highlighter.methods.rasl",
}

METHODS = lazy_registry("method", BUILTIN_METHODS)

DEFAULT_METHOD = "rasl"  # the detector `detect`/`trim` use unless told otherwise


def register_method(name: str):
    """Class decorator: make a detector available by name."""

    def deco(cls: type[Detector]) -> type[Detector]:
        cls.name = name
        return METHODS.register(name, cls)

    return deco


def available_methods() -> list[str]:
    """Registered method names, sorted (imports no method module)."""
    return METHODS.names()


def method_class(name: str) -> type[Detector]:
    """The detector class of ``name``; an unknown name is a usage error listing the valid ones."""
    return METHODS.get(name)


def preset_config(name: str, preset: str | None) -> dict[str, Any]:
    """The config values of ``name``'s preset (``None``: none); an unknown preset is a usage error."""
    if preset is None:
        return {}
    presets = method_class(name).presets
    if preset not in presets:
        have = ", ".join(sorted(presets)) or "none"
        raise UsageError(f"method '{name}' has no preset '{preset}'; its presets: {have}")
    return dict(presets[preset])


def create_method(name: str, preset: str | None = None, **config: Any) -> Detector:
    """A fresh (untrained) detector: the defaults, then ``preset``'s values, then keyword args."""
    det = method_class(name)(**{**preset_config(name, preset), **config})
    if preset is not None:
        det.info = {**(det.info or {}), "preset": preset}
    return det


def read_metadata(path: str | Path) -> dict[str, Any]:
    """``method``, ``config`` and ``info`` of a weights file, without loading its tensors."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: weights file not found")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
        return {
            "method": meta.get("method", ""),
            "config": json.loads(meta.get("config", "{}")),
            "info": json.loads(meta.get("info", "{}")),
        }
    except Exception as exc:  # safetensors raises several types for bad files
        raise InputError(f"{path}: not a safetensors weights file ({exc})") from None


def load_method(path: str | Path, name: str | None = None) -> Detector:
    """Rebuild a trained detector from its safetensors file."""
    from safetensors.torch import load_file

    meta = read_metadata(path)
    if not meta["method"]:
        raise InputError(f"{path}: not a highlighter weights file (no 'method' in its metadata); "
                         "pass a file written by `highlighter train`")
    method = name or meta["method"]
    if name and meta["method"] != name:
        raise InputError(f"{path}: weights are for method '{meta['method']}', not '{name}'")
    cls = method_class(method)
    try:
        det = cls(**meta["config"])
    except UsageError as exc:
        raise InputError(f"{path}: the stored config does not fit this version ({exc}); "
                         "retrain or use weights made by this version") from None
    det.info = meta["info"]
    try:
        det.load_state_dict(load_file(str(path)))
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    return det
