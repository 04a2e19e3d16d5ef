"""Where the shipped (pretrained) detector weights live and how they are named.

A shipped detector is ``{method}-{target}.safetensors`` in the weights directory;
``target`` says what the weights are *for*: ``youtube`` (evaluate on YouTube
Highlights), ``tvsum`` (evaluate on TVSum — trained without ever seeing TVSum),
``video`` (the default for raw videos), ... The directory is
``$HIGHLIGHTER_WEIGHTS_DIR`` when set, else ``weights/`` next to the package
(the repository's own folder in a source checkout).
"""

from __future__ import annotations

import re
from pathlib import Path

from highlighter import settings

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
