"""`highlighter extract-features DIR_OR_FILES... -o OUT`: a thin layer over `extract_many`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from highlighter.cli import common
from highlighter.cli.options import RAY, batch_runner
from highlighter.errors import HighlighterError, UsageError
from highlighter.features import DEFAULT_AUDIO, DEFAULT_VISUAL
from highlighter.features.extract import BatchReport, ExtractConfig, extract_many
from highlighter.features.grid import ClipGrid
from highlighter.io.video import BACKENDS


# Grid bounds for the CLI: below 0.05 s a clip holds no frame at the backbones' rates and the clip
# count explodes (1e-9 s on a 3-s video asked for 3e9 clips and was killed for memory).
MIN_CLIP_SECONDS, MAX_CLIP_SECONDS = 0.05, 3600.0


def _backbone(value: str | None) -> str | None:
    return None if value is None or value.strip().lower() in ("", "none") else value.strip()


def check_backbone(name: str | None, modality: str) -> None:
    """An unknown name or a backbone of the other modality is a usage error, before any work."""
    from highlighter.features.base import backbone_class

    if name is not None and backbone_class(name).spec.modality != modality:
        raise UsageError(f"--{modality} {name}: not {'an' if modality == 'audio' else 'a'} {modality} backbone; "
                         f"see `highlighter features list --modality {modality}`")


def check_decoder(name: str) -> str:
    if name not in BACKENDS:
        raise UsageError(f"--decoder {name!r}: unknown frame decoder; use {', '.join(BACKENDS)}")
    return name


def extract_features_cmd(
    inputs: list[Path] = typer.Argument(..., help="Video files and/or folders (searched recursively; hidden files skipped)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: OUT/<stem>.features.npz per video."),
    visual: str = typer.Option(DEFAULT_VISUAL, "--visual", help="Visual backbone (see `highlighter features list`), or 'none'."),
    audio: str = typer.Option(DEFAULT_AUDIO, "--audio", help="Audio backbone, or 'none' for visual features only."),
    no_audio: bool = typer.Option(False, "--no-audio", help="Same as --audio none."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N (fp16 is used on CUDA)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Clips per backbone call."),
    clip_seconds: float = typer.Option(2.0, "--clip-seconds", min=MIN_CLIP_SECONDS, max=MAX_CLIP_SECONDS,
                                       help="Clip length of the grid (RASL samples 0.2 s)."),
    hop_seconds: Optional[float] = typer.Option(None, "--hop-seconds", min=MIN_CLIP_SECONDS, max=MAX_CLIP_SECONDS,
                                                help="Clip hop (default: the clip length)."),
    random_weights: bool = typer.Option(False, "--random-weights",
                                        help="Backbone architectures with random weights (benchmarks, tests)."),
    force: bool = typer.Option(False, "--force", help="Re-extract even when the output is up to date."),
    backend: str = typer.Option("auto", "--decoder", help=f"Frame decoder: {' | '.join(BACKENDS)}."),
    ray: Optional[str] = RAY,
) -> None:
    """Extract visual + audio features on a clip grid, one file per video (skips up-to-date files)."""
    from highlighter.api import check_device
    from highlighter.cli.progress import batch_progress
    from highlighter.features.extract import discover

    # Everything cheap first (no backbone is loaded before this passes): options, inputs, output folder.
    vis, aud = _backbone(visual), None if no_audio else _backbone(audio)
    config = ExtractConfig(visual=vis, audio=aud, grid=ClipGrid(clip_seconds, hop_seconds),
                           pretrained=not random_weights, device=device, batch_size=batch_size,
                           decode_backend=check_decoder(backend))
    check_device(device)
    common.check_out_dir(out, "--out")
    discover(inputs)  # a missing input: one line now (extract_many lists the videos again)
    check_backbone(vis, "visual")  # imports the backbone's module (torch), hence after the checks above
    check_backbone(aud, "audio")
    runner = batch_runner(ray)  # --ray without ray installed: one usage line, before any work
    with batch_progress() as bars:
        report = extract_many(inputs, out, config, bars, force=force, runner=runner)
    _summary(report)
    if not report.ok:
        # an error (not typer.Exit, which main() runs with standalone_mode=False and would turn into 0)
        raise HighlighterError(f"{len(report.failed)} of {len(report.results)} video(s) failed; "
                               "see the lines above, fix or remove them and re-run (done files are skipped)")


def _summary(report: BatchReport) -> None:
    secs = sum(r.duration for r in report.done)
    common.out(f"extracted {len(report.done)} ({secs:.0f} s of video), up to date {len(report.skipped)}, "
               f"failed {len(report.failed)} in {report.seconds:.1f} s")
    for r in report.failed:
        common.error_line(f"{r.source}: {r.message}" if str(r.source) not in r.message else r.message)
