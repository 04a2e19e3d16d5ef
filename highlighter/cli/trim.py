"""`highlighter trim VIDEO_OR_DIR... [--from detect.json|DIR] [-o reel.mp4|DIR] [--combine]`:
a thin layer over `outputs.trim`.

One video given as a file makes one reel (``-o`` a file). Several videos, or a folder, make
one reel per video (``-o`` a folder; `batch.run_batch` isolates a failing video), or with
``--combine`` one reel across them with a chapter per video (``-o`` a file). Without ``-o``
a reel is written beside its video (`default_output`), and every path written is printed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from highlighter.cli import common
from highlighter.cli.options import (CROSS_CUTS, DURATION, MAX_LENGTH, MERGE_GAP, METHODS_HINT, MIN_LENGTH, PAD, SMOOTH,
                                     THRESHOLD, TOP, method_option, seconds_parser, select_config)
from highlighter.errors import HighlighterError, InputError, UsageError

DURATION_TOLERANCE = 0.1  # seconds between the recorded and the probed duration
REEL_SUFFIX = "-highlights"
# Our own reels, found again in a folder we are asked to cut: never cut a reel into a reel of a reel.
REEL_NAME = re.compile(r"-highlights(-\d{3,})?$")


def source_problem(recorded, name: str, size: int, durations: tuple[float, float]) -> str | None:
    """Why a result's recorded source is not this video (None when it is); pure, for tests.

    The rule: the recorded duration must lie within 0.1 s of this video's (``durations`` =
    the container's and the video stream's end: detect records the shorter), and

    * with ``size_bytes`` recorded, the size must be equal (the name may differ: a renamed copy);
    * with ``size_bytes`` null, the file name must be equal too, since there is no size to go by.
    """
    lo, hi = min(durations) - DURATION_TOLERANCE, max(durations) + DURATION_TOLERANCE
    if not lo <= recorded.duration <= hi:
        return (f"it was written for a {recorded.duration:.2f}-s video ({recorded.name}), "
                f"{name} lasts {max(durations):.2f} s")
    if recorded.size_bytes is not None and recorded.size_bytes != size:
        return f"it was written for a {recorded.size_bytes}-byte file ({recorded.name}), {name} has {size} bytes"
    if recorded.size_bytes is None and recorded.name != name:
        return f"it was written for {recorded.name} (no size recorded, so the name must match)"
    return None


def result_for(video: Path, from_json: Path):
    """The detect result in ``from_json``, checked to be about ``video`` (see `source_problem`)."""
    from highlighter.io.probe import probe_video
    from highlighter.outputs.schema import load_result
    from highlighter.outputs.segments import merge_overlaps

    result = load_result(from_json)  # InputError naming from_json for anything malformed
    info = probe_video(video)  # InputError naming the video when it is missing or broken
    v = info.video
    ends = (info.duration, v.start + v.duration if v and v.duration else info.duration)
    problem = source_problem(result.video, video.name, video.stat().st_size, ends)
    if problem:
        raise InputError(f"{from_json} is not about {video}: {problem}; "
                         "pass the result of `highlighter detect` on this video")
    if result.video.name != video.name:
        common.info(f"{from_json} was written for {result.video.name}; same size and duration, using it for {video.name}")
    merged = merge_overlaps(result.segments)
    if len(merged) < len(result.segments):
        common.info(f"{from_json}: merged overlapping segments so nothing is cut twice "
            f"({len(result.segments)} -> {len(merged)} segments)")
        result.segments = merged
    return result


# --------------------------------------------------------------------------- where things go
def reel_suffix(video: Path, copy: bool) -> str:
    """.mp4, except that a stream copy keeps the video's own container (its streams fit there)."""
    from highlighter.outputs.trim import CONTAINERS

    return video.suffix.lower() if copy and video.suffix.lower() in CONTAINERS else ".mp4"


def default_output(video: Path, name: str | None = None, copy: bool = False) -> Path:
    """``<folder of video>/<name>-highlights.mp4`` (``name``: the video's stem unless given)."""
    return video.with_name(f"{name or video.stem}{REEL_SUFFIX}{reel_suffix(video, copy)}")


def combined_output(first_input: Path) -> Path:
    """``<first input>-combined-highlights.mp4`` beside the first file or folder given."""
    p = Path(os.path.abspath(first_input))
    return p.with_name(f"{p.stem if p.is_file() else p.name}-combined{REEL_SUFFIX}.mp4")


