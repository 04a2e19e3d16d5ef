"""`highlighter evaluate`: score detectors on a benchmark directory (UMT layout).

Thin over `highlighter.eval.harness`: pick the split, build the detectors, score
them with the same code as the baselines, print one row per method.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import Progress
from rich.table import Table

from highlighter.cli import common
from highlighter.cli.options import METHODS_HINT
from highlighter.methods.data import SPLITS

DATASET_TITLES = {"youtube": "YouTube Highlights", "tvsum": "TVSum"}
PROTOCOL_TITLES = {"umt": "UMT protocol (per annotator, median split)",
                   "paper": "papers' protocol (mean annotator score, top half positive)"}


def results_table(results, title: str) -> Table:
    """One column per domain plus the mean, one row per method (numbers in %)."""
    domains = sorted({d for r in results for d in r.per_domain})
    table = Table(title=common.plain(title), title_justify="left")  # titles, domains and labels name user files
    table.add_column("method")
    for d in domains:
        table.add_column(common.plain(d), justify="right")
    table.add_column("mean", justify="right", style="bold")
    for r in results:
        cells = [f"{100 * r.per_domain[d]:.2f}" if d in r.per_domain else "-" for d in domains]
        table.add_row(common.plain(r.method), *cells, f"{100 * r.overall:.2f}")
    return table


def evaluate(
    data: Path = typer.Option(..., "--data", "-d", help="Benchmark directory in the UMT feature layout."),
    method: Optional[list[str]] = typer.Option(None, "--method", "-m",
                                               help=f"Method to score (repeatable; {METHODS_HINT})."),
    weights: Optional[list[Path]] = typer.Option(None, "--weights", "-w", help="Trained weights file (repeatable)."),
    split: Optional[str] = typer.Option(None, "--split",
                                        help=f"{' | '.join(SPLITS)} (default: val if the directory has one, else train)."),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="Add the random and feature-norm rows."),
    all_methods: bool = typer.Option(False, "--all", help="Every method with shipped weights for this dataset."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results (per domain and per video) as JSON."),
    predictions: Optional[Path] = typer.Option(None, "--predictions", help="Write per-clip scores as JSONL, one line per video and method."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random baseline."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Named config of the --method detectors, e.g. 'paper' (rasl: the shipped weights of the paper's configuration; default: pretrained on each video)."),
) -> None:
    """Score detectors on YouTube Highlights (mAP) or TVSum (top-5 mAP, UMT and papers' protocols), per domain."""
    from highlighter.errors import InputError, UsageError
    from highlighter.eval.datasets import detect_name, load_dataset, require_contrast
    from highlighter.eval.harness import (
        default_split,
        evaluate_scores,
        predict,
        protocols,
        select_detectors,
        write_predictions,
        write_results_json,
    )
    from highlighter.methods.shipped import shipped_dir

    if split is not None and split not in SPLITS:
        raise UsageError(f"--split must be {', '.join(SPLITS[:-1])} or {SPLITS[-1]}, not '{split}'")
    for out in (json_out, predictions):
        if out is not None and (out.resolve() == data.resolve() or data.resolve() in out.resolve().parents):
            raise UsageError(f"{out}: refusing to write inside the dataset directory {data}")
    if not data.is_dir():
        raise InputError(f"{data}: dataset directory not found; point --data at a folder in the UMT feature layout")
    for out, option in ((json_out, "--json"), (predictions, "--predictions")):
        if out is not None:
            common.check_out_file(out, option)  # a folder in the way fails now, not after scoring
    name = detect_name(data)
    split = split or default_split(data)
    entries = select_detectors(name, method, [str(w) for w in weights or []], all_methods, baselines, seed, preset)
    if all_methods and not any(e.weights for e in entries):
        common.warn(f"--all: no shipped weights for {name} in {shipped_dir()}; only the baselines are scored")
    dataset = load_dataset(data, split, name=name)
    require_contrast(dataset)  # before any detector runs: a 0.00 table would say nothing
    common.info(
        f"{DATASET_TITLES.get(dataset.name, dataset.name)}: split '{split}', {len(dataset.videos)} videos scored, "
        f"{len(dataset.missing)} listed without features"
    )

    results, preds = [], {}
    with Progress(console=common.err_console, transient=True, disable=not common.progress_enabled()) as bar:
        for e in entries:
            common.info(f"scoring {e.label}" + (f" ({e.weights})" if e.weights else ""))
            task = bar.add_task(common.escape(e.label), total=len(dataset.videos))
            scores = predict(e.detector, dataset, on_video=lambda _v, t=task: bar.advance(t))
            preds[e.label] = scores
            for proto in protocols(dataset.name):
                results.append(evaluate_scores(dataset, scores, method=e.label, protocol=proto))

    many = len(protocols(dataset.name)) > 1
    for proto in protocols(dataset.name):
        rows = [r for r in results if r.protocol == proto]
        title = (f"{DATASET_TITLES.get(dataset.name, dataset.name)} {rows[0].metric} (%)"
                 + (f", {PROTOCOL_TITLES[proto]}" if many else "") + f", split {split}, {len(dataset.videos)} videos")
        common.show(results_table(rows, title))
    if json_out is not None:
        extra = {"data": str(data.resolve()), "dataset": dataset.name, "split": split, "seed": seed,
                 "num_videos": len(dataset.videos), "missing": dataset.missing}
        write_results_json(json_out, results, extra)
        common.info(f"wrote {json_out}")
    if predictions is not None:
        write_predictions(predictions, preds, dataset)
        common.info(f"wrote {predictions}")
