"""The README results table: every method with shipped weights + the trivial baselines.

    .venv/bin/python benchmarks/results_table.py [--data-root ../shared/data] [--out docs/results.md]

One markdown table, rows = methods, columns = YouTube Highlights mAP, TVSum top-5 mAP
(UMT val split and all 50 videos), each paper's own numbers, and training time on the
machine that trained the shipped weights. Protocols (stated under the table too):

* YouTube Highlights: only the ``train`` split is available here. Unsupervised and
  training-free methods are scored directly on it with their ``{method}-youtube``
  weights. Supervised methods (labels!) are scored by K-fold cross-validation by video
  (default 5): within each domain the videos are shuffled with the seed and dealt
  round-robin into folds, so every fold holds every domain; one model is trained on
  the other folds (all domains together, as the single shipped model is) and scores
  the held-out fold; the pooled held-out scores are evaluated once.
* TVSum: ``{method}-tvsum`` weights on the UMT ``val`` split (10 videos), and on all
  50 videos for methods that never saw TVSum. Unsupervised methods trained on TVSum
  ``train`` get their all-50 number marked (their training videos are in it);
  supervised ones trained on TVSum get none.
* Training time: ``info["train_seconds"]`` of the weights (written by
  ``highlighter train``), else "—".

Per-fold held-out predictions can be cached (``--cv-cache DIR``) so that folds can run
as separate processes (``--only-fold``) and the table be assembled afterwards. Without
a cache every CV fold is retrained (HPCL: 5 folds x ~12-27 min on the shared 2-core CPU).
The folds train with the ``--set`` overrides recorded in the shipped weights' command.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from highlighter.atomic import atomic_write_text
from highlighter.errors import HighlighterError, InputError

REPO = Path(__file__).resolve().parents[1]  # for the default --data-root (../shared/data) only

PAPER = {  # method: (YouTube mAP, TVSum top-5 mAP) as printed in each paper (I3D where given)
    "rasl": (0.651, 0.783),
    "chd": (0.654, 0.528),
    "avr": (0.683, 0.603),
    "hpcl": (0.747, 0.801),
}
METHOD_ORDER = ("rasl", "chd", "avr", "hpcl")
BASELINES = ("random", "feature-norm")


# --- cross-validation -----------------------------------------------------------------------


def make_folds(videos: list, k: int, seed: int) -> list[int]:
    """Fold id per video: within each domain, a seeded shuffle dealt round-robin."""
    if k < 2:
        raise InputError(f"--folds {k}: cross-validation needs at least 2 folds")
    fold = [0] * len(videos)
    by_domain: dict[str, list[int]] = {}
    for i, v in enumerate(videos):
        by_domain.setdefault(v.domain, []).append(i)
    for d, (domain, idx) in enumerate(sorted(by_domain.items())):
        idx = sorted(idx, key=lambda i: videos[i].vid)
        rng = np.random.default_rng([seed, d])
        for j, i in enumerate(rng.permutation(idx)):
            fold[int(i)] = j % k
    return fold


def _cache_file(cache: Path, method: str, overrides: list[str], k: int, seed: int, fold: int) -> Path:
    key = hashlib.sha1(json.dumps([method, sorted(overrides), k, seed]).encode()).hexdigest()[:10]
    return cache / f"cv-{method}-{key}-k{k}-s{seed}-fold{fold}.json"


def run_fold(method: str, dataset, fold_of: list[int], fold: int, seed: int, overrides: list[str],
             log=None) -> dict:
    """Train on every fold but ``fold``, score ``fold``: {scores: {vid: [...]}, train_seconds}."""
    from highlighter.methods.base import create_method, method_class
    from highlighter.methods.config import parse_overrides

    det = create_method(method, **parse_overrides(method_class(method).config_class, overrides))
    train = [v for v, f in zip(dataset.videos, fold_of) if f != fold]
    test = [v for v, f in zip(dataset.videos, fold_of) if f == fold]
    t0 = time.perf_counter()
    det.fit(train, seed=seed, log=log)
    seconds = time.perf_counter() - t0
    scores = {}
    for v in test:
        s = det.score(v.visual, v.audio if det.uses_audio else None)
        scores[v.vid] = [float(x) for x in np.asarray(s).reshape(-1)]
    return {"scores": scores, "train_seconds": round(seconds, 1), "train_videos": len(train),
            "test_videos": len(test)}


def cross_validate(method: str, dataset, k: int = 5, seed: int = 0, overrides: list[str] | None = None,
                   cache: Path | None = None, only_fold: int | None = None, log=None):
    """K-fold CV by video; returns (EvalResult over the pooled held-out scores, fold seconds)."""
    from highlighter.eval.harness import evaluate_scores

    overrides = list(overrides or [])
    fold_of = make_folds(dataset.videos, k, seed)
    scores: dict[str, np.ndarray] = {}
    seconds = []
    folds = [only_fold] if only_fold is not None else list(range(k))
    for f in folds:
        path = _cache_file(cache, method, overrides, k, seed, f) if cache else None
        if path and path.is_file():
            res = json.loads(path.read_text())
        else:
            if log:
                log(f"{method}: CV fold {f + 1}/{k}")
            res = run_fold(method, dataset, fold_of, f, seed, overrides, log=log)
            if path:
                atomic_write_text(path, json.dumps(res))
        scores.update({vid: np.asarray(s, dtype=np.float32) for vid, s in res["scores"].items()})
        seconds.append(res["train_seconds"])
    if only_fold is not None:
        return None, seconds
    return evaluate_scores(dataset, scores, method=method), seconds


# --- the table ------------------------------------------------------------------------------

COLUMNS = (  # key, header
    ("yt", "YouTube mAP (train split)"),
    ("tv_umt_val", "TVSum UMT val"),
    ("tv_umt_all", "TVSum UMT all 50"),
    ("tv_paper_val", "TVSum papers' val"),
    ("tv_paper_all", "TVSum papers' all 50"),
)


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def _cell(values: list[float] | None) -> str:
    """One seed: the number; several: mean ± std (population std over the seeds)."""
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def _trained_on(info: dict) -> set[str]:
    """Dataset names a weights file was trained on (from ``info["data"]``)."""
    return {str(d.get("name", "")) for d in info.get("data", []) if isinstance(d, dict)}


def _seconds(info: dict) -> float | None:
    s = info.get("train_seconds")
    return float(s) if isinstance(s, (int, float)) else None


class _Data:
    """The three splits every row is scored on, loaded once."""

    def __init__(self, data_root: Path):
        from highlighter.eval.datasets import load_dataset

        self.yt = load_dataset(data_root / "youtube", "train")
        self.tv_val = load_dataset(data_root / "tvsum", "val")
        self.tv_all = load_dataset(data_root / "tvsum", "all")


def _score_tvsum(det, data: _Data, row: dict, all_50: bool, note: str = "") -> None:
    """Append one seed's TVSum numbers (both protocols; all 50 only when ``all_50``)."""
    from highlighter.eval.harness import evaluate_scores, predict

    preds = predict(det, data.tv_all if all_50 else data.tv_val)
    for proto in ("umt", "paper"):
        row["cells"].setdefault(f"tv_{proto}_val", []).append(
            evaluate_scores(data.tv_val, preds, protocol=proto).overall)
        if all_50:
            row["cells"].setdefault(f"tv_{proto}_all", []).append(
                evaluate_scores(data.tv_all, preds, protocol=proto).overall)
    if note:
        row["notes"]["tv_umt_all"] = row["notes"]["tv_paper_all"] = note


