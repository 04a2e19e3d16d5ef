"""Every environment variable highlighter reads, in one place, each read at call time.

Why one module: the variables were read in four modules with four spellings of the
same rules; here each has one function, so the rules (and this list) are written once.
Read at call time, never at import, so tests may set them after ``import highlighter``;
the CLI's ``weights --cache-dir`` uses `using_cache_root` rather than the environment.

=========================== =============================================================
variable                    meaning
=========================== =============================================================
``HIGHLIGHTER_CACHE``       cache root (`cache_root`): backbone checkpoints in
                            ``ROOT/weights`` (`backbone_weights_dir`), feature files in
                            ``ROOT/features`` (`feature_cache_dir`). Default
                            ``$XDG_CACHE_HOME/highlighter``, else ``~/.cache/highlighter``.
``HIGHLIGHTER_WEIGHTS_DIR`` folder of the detector weights we ship (`detector_weights_dir`).
                            Default: ``weights/`` of a source checkout, else the copy
                            ``pip install .`` puts under ``<prefix>/share/highlighter``.
``HIGHLIGHTER_OFFLINE``     ``1``/``true``/``yes``/``on``: never download (`offline`).
``HIGHLIGHTER_FFMPEG``      ffmpeg executable to use (`ffmpeg_override`).
``HIGHLIGHTER_FFPROBE``     ffprobe executable name or path (`ffprobe_name`).
``HIGHLIGHTER_AV_LOG``      PyAV/libav log level name, default ``PANIC`` (`av_log_level`).
=========================== =============================================================

The two weight homes differ on purpose: backbone checkpoints are downloaded, so
they live in the user's cache; detector weights are ours and ship with the code.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

CACHE_VAR = "HIGHLIGHTER_CACHE"
DETECTOR_WEIGHTS_VAR = "HIGHLIGHTER_WEIGHTS_DIR"
OFFLINE_VAR = "HIGHLIGHTER_OFFLINE"
FFMPEG_VAR = "HIGHLIGHTER_FFMPEG"
FFPROBE_VAR = "HIGHLIGHTER_FFPROBE"
AV_LOG_VAR = "HIGHLIGHTER_AV_LOG"

# Detector weights: the repository's weights/ (source checkout), or where `pip install .` copies them.
PACKAGE_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
INSTALLED_WEIGHTS_DIR = Path(sys.prefix) / "share" / "highlighter" / "weights"

_TRUE = ("1", "true", "yes", "on")


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


_cache_roots: list[Path] = []  # set by `using_cache_root` (the CLI's ``weights --cache-dir``)


@contextmanager
def using_cache_root(path: str | os.PathLike) -> Iterator[Path]:
    """Within the block, `cache_root` is ``path``: an option given on the command line beats the
    environment, without writing to ``os.environ`` (which would leak into the rest of the process)."""
    root = Path(path).expanduser()
    _cache_roots.append(root)
    try:
        yield root
    finally:
        _cache_roots.remove(root)


def cache_root() -> Path:
    """Root of highlighter's caches: `using_cache_root`, else $HIGHLIGHTER_CACHE, else the XDG cache, else ~/.cache."""
    if _cache_roots:
        return _cache_roots[-1]
    env = os.environ.get(CACHE_VAR)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "highlighter"


def backbone_weights_dir() -> Path:
    """Downloaded/imported backbone checkpoints (a sub-folder, so other caches do not mix in)."""
    return cache_root() / "weights"


def feature_cache_dir() -> Path:
    """Default folder of cached feature files (``detect``/``trim`` without ``--cache-dir``)."""
    return cache_root() / "features"


def detector_weights_dir() -> Path:
    """The shipped detector weights: $HIGHLIGHTER_WEIGHTS_DIR, else the checkout's weights/
    (which wins over an installed copy, so a source tree uses its own files)."""
    env = os.environ.get(DETECTOR_WEIGHTS_VAR)
    if env:
        return Path(env).expanduser()
    if PACKAGE_WEIGHTS_DIR.is_dir() or not INSTALLED_WEIGHTS_DIR.is_dir():
        return PACKAGE_WEIGHTS_DIR
    return INSTALLED_WEIGHTS_DIR


def offline() -> bool:
    """True when downloads are forbidden (tests set it so nothing reaches the network)."""
    return _env(OFFLINE_VAR).lower() in _TRUE


def ffmpeg_override() -> str | None:
    """The ffmpeg the user named, or None to search PATH."""
    return os.environ.get(FFMPEG_VAR) or None


def ffprobe_name() -> str:
    """The ffprobe to look up on PATH (a name or a path)."""
    return os.environ.get(FFPROBE_VAR, "ffprobe")


def av_log_level() -> str:
    """PyAV log level name (upper case); PANIC keeps libav quiet unless debugging."""
    return os.environ.get(AV_LOG_VAR, "PANIC").upper()
