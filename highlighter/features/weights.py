"""Weights manager: a registry of published checkpoints and a local cache.

Pretrained checkpoints are never committed; each backbone names a `WeightSpec`
(official URL, checksum, size, licence) and asks `ensure_weights(name)` for a
local path. The cache lives in ``weights_dir()``:

* ``CACHE/weights`` for the CLI's ``weights --cache-dir CACHE`` (`settings.using_cache_root`),
  else ``$HIGHLIGHTER_CACHE/weights`` when ``HIGHLIGHTER_CACHE`` is set, else
  ``$XDG_CACHE_HOME/highlighter/weights``, else ``~/.cache/highlighter/weights``
  (`highlighter.settings.backbone_weights_dir`, where every environment variable is
  documented). The ``weights`` sub-folder keeps the cache root free for other caches
  (feature files) without mixing them.

Machines without internet (CI, air-gapped boxes) get ONE line naming the file,
its URL and the exact ``highlighter weights import NAME /path/to/FILENAME``
command. ``HIGHLIGHTER_OFFLINE=1`` forbids downloads (tests set it so that no
test can reach the network by accident).

Checksums: ``sha256`` is the full hex digest when the publisher gives one (or
when we measured the file). Some publishers only publish a *prefix* of the
sha256 (torchvision puts the first 8 hex digits in the filename, e.g.
``r3d_18-b3b3357e.pth``); such a prefix is verified as a prefix and the spec
says so. A spec with ``sha256=None`` has no published hash: the file is
accepted on size alone (if known) and its measured hash is logged. We never
invent a hash.

Downloads resume from ``FILENAME.part`` with an HTTP ``Range`` request, are
checked before they are renamed into place (`highlighter.atomic.atomic_path`), and
a file that fails the check is deleted, so the cache never holds a half-written or
wrong file.

Beyond checksums, a spec may carry ``check``: the backbone's own loader, run on a
downloaded or imported file (under its final file name, so the format is chosen as
at load time) before it enters the cache; a file that does not load strictly into
the architecture is refused with one line. A cached file that still cannot be read
later (older caches, disk damage) raises `CachedWeightsUnreadableError`, a
`WeightsMissingError`, so ``detect`` falls back instead of stopping; ``weights fetch``
replaces such a file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from highlighter import settings
from highlighter.atomic import atomic_path
from highlighter.errors import HighlighterError, InputError, UsageError, WeightsMissingError
from highlighter.features.builtin import BUILTIN_MODULES
from highlighter.registry import Registry

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class WeightSpec:
    name: str
    url: str
    sha256: str | None  # full hex digest, or a published prefix (see module doc); None = not published
    size: int | None  # bytes, when known
    licence: str
    filename: str
    description: str = ""
    source: str = ""  # project page
    # the backbone's loader: raises when a file does not map onto the architecture (keys and shapes)
    check: Callable[[Path], object] | None = field(default=None, compare=False, repr=False)
    # what the publisher states when it gives no exact byte count (e.g. "127.359 MB"); shown, never checked
    published_size: str = ""

    @property
    def size_text(self) -> str:
        """The size for listings: exact bytes when known, else the publisher's figure, else "unknown"."""
        if self.size is not None:
            return f"{self.size / 1e6:.1f} MB"
        return self.published_size or "unknown"

    @property
    def checksum_kind(self) -> str:
        if not self.sha256:
            return "none"
        return "sha256" if len(self.sha256) == 64 else f"sha256 prefix ({len(self.sha256)} hex)"


# Backbone modules register their checkpoints on import, so a full listing imports them.
WEIGHTS: Registry[WeightSpec] = Registry("weights", modules=BUILTIN_MODULES)


