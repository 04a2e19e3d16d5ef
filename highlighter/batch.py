"""The one batch runner behind every "many files" command (`detect`, `extract-features`).

Why one: a batch needs the same things whatever it does per file — run the work on each
item in order, isolate a failing item (one line that names the file; the rest go on),
time each item, report each as it finishes, and stop at Ctrl-C without calling the
interrupted file a failure. Two copies of that loop had already drifted apart.

Plumbing at the package root (imports only `errors`), so any stage may use it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Generic, Iterable, Iterator, TypeVar

from highlighter.errors import HighlighterError

log = logging.getLogger(__name__)

DONE, SKIPPED, FAILED = "done", "skipped", "failed"

V = TypeVar("V")


class Skip(Exception):
    """Raised by a batch's work function: this item needs no work (its message says why)."""


@dataclass(frozen=True)
class Job:
    """One input of a batch and where its output goes (a file, or a stem for several files)."""

    source: Path
    output: Path | None = None


@dataclass
class ItemResult(Generic[V]):
    """What became of one item: ``done`` with the work's ``value``, ``skipped``, or ``failed``."""

    source: Path
    status: str  # DONE | SKIPPED | FAILED
    value: V | None = None
    message: str = ""  # failed: the one-line error (names the file); skipped: why
    seconds: float = 0.0
    output: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status != FAILED


@dataclass
class BatchReport(Generic[V]):
    """Every item's result, in input order, and the wall time of the whole batch."""

    results: list[ItemResult[V]] = field(default_factory=list)
    seconds: float = 0.0

    def _with(self, status: str) -> list[ItemResult[V]]:
        return [r for r in self.results if r.status == status]

    @property
    def done(self) -> list[ItemResult[V]]:
        return self._with(DONE)

    @property
    def skipped(self) -> list[ItemResult[V]]:
        return self._with(SKIPPED)

    @property
    def failed(self) -> list[ItemResult[V]]:
        return self._with(FAILED)

    @property
    def ok(self) -> bool:
        return not self.failed

    def __iter__(self) -> Iterator[ItemResult[V]]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)


def failure_line(source: Path, exc: Exception) -> str:
    """One line for a failed item: our errors already say what and what to do; an OS error
    gets its file and reason; anything else its type (the traceback goes to the debug log)."""
    if isinstance(exc, HighlighterError):
        return str(exc)
    log.debug("%s failed", source, exc_info=exc)
    if isinstance(exc, OSError):  # e.g. an output folder that became unwritable
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{source}: {exc.strerror or exc}{where}"
    return f"{source}: {type(exc).__name__}: {exc}"


def run_batch(jobs: Iterable[Job], work: Callable[[Job], V], *,
              on_done: Callable[[ItemResult[V]], None] | None = None,
              result_type: type[ItemResult] = ItemResult) -> list[ItemResult[V]]:
    """Run ``work`` on each job in order; one ``result_type`` per job.

    An ``Exception`` from one job (a corrupt file, a full disk, a backbone crash) becomes
    that job's ``failed`` result and the next job runs; `Skip` makes it ``skipped``.
    ``KeyboardInterrupt`` / ``SystemExit`` (Ctrl-C, SIGTERM) are not a file's fault: they
    propagate at once, so the batch stops with the finished outputs in place (writes are
    atomic) and nothing recorded for the interrupted job. ``on_done`` sees each result as
    it is made (progress bars, printing).
    """
    results: list[ItemResult[V]] = []
    for job in jobs:
        t = time.perf_counter()
        try:
            value = work(job)
            res = result_type(job.source, DONE, value, output=job.output)
        except Skip as skip:
            res = result_type(job.source, SKIPPED, message=str(skip), output=job.output)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
            res = result_type(job.source, FAILED, message=failure_line(job.source, exc), output=job.output)
        res.seconds = time.perf_counter() - t
        results.append(res)
        if on_done is not None:
            on_done(res)
    return results
