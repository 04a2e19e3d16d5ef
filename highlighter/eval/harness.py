"""Score detectors on a benchmark split, one number per domain and their mean.

Protocols (UMT / QD-DETR / lighthouse):

* YouTube Highlights: per video the AP of the full ranking (``youtube_video_ap``),
  mean over the videos of a domain, then mean over the domains.
* TVSum, two protocols in use (see `benchmarks`; `evaluate` reports both):
  ``umt``: per video the top-5 AP averaged over the 20 annotators, each annotator's
  clips above their median positive (``tvsum_video_top5_map``);
  ``paper``: the papers' protocol (RASL IV-A, HPCL 4.1), one label set per video, the
  clips whose mean annotator score is in the top half (``tvsum_video_top5_map_paper``).
  Either: mean over a domain's videos, then over the domains. Compare with a paper's
  number only under ``paper``; with UMT-lineage numbers only under ``umt``.

Domains with no scored video in the split are left out of the mean (a held-out
directory may cover only some domains); `EvalResult.per_domain` shows which
were used. Predictions are plain ``{vid: scores}`` dicts so they can be saved as
JSONL and re-scored anywhere (`write_predictions` / `read_predictions`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from highlighter.atomic import atomic_write_text
from highlighter.errors import InputError, UsageError, WeightsMissingError
from highlighter.eval.benchmarks import get_benchmark
from highlighter.eval.datasets import Dataset, VideoFeatures, read_splits, require_contrast
from highlighter.methods.base import Detector


def protocols(dataset_name: str) -> list[str]:
    """The protocols a benchmark is scored under, default first."""
    return get_benchmark(dataset_name).protocol_names


@dataclass
class EvalResult:
    """One method on one dataset split."""

    dataset: str
    split: str
    method: str
    overall: float
    per_domain: dict[str, float]
    num_videos: int
    metric: str = ""
    per_video: dict[str, float] = field(default_factory=dict)
    protocol: str = "umt"

    def to_dict(self) -> dict:
        return asdict(self)


def video_score(dataset_name: str, video: VideoFeatures, scores: np.ndarray, protocol: str | None = None) -> float:
    """The per-video metric of a benchmark under ``protocol`` (see `benchmarks`; None = its default)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.size != video.num_clips:
        raise InputError(
            f"video {video.vid}: {scores.size} scores for {video.num_clips} clips; "
            "give exactly one score per clip of the feature file"
        )
    bench = get_benchmark(dataset_name)
    return bench.protocol(protocol or bench.protocols[0].name).video_metric(scores, video.labels)


def evaluate_scores(dataset: Dataset, scores: dict[str, np.ndarray], method: str = "",
                    protocol: str | None = None) -> EvalResult:
    """Score precomputed per-clip scores of every video of ``dataset`` under ``protocol`` (None = the default)."""
    if not dataset.videos:
        raise InputError(f"{dataset.root}: no videos with features in split '{dataset.split}'")
    require_contrast(dataset)
    protocol = protocol or dataset.benchmark.protocols[0].name
    absent = [v.vid for v in dataset.videos if v.vid not in scores]
    if absent:
        raise InputError(
            f"no scores for {len(absent)} of {len(dataset.videos)} videos (e.g. {absent[0]}); "
            "predict every video of the split"
        )
    per_video: dict[str, float] = {}
    per_domain: dict[str, float] = {}
    for domain, videos in dataset.by_domain().items():
        aps = [video_score(dataset.name, v, scores[v.vid], protocol) for v in videos]
        per_video.update({v.vid: ap for v, ap in zip(videos, aps)})
        per_domain[domain] = float(np.mean(aps))
    return EvalResult(
        dataset=dataset.name,
        split=dataset.split,
        method=method,
        overall=float(np.mean(list(per_domain.values()))),
        per_domain=per_domain,
        num_videos=len(dataset.videos),
        metric=dataset.benchmark.metric,
        per_video=per_video,
        protocol=protocol,
    )


def predict(
    detector: Detector, dataset: Dataset, on_video: Callable[[VideoFeatures], None] | None = None
) -> dict[str, np.ndarray]:
    """Run ``detector`` on every video; audio is passed only to detectors that use it."""
    out: dict[str, np.ndarray] = {}
    for v in dataset.videos:
        if detector.uses_audio and v.audio is None and not detector.audio_optional:
            raise InputError(
                f"{dataset.root}: video {v.vid} has no audio features (audio_features/{v.vid}.npy) "
                f"but method '{detector.name}' needs them"
            )
        s = np.asarray(detector.score(v.visual, v.audio if detector.uses_audio else None), dtype=np.float32)
        out[v.vid] = s.reshape(-1)
        if on_video is not None:
            on_video(v)
    return out


