"""`highlighter methods list`: every detector, what it needs, its shipped weights and their scores.

A thin layer over `highlighter.methods.catalog.describe_methods`, which owns the facts;
this module only renders them (a table, or JSON with ``--json``).
"""

from __future__ import annotations

import dataclasses
import json

import typer
from rich.table import Table

from highlighter.cli import common


def methods_table(infos) -> Table:
    """One row per method: supervision, modalities, shipped weights (by target), then the measured scores."""
    score_columns = list(dict.fromkeys(k for m in infos for k in m.results))
    t = Table(title=common.plain("detectors (* = default; scores from docs/results.md)"), title_justify="left")
    for col in ("method", "supervised", "modalities", "weights", "presets", *score_columns):
        t.add_column(common.plain(col))
    for m in infos:
        weights = ", ".join(w.target for w in m.weights) or "-"
        t.add_row(*(common.plain(v) for v in (
            f"{m.name}{' *' if m.default else ''}", "yes" if m.supervised else "no", "+".join(m.modalities), weights,
            ", ".join(m.presets) or "-",
            *(m.results.get(c, "") for c in score_columns))))
    return t


def list_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Detectors: supervised or not, the features they need, shipped weights and their measured scores."""
    from highlighter.methods.catalog import describe_methods

    infos = describe_methods()
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(m) for m in infos], indent=2, default=str))  # default: paths
    else:
        common.show(methods_table(infos))
