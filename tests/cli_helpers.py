"""Test helpers shared by several modules: the CLI run in-process, and an alarm against hangs."""

from __future__ import annotations

import contextlib
import signal
import sys

import pytest


def run_cli_in_process(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `highlighter ARGS` run in this process (no interpreter start-up)."""
    from highlighter.cli import common
    from highlighter.cli.main import main

    monkeypatch.setattr(sys, "argv", ["highlighter", *map(str, args)])
    monkeypatch.setenv("COLUMNS", "200")  # tables whole, as a wide terminal shows them
    monkeypatch.setattr(common.state, "quiet", False)
    with pytest.raises(SystemExit) as exc:
        main()
        raise SystemExit(0)
    cap = capsys.readouterr()
    return int(exc.value.code or 0), cap.out, cap.err


@contextlib.contextmanager
def alarm(seconds: int, error: type[BaseException] = TimeoutError):
    """Raise ``error`` when the body runs longer than ``seconds`` (e.g. blocked opening a FIFO),
    so a hang fails the test instead of the whole suite."""
    def fire(*_):
        raise error(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
