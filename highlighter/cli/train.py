"""`highlighter train`: fit any trainable detector on benchmark feature dirs.

Thin over `highlighter.train.train_detector`; generic over the method
registry — ``--set key=value`` reaches every field of the method's config.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from highlighter.cli import common
from highlighter.cli.options import METHODS_HINT
from highlighter.methods.data import SPLITS
from highlighter.train import DEFAULT_SPLIT


def train(
    method: str = typer.Option(..., "--method", "-m", help=f"Trainable method ({METHODS_HINT})."),
    data: list[str] = typer.Option(..., "--data", "-d", help="Benchmark dir in the UMT layout, or DIR:split (repeatable)."),
    out: Path = typer.Option(..., "--output", "-o", help="Weights file to write (.safetensors)."),
    split: Optional[list[str]] = typer.Option(
        None, "--split", help=f"{' | '.join(SPLITS)}: once for every dir, or once per --data (default {DEFAULT_SPLIT})."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="Seed: same seed, same data, same weights."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Override the method's number of epochs."),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda."),
    preset: Optional[str] = typer.Option(None, "--preset", help="A named config of the method, e.g. 'paper' (the paper's literal settings); --set applies on top."),
    overrides: Optional[list[str]] = typer.Option(None, "--set", help="Config override key=value (repeatable); ablations are flags, e.g. --set use_sa=false."),
) -> None:
    """Train a detector on benchmark features (unsupervised methods never read labels); writes fp16 safetensors."""
    from highlighter.train import train_detector

    common.check_out_file(out, "--output")  # before minutes of training, not after
    command = "highlighter " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = train_detector(
        method,
        data,
        out,
        seed=seed,
        epochs=epochs,
        device=device,
        overrides=overrides or [],
        preset=preset,
        splits=split or [],
        command=command,
        log=common.info,
    )
    final = result.report.losses[-1].get("total") if result.report.losses else None
    loss = f", final loss {final:.4f}" if final is not None else ""
    common.out(f"trained {method} on {result.info['num_videos']} videos in {result.info['train_seconds']:.1f} s{loss} "
               f"-> {result.path}")