def _row(method: str, label: str, supervised: bool, paper=None) -> dict:
    return {"method": label, "base": method, "supervised": supervised, "paper": paper, "cells": {},
            "notes": {}, "seeds": 0, "seconds": {}}


def build_rows(data_root: Path, folds: int, seed: int, cache: Path | None, methods: list[str] | None, log=None,
               seeds: int = 3, paper_seeds_dir: Path | None = None, skip_cv: bool = False):
    """Evaluate every row; returns a list of row dicts (per-seed numbers + notes)."""
    from highlighter.eval.harness import evaluate_method
    from highlighter.methods.base import available_methods, load_method, method_class
    from highlighter.methods.rasl import RASL
    from highlighter.methods.shipped import resolve_detector, shipped_weights

    data = _Data(data_root)
    say = log or (lambda _m: None)
    registered = available_methods()
    names = methods or [m for m in METHOD_ORDER if m in registered] + [
        m for m in registered if m not in METHOD_ORDER and m not in BASELINES and method_class(m).trainable]
    rows = []
    for m in names:
        cls = method_class(m)
        if m == "rasl":
            # The default: pretrained on each video itself (never reads a benchmark label or another video);
            # seeds = independent 3-run ensembles (video_seed 0, 3, 6, ...).
            row = _row(m, "rasl", False, PAPER["rasl"])
            for k in range(seeds):
                det = RASL.per_video(video_seed=3 * k)
                say(f"rasl (video mode), ensemble {k + 1}/{seeds}: YouTube")
                row["cells"].setdefault("yt", []).append(evaluate_method(det, data.yt).overall)
                say(f"rasl (video mode), ensemble {k + 1}/{seeds}: TVSum")
                _score_tvsum(det, data, row, all_50=True)
            row["notes"]["yt"] = "direct"
            row["seeds"] = seeds
            rows.append(row)
        yw, tw = shipped_weights(m, "youtube"), shipped_weights(m, "tvsum")
        if yw is None and tw is None:
            say(f"{m}: no shipped weights, skipped")
            continue
        label = "rasl (preset paper)" if m == "rasl" else m  # rasl's shipped files are its paper preset
        files = {"youtube": [yw], "tvsum": [tw]}
        if paper_seeds_dir is not None:  # more seeds of the shipped configuration
            for target in files:
                files[target] = _unique(files[target] + _seed_files(paper_seeds_dir, m, target))
        groups = [(label, files)]
        if m != "rasl" and paper_seeds_dir is not None and "paper" in getattr(cls, "presets", {}):
            paper = {t: _seed_files(paper_seeds_dir, f"{m}-paper", t) for t in files}
            if any(paper.values()):
                groups.append((f"{m} (preset paper)", paper))
        for label, files in groups:
            rows.append(_weights_row(m, cls, label, files, data, folds, seed, cache, log, skip_cv))
    for m in BASELINES:
        row = _row(m, m, False)
        n = seeds if m == "random" else 1  # feature-norm is deterministic
        for k in range(n):
            det = resolve_detector(m, seed=seed + k).detector
            row["cells"].setdefault("yt", []).append(evaluate_method(det, data.yt).overall)
            _score_tvsum(det, data, row, all_50=True)
        row["notes"]["yt"] = "direct"
        row["seeds"] = n if m == "random" else 0
        rows.append(row)
    return rows


