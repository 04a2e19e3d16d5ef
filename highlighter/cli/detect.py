"""`highlighter detect VIDEO_OR_DIR... -o OUT`: a thin layer over `highlighter.api.detect_many`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from highlighter.cli import common
from highlighter.cli.main import app
from highlighter.errors import HighlighterError, UsageError
from highlighter.outputs.segments import SelectConfig

# Segment options shared with `trim` (defaults None so `trim --from` can tell "not given").
TOP = typer.Option(None, "--top", help="Share of the duration ('10%') or number of segments ('5'). Default 10%.")
THRESHOLD = typer.Option(None, "--threshold", help="Keep clips whose normalised score (0..1 per video) is >= this.")
MIN_LENGTH = typer.Option(None, "--min-length", help="Shortest segment in seconds (shorter ones grow). Default 0.")
MAX_LENGTH = typer.Option(None, "--max-length", help="Longest segment in seconds (longer ones keep their best part).")
MERGE_GAP = typer.Option(None, "--merge-gap", help="Merge segments closer than this many seconds. Default 0.")
PAD = typer.Option(None, "--pad", help="Seconds of context added before and after each segment. Default 0.")
SMOOTH = typer.Option(None, "--smooth", help="Moving-average window over the score curve, seconds. Default 6.")


def notice(msg: str) -> None:
    """A warning kept on one line however narrow the terminal (the offline-fallback notice)."""
    common.warn(msg)


def select_config(top, threshold, min_length, max_length, merge_gap, pad, smooth,
                  base: SelectConfig | None = None) -> SelectConfig:
    """A SelectConfig from CLI values; unset ones come from ``base`` (or the defaults)."""
    b = base or SelectConfig()
    top_value = top if top is not None else (None if threshold is not None else b.top)
    return SelectConfig(
        top=top_value, threshold=threshold if threshold is not None else b.threshold,
        min_length=min_length if min_length is not None else b.min_length,
        max_length=max_length if max_length is not None else b.max_length,
        merge_gap=merge_gap if merge_gap is not None else b.merge_gap,
        pad=pad if pad is not None else b.pad, smooth=smooth if smooth is not None else b.smooth)


def segments_table(result, limit: int = 10):
    from rich.table import Table

    from highlighter.outputs.writers import clock

    t = Table(title=common.plain(f"{result.video.name}: top segments ({result.method.name})"), title_justify="left")
    for col in ("rank", "start", "end", "seconds", "score"):
        t.add_column(col, justify="right")
    for g in sorted(result.segments, key=lambda g: g.rank)[:limit]:
        t.add_row(str(g.rank), clock(g.start), clock(g.end), f"{g.duration:.1f}", f"{g.score:.3g}")
    if len(result.segments) > limit:
        t.caption = common.plain(f"{len(result.segments) - limit} more in the JSON")
    return t


def parse_formats(value: str) -> tuple[str, ...]:
    from highlighter.outputs.writers import FORMATS

    fmts = tuple(f.strip().lower() for f in value.split(",") if f.strip())
    bad = [f for f in fmts if f not in FORMATS]
    if bad or not fmts:
        raise UsageError(f"--format {value!r}: choose from {', '.join(FORMATS)} (comma-separated)")
    return fmts


@app.command("detect")
def detect_cmd(
    inputs: list[Path] = typer.Argument(..., help="Video files and/or folders (searched recursively)."),
    method: str = typer.Option("rasl", "--method", "-m", help="Detector (see `highlighter info`)."),
    backbone: str = typer.Option("auto", "--backbone", "-b",
                                 help="'auto' (what the detector was trained on), a visual backbone, or 'visual+audio'."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Detector weights file (default: the shipped ones)."),
    out: Path = typer.Option(Path("highlights"), "--out", "-o", help="Output folder: OUT/<name>.json/.csv/.edl[.html]."),
    top: Optional[str] = TOP, threshold: Optional[float] = THRESHOLD, min_length: Optional[float] = MIN_LENGTH,
    max_length: Optional[float] = MAX_LENGTH, merge_gap: Optional[float] = MERGE_GAP, pad: Optional[float] = PAD,
    smooth: Optional[float] = SMOOTH,
    report: bool = typer.Option(False, "--report", help="Also write a self-contained HTML page per video."),
    formats: str = typer.Option("json,csv,edl", "--format", help="Outputs to write: json,csv,edl."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Feature cache folder (default: user cache)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write cached features."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N."),
    no_fallback: bool = typer.Option(False, "--no-fallback",
                                     help="Fail instead of using the offline fallback when weights are missing."),
) -> None:
    """Score every clip of each video and choose highlight segments; writes JSON, CSV, EDL (and HTML)."""
    from highlighter.api import DetectConfig, detect_many
    from highlighter.cli.extract import LineProgress, RichProgress
    from highlighter.features.extract import default_cache_dir, discover

    # Everything cheap first (no model is loaded before this passes): options, inputs, output folders.
    fmts = parse_formats(formats)
    config = DetectConfig(method=method, backbone=backbone, weights=str(weights) if weights else None,
                          select=select_config(top, threshold, min_length, max_length, merge_gap, pad, smooth),
                          cache_dir=str(cache_dir) if cache_dir else None, use_cache=not no_cache, device=device,
                          fallback=not no_fallback)
    common.check_out_dir(out, "--out")
    if config.use_cache:
        common.check_out_dir(cache_dir or default_cache_dir(), "--cache-dir" if cache_dir else "feature cache")
    discover(inputs)  # a missing input: one line, before the models load (detect_many lists the videos again)

    def done(oc) -> None:
        if oc.status == "done" and not common.state.quiet:
            common.console.print(segments_table(oc.result))
            common.info("wrote " + ", ".join(str(p) for p in oc.outputs.values()))

    if common.progress_enabled():
        with RichProgress() as bars:
            outcomes = detect_many(inputs, config, out, fmts, report, log=notice, progress=bars, on_done=done)
    else:
        outcomes = detect_many(inputs, config, out, fmts, report, log=notice, progress=LineProgress(),
                               on_done=done)
    failed = [o for o in outcomes if o.status == "failed"]
    common.out(f"detected {len(outcomes) - len(failed)} of {len(outcomes)} video(s), failed {len(failed)}")
    for o in failed:
        common.error_line(o.message if str(o.source) in o.message else f"{o.source}: {o.message}")
    if failed:
        raise HighlighterError(f"{len(failed)} of {len(outcomes)} video(s) failed; see the lines above")