def evaluate_method(detector: Detector, dataset: Dataset, method: str | None = None) -> EvalResult:
    """Predict with ``detector`` and score the predictions."""
    return evaluate_scores(dataset, predict(detector, dataset), method=method or detector.name)


def default_split(root: str | Path) -> str:
    """``val`` when splits.json lists any val video, else ``train``."""
    has_val = any(p.get("val") for p in read_splits(Path(root)).values())
    return "val" if has_val else "train"


def write_predictions(path: str | Path, predictions: dict[str, dict[str, np.ndarray]], dataset: Dataset) -> Path:
    """JSONL, one line per (method, video): ``{"video", "method", "domain", "scores"}``."""
    domains = {v.vid: v.domain for v in dataset.videos}
    lines = []
    for method, by_vid in predictions.items():
        for vid, s in by_vid.items():
            rec = {"video": vid, "method": method, "domain": domains.get(vid, ""),
                   "scores": [float(x) for x in np.asarray(s).reshape(-1)]}
            lines.append(json.dumps(rec))
    path = Path(path)
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
    return path


def read_predictions(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Inverse of `write_predictions`: ``{method: {vid: scores}}`` (method "" if absent)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: predictions file not found")
    out: dict[str, dict[str, np.ndarray]] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            vid, scores = rec["video"], np.asarray(rec["scores"], dtype=np.float32)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise InputError(f"{path}:{n}: not a prediction line {{\"video\": id, \"scores\": [...]}}") from None
        out.setdefault(str(rec.get("method", "")), {})[vid] = scores
    return out


def write_results_json(path: str | Path, results: list[EvalResult], extra: dict | None = None) -> Path:
    """Results (with per-domain and per-video numbers) as one JSON document, atomically."""
    doc = dict(extra or {})
    doc["results"] = [r.to_dict() for r in results]
    path = Path(path)
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
    return path


BASELINES = ("random", "feature-norm")


@dataclass
class Entry:
    """A detector to evaluate and the row label it gets in the table."""

    label: str
    detector: Detector
    weights: Path | None = None


def select_detectors(
    dataset_name: str,
    methods: list[str] | None = None,
    weights: list[str | Path] | None = None,
    all_shipped: bool = False,
    baselines: bool = True,
    seed: int = 0,
    preset: str | None = None,
) -> list[Entry]:
    """The detectors an ``evaluate`` run scores, in table order (each via `resolve_detector`).

    * each ``weights`` file is loaded (its metadata names the method); a ``methods``
      entry naming the same method uses that file instead of shipped weights;
    * a training-free method is built by name (``random`` gets ``seed``);
    * a trainable method without a file uses its shipped weights for ``dataset_name``, or, when
      its default preset (or ``preset``) needs none, is built by name (RASL: per video);
    * ``all_shipped`` adds every registered method with shipped weights for the dataset;
    * ``baselines`` appends ``random`` and ``feature-norm`` unless already listed.
    """
    from highlighter.methods.base import available_methods, method_class
    from highlighter.methods.shipped import resolve_detector, shipped_weights

    def resolve(method: str | None, path: str | Path | None = None) -> Entry:
        named = method is not None and path is None and method not in BASELINES
        try:
            r = resolve_detector(method, path, dataset_name, seed=seed, preset=preset if named else None)
        except WeightsMissingError as exc:  # a method named without weights: the options do not fit
            raise UsageError(str(exc)) from None
        label = method or r.detector.name
        return Entry(f"{label} ({preset})" if named and preset else label, r.detector, r.weights)

    entries: list[Entry] = []
    loaded: dict[str, list[Entry]] = {}
    for w in weights or []:
        e = resolve(None, w)
        loaded.setdefault(e.label, []).append(e)

    names = list(dict.fromkeys(methods or []))
    if all_shipped:
        for m in available_methods():
            if method_class(m).trainable and shipped_weights(m, dataset_name) and m not in names:
                names.append(m)
    for m in names:
        if m not in loaded:  # a file given for it is added below with the other weights files
            entries.append(resolve(m))
    for group in loaded.values():
        for e in group:
            if len(group) > 1 or any(x.label == e.label for x in entries):
                e.label = f"{e.label} ({e.weights.name})"
            entries.append(e)
    if baselines:
        for b in BASELINES:
            if not any(e.label == b for e in entries):
                entries.append(resolve(b))
    if not entries:
        raise UsageError("nothing to evaluate: give --method, --weights or --all, or keep --baselines")
    return entries