def is_reel(path: Path) -> bool:
    """A file named like one of our reels (``x-highlights.mp4``, ``x-highlights-002.mp4``)."""
    return bool(REEL_NAME.search(path.stem))


@dataclass(frozen=True)
class Item:
    """One video to cut: the source, its name under the folder it was found in, its reel."""

    video: Path
    name: Path  # as `discover` names it (no suffix; sub-folders kept)
    output: Path | None = None


def find_videos(inputs: list[Path]) -> list[Item]:
    """The videos under ``inputs`` (`discover`), minus reels we wrote found again inside folders."""
    from highlighter.features.extract import discover

    named = {Path(os.path.abspath(p)) for p in inputs if not Path(p).is_dir()}
    found = [Item(src, rel) for src, rel in discover(inputs)
             if Path(os.path.abspath(src)) in named or not is_reel(src)]
    if not found:
        raise InputError(f"no video files found in {', '.join(str(p) for p in inputs)}; pass videos or folders "
                         "that contain them")
    return found


def json_for(item: Item, from_path: Path) -> Path:
    """The detect JSON of ``item`` in the folder `highlighter detect -o` wrote (``<name>.json``)."""
    from highlighter.api import output_stem

    stem = output_stem(from_path, item.name)
    return stem.with_name(stem.name + ".json")


def check_writable(out: Path, given: bool) -> None:
    """Fail before any work when ``out`` could not be written; a default place names -o as the way out."""
    try:
        common.check_out_file(out, "--out")
    except InputError as exc:
        if given:
            raise
        raise InputError(f"{out}: cannot write the reel beside its video ({out.parent} is not writable); "
                         "pass -o to write it elsewhere") from exc


# --------------------------------------------------------------------------- what is printed
def clock(t: float) -> str:
    return f"{int(t // 60)}:{t % 60:05.2f}"


def describe(res) -> str:
    """The result line of one reel: what was written, its real length, and what copy mode did."""
    paths = ", ".join(str(p) for p in res.outputs)
    early = [c.early for c in res.cuts if c.early > 1e-3] if res.mode == "copy" else []
    how = res.mode
    if early:
        how = (f"copy: {len(early)} cut(s) start at the keyframe before their segment, up to {max(early):.2f} s "
               "early; drop --copy for frame-accurate cuts")
    length = "reel" if len(res.outputs) == 1 else "in all"
    return (f"wrote {len(res.outputs)} file(s): {paths} — {len(res.segments)} segment(s), "
            f"{res.expected_duration:.1f} s {length} of {res.selected:.1f} s selected ({how}) in {res.seconds:.1f} s")


def copy_notes(res) -> list[str]:
    """One line per stream-copied cut that does not start where its segment does: the real range."""
    return [f"{c.video.name}: segment {clock(c.segment.start)}-{clock(c.segment.end)} is cut "
            f"{clock(c.start)}-{clock(c.end)} (keyframe {c.early:.2f} s earlier)"
            for c in res.cuts if res.mode == "copy" and c.early > 1e-3]


def report(res) -> None:
    for line in copy_notes(res):
        common.info(line)
    if res.chapters:
        common.info("chapters: " + ", ".join(f"{t} at {clock(a)}" for t, a, _b in res.chapters))
    common.out(describe(res))


