"""Progress on stderr for the commands: bars on a terminal, one line per event otherwise.

Why here: `extract-features` and `detect` show the same per-video bars, and every command
that may download a checkpoint shows the same download progress; the layers below only
call back (`features.extract.Progress`, `features.weights.DownloadReport`) and draw nothing.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from highlighter.cli import common
from highlighter.features.extract import Progress
from highlighter.features.weights import DownloadReport, reporting_downloads


class RichProgress(Progress):
    """Overall bar (videos) + per-video bar (clips x modalities) + download bars, on stderr."""

    def __init__(self) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RP, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.bars = RP(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), TimeRemainingColumn(), console=common.err_console, transient=True)
        self.overall = None
        self.video = None
        self.downloads: dict[str, int] = {}  # label -> task

    def __enter__(self) -> "RichProgress":
        self.bars.start()
        return self

    def __exit__(self, *exc) -> None:
        self.bars.stop()

    def batch_start(self, total: int) -> None:
        self.overall = self.bars.add_task("videos", total=total)

    def video_start(self, path: Path, total: int) -> None:
        if self.video is not None:
            self.bars.remove_task(self.video)
        self.video = self.bars.add_task(f"  {common.escape(path.name[:40])} (clips)", total=max(total, 1))

    def video_advance(self, n: int) -> None:
        if self.video is not None:
            self.bars.advance(self.video, n)

    def video_end(self, path: Path, status: str) -> None:
        if self.overall is not None:
            self.bars.advance(self.overall, 1)
        if status == "failed":
            self.bars.console.print(f"[red]failed[/red] {common.escape(str(path))}", highlight=False)

    def download(self, label: str, done: int, total: int | None) -> None:
        """A `features.weights.DownloadReport`: one more bar (in bytes) while a checkpoint downloads; one
        live display only, so it joins these bars instead of starting its own."""
        if label not in self.downloads:
            self.downloads[label] = self.bars.add_task(f"  downloading {common.escape(label)}", total=total)
        self.bars.update(self.downloads[label], completed=done, total=total)


class LineProgress(Progress):
    """One line per finished video (and per download started) when stderr is not a terminal (logs, CI)."""

    def __init__(self) -> None:
        self.downloading: set[str] = set()

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def video_end(self, path: Path, status: str) -> None:
        if status != "skipped":
            common.info(f"{status}: {path}")

    def download(self, label: str, done: int, total: int | None) -> None:
        if label not in self.downloading:
            self.downloading.add(label)
            size = f" ({total / 1e6:.1f} MB)" if total else ""
            common.info(f"downloading {label}{size} ...")


class DownloadBar:
    """A download bar on stderr for `weights fetch` (a `features.weights.DownloadReport`)."""

    def __init__(self) -> None:
        from rich.progress import (BarColumn, DownloadColumn, Progress as RP, TextColumn, TimeRemainingColumn,
                                   TransferSpeedColumn)

        self.bars = RP(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                       TimeRemainingColumn(), console=common.err_console, transient=True)
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> "DownloadBar":
        self.bars.start()
        return self

    def __exit__(self, *exc) -> None:
        self.bars.stop()

    def __call__(self, label: str, done: int, total: int | None) -> None:
        if label not in self.tasks:
            self.tasks[label] = self.bars.add_task(common.escape(label), total=total)
        self.bars.update(self.tasks[label], completed=done, total=total)


@contextmanager
def batch_progress() -> Iterator[RichProgress | LineProgress]:
    """Per-video progress for one run (bars on a terminal, lines otherwise); a checkpoint download
    started inside it (a backbone's weights, on first use) reports there too."""
    sink = RichProgress() if common.progress_enabled() else LineProgress()
    with sink, reporting_downloads(sink.download):
        yield sink


@contextmanager
def download_progress() -> Iterator[DownloadReport]:
    """Download progress for one command (a bar on a terminal, one line otherwise), also used by any
    download started inside the block without its own reporter."""
    if common.progress_enabled():
        with DownloadBar() as bar, reporting_downloads(bar):
            yield bar
    else:
        report = LineProgress().download
        with reporting_downloads(report):
            yield report


@contextmanager
def cut_progress(label: str) -> Iterator[Callable[[float, float], None] | None]:
    """A bar in seconds of reel written while ffmpeg cuts (`trim`'s ``progress(done, total)``);
    None when progress is off (--quiet, or stderr is not a terminal)."""
    if not common.progress_enabled():
        yield None
        return
    from rich.progress import BarColumn, Progress as RP, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bars = RP(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[seconds]}"),
              TimeElapsedColumn(), TimeRemainingColumn(), console=common.err_console, transient=True)
    task = bars.add_task(common.escape(label), total=None, seconds="")
    with bars:
        yield lambda done, total: bars.update(task, completed=done, total=total, seconds=f"{done:.1f}/{total:.1f} s")
