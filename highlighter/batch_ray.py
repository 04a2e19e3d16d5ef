"""Run a batch on a Ray cluster: the scale-out twin of `batch.run_batch` (`--ray`).

Why a twin and not a second loop: each Ray task runs `batch.run_batch` on its one item with
the very work object a local run calls (`features.extract.ExtractJob`, `api.DetectJob`), so
failure isolation, `Skip`, the one-line messages, the cache and skip-if-done rules and the
atomic writes are the local ones. What this adds is only the distribution: one task per item
(``num_cpus=1``, torch on one thread), the work shipped once (`ray.put`) and prepared (models
loaded) once per worker process, each small `ItemResult` handed to ``on_done`` in the driver
as it finishes, Ctrl-C cancelling what has not finished (finished outputs stay: a rerun skips them).

Ray stays optional: it is imported only when a `RayRunner` is made, and a missing install is
one usage error. On a cluster of several machines the inputs, the output folder and the
feature cache must be on storage every node sees at the same path, with highlighter installed
on every node.
"""

from __future__ import annotations

import logging
import sys
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from highlighter.batch import FAILED, ItemResult, Job, run_batch
from highlighter.errors import HighlighterError, HighlighterWarning, InputError, UsageError

log = logging.getLogger(__name__)

RAY_MISSING = "ray is not installed: pip install 'highlighter[ray]'"
LOCAL = "local"  # `--ray local`: start a cluster on this machine (Ray's own word for it)
THREADS = 1  # torch intra-op threads per task: one task per CPU, so one thread each
# A cluster we start: no dashboard, and no metrics exporter (without ray[default] its agent is
# absent and every Ray process prints that it cannot reach it).
LOCAL_INIT: dict[str, Any] = {"include_dashboard": False, "_system_config": {"enable_metrics_collection": False}}


