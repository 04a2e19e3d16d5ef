"""Shared CLI state: consoles, verbosity, one-line messages and cheap output checks.

User text (paths, option values, names read from files) is never parsed as rich
markup: a file called ``[bold]x.mp4`` must print as is, and one containing ``[/]``
must not crash the printer. So every helper here builds `rich.text.Text` and adds
its own styling around it; tables take `plain` cells.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from highlighter.errors import InputError, UsageError

console = Console()  # results (tables) go to stdout
err_console = Console(stderr=True)  # progress, warnings, errors go to stderr


@dataclass
class State:
    verbose: int = 0
    quiet: bool = False
    debug: bool = False


state = State()
log = logging.getLogger("highlighter")

__all__ = ["console", "err_console", "escape", "plain", "show", "out", "info", "warn", "error_line", "progress_enabled",
           "check_out_dir", "check_out_file", "eof_message", "os_error_message", "one_line"]


def plain(value: object) -> Text:
    """``value`` as literal text for a table cell, title or caption (no markup, no highlighting)."""
    return Text(str(value))


def show(table) -> None:
    """A result table on stdout, never cut: cells fold instead of ending in "…", and when stdout is a
    file or a pipe (no terminal width to respect) the table gets the width it needs."""
    from rich.measure import Measurement

    for column in getattr(table, "columns", ()):
        column.overflow, column.no_wrap = "fold", False  # no_wrap would cut a cell however it overflows
    if console.is_terminal:
        console.print(table)
        return
    natural = Measurement.get(console, console.options.update_width(_UNLIMITED), table).maximum
    if natural <= console.width:
        console.print(table)
    else:  # print(width=) cannot exceed the console's width: a console as wide as the table, same file
        Console(file=console.file, width=natural, color_system=None, highlight=False).print(table)


_UNLIMITED = 100_000  # columns: "as wide as the content" when measuring a table


def out(msg: str) -> None:
    """A result line on stdout (shown even with --quiet), printed literally."""
    console.print(plain(msg), highlight=False, soft_wrap=True)


def info(msg: str) -> None:
    """A status line on stderr, hidden by --quiet."""
    if not state.quiet:
        err_console.print(plain(msg), highlight=False, soft_wrap=True)


def one_line(msg: object) -> str:
    """``msg`` with control characters shown as escapes: a file name holding a newline must not split the line."""
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in str(msg))


def warn(msg: str) -> None:
    """A warning line on stderr, kept on one line however narrow the terminal. Hidden by --quiet, which
    promises only results and errors (a warning says what ran: the JSON records it too)."""
    if state.quiet:
        return
    err_console.print(Text.assemble(("warning:", "yellow"), " ", one_line(msg)), highlight=False, soft_wrap=True)


def error_line(msg: str) -> None:
    """The one line an error gets on stderr."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", one_line(msg)), highlight=False, soft_wrap=True)


def progress_enabled() -> bool:
    return not state.quiet and err_console.is_terminal


# --------------------------------------------------------------------------- messages
def os_error_message(exc: OSError) -> str:
    """One line for an OSError: the file it is about, why, and what to do."""
    what = exc.strerror or str(exc) or type(exc).__name__
    name = exc.filename if exc.filename is not None else None
    where = f"{os.fsdecode(name)}: " if name is not None else ""
    return f"{where}{what}; check the path, its permissions and the free space"


def eof_message(exc: BaseException | None) -> str:
    """One line for an EOFError that no reader turned into its own message."""
    detail = f" ({exc})" if exc is not None and str(exc) else ""
    return (f"unexpected end of data{detail}: an input file is cut short (or stdin was closed); "
            "re-copy the file, or run with --debug to see which one")


# --------------------------------------------------------------------------- output checks
def _stat(p: Path, option: str) -> os.stat_result | None:
    """``os.stat``; None when missing, one `InputError` line for any other failure (name too long, ...)."""
    try:
        return os.stat(p)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise InputError(f"{option} {p}: {exc.strerror or exc}; choose another path") from None


def _existing_ancestor(p: Path, option: str) -> tuple[Path, os.stat_result]:
    """The nearest existing path at or above ``p`` (``.`` for a relative path)."""
    for q in (p, *p.parents):
        st = _stat(q, option)
        if st is not None:
            return q, st
    return Path("."), os.stat(".")


def check_out_dir(path: str | os.PathLike, option: str = "--out") -> Path:
    """Fail before any work when ``path`` cannot be (or become) a folder we can write in.

    A file in the way is a usage error (exit 2); a folder we may not write in is an
    `InputError`. Leaves nothing behind: the folder is created by the first write.
    """
    p = Path(path)
    _check_writable_ancestor(p, p, option, "pass a folder")
    _probe_write(p, p, option)
    return p


def _check_writable_ancestor(shown: Path, start: Path, option: str, todo: str) -> None:
    """The nearest existing path at or above ``start`` must be a folder we may write in."""
    import stat

    q, st = _existing_ancestor(start, option)
    if not stat.S_ISDIR(st.st_mode):
        where = "is a file" if q == shown else f"is under {q}, which is a file"
        raise UsageError(f"{option} {shown}: {where}; {todo}")
    if not os.access(q, os.W_OK | os.X_OK):
        raise InputError(f"{option} {shown}: cannot write in {q} (permission denied); choose another place")


def _probe_write(shown: Path, folder: Path, option: str) -> None:
    """Create ``folder`` and a temp file in it, then remove what was created.

    Catches what ``os.access`` cannot see: /proc, read-only mounts for root, full quotas.
    """
    created: list[Path] = []
    try:
        for q in reversed((folder, *folder.parents)):
            if not os.path.lexists(q):
                q.mkdir()
                created.append(q)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise InputError(f"{option} {shown}: cannot write there ({exc.strerror or exc}); choose another place") from None
    finally:
        for q in reversed(created):
            try:
                q.rmdir()
            except OSError:
                pass


def check_out_file(path: str | os.PathLike, option: str = "--out") -> Path:
    """Fail before any work when the output file ``path`` could not be written (a folder, an unwritable place)."""
    import stat

    p = Path(path)
    st = _stat(p, option)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{option} {p}: is a folder; pass a file name")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{option} {p}: is not a regular file; pass a file name")
    if not p.name or p.name in (".", ".."):
        raise UsageError(f"{option} {p}: pass a file name")
    _check_writable_ancestor(p, p.parent, option, "pass a file name in a folder")
    _probe_write(p, p.parent, option)
    return p
