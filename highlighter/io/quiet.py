"""Keep the decoders' own messages off the terminal; show them with ``--debug``.

Why: the CLI promises one clear line per problem, and libav's ``[h264 @ 0x…] …``
chatter on a damaged file would bury it. Two sources, two mechanisms:

* PyAV routes libav's messages through ``av.logging``; `pyav_level` is the level
  `probe.open_container` sets on every open (off, or into Python logging as
  ``libav.*`` when debugging). It is not restored after a call: PyAV containers
  and their decode loops outlive the calls that open them.
* decord bundles its own libav and writes from C++ straight to file descriptor 2,
  which Python cannot intercept: `native_stderr` points fd 2 at a temp file around
  one call and forwards what was written to the ``highlighter.native`` logger at
  DEBUG level. `quiet_native` wraps a decord object so each call is captured,
  and `close` drops it inside a capture too. decord decodes in a worker thread of
  its own, which can still write between calls (and while the reader is torn
  down), so unless debugging its libav is also set silent (`decord_level`).

``--debug`` (or ``-vv``) enables that logger. Lines with terminal escape codes are
not decoder messages (a rich progress bar redrawing from its thread): they are
written back to the real stderr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from typing import Any, Iterator

log = logging.getLogger("highlighter.native")

_DMLC_PREFIX = re.compile(r"\[\d\d:\d\d:\d\d\] \S+?:\d+: ")  # decord's C++ log prefix: "[14:06:56] src/x.cc:292: "
_lock = threading.Lock()  # fd 2 is process-wide: one capture at a time
_depth = 0  # nested captures share the outer one


def debugging() -> bool:
    """Whether the decoders' messages should be shown (``--debug`` / ``-vv``)."""
    return log.isEnabledFor(logging.DEBUG)


def pyav_level() -> int | None:
    """The ``av.logging`` level to use: into Python logging when debugging, else off.

    ``HIGHLIGHTER_AV_LOG`` (a PyAV level name such as WARNING) overrides it.
    """
    import av.logging

    name = os.environ.get("HIGHLIGHTER_AV_LOG", "").upper()
    if name:
        return getattr(av.logging, name, av.logging.PANIC)
    return av.logging.WARNING if debugging() else av.logging.PANIC


def decord_level() -> int:
    """decord's libav log level: errors (captured, shown as DEBUG) when debugging, else nothing.

    Silence is the only reliable hiding: decord's worker thread can log outside any capture.
    """
    import decord.logging

    return decord.logging.ERROR if debugging() else decord.logging.QUIET


def forward(text: str) -> str:
    """Log the decoder lines of captured ``text`` at DEBUG; return the rest (terminal output) unchanged."""
    passthrough = []
    for line in text.splitlines(keepends=True):
        if "\x1b" in line:
            passthrough.append(line)
        elif line.strip():
            log.debug("%s", line.rstrip())
    return "".join(passthrough)


@contextlib.contextmanager
def native_stderr() -> Iterator[None]:
    """Capture what native code writes to file descriptor 2 during the block (see `forward`).

    Nested or concurrent blocks share the outermost capture (fd 2 is process-wide).
    """
    global _depth
    with _lock:
        _depth += 1
        outer = _depth == 1
    try:
        if not outer:
            yield
            return
        for stream in (sys.stderr, sys.__stderr__):
            with contextlib.suppress(Exception):
                stream.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all: nothing to protect
            yield
            return
        try:
            with tempfile.TemporaryFile() as tmp:
                os.dup2(tmp.fileno(), 2)
                try:
                    yield
                finally:
                    os.dup2(saved, 2)
                    tmp.seek(0)
                    rest = forward(tmp.read().decode("utf-8", errors="replace"))
                    if rest:
                        os.write(2, rest.encode("utf-8", errors="replace"))
        finally:
            os.close(saved)
    finally:
        with _lock:
            _depth -= 1


class quiet_native:
    """A proxy for a native object (a decord ``VideoReader``): every call runs in `native_stderr`."""

    def __init__(self, make: Any, *args: Any, **kwargs: Any):
        with native_stderr():
            self._obj = make(*args, **kwargs)

    def close(self) -> None:
        """Drop the object inside a capture: its destructor joins decord's worker, which may log."""
        with native_stderr():
            self.__dict__.pop("_obj", None)

    def __getattr__(self, name: str) -> Any:
        if name == "_obj":  # not built (the constructor raised): no recursion
            raise AttributeError(name)
        attr = getattr(self._obj, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with native_stderr():
                return attr(*args, **kwargs)

        return call

    def __len__(self) -> int:
        with native_stderr():
            return len(self._obj)

    def __getitem__(self, index: Any) -> Any:
        with native_stderr():
            return self._obj[index]


def native_reason(exc: BaseException, limit: int = 120) -> str:
    """The readable part of a decord error for a one-line message (no timestamps or C++ source paths)."""
    lines = str(exc).splitlines() or [type(exc).__name__]
    text = _DMLC_PREFIX.sub("", lines[0]).strip() or type(exc).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"
