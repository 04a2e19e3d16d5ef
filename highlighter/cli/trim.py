"""`highlighter trim VIDEO [--from detect.json] -o reel.mp4`: a thin layer over `outputs.trim.trim`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from highlighter.cli import common
from highlighter.cli.options import (MAX_LENGTH, MERGE_GAP, METHODS_HINT, MIN_LENGTH, PAD, SMOOTH, THRESHOLD, TOP,
                                     method_option, select_config)
from highlighter.errors import InputError


DURATION_TOLERANCE = 0.1  # seconds between the recorded and the probed duration


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


def trim_cmd(
    video: Path = typer.Argument(..., help="The video to cut."),
    from_json: Optional[Path] = typer.Option(
        None, "--from", help="Use segments from a `highlighter detect` JSON of this video (same duration, and same "
        "size, or same name when the JSON records no size)."),
    output: Optional[Path] = typer.Option(None, "--out", "-o", help="Reel file (default: <video>-highlights.mp4)."),
    top: Optional[str] = TOP, threshold: Optional[float] = THRESHOLD, min_length: Optional[float] = MIN_LENGTH,
    max_length: Optional[float] = MAX_LENGTH, merge_gap: Optional[float] = MERGE_GAP, pad: Optional[float] = PAD,
    smooth: Optional[float] = SMOOTH,
    order: str = typer.Option("time", "--order", help="time (as in the video) or score (best first)."),
    copy: bool = typer.Option(False, "--copy", help="Fast stream copy; cuts snap back to keyframes."),
    split: bool = typer.Option(False, "--split", help="One file per segment (<out>-001.mp4, ...) instead of a reel."),
    crossfade: float = typer.Option(0.0, "--crossfade", help="Cross-fade seconds between segments (re-encodes)."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files."),
    method: str = method_option(f"Detector, when running detect first ({METHODS_HINT})."),
    backbone: str = typer.Option("auto", "--backbone", "-b", help="Backbone, when running detect first."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Detector weights, when running detect first."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Feature cache folder."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N."),
    no_fallback: bool = typer.Option(False, "--no-fallback", help="Fail instead of the offline fallback."),
) -> None:
    """Cut the highlight segments out of VIDEO and join them (runs detect first without --from)."""
    from highlighter.api import DetectConfig, detect
    from highlighter.cli.progress import download_progress
    from highlighter.outputs.segments import select_segments
    from highlighter.outputs.trim import TrimConfig, check_container, check_outputs, trim

    cfg = TrimConfig(order=order, copy=copy, split=split, crossfade=crossfade, force=force)  # options first
    sel_given = any(v is not None for v in (top, threshold, min_length, max_length, merge_gap, pad, smooth))
    output = output or Path(f"{video.stem}-highlights.mp4")
    if not split:  # fail on a bad -o before spending minutes on detect (split names depend on the count)
        check_outputs(video, [output], force)
    check_container(output)
    if from_json is not None:
        result = result_for(video, from_json)
        segments = result.segments
        if sel_given:  # re-select from the stored per-clip scores
            sel = select_config(top, threshold, min_length, max_length, merge_gap, pad, smooth, base=result.selection)
            segments = select_segments(result.starts, result.ends, result.scores, sel, result.video.duration)
        if not segments:
            raise InputError(f"{from_json}: no segment to cut; pass --top or --threshold to re-select "
                             "from its clip scores")
    else:
        sel = select_config(top, threshold, min_length, max_length, merge_gap, pad, smooth)
        config = DetectConfig(method=method, backbone=backbone, weights=str(weights) if weights else None, select=sel,
                              cache_dir=str(cache_dir) if cache_dir else None, device=device, fallback=not no_fallback)
        common.info(f"detecting highlights in {video} ...")
        with download_progress():  # a backbone's checkpoint, fetched on first use
            result = detect(video, config, log=common.warn)
        segments = result.segments
    res = trim(video, segments, output, cfg, log=common.info)
    total = sum(g.duration for g in res.segments)
    common.out(f"wrote {len(res.outputs)} file(s): {', '.join(str(p) for p in res.outputs)} — "
               f"{len(res.segments)} segment(s), {res.expected_duration:.1f} s of {total:.1f} s selected "
               f"({res.mode}, {res.seconds:.1f} s)")
