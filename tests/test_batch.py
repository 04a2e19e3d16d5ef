"""`highlighter.batch.run_batch`: the loop behind `detect_many` and `extract_many`.

The work functions here write real files through `atomic.py`, so "nothing half-written
after a failure or Ctrl-C" is checked on disk, not assumed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from highlighter.atomic import atomic_path
from highlighter.batch import DONE, FAILED, SKIPPED, BatchReport, ItemResult, Job, Skip, run_batch
from highlighter.errors import InputError


def write_upper(job: Job) -> int:
    """Read the source, write it upper-cased to the output; the number of bytes written."""
    text = job.source.read_text()  # a missing or unreadable source raises OSError
    if text.startswith("bad"):
        raise InputError(f"{job.source}: says bad; replace it")
    if text.startswith("same"):
        raise Skip("already upper-case")
    if text.startswith("bug"):
        raise ZeroDivisionError("division by zero")
    with atomic_path(job.output) as tmp:
        tmp.write_text(text.upper())
    return len(text)


def jobs_for(tmp_path: Path, texts: dict[str, str | None]) -> list[Job]:
    jobs = []
    for name, text in texts.items():
        src = tmp_path / "in" / name
        src.parent.mkdir(exist_ok=True)
        if text is not None:
            src.write_text(text)
        jobs.append(Job(src, tmp_path / "out" / name))
    return jobs


def test_each_item_fails_alone_with_one_line_naming_its_file(tmp_path):
    jobs = jobs_for(tmp_path, {"a": "ok", "b": "bad", "c": None, "d": "same", "e": "bug", "f": "fine"})
    seen: list[tuple[str, str]] = []
    results = run_batch(jobs, write_upper, on_done=lambda r: seen.append((r.source.name, r.status)))
    assert [(r.source.name, r.status) for r in results] == seen == [
        ("a", DONE), ("b", FAILED), ("c", FAILED), ("d", SKIPPED), ("e", FAILED), ("f", DONE)]
    a, b, c, d, e, f = results
    assert a.value == 2 and a.ok and a.output == jobs[0].output and a.seconds >= 0
    assert b.message == f"{jobs[1].source}: says bad; replace it"  # our errors: as raised
    assert c.message.startswith(f"{jobs[2].source}: No such file or directory") and not c.ok  # OS errors: file + why
    assert d.message == "already upper-case" and d.ok and d.value is None
    assert e.message == f"{jobs[4].source}: ZeroDivisionError: division by zero"  # anything else: its type
    assert all("\n" not in r.message for r in results)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a", "f"]  # no temp file of the failures
    assert (tmp_path / "out" / "f").read_text() == "FINE"


def test_ctrl_c_stops_the_batch_with_nothing_half_written(tmp_path):
    jobs = jobs_for(tmp_path, {"a": "one", "b": "two", "c": "three"})
    seen: list[str] = []

    def work(job: Job) -> int:
        if job.source.name == "b":
            with atomic_path(job.output) as tmp:
                tmp.write_text("half")
                raise KeyboardInterrupt
        return write_upper(job)

    with pytest.raises(KeyboardInterrupt):
        run_batch(jobs, work, on_done=lambda r: seen.append(r.source.name))
    assert seen == ["a"]  # the interrupted item is not recorded as a failure; "c" never ran
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a"]


def test_result_type_and_report(tmp_path):
    class Counted(ItemResult[int]):
        @property
        def double(self) -> int:
            return 2 * (self.value or 0)

    jobs = jobs_for(tmp_path, {"a": "ab", "b": "bad", "c": "same"})
    report = BatchReport(run_batch(jobs, write_upper, result_type=Counted), 1.5)
    assert all(isinstance(r, Counted) for r in report) and len(report) == 3
    assert report.done[0].double == 4 and [r.source.name for r in report.failed] == ["b"]
    assert [r.source.name for r in report.skipped] == ["c"] and not report.ok
    assert BatchReport(report.done).ok
