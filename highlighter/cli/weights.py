"""`highlighter weights list|fetch|import`: a thin layer over `highlighter.features.weights`."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.table import Table

from highlighter.cli.common import console, info, progress_enabled
from highlighter.cli.main import app
from highlighter.features import weights as W

weights_app = typer.Typer(help="List, download or import pretrained checkpoints.", no_args_is_help=True)
app.add_typer(weights_app, name="weights")


@weights_app.callback()
def _weights_root(
    cache_dir: Path = typer.Option(None, "--cache-dir", help="Cache root (sets HIGHLIGHTER_CACHE; weights go in CACHE/weights)."),
) -> None:
    if cache_dir is not None:
        os.environ["HIGHLIGHTER_CACHE"] = str(cache_dir.expanduser())


def _size(n: int | None) -> str:
    return f"{n / 1e6:.1f} MB" if n is not None else "?"


@weights_app.command("list")
def list_cmd() -> None:
    """Known checkpoints: size, licence, whether cached, and where."""
    t = Table(title=f"weights (cache: {W.weights_dir()})", title_justify="left")
    for col in ("name", "size", "licence", "cached", "path"):
        t.add_column(col, overflow="fold")
    for spec in W.available_weights():
        cached = W.is_cached(spec.name)
        t.add_row(spec.name, _size(spec.size), spec.licence, "yes" if cached else "no", str(W.weight_path(spec.name)))
    console.print(t)


@weights_app.command("fetch")
def fetch_cmd(name: str = typer.Argument(..., help="Checkpoint name (see `highlighter weights list`).")) -> None:
    """Download a checkpoint into the cache (resumes; checks the checksum; replaces an unreadable cached copy)."""
    path = W.fetch_weights(name, progress=progress_enabled())
    info(f"{name}: {path}")
    console.print(str(path))


@weights_app.command("import")
def import_cmd(
    name: str = typer.Argument(..., help="Checkpoint name (see `highlighter weights list`)."),
    path: Path = typer.Argument(..., help="The file, downloaded elsewhere from the URL in `weights list`."),
) -> None:
    """Verify a file downloaded elsewhere (checksum, and that it loads into the backbone) and copy it into the cache."""
    dest = W.import_weights(name, path)
    info(f"imported {name} -> {dest}")
    console.print(str(dest))
