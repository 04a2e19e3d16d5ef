"""`highlighter weights list|fetch|import`: a thin layer over `highlighter.features.weights`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from highlighter import settings
from highlighter.cli import common
from highlighter.features import weights as W

WRITING = ("fetch", "import")  # subcommands that write into the cache


def root(
    ctx: typer.Context,
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir",
                                             help="Cache root (weights go in CACHE/weights; default: the user cache)."),
) -> None:
    """List, download or import pretrained checkpoints."""
    if cache_dir is None:
        return
    if ctx.invoked_subcommand in WRITING:  # before a download, not after it
        common.check_out_dir(cache_dir.expanduser(), "--cache-dir")
    ctx.with_resource(settings.using_cache_root(cache_dir))  # for the subcommand, which runs inside this context


def list_cmd() -> None:
    """Known checkpoints: size, licence, whether cached, the official URL (for `weights import` on an
    offline machine) and the cache path."""
    t = Table(title=common.plain(f"weights (cache: {W.weights_dir()})"), title_justify="left")
    for col in ("name", "size", "licence", "cached", "url", "path"):
        t.add_column(col)
    for spec in W.available_weights():
        cached = W.is_cached(spec.name)
        t.add_row(*(common.plain(v) for v in (spec.name, spec.size_text, spec.licence, "yes" if cached else "no",
                                              spec.url, W.weight_path(spec.name))))
    common.show(t)


def fetch_cmd(name: str = typer.Argument(..., help="Checkpoint name (see `highlighter weights list`).")) -> None:
    """Download a checkpoint into the cache (resumes; checks the checksum; replaces an unreadable cached copy)."""
    from highlighter.cli.progress import download_progress

    with download_progress() as report:
        path = W.fetch_weights(name, progress=report)
    common.info(f"{name}: {path}")
    common.out(str(path))


def import_cmd(
    name: str = typer.Argument(..., help="Checkpoint name (see `highlighter weights list`)."),
    path: Path = typer.Argument(..., help="The file, downloaded elsewhere from the URL in `weights list`."),
) -> None:
    """Verify a file downloaded elsewhere (checksum, and that it loads into the backbone) and copy it into the cache."""
    dest = W.import_weights(name, path)
    common.info(f"imported {name} -> {dest}")
    common.out(str(dest))
