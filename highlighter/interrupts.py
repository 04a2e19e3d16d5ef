"""Hold a termination signal while a child process is being started, so the child is always ours to kill.

Why: the CLI turns SIGTERM into SystemExit, which unwinds from whatever bytecode is running.
Raised inside `subprocess.Popen()`, after the fork but before the object is returned, no
one held the child: ffmpeg ran on and wrote again the temp file that the unwinding had just
deleted (2 leaks in 10 tries when SIGTERM came as soon as the child existed). The CLI routes
SIGINT the same way (a `kill -INT` reaches only us; Ctrl-C at a terminal also reaches ffmpeg).
`deliver` runs a signal's action now, or, while a `held` block is open in the main thread
(where Python runs signal handlers), at the end of the outermost one.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

_depth = 0
_pending: Callable[[], None] | None = None  # the first action delivered while held: it ends the run, later ones drop


def deliver(action: Callable[[], None]) -> None:
    """Run ``action`` (which may raise, e.g. SystemExit) now, or when the open `held` block ends."""
    global _pending
    if not _depth:
        action()
    elif _pending is None:
        _pending = action


@contextmanager
def held() -> Iterator[None]:
    """Delay actions passed to `deliver` until the block ends (no-op outside the main thread)."""
    global _depth, _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if not _depth and _pending is not None:
            action, _pending = _pending, None
            action()
