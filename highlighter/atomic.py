"""Atomic file writes shared by every stage: temp file in the target folder, then rename.

A crash or an error never leaves a half-written output, and a reader sees either the
old file or the new one. `atomic_path` is the one mechanism (for writers that need a
path: numpy, ffmpeg, a copy); `atomic_write_text` is the common case on top of it.
Temp files are hidden, sit beside the target (same file system, so the rename is
atomic), are named from the first 40 characters of the target's name (a name near
the file-name limit still leaves room), and get the permissions a plain
``open(path, "w")`` would (`default_mode`; `tempfile.mkstemp` makes them 0600).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import Iterator

NAME_CHARS = 40  # of the target's name kept in its temp file's name


def default_mode() -> int:
    """0o666 minus the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def temp_beside(dest: str | Path, suffix: str = ".part") -> Path:
    """A new empty hidden file beside ``dest`` (folders created), ``default_mode`` permissions.

    ``suffix`` lets writers that choose a format by extension (ffmpeg, checkpoint
    loaders) see the right one, e.g. ``.part.mp4``. OSError when the folder is not writable.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name[:NAME_CHARS]}.", suffix=suffix, dir=dest.parent)
    os.close(fd)
    try:
        os.chmod(tmp, default_mode())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(dest: str | Path, suffix: str = ".part") -> Iterator[Path]:
    """Yield a temp path beside ``dest``; renamed onto ``dest`` when the block succeeds,
    deleted when it raises (including KeyboardInterrupt), so ``dest`` is never half-written.

    The block may write the path itself, let another program overwrite it (ffmpeg
    ``-y``) or ``os.replace`` a finished file onto it.
    """
    dest = Path(dest)
    if dest.is_dir():  # fail on the user's path, not on the temp file's name after the work is done
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(dest))
    tmp = temp_beside(dest, suffix)
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` via a hidden temp file + rename."""
    path = Path(path)
    with atomic_path(path) as tmp:
        # surrogateescape: a file name that is not UTF-8 (in an EDL, a report) is written back as its own bytes
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
            f.write(text)
    return path