def _seed_files(folder: Path, stem: str, target: str) -> list[Path]:
    """``{stem}-{target}-sN.safetensors`` and ``{stem}-sN.safetensors`` (one file for both targets)."""
    found = list(folder.glob(f"{stem}-{target}-s*.safetensors")) + list(folder.glob(f"{stem}-s*.safetensors"))
    return sorted(p for p in found if re.fullmatch(rf"{re.escape(stem)}(-{target})?-s\d+\.safetensors", p.name))


def _unique(paths: list) -> list:
    """Drop repeats of a training run (same seed, same data; the shipped seed is often also in the
    seeds folder, re-saved with other metadata)."""
    from highlighter.features.weights import sha256_file
    from highlighter.methods.base import read_metadata

    seen, out = set(), []
    for p in paths:
        if p is None:
            continue
        info = read_metadata(p)["info"]
        data = sorted((d.get("name"), d.get("split")) for d in info.get("data", []) if isinstance(d, dict))
        digest = (info.get("seed"), json.dumps(data)) if "seed" in info else sha256_file(Path(p))
        if digest not in seen:
            seen.add(digest)
            out.append(p)
    return out


def _weights_row(m, cls, label, files, data, folds, seed, cache, log, skip_cv) -> dict:
    """One row from weights files: YouTube (direct, or CV for supervised methods) and TVSum per seed."""
    from highlighter.eval.harness import evaluate_method
    from highlighter.methods.base import load_method

    say = log or (lambda _m: None)
    row = _row(m, label, bool(cls.supervised), PAPER.get(m))
    for path in files["youtube"]:
        if path is None:
            continue
        det = load_method(path, name=m)
        row["seconds"].setdefault("youtube", []).append(_seconds(det.info))
        if cls.supervised:
            if skip_cv:
                row["notes"]["yt"] = "CV not rerun"
                continue
            overrides = det.info.get("cv_overrides") or _overrides_from_command(det.info.get("command", ""))
            res, secs = cross_validate(m, data.yt, folds, seed, overrides, cache=cache, log=log)
            row["cells"].setdefault("yt", []).append(res.overall)
            row["notes"]["yt"] = f"{folds}-fold CV"
        else:
            say(f"{label}: YouTube with {path.name}")
            row["cells"].setdefault("yt", []).append(evaluate_method(det, data.yt).overall)
            row["notes"]["yt"] = "direct"
    for path in files["tvsum"]:
        if path is None:
            continue
        det = load_method(path, name=m)
        row["seconds"].setdefault("tvsum", []).append(_seconds(det.info))
        seen = "tvsum" in _trained_on(det.info)
        say(f"{label}: TVSum with {path.name}")
        if not seen:
            _score_tvsum(det, data, row, all_50=True)
        else:  # trained on TVSum train videos: all 50 only for unsupervised ones, marked
            _score_tvsum(det, data, row, all_50=not cls.supervised, note="" if cls.supervised else "†")
    row["seeds"] = max(len([p for p in files[t] if p is not None]) for t in files)
    return row