def import_ray() -> Any:
    """The ``ray`` module, or one `UsageError` line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(RAY_MISSING) from None
    return ray


class RayRunner:
    """A `batch.run_batch` with the same call and results, running one Ray task per job.

    ``address``: ``local`` starts a new cluster on this machine, anything else is passed to
    ``ray.init`` (``auto``, ``HEAD:6379``). When this process is already
    connected (``ray.init`` called before), that connection is used and left open.
    """

    def __init__(self, address: str = LOCAL, **init: Any) -> None:
        if not address or not address.strip():
            raise UsageError("--ray: give 'local', 'auto' or a cluster's address (HEAD:6379)")
        self.address = address.strip()
        self.init = init  # extra ray.init arguments for a cluster we start (tests: num_cpus)
        self.ray = import_ray()

    def __call__(self, jobs: Iterable[Job], work: Callable[[Job], Any], *,
                 on_done: Callable[[ItemResult], None] | None = None,
                 result_type: type[ItemResult] = ItemResult) -> list[ItemResult]:
        """Like `run_batch`, but items run in parallel and ``on_done`` sees them as they finish;
        the list returned is in input order. An error preparing the work (a missing checkpoint)
        fails the run as it does locally; a worker that dies fails its item only."""
        jobs = list(jobs)
        if not jobs:
            return []
        ray = self.ray
        with self._connected():
            task = ray.remote(num_cpus=1, max_retries=0)(run_item)
            boxed = [ray.put(work)]  # in a list: Ray hands the task the reference, not the value
            level = logging.getLogger("highlighter").getEffectiveLevel()
            pending = {task.remote(boxed, job, result_type, level): i for i, job in enumerate(jobs)}
            seen: set[tuple] = set()
            results: list[ItemResult | None] = [None] * len(jobs)
            try:
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=1)
                    for ref in ready:
                        i = pending.pop(ref)
                        res, notes = self._result(ref, jobs[i], result_type)
                        replay([n for n in notes if n not in seen], getattr(work, "log", None))
                        seen.update(notes)
                        results[i] = res
                        if on_done is not None:
                            on_done(res)
            except BaseException:
                self._cancel(list(pending))
                raise
        return [r for r in results if r is not None]

    def _result(self, ref: Any, job: Job, result_type: type[ItemResult]) -> tuple[ItemResult, list[tuple]]:
        """The task's `ItemResult` and notes; a crashed worker is that item's failure; an error raised
        outside `run_batch` (preparing the work) is re-raised here, as a local run raises it."""
        ray = self.ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, BaseException):
                raise cause from None
            raise HighlighterError(f"{job.source}: Ray task failed: {one_line(exc)}") from None
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.OutOfMemoryError,
                ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError) as exc:
            log.debug("%s: worker lost", job.source, exc_info=exc)
            return result_type(job.source, FAILED, output=job.output,
                               message=f"{job.source}: the Ray worker running it died ({type(exc).__name__}); "
                                       "check the file and the worker's memory, then re-run (done files are skipped)"), []

    def _cancel(self, refs: list[Any]) -> None:
        """Cancel unfinished tasks with KeyboardInterrupt (not a kill), so their temp files are removed."""
        for ref in refs:
            self.ray.cancel(ref)
        if refs:
            self.ray.wait(refs, num_returns=len(refs), timeout=10)

    @contextmanager
    def _connected(self) -> Iterator[None]:
        ray = self.ray
        if ray.is_initialized():
            yield
            return
        local = self.address == LOCAL
        check_reachable(self.address)
        try:
            with warnings.catch_warnings():  # Ray's "Tip: in future versions..." about GPU env vars
                warnings.simplefilter("ignore", FutureWarning)
                ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=True,
                         **({**LOCAL_INIT, **self.init} if local else {}))
        except (ConnectionError, RuntimeError, ValueError, ImportError) as exc:  # ImportError: ray:// needs ray[client]
            raise InputError(f"--ray {self.address}: cannot reach a Ray cluster ({one_line(exc)}); start one with "
                             "`ray start --head`, or use --ray local") from None
        try:
            yield
        finally:
            ray.shutdown()


def check_reachable(address: str) -> None:
    """One line when a ``HOST:PORT`` / ``ray://HOST:PORT`` address does not answer: ``ray.init``
    would retry it for minutes, printing a warning every few seconds."""
    import socket

    hostport = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        return  # local, auto, or a form Ray resolves itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise InputError(f"--ray {address}: no Ray cluster answers there ({exc.strerror or exc}); start one with "
                         "`ray start --head`, check the address, or use --ray local") from None


# --------------------------------------------------------------------------- worker side
_PREPARED: dict[str, Any] = {}  # per worker process: the one batch's work, models loaded
_NOTES: list[tuple] = []  # what the running task said: ("log", line) / ("warning", line) / (logger, level, line)


def run_item(boxed: list[Any], job: Job, result_type: type[ItemResult], level: int) -> tuple[ItemResult, list[tuple]]:
    """One Ray task: `run_batch` on one job with the batch's work (prepared once per process), and
    what it said on the way (its ``log`` lines, `HighlighterWarning`s, log records), for the driver
    to show as a local run would instead of each worker printing its own copy."""
    _NOTES.clear()
    with noting(level):
        result = run_batch([job], prepared(boxed[0]), result_type=result_type)[0]
    return result, list(dict.fromkeys(_NOTES))


def prepared(ref: Any) -> Callable[[Job], Any]:
    """The work behind ``ref``, its ``prepare()`` (loading models) run once in this process."""
    key = ref.hex()
    if key not in _PREPARED:
        import ray

        work = ray.get(ref)
        if getattr(work, "log", None) is not None:
            work.log = note  # before prepare: the models keep the ``log`` they are given
        prepare = getattr(work, "prepare", None)
        if prepare is not None:
            prepare()  # raises (missing weights): the driver re-raises it, as a local run would
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(THREADS)
        _PREPARED.clear()  # a worker serves one batch at a time: drop the previous one's models
        _PREPARED[key] = work
    return _PREPARED[key]


def note(line: str) -> None:
    """The work's ``log`` inside a worker: kept for the driver's ``log``."""
    _NOTES.append(("log", str(line)))


class _Notes(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        _NOTES.append((record.name, record.levelno, record.getMessage()))


@contextmanager
def noting(level: int) -> Iterator[None]:
    """Keep the task's `HighlighterWarning`s and ``highlighter`` log records (at the driver's level)."""
    logger = logging.getLogger("highlighter")
    handler, old = _Notes(level), (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", HighlighterWarning)
            yield
        for w in caught:
            if issubclass(w.category, HighlighterWarning):
                _NOTES.append(("warning", str(w.message)))
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old[0])
        logger.propagate = old[1]


def replay(notes: list[tuple], log: Callable[[str], None] | None) -> None:
    """Show a task's notes in the driver: ``log`` lines through the driver's ``log``, warnings as
    `HighlighterWarning`s, records through the same loggers (so --quiet and -v apply as locally)."""
    for n in notes:
        if n[0] == "log":
            if log is not None:
                log(n[1])
        elif n[0] == "warning":
            warnings.warn(n[1], HighlighterWarning, stacklevel=3)
        else:
            logging.getLogger(n[0]).log(n[1], "%s", n[2])


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
