"""Shared CLI state: consoles, verbosity, and one-line error reporting."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape

console = Console()  # results (tables) go to stdout
err_console = Console(stderr=True)  # progress, warnings, errors go to stderr


@dataclass
class State:
    verbose: int = 0
    quiet: bool = False
    debug: bool = False


state = State()
log = logging.getLogger("highlighter")


def info(msg: str) -> None:
    """A status line on stderr, hidden by --quiet."""
    if not state.quiet:
        err_console.print(msg, highlight=False)


def warn(msg: str) -> None:
    """A warning line on stderr (shown even with --quiet)."""
    err_console.print(f"[yellow]warning:[/yellow] {msg}", highlight=False)


def error_line(msg: str) -> None:
    # escape: a path or id like "[x]" is text, not rich markup
    err_console.print(f"[bold red]error:[/bold red] {escape(msg)}", highlight=False, soft_wrap=True)


def progress_enabled() -> bool:
    return not state.quiet and err_console.is_terminal
