"""`highlighter.interrupts`: a signal's action waits for the end of a `held` block (see the SIGTERM trim tests)."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from highlighter import interrupts


class Stop(Exception):
    pass


def _stop() -> None:
    raise Stop


@pytest.fixture
def sigterm_delivers():
    previous = signal.signal(signal.SIGTERM, lambda _s, _f: interrupts.deliver(_stop))
    yield
    signal.signal(signal.SIGTERM, previous)


def test_signal_inside_held_acts_at_its_end(sigterm_delivers):
    reached = []
    with pytest.raises(Stop):
        with interrupts.held():
            with interrupts.held():  # nested: only the outermost end delivers
                os.kill(os.getpid(), signal.SIGTERM)
                reached.append("inner")
            reached.append("outer")
    assert reached == ["inner", "outer"]
    with interrupts.held():  # nothing left pending
        pass


def test_signal_outside_held_acts_at_once(sigterm_delivers):
    with pytest.raises(Stop):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs at the next bytecode boundary
            pass


def test_held_outside_the_main_thread_holds_nothing():
    got = []

    def work():
        with interrupts.held():
            try:
                interrupts.deliver(_stop)
            except Stop:
                got.append("at once")

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert got == ["at once"]