def _overrides_from_command(command: str) -> list[str]:
    """``--set k=v`` pairs of the command that trained the shipped weights, so CV folds
    train with the same settings."""
    import shlex

    try:
        parts = shlex.split(command)
    except ValueError:
        return []
    return [parts[i + 1] for i, p in enumerate(parts[:-1]) if p == "--set"]


def render(rows: list[dict], folds: int) -> str:
    head = ["Method", "Supervised", "Seeds"] + [h for _k, h in COLUMNS] + [
        "paper YT", "paper TVSum (its own protocol)", "train s YT / TVSum (CPU)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        paper = r["paper"] or (None, None)
        cells = []
        for key, _h in COLUMNS:
            c = _cell(r["cells"].get(key))
            note = r["notes"].get(key, "")
            cells.append(c if not note else (f"{c}{note}" if note == "†" else f"{c} ({note})"))
        secs = r["seconds"]
        t = "—" if not any(v for v in secs.values() if any(x is not None for x in v)) else " / ".join(
            "—" if not [x for x in secs.get(k, []) if x is not None]
            else f"{np.mean([x for x in secs[k] if x is not None]):.0f}" for k in ("youtube", "tvsum"))
        seeds = str(r["seeds"]) if r["seeds"] else "—"
        lines.append(f"| {r['method']} | {'yes' if r['supervised'] else 'no'} | {seeds} | " + " | ".join(cells)
                     + f" | {_fmt(paper[0])} | {_fmt(paper[1])} | {t} |")
    notes = [
        "",
        "Protocol. Numbers are fractions; a cell with several seeds is mean ± std over them. "
        "YouTube Highlights: only the train split (6 domains) is available; mAP = mean over domains "
        "of the mean per-video AP (UMT). Unsupervised and training-free methods are scored directly on it; "
        f"supervised methods by {folds}-fold cross-validation by video. "
        "TVSum, two protocols: UMT's (top-5 AP per annotator, each annotator's clips above their median "
        "positive) and the papers' (RASL IV-A, HPCL 4.1: clips whose mean annotator score is in the video's "
        "top half positive, top-5 AP per video); mean over domains. Compare a paper's TVSum number only with "
        "the papers' protocol. `rasl` = the default, pretrained on each video itself at detect time (seeds = "
        "independent 3-run ensembles); `rasl (preset paper)` = the paper's configuration pretrained on benchmark "
        "features (`-youtube` weights: TVSum + YouTube train; `-tvsum` weights: YouTube train only); "
        "`X (preset paper)` = method X trained with `--preset paper` (the paper's literal settings). "
        "† = unsupervised weights trained on TVSum train videos (40 of the 50): not comparable. "
        "— = not applicable / not measured. Paper numbers are each paper's own (other splits and features). "
        "Train time = `train_seconds` in the weights' metadata (mean over seeds).",
    ]
    return "\n".join(lines + notes) + "\n"


def _table_rows(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("| ") and not ln.startswith("| Method")]


def keep_rows(new: str, old: str) -> str:
    """``new`` with the rows of ``old`` that were not run now, in ``old``'s order; a new row
    goes after the last row of the same method (so a long row need not be rerun for a short one)."""
    label = lambda ln: ln.split("|")[1].strip()  # noqa: E731
    fresh = {label(ln): ln for ln in _table_rows(new)}
    merged = [fresh.pop(label(ln), ln) for ln in _table_rows(old)]
    for lab, ln in fresh.items():
        base = lab.split(" ")[0]
        at = max((i for i, m in enumerate(merged) if label(m).split(" ")[0] == base), default=len(merged) - 1)
        merged.insert(at + 1, ln)
    lines = new.splitlines()
    head = [ln for ln in lines if ln.startswith("| Method") or ln.startswith("|---")]
    rest = lines[len(head) + len(_table_rows(new)):]
    return "\n".join(head + merged + rest) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data",
                    help="folder holding youtube/ and tvsum/ in the UMT layout")
    ap.add_argument("--out", type=Path, help="also write the table here (atomically)")
    ap.add_argument("--json", type=Path, help="write the raw rows as JSON here")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cv-cache", type=Path, help="cache per-fold held-out predictions here")
    ap.add_argument("--method", action="append", help="only these trainable methods (repeatable)")
    ap.add_argument("--only-fold", type=int, help="run one CV fold of --method into --cv-cache and exit")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per learned row (mean ± std)")
    ap.add_argument("--seeds-dir", "--paper-seeds-dir", dest="paper_seeds_dir", type=Path,
                    help="more seeds of trained rows: METHOD[-TARGET]-sN.safetensors (shipped config) and "
                         "METHOD-paper[-TARGET]-sN.safetensors (a row for the paper preset)")
    ap.add_argument("--keep-rows", type=Path,
                    help="an earlier table (e.g. docs/results.md): rows of methods not run now are kept from it")
    ap.add_argument("--skip-cv", action="store_true", help="leave supervised YouTube CV cells out (hours on CPU)")
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="config override for --only-fold (key=value, repeatable)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        if args.only_fold is not None:
            from highlighter.eval.datasets import load_dataset

            if not args.method or len(args.method) != 1 or args.cv_cache is None:
                raise InputError("--only-fold needs exactly one --method and --cv-cache DIR")
            yt = load_dataset(args.data_root / "youtube", "train")
            cross_validate(args.method[0], yt, args.folds, args.seed, args.overrides, cache=args.cv_cache,
                           only_fold=args.only_fold, log=log)
            return 0
        rows = build_rows(args.data_root, args.folds, args.seed, args.cv_cache, args.method, log=log,
                          seeds=args.seeds, paper_seeds_dir=args.paper_seeds_dir, skip_cv=args.skip_cv)
        text = render(rows, args.folds)
        if args.keep_rows is not None:
            text = keep_rows(text, args.keep_rows.read_text(encoding="utf-8"))
    except HighlighterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    sys.stdout.write(text)
    for path, body in ((args.out, text), (args.json, json.dumps(rows, indent=2) + "\n" if args.json else None)):
        if path is None:
            continue
        atomic_write_text(path, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
