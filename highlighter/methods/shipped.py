"""Where the shipped (pretrained) detector weights live and how they are named.

A shipped detector is ``{method}-{target}.safetensors`` in the weights directory;
``target`` says what the weights are *for*: ``youtube`` (evaluate on YouTube
Highlights), ``tvsum`` (evaluate on TVSum — trained without ever seeing TVSum),
``video`` (the default for raw videos), ... The directory is
``$HIGHLIGHTER_WEIGHTS_DIR`` when set, else ``weights/`` next to the package
(the repository's own folder in a source checkout).

`resolve_detector` is the one way from "a method name and/or a weights file" to a
ready detector: `api` (raw videos, target ``video``) and the evaluation harness
(target = the benchmark's name) both use it.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from highlighter import settings
from highlighter.errors import WeightsMissingError
from highlighter.methods.base import Detector, create_method, load_method, method_class, preset_config
from highlighter.methods.config import make_config

ENV_VAR = settings.DETECTOR_WEIGHTS_VAR
PACKAGE_WEIGHTS_DIR = settings.PACKAGE_WEIGHTS_DIR
INSTALLED_WEIGHTS_DIR = settings.INSTALLED_WEIGHTS_DIR  # `pip install .`

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def shipped_dir() -> Path:
    """The weights directory (`highlighter.settings.detector_weights_dir`, read at call time)."""
    return settings.detector_weights_dir()


def shipped_path(method: str, target: str) -> Path:
    """Where the weights of ``method`` for ``target`` would be (may not exist)."""
    for part in (method, target):
        if not _SAFE.match(part):
            raise ValueError(f"not a valid method/target name: {part!r}")
    return shipped_dir() / f"{method}-{target}.safetensors"


# Raw videos use the weights trained on the most data: RASL's "youtube" weights
# saw TVSum + YouTube train (no labels), unless a dedicated "video" file exists.
FALLBACK_TARGETS = {"video": ("youtube",)}


def shipped_weights(method: str, target: str) -> Path | None:
    """The shipped weights file of ``method`` for ``target`` (or its fallback targets), or None."""
    for t in (target, *FALLBACK_TARGETS.get(target, ())):
        path = shipped_path(method, t)
        if path.is_file():
            return path
    return None


def shipped_targets(method: str) -> list[str]:
    """Targets that ``method`` has shipped weights for (sorted)."""
    root = shipped_dir()
    if not root.is_dir():
        return []
    prefix = f"{method}-"
    return sorted(p.name[len(prefix):-len(".safetensors")] for p in root.glob(f"{method}-*.safetensors")
                  if p.is_file() and "-" not in p.name[len(prefix):-len(".safetensors")])


@dataclass
class ResolvedDetector:
    """A ready detector and the weights file it was loaded from (None: built by name, training-free)."""

    detector: Detector
    weights: Path | None = None


def resolve_detector(method: str | None, weights: str | Path | None = None, target: str = "video",
                     *, seed: int | None = None, preset: str | None = None) -> ResolvedDetector:
    """The detector for ``method`` and/or ``weights``.

    * ``weights`` given: that file (its metadata names the method; ``method``, if given, must match);
    * a training-free method: built by name (``seed`` goes to those that take one);
    * ``preset`` (default: the method's ``default_preset``) whose config needs no trained weights
      (RASL's "video": it pretrains on each video itself): built by name;
    * a trainable method: its shipped weights for ``target``, else `WeightsMissingError`
      saying where they were expected and what to do (callers decide whether that is a
      usage error or a reason for a fallback).
    """
    if weights is not None:
        path = Path(weights)
        return ResolvedDetector(load_method(path, name=method), path)
    if method is None:
        raise ValueError("resolve_detector needs a method name or a weights file")
    cls = method_class(method)  # UsageError listing the valid names
    preset = preset or cls.default_preset
    values = preset_config(method, preset)
    if preset is not None and not cls.needs_weights(make_config(cls.config_class, method, values)):
        return ResolvedDetector(create_method(method, preset=preset))
    if not cls.trainable:
        takes_seed = seed is not None and dataclasses.is_dataclass(cls.config_class) and \
            any(f.name == "seed" for f in dataclasses.fields(cls.config_class))
        return ResolvedDetector(create_method(method, seed=seed) if takes_seed else create_method(method))
    path = shipped_weights(method, target)
    if path is None:
        raise WeightsMissingError(
            f"method '{method}' has no shipped weights for {target} ({shipped_path(method, target)}); "
            "pass --weights FILE, train one with `highlighter train`, or use a training-free method")
    det = load_method(path, name=method)
    _check_preset(det, path, values, preset)
    return ResolvedDetector(det, path)


def _check_preset(det: Detector, path: Path, values: dict, preset: str | None) -> None:
    """Shipped weights stand for a preset only if they were trained with its settings."""
    stored = dataclasses.asdict(det.config)
    off = [k for k, v in values.items() if k in stored and stored[k] != (tuple(v) if isinstance(v, list) else v)]
    if off:
        raise WeightsMissingError(f"method '{det.name}' has no shipped weights for preset '{preset}' ({path.name} "
                                  f"differs in {', '.join(off)}); train them with `highlighter train --preset {preset}` "
                                  "and pass --weights FILE")
