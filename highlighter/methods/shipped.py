"""Where the shipped (pretrained) detector weights live and how they are named.

A shipped detector is ``{method}-{target}.safetensors`` in the weights directory;
``target`` says what the weights are *for*: ``youtube`` (evaluate on YouTube
Highlights), ``tvsum`` (evaluate on TVSum — trained without ever seeing TVSum),
``video`` (the default for raw videos), ... The directory is
``$HIGHLIGHTER_WEIGHTS_DIR`` when set, else ``weights/`` next to the package
(the repository's own folder in a source checkout).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ENV_VAR = "HIGHLIGHTER_WEIGHTS_DIR"
PACKAGE_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
WEIGHTS_DIR = Path(os.environ[ENV_VAR]).expanduser() if os.environ.get(ENV_VAR) else PACKAGE_WEIGHTS_DIR

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


INSTALLED_WEIGHTS_DIR = Path(sys.prefix) / "share" / "highlighter" / "weights"  # `pip install .`


def shipped_dir() -> Path:
    """The weights directory, read from the environment at call time (tests and
    users may set the variable after import); a source checkout's ``weights/`` wins
    over the copy a non-editable install puts under ``<prefix>/share``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    if PACKAGE_WEIGHTS_DIR.is_dir() or not INSTALLED_WEIGHTS_DIR.is_dir():
        return PACKAGE_WEIGHTS_DIR
    return INSTALLED_WEIGHTS_DIR


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
