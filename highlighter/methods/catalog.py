"""What `highlighter methods list` shows: every detector, its needs, its shipped weights and scores.

Why a function here rather than in the CLI: the facts come from the detector
classes, the weights' metadata and the generated results table, all owned by this
layer; the CLI only renders the `MethodInfo` rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from highlighter.methods.base import DEFAULT_METHOD, METHODS, read_metadata
from highlighter.methods.config import make_config
from highlighter.methods.shipped import PACKAGE_WEIGHTS_DIR, shipped_dir, shipped_path, shipped_targets

# Measured scores, written by `benchmarks/results_table.py --out docs/results.md`.
RESULTS_TABLE = PACKAGE_WEIGHTS_DIR.parent / "docs" / "results.md"


@dataclass(frozen=True)
class ShippedWeights:
    """One pretrained weights file of a method, described from its metadata."""

    target: str  # what the weights are for: youtube | tvsum | video ...
    path: Path
    data: tuple[str, ...]  # training data, e.g. "tvsum:all (50 videos)"
    seed: int | None
    train_seconds: float | None
    command: str


@dataclass(frozen=True)
class MethodInfo:
    """One row of `highlighter methods list`."""

    name: str
    summary: str
    supervised: bool
    trainable: bool
    modalities: tuple[str, ...]  # features needed to score, with the default config
    default: bool  # the method `detect` uses unless told otherwise
    weights: tuple[ShippedWeights, ...] = ()
    results: dict[str, str] = field(default_factory=dict)  # results-table column -> measured cell
    model_card: Path | None = None
    presets: tuple[str, ...] = ()  # named configs (`--preset`); the default one first


def describe_methods(results_table: Path | None = None) -> list[MethodInfo]:
    """Every registered method, sorted by name (imports the method modules, hence torch)."""
    table = read_results_table(RESULTS_TABLE if results_table is None else results_table)
    out = []
    for name, cls in METHODS.items():
        audio = cls.audio_at_inference(make_config(cls.config_class, name, {}))
        card = shipped_dir() / f"{name}.md"
        out.append(MethodInfo(
            name=name,
            summary=getattr(cls, "summary", "") or (cls.__doc__ or "").strip().splitlines()[0],
            supervised=bool(cls.supervised),
            trainable=bool(cls.trainable),
            modalities=("visual", "audio") if audio else ("visual",),
            default=name == DEFAULT_METHOD,
            weights=tuple(describe_weights(name, t) for t in shipped_targets(name)),
            results={k: v for k, v in table.get(name, {}).items() if k != "Supervised"},
            model_card=card if card.is_file() else None,
            presets=tuple(sorted(cls.presets, key=lambda p: (p != cls.default_preset, p))),
        ))
    return out


def describe_weights(method: str, target: str) -> ShippedWeights:
    """A shipped weights file of ``method`` for ``target``, from its metadata alone."""
    path = shipped_path(method, target)
    info = read_metadata(path)["info"]
    data = tuple(f"{d.get('name', d.get('dir', '?'))}:{d.get('split', '?')} ({d.get('videos', '?')} videos)"
                 for d in info.get("data", []))
    return ShippedWeights(target=target, path=path, data=data, seed=info.get("seed"),
                          train_seconds=info.get("train_seconds"), command=info.get("command", ""))


def read_results_table(path: Path) -> dict[str, dict[str, str]]:
    """``{method: {column: cell}}`` from the first Markdown table whose first column is Method."""
    if not path.is_file():
        return {}
    header: list[str] | None = None
    rows: dict[str, dict[str, str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            if header is not None and rows:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            if cells and cells[0] == "Method":
                header = cells
        elif not set(cells[0]) <= set("-: "):
            rows[cells[0]] = dict(zip(header[1:], cells[1:]))
    return rows
