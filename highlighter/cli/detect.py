"""`highlighter detect VIDEO_OR_DIR... -o OUT`: a thin layer over `highlighter.api.detect_many`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from highlighter.cli import common
from highlighter.cli.options import (CROSS_CUTS, DURATION, MAX_LENGTH, MERGE_GAP, MIN_LENGTH, PAD, RAY, SMOOTH,
                                     THRESHOLD, TOP, batch_runner, method_option, select_config)
from highlighter.errors import HighlighterError, UsageError
from highlighter.outputs.writers import DEFAULT_FORMATS, FORMATS


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
    fmts = tuple(f.strip().lower() for f in value.split(",") if f.strip())
    bad = [f for f in fmts if f not in FORMATS]
    if bad or not fmts:
        raise UsageError(f"--format {value!r}: choose from {', '.join(FORMATS)} (comma-separated)")
    return fmts


def detect_cmd(
    inputs: list[Path] = typer.Argument(..., help="Video files and/or folders (searched recursively)."),
    method: str = method_option(),
    backbone: str = typer.Option("auto", "--backbone", "-b",
                                 help="'auto' (what the detector was trained on), a visual backbone, or 'visual+audio'."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Detector weights file (default: the shipped ones)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Named config of the method (rasl: 'video' = default, "
                                         "pretrains on each video; 'paper' = the paper's setup, shipped weights)."),
    out: Path = typer.Option(Path("highlights"), "--out", "-o", help="Output folder: OUT/<name>.json/.csv/.edl[.html]."),
    top: Optional[str] = TOP, threshold: Optional[float] = THRESHOLD, min_length: Optional[float] = MIN_LENGTH,
    max_length: Optional[float] = MAX_LENGTH, merge_gap: Optional[float] = MERGE_GAP, pad: Optional[float] = PAD,
    smooth: Optional[float] = SMOOTH, duration: Optional[float] = DURATION, cross_cuts: Optional[bool] = CROSS_CUTS,
    report: bool = typer.Option(False, "--report", help="Also write a self-contained HTML page per video."),
    formats: str = typer.Option(",".join(DEFAULT_FORMATS), "--format",
                                help=f"Outputs to write, comma-separated, from: {', '.join(FORMATS)} "
                                     "(editor timelines: edl, otio, fcpxml for Final Cut/Resolve, premiere .xml)."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Feature cache folder (default: user cache)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write cached features."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N."),
    no_fallback: bool = typer.Option(False, "--no-fallback",
                                     help="Fail instead of using the offline fallback when weights are missing."),
    ray: Optional[str] = RAY,
) -> None:
    """Score every clip of each video and choose highlight segments; writes JSON, CSV, EDL (and HTML)."""
    from highlighter.api import DetectConfig, detect_many
    from highlighter.cli.progress import batch_progress
    from highlighter.features.extract import default_cache_dir, discover

    # Everything cheap first (no model is loaded before this passes): options, inputs, output folders.
    fmts = parse_formats(formats)
    config = DetectConfig(method=method, backbone=backbone, weights=str(weights) if weights else None, preset=preset,
                          select=select_config(top, threshold, min_length, max_length, merge_gap, pad, smooth, duration,
                                               cross_cuts),
                          cache_dir=str(cache_dir) if cache_dir else None, use_cache=not no_cache, device=device,
                          fallback=not no_fallback)
    common.check_out_dir(out, "--out")
    if config.use_cache:
        common.check_out_dir(cache_dir or default_cache_dir(), "--cache-dir" if cache_dir else "feature cache")
    discover(inputs)  # a missing input: one line, before the models load (detect_many lists the videos again)
    runner = batch_runner(ray)  # --ray without ray installed: one usage line, before any work

    def done(oc) -> None:
        if oc.status == "done" and not common.state.quiet:
            common.show(segments_table(oc.result))
            common.info("wrote " + ", ".join(str(p) for p in oc.outputs.values()))

    with batch_progress() as bars:
        outcomes = detect_many(inputs, config, out, fmts, report, log=common.warn, progress=bars, on_done=done,
                               runner=runner)
    failed = [o for o in outcomes if o.status == "failed"]
    if common.state.quiet:  # only results (the files written, one per line, for scripts) and errors
        for o in outcomes:
            for p in o.outputs.values():
                common.out(str(p))
    else:
        common.out(f"detected {len(outcomes) - len(failed)} of {len(outcomes)} video(s), failed {len(failed)}")
    for o in failed:
        common.error_line(o.message if str(o.source) in o.message else f"{o.source}: {o.message}")
    if failed:
        raise HighlighterError(f"{len(failed)} of {len(outcomes)} video(s) failed; see the lines above")
