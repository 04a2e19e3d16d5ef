"""Feature files: one ``.npz`` per video with its FVS, clip grid and a cache key.

Layout (``numpy.savez``, loadable with ``allow_pickle=False``)::

    starts, ends   float64 (T,)   clip span in seconds (see features/grid.py)
    visual         float32 (T, Dv)   absent when no visual backbone was run
    audio          float32 (T, Da)   absent with ``--audio none`` or a silent file
    meta           0-d str        JSON, see below

``meta`` holds ``source`` {path, size, mtime, sha256}, ``key`` (the extraction
config that the features depend on: backbone ids + versions, grid, format
version), ``visual_backbone`` / ``audio_backbone`` ids, ``versions``, ``grid``,
``no_audio`` (the file has no audio stream: audio is absent but that is not an
error), ``duration``, device and precision.

Why npz and not safetensors: numpy alone reads it (no torch needed to inspect
features) and the metadata can be nested JSON. Features are kept float32: a 2-s
grid is small (an hour of I3D + PANN is ~5 MB), so halving it is not worth the
rounding.

Staleness: a file is stale when its source changed (size, mtime, path, or the
fast content hash: sha256 of the size + first and last MiB, so a multi-GB file
is checked in milliseconds) or when the extraction key differs. The device and
fp16 are recorded but are not part of the key: the same backbone on CPU or GPU
gives the same features up to rounding, and a cache should survive moving to a
GPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from highlighter.atomic import atomic_path
from highlighter.errors import InputError

FORMAT = "highlighter.features"
FORMAT_VERSION = 1
SUFFIX = ".features.npz"
_MIB = 1 << 20


def fast_hash(path: str | Path, size: int | None = None) -> str:
    """sha256 of (size, first MiB, last MiB): cheap, and catches in-place edits of
    either end and any change of length; the mtime covers edits in the middle."""
    path = Path(path)
    # O_NONBLOCK + fstat: a named pipe swapped in after the caller's check must not
    # block this open for ever (it has no effect on regular files)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise InputError(f"{path}: not a regular file; pass a video file")
    size = st.st_size if size is None else size
    h = hashlib.sha256(str(size).encode())
    with os.fdopen(fd, "rb") as f:
        h.update(f.read(_MIB))
        if size > _MIB:
            f.seek(max(_MIB, size - _MIB))
            h.update(f.read(_MIB))
    return h.hexdigest()


@dataclass(frozen=True)
class SourceKey:
    """Identity of a source video at extraction time."""

    path: str  # absolute
    size: int
    mtime: float
    sha256: str  # fast_hash

    @classmethod
    def of(cls, path: str | Path) -> "SourceKey":
        from highlighter.io.probe import check_file

        p = check_file(path)  # named pipes, devices, link loops: one line, and never opened
        try:
            st = p.stat()
            digest = fast_hash(p, st.st_size)
        except OSError as exc:
            raise InputError(f"cannot read video {path}: {exc.strerror or exc}; check the path and permissions") from exc
        return cls(str(p.resolve()), int(st.st_size), float(st.st_mtime), digest)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "mtime": self.mtime, "sha256": self.sha256}


def _key_of(config_or_key: Any) -> dict[str, Any]:
    key = config_or_key.cache_key() if hasattr(config_or_key, "cache_key") else config_or_key
    return json.loads(json.dumps(key))  # normalise (tuples -> lists) so it compares with loaded JSON


@dataclass
class FeatureFile:
    """FVS of one video on one clip grid, plus where it came from."""

    starts: np.ndarray
    ends: np.ndarray
    visual: np.ndarray | None = None
    audio: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_clips(self) -> int:
        return int(self.starts.shape[0])

    @property
    def no_audio(self) -> bool:
        return bool(self.meta.get("no_audio", False))

    def save(self, path: str | Path) -> Path:
        """Write atomically (`atomic_path`): a reader never sees a half-written file."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {
            "starts": np.asarray(self.starts, dtype=np.float64),
            "ends": np.asarray(self.ends, dtype=np.float64),
            "meta": np.array(json.dumps(self.meta, sort_keys=True)),
        }
        for name in ("visual", "audio"):
            arr = getattr(self, name)
            if arr is not None:
                if arr.ndim != 2 or arr.shape[0] != self.num_clips:
                    raise ValueError(f"{name} features have shape {arr.shape}, expected ({self.num_clips}, D)")
                arrays[name] = np.asarray(arr, dtype=np.float32)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        return path

    @classmethod
    def load(cls, path: str | Path) -> "FeatureFile":
        path = Path(path)
        what = f"feature file {path}"
        try:
            with np.load(path, allow_pickle=False) as z:
                names = set(z.files)
                if not {"starts", "ends", "meta"} <= names:
                    raise InputError(f"{what} is not a highlighter feature file (no starts/ends/meta); "
                                     "delete it or re-extract with --force")
                meta = json.loads(str(z["meta"][()]))
                ff = cls(starts=z["starts"], ends=z["ends"],
                         visual=z["visual"] if "visual" in names else None,
                         audio=z["audio"] if "audio" in names else None, meta=meta)
        except FileNotFoundError as exc:
            raise InputError(f"{what} does not exist") from exc
        except (OSError, ValueError, zipfile.BadZipFile, json.JSONDecodeError, EOFError) as exc:
            raise InputError(f"{what} is corrupt ({type(exc).__name__}); delete it or re-extract with --force") from exc
        if meta.get("format") != FORMAT:
            raise InputError(f"{what} is not a highlighter feature file; delete it or re-extract with --force")
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise InputError(f"{what} was written by a newer highlighter (format {meta.get('format_version')}); "
                             "upgrade highlighter or re-extract with --force")
        return ff

    def is_stale(self, source: str | Path | SourceKey, config: Any) -> bool:
        """True when ``source`` changed since extraction or ``config``'s cache key
        (an `ExtractConfig` or its ``cache_key()`` dict) differs."""
        return stale_reason(self.meta, source, config) is not None


def stale_reason(meta: dict[str, Any], source: str | Path | SourceKey, config: Any) -> str | None:
    """Why a feature file with ``meta`` must be re-extracted, or None if it is up to date.

    The content hash is only computed when size, mtime and path already match."""
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        return "older format"
    if _key_of(config) != meta.get("key"):
        return "extraction settings changed"
    old = meta.get("source") or {}
    if isinstance(source, SourceKey):
        key = source
    else:
        p = Path(source)
        try:
            st = p.stat()
        except OSError:
            return "source unreadable"
        if str(p.resolve()) != old.get("path"):
            return "source path changed"
        if int(st.st_size) != old.get("size") or float(st.st_mtime) != old.get("mtime"):
            return "source modified"
        key = SourceKey.of(p)
    if key.to_dict() != {k: old.get(k) for k in ("path", "size", "mtime", "sha256")}:
        return "source modified"
    return None


def check_output(path: str | Path, source: str | Path | SourceKey, config: Any) -> str | None:
    """None when ``path`` holds up-to-date features for ``source``; else why not
    (missing, unreadable or stale), so the caller re-extracts it."""
    path = Path(path)
    if not path.exists():
        return "no features yet"
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"][()]))
    except Exception:  # noqa: BLE001 - any unreadable file is simply re-extracted
        return "unreadable feature file"
    if not isinstance(meta, dict):
        return "unreadable feature file"
    return stale_reason(meta, source, config)