def register_weights(spec: WeightSpec) -> WeightSpec:
    """Add a checkpoint to the registry (idempotent for an identical spec)."""
    if spec.sha256 is not None:
        h = spec.sha256.lower()
        if not h or len(h) > 64 or any(c not in "0123456789abcdef" for c in h):
            raise ValueError(f"weights '{spec.name}': sha256 must be hex (full digest or prefix), got {spec.sha256!r}")
        if h != spec.sha256:
            spec = WeightSpec(**{**spec.__dict__, "sha256": h})
    if "/" in spec.filename or "\\" in spec.filename or spec.filename in ("", ".", ".."):
        raise ValueError(f"weights '{spec.name}': filename must be a plain file name, got {spec.filename!r}")
    old = WEIGHTS.get(spec.name) if spec.name in WEIGHTS else None
    if old is not None and old != spec:
        raise ValueError(f"weights '{spec.name}' registered twice with different specs")
    if old is None:
        WEIGHTS.register(spec.name, spec)
    return old or spec


def unregister_weights(name: str) -> WeightSpec | None:
    """Remove a checkpoint from the registry (tests that add their own)."""
    return WEIGHTS.unregister(name)


def get_weight_spec(name: str) -> WeightSpec:
    """The spec of checkpoint ``name``; an unknown name is one usage error listing the valid ones."""
    try:
        return WEIGHTS.get(name)
    except UsageError as exc:
        raise UsageError(f"{exc} (see `highlighter weights list`)") from None


def available_weights() -> list[WeightSpec]:
    """Every known checkpoint, sorted by name (imports the backbone modules)."""
    return [spec for _name, spec in WEIGHTS.items()]


# ----------------------------------------------------------------------------- cache location

cache_root = settings.cache_root  # kept here for callers that import it from the weights manager


def weights_dir() -> Path:
    """The backbone checkpoint cache (`highlighter.settings.backbone_weights_dir`)."""
    return settings.backbone_weights_dir()


def weight_path(name: str) -> Path:
    """Where the checkpoint lives in the cache (may not exist)."""
    return weights_dir() / get_weight_spec(name).filename


def is_cached(name: str) -> bool:
    return weight_path(name).is_file()


offline = settings.offline  # HIGHLIGHTER_OFFLINE: downloads are forbidden


# ----------------------------------------------------------------------------- verification


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify(name: str, path: str | Path) -> None:
    """Raise HighlighterError when the file's size or sha256 differs from the spec."""
    spec = get_weight_spec(name)
    path = Path(path)
    if not path.is_file():
        raise InputError(f"weights file {path} does not exist")
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        raise HighlighterError(
            f"weights '{name}': {path} has {size} bytes, expected {spec.size}; "
            f"it is not {spec.filename} from {spec.url} (re-download or import the right file)"
        )
    if spec.sha256:
        actual = sha256_file(path)
        if not actual.startswith(spec.sha256):
            raise HighlighterError(
                f"weights '{name}': checksum mismatch for {path}: expected sha256 {spec.sha256}"
                f"{'…' if len(spec.sha256) < 64 else ''}, got {actual} (re-download or import the right file)"
            )
    else:
        log.info("weights '%s' has no published sha256; %s accepted on size (sha256 %s)", name, path, sha256_file(path))


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _write_stamp(path: Path) -> None:
    """Remember that this exact file (size, mtime) was verified, so loads need not re-hash it."""
    st = path.stat()
    try:
        _stamp_path(path).write_text(f"{st.st_size} {st.st_mtime_ns}\n")
    except OSError:  # read-only cache: verification just runs again next time
        pass


def _stamp_ok(path: Path) -> bool:
    try:
        size, mtime = _stamp_path(path).read_text().split()
        st = path.stat()
        return int(size) == st.st_size and int(mtime) == st.st_mtime_ns
    except (OSError, ValueError):
        return False


class CachedWeightsUnreadableError(WeightsMissingError):
    """The cached checkpoint exists but cannot be read: as good as missing (detect falls back)."""

    def __init__(self, message: str, notice: str):
        super().__init__(message)
        self.notice = notice  # short form for the fallback line


def _reason(exc: BaseException, tmp: Path | None = None, shown: str | Path | None = None) -> str:
    """One line saying why a file failed to load (a temp copy's path shown as the user's file)."""
    text = (str(exc).strip().splitlines() or [""])[0]
    if tmp is not None and shown is not None:
        text = text.replace(str(tmp), str(shown))
    return text if isinstance(exc, HighlighterError) else f"{type(exc).__name__}: {text}".rstrip(": ")