# --------------------------------------------------------------------------- the command
def trim_cmd(
    inputs: list[Path] = typer.Argument(..., help="Video files and/or folders (searched recursively)."),
    from_json: Optional[Path] = typer.Option(
        None, "--from", help="Segments from `highlighter detect`: its JSON for one video (same duration, and same "
        "size, or same name when the JSON records no size), or the folder detect -o wrote (<name>.json per video). "
        "Without it, detect runs first."),
    output: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Reel file for one video or --combine; a folder for several videos. Default: "
        "beside each video, <video>-highlights.mp4 (--copy keeps the video's container); with --combine, "
        "<first input>-combined-highlights.mp4 beside the first input."),
    top: Optional[str] = TOP, threshold: Optional[float] = THRESHOLD, min_length: Optional[float] = MIN_LENGTH,
    max_length: Optional[float] = MAX_LENGTH, merge_gap: Optional[float] = MERGE_GAP, pad: Optional[float] = PAD,
    smooth: Optional[float] = SMOOTH, duration: Optional[float] = DURATION, cross_cuts: Optional[bool] = CROSS_CUTS,
    order: str = typer.Option("time", "--order", help="time (as in the video) or score (best first)."),
    copy: bool = typer.Option(False, "--copy", help="Fast stream copy, not frame-accurate: each cut starts at the "
                              "keyframe at or before its segment (up to one keyframe interval early); ends are exact. "
                              "The real ranges and length are reported."),
    split: bool = typer.Option(False, "--split", help="One file per segment (<out>-001.mp4, ...) instead of a reel."),
    combine: bool = typer.Option(False, "--combine", help="One reel from all the videos, with a chapter per video "
                                 "(fitted to the first video's size and frame rate)."),
    crossfade: float = typer.Option(0.0, "--crossfade", parser=seconds_parser("--crossfade"), metavar="TIME",
                                    help="Cross-fade seconds between segments, rounded to whole frames (re-encodes)."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files."),
    method: str = method_option(f"Detector, when running detect first ({METHODS_HINT})."),
    backbone: str = typer.Option("auto", "--backbone", "-b", help="Backbone, when running detect first."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Detector weights, when running detect first."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Feature cache folder."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N."),
    no_fallback: bool = typer.Option(False, "--no-fallback", help="Fail instead of the offline fallback."),
) -> None:
    """Cut the highlight segments out of each video and join them into a reel (runs detect first without --from)."""
    from highlighter.outputs.trim import TrimConfig

    cfg = TrimConfig(order=order, copy=copy, split=split, crossfade=crossfade, force=force)  # options first
    if combine and split:
        raise UsageError("--split writes one file per segment; it cannot be combined with --combine")
    single = len(inputs) == 1 and not combine and not Path(inputs[0]).is_dir()
    items = [Item(Path(inputs[0]), Path(Path(inputs[0]).stem))] if single else find_videos(inputs)
    if from_json is not None and not from_json.is_dir() and len(items) > 1:
        raise UsageError(f"--from {from_json}: one video's result, but {len(items)} videos were given; pass the "
                         "folder `highlighter detect -o` wrote for them")
    sel_values = (top, threshold, min_length, max_length, merge_gap, pad, smooth, duration, cross_cuts)
    sel_given = any(v is not None for v in sel_values)
    select_config(*sel_values)  # a bad selection option fails now, before any video is read
    segments_of = _Segments(from_json, sel_given, sel_values,
                            method, backbone, weights, cache_dir, device, no_fallback)
    if single:
        _one_reel(items[0], output, cfg, segments_of)
    elif combine:
        _combined_reel(inputs, items, output, cfg, segments_of)
    else:
        _reel_per_video(items, output, cfg, segments_of)


class _Segments:
    """The segments to cut from one video: from its detect JSON (re-selected when selection options
    are given), or by running detect (the models load once, on the first video that needs them)."""

    def __init__(self, from_path, sel_given, sel_values, method, backbone, weights, cache_dir, device, no_fallback):
        self.from_path, self.sel_given, self.sel_values = from_path, sel_given, sel_values
        self.detect_args = (method, backbone, weights, cache_dir, device, no_fallback)
        self.pipeline = None

    def __call__(self, item: Item):
        from highlighter.outputs.segments import select_segments

        if self.from_path is not None:
            path = json_for(item, self.from_path) if self.from_path.is_dir() else self.from_path
            if self.from_path.is_dir() and not path.is_file():
                raise InputError(f"{path}: no detect result for {item.video} in {self.from_path}; run "
                                 f"`highlighter detect {item.video} -o {self.from_path}` or drop --from")
            result = result_for(item.video, path)
            segments = result.segments
            if self.sel_given:  # re-select from the stored per-clip scores
                sel = select_config(*self.sel_values, base=result.selection)
                segments = select_segments(result.starts, result.ends, result.scores, sel, result.video.duration,
                                           cuts=result.cuts)
            if not segments:
                raise InputError(f"{path}: no segment to cut; pass --top or --threshold to re-select "
                                 "from its clip scores")
            return segments
        return self._detect(item.video).segments

    def _detect(self, video: Path):
        from highlighter.api import DetectConfig, Pipeline
        from highlighter.cli.progress import download_progress

        method, backbone, weights, cache_dir, device, no_fallback = self.detect_args
        common.info(f"detecting highlights in {video} ...")
        with download_progress():  # a backbone's checkpoint, fetched on first use
            if self.pipeline is None:
                config = DetectConfig(method=method, backbone=backbone, weights=str(weights) if weights else None,
                                      select=select_config(*self.sel_values),
                                      cache_dir=str(cache_dir) if cache_dir else None, device=device,
                                      fallback=not no_fallback)
                self.pipeline = Pipeline(config, log=common.warn)
            return self.pipeline.run(video)


def _cut(video: Path, segments, out: Path, cfg):
    """One reel of one video, with a progress bar while ffmpeg works."""
    from highlighter.cli.progress import cut_progress
    from highlighter.outputs.trim import trim

    with cut_progress(f"cutting {video.name}") as bar:
        return trim(video, segments, out, cfg, log=common.info, progress=bar)


def _one_reel(item: Item, output: Path | None, cfg, segments_of: _Segments) -> None:
    from highlighter.io.probe import probe_video
    from highlighter.outputs.trim import check_container, check_outputs

    probe_video(item.video)  # a missing or broken video is named first, before where its reel would go
    out = output or default_output(item.video, copy=cfg.copy)
    check_container(out)
    if not cfg.split:  # fail on a bad -o before spending minutes on detect (split names depend on the count)
        check_outputs(item.video, [out], cfg.force)
    check_writable(out, output is not None)
    res = _cut(item.video, segments_of(item), out, cfg)
    report(res)


def _reel_per_video(items: list[Item], output: Path | None, cfg, segments_of: _Segments) -> None:
    from highlighter.api import output_stem
    from highlighter.batch import Job, run_batch
    from highlighter.outputs.trim import CONTAINERS, check_outputs

    if output is not None and (output.suffix.lower() in CONTAINERS or output.is_file()):
        raise UsageError(f"--out {output}: {len(items)} videos make {len(items)} reels; pass a folder for them, "
                         "or --combine for one reel")
    if output is not None:
        common.check_out_dir(output, "--out")
    jobs = []
    for it in items:
        stem = output_stem(output, it.name) if output is not None else it.video.with_name(it.name.name)
        jobs.append(Job(it.video, stem.with_name(f"{stem.name}{REEL_SUFFIX}{reel_suffix(it.video, cfg.copy)}")))
    if not cfg.split:
        for job in jobs:
            check_outputs(job.source, [job.output], cfg.force)
    if output is None:
        for job in jobs:
            check_writable(job.output, False)
    by_source = {it.video: it for it in items}

    def work(job: Job):
        job.output.parent.mkdir(parents=True, exist_ok=True)
        return _cut(job.source, segments_of(by_source[job.source]), job.output, cfg)

    def done(r) -> None:
        if r.status == "done":
            report(r.value)
        else:
            common.error_line(r.message if str(r.source) in r.message else f"{r.source}: {r.message}")

    results = run_batch(jobs, work, on_done=done)
    failed = [r for r in results if not r.ok]
    common.info(f"cut {len(results) - len(failed)} of {len(results)} video(s), failed {len(failed)}")  # status: not with -q
    if failed:
        raise HighlighterError(f"{len(failed)} of {len(results)} video(s) failed; see the lines above")


def _combined_reel(inputs: list[Path], items: list[Item], output: Path | None, cfg, segments_of: _Segments) -> None:
    from highlighter.batch import Job, run_batch
    from highlighter.cli.progress import cut_progress
    from highlighter.outputs.trim import check_container, check_outputs, plan_source, trim_sources

    out = output or combined_output(inputs[0])
    check_container(out)
    check_outputs([it.video for it in items], [out], cfg.force)
    check_writable(out, output is not None)
    by_source = {it.video: it for it in items}

    def work(job: Job):
        return plan_source(job.source, segments_of(by_source[job.source]), cfg.order)

    def done(r) -> None:
        if r.status != "done":
            common.error_line(r.message if str(r.source) in r.message else f"{r.source}: {r.message}")

    results = run_batch([Job(it.video) for it in items], work, on_done=done)
    sources = [r.value for r in results if r.ok]
    failed = len(results) - len(sources)
    if not sources:
        raise HighlighterError(f"none of the {len(results)} video(s) could be cut; see the lines above")
    with cut_progress(f"cutting {len(sources)} video(s)") as bar:
        res = trim_sources(sources, out, cfg, log=common.info, progress=bar)
    report(res)
    if failed:
        raise HighlighterError(f"{failed} of {len(results)} video(s) failed and are not in {out}; see the lines above")
