"""`highlighter features list`: the registered backbones and whether their weights are here."""

from __future__ import annotations

import typer
from rich.table import Table

from highlighter.cli.common import plain, show
from highlighter.errors import UsageError
from highlighter.features.base import BackboneSpec, available_backbones, backbone_class

MODALITIES = ("visual", "audio")  # the values of `BackboneSpec.modality`


def weights_status(spec: BackboneSpec) -> str:
    """cached / missing / bundled, without hashing or network."""
    cls = backbone_class(spec.name)
    if hasattr(cls, "weights_status"):
        return cls.weights_status()
    if spec.weights is None:
        return "bundled"
    from highlighter.features.weights import is_cached

    return "cached" if is_cached(spec.weights) else "missing"


def list_cmd(modality: str = typer.Option(None, "--modality", help=f"Only {' or '.join(MODALITIES)}.")) -> None:
    """Backbones: modality, feature dim, weights and their status, input contract."""
    if modality is not None and modality not in MODALITIES:
        raise UsageError(f"--modality {modality!r}: use {' or '.join(MODALITIES)}")
    t = Table(title="backbones", title_justify="left")
    for col in ("name", "modality", "dim", "weights", "status", "contract"):
        t.add_column(col, overflow="fold")
    for spec in available_backbones(modality):
        t.add_row(*(plain(v) for v in (spec.name, spec.modality, spec.dim, spec.weights or "(pip package)",
                                       weights_status(spec), spec.contract)))
    show(t)