def unreadable_error(name: str, path: Path, exc: BaseException) -> CachedWeightsUnreadableError:
    """The error for a cached checkpoint that fails to load: what, which file, the two fixes."""
    spec = get_weight_spec(name)
    fix = (f"run `highlighter weights fetch {name}`, or download {spec.url} and run "
           f"`highlighter weights import {name} /path/to/{spec.filename}`")
    reason = _reason(exc)
    short = reason if len(reason) <= 120 else reason[:117] + "..."
    return CachedWeightsUnreadableError(
        f"cached weights '{name}' ({path}) are unreadable ({reason}); {fix}",
        f"cached weights '{name}' ({path}) are unreadable ({short}); fix: `highlighter weights fetch {name}` "
        f"or `highlighter weights import {name} FILE`")


@contextmanager
def reading_cached(name: str | None, path: Path) -> Iterator[None]:
    """Turn any failure to load the cached checkpoint ``name`` into CachedWeightsUnreadableError.

    ``name=None`` (a file the user passed, or no cache involved) lets errors through unchanged.
    """
    if name is None:
        yield
        return
    try:
        yield
    except WeightsMissingError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to load a cached file means "unreadable"
        raise unreadable_error(name, path, exc) from exc


def check_loadable(name: str, path: Path, shown: str | Path | None = None) -> None:
    """Run the spec's loader on ``path``; one-line InputError naming ``shown`` when it does not load."""
    spec = get_weight_spec(name)
    if spec.check is None:
        return
    shown = shown or path
    try:
        spec.check(path)
    except Exception as exc:  # noqa: BLE001 - whatever the loader raised, the file is not usable
        reason = _reason(exc, path, shown)
        reason = reason if str(shown) in reason else f"{shown}: {reason}"
        raise InputError(f"not a usable '{name}' checkpoint: {reason} (expected {spec.filename} from {spec.url})") from exc


def _install(name: str, dest: Path, shown: str | Path, fill: Callable[[Path], None]) -> Path:
    """Stage the file beside ``dest`` (``fill(temp)``), check it with the backbone's loader,
    then rename it onto ``dest``; on any failure the staged file is gone.

    The temp name keeps ``dest``'s suffix: loaders choose the format by suffix.
    """
    with atomic_path(dest, suffix=f".tmp{dest.suffix}") as staged:
        fill(staged)
        check_loadable(name, staged, shown)
    _write_stamp(dest)
    return dest


def _missing_message(spec: WeightSpec, why: str) -> str:
    return (
        f"weights '{spec.name}' ({spec.filename}) are not in the cache {weights_dir()} and {why}; "
        f"download {spec.url} on a machine with internet, then run: "
        f"highlighter weights import {spec.name} /path/to/{spec.filename}"
    )


# ----------------------------------------------------------------------------- API


def ensure_weights(name: str, download: bool = True, progress: bool | DownloadReport = True) -> Path:
    """A verified local path of the checkpoint: from the cache, else downloaded.

    Raises WeightsMissingError (one line with the import command) when it is not
    cached and downloading is off (``download=False`` / HIGHLIGHTER_OFFLINE) or fails.
    """
    spec = get_weight_spec(name)
    path = weight_path(name)
    if path.is_file():
        if not _stamp_ok(path):
            with reading_cached(name, path):
                verify(name, path)
            _write_stamp(path)
        return path
    if not download or offline():
        raise WeightsMissingError(_missing_message(spec, "downloads are off"))
    try:
        return download_weights(name, progress=progress)
    except WeightsMissingError:
        raise
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise WeightsMissingError(_missing_message(spec, f"the download failed ({reason})")) from exc


def download_weights(name: str, progress: bool | DownloadReport = True) -> Path:
    """Download into the cache: resume from NAME.part, check sha256/size, rename atomically.

    A download that completes but fails the check is deleted (never left as .part,
    where a resume would build on bad bytes) and raises HighlighterError. An
    interrupted download keeps its .part for the next call to resume.
    """
    spec = get_weight_spec(name)
    dest = weight_path(name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    if spec.size is not None and have > spec.size:  # longer than the real file: cannot be a prefix of it
        part.unlink()
        have = 0

    req = urllib.request.Request(spec.url, headers={"User-Agent": "highlighter"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # range not satisfiable: .part may already be complete
            resp = None
        else:
            raise
    if resp is not None:
        with resp:
            status = getattr(resp, "status", 200)
            if have and status != 206:  # server ignored the Range: start over
                have = 0
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length is not None else spec.size
            with open(part, "ab" if have else "wb") as out:
                _copy_with_progress(resp, out, have, total, f"{spec.name} ({spec.filename})", progress)
    try:
        verify(name, part)
    except HighlighterError:
        part.unlink(missing_ok=True)
        raise
    try:
        return _install(name, dest, spec.url, lambda staged: os.replace(part, staged))
    except InputError as exc:  # the server sent something else (an HTML page, another model)
        raise WeightsMissingError(_missing_message(spec, f"the download is not usable ({exc})")) from exc


def fetch_weights(name: str, progress: bool | DownloadReport = True) -> Path:
    """`weights fetch`: the cached file when it loads, else a fresh download that replaces it."""
    spec = get_weight_spec(name)
    path = weight_path(name)
    if not path.is_file():
        return ensure_weights(name, download=True, progress=progress)
    try:
        ensure_weights(name, download=False)
        with reading_cached(name, path):
            check_loadable(name, path)
        return path
    except CachedWeightsUnreadableError as exc:
        log.warning("%s; downloading it again", exc.notice)
        if offline():
            raise WeightsMissingError(_missing_message(spec, f"the cached copy is unreadable ({_reason(exc.__cause__ or exc)}) "
                                                              f"and downloads are off")) from exc
    try:
        return download_weights(name, progress=progress)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise WeightsMissingError(_missing_message(spec, f"the download failed ({reason})")) from exc


# ----------------------------------------------------------------------------- download progress
# This layer draws nothing: a download reports ``report(label, bytes_done, bytes_total_or_None)`` after
# each block to a reporter its caller passes (``progress=report``) or, for downloads that start deep in a
# backbone (``ensure_weights(name)``), to the one installed with `reporting_downloads`.
DownloadReport = Callable[[str, int, "int | None"], None]
_reporters: list[DownloadReport] = []


@contextmanager
def reporting_downloads(report: DownloadReport) -> Iterator[None]:
    """Within the block, downloads asked for with ``progress=True`` report to ``report``."""
    _reporters.append(report)
    try:
        yield
    finally:
        _reporters.remove(report)


def _reporter(progress: bool | DownloadReport) -> DownloadReport | None:
    """The reporter a download uses: the one passed, else the innermost installed one (None: silent)."""
    if callable(progress):
        return progress
    return _reporters[-1] if progress and _reporters else None


def _copy_with_progress(src, out, done: int, total: int | None, label: str,
                        progress: bool | DownloadReport) -> None:
    report = _reporter(progress)
    if report is None:
        shutil.copyfileobj(src, out, _CHUNK)
        return
    report(label, done, total)
    for block in iter(lambda: src.read(_CHUNK), b""):
        out.write(block)
        done += len(block)
        report(label, done, total)


def import_weights(name: str, src: str | Path) -> Path:
    """Verify a file downloaded elsewhere (checksum, then the backbone's loader) and copy it atomically into the cache."""
    spec = get_weight_spec(name)
    src = Path(src).expanduser()
    if not src.is_file():
        raise InputError(f"cannot import weights '{name}': {src} is not a file (expected {spec.filename} from {spec.url})")
    verify(name, src)
    dest = weight_path(name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and dest.resolve() == src.resolve():
        check_loadable(name, dest)
        _write_stamp(dest)
        return dest

    def copy(staged: Path) -> None:
        with open(staged, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, _CHUNK)

    return _install(name, dest, src, copy)
