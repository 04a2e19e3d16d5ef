"""The benchmarks the harness knows, one `Benchmark` entry each.

Why one entry: everything that differs between benchmarks — the annotation file, how
its labels are read, when a video's labels can rank anything, the protocols and their
per-video metrics, the titles the CLI prints — lives here, so adding a benchmark is
one `register_benchmark` call; `datasets` (loading), `harness` (scoring) and the
``evaluate`` command read it from here.

A benchmark's ``name`` is also the shipped-weights target (``{method}-{name}.safetensors``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from highlighter.errors import InputError
from highlighter.eval.metrics import (
    tvsum_has_contrast,
    tvsum_video_top5_map,
    tvsum_video_top5_map_paper,
    youtube_has_contrast,
    youtube_video_ap,
)
from highlighter.registry import Registry

VideoMetric = Callable[[np.ndarray, np.ndarray], float]  # (scores (T,), labels) -> number for one video


@dataclass(frozen=True)
class Protocol:
    """One way of scoring a benchmark: a per-video metric, averaged per domain, then over domains."""

    name: str
    title: str  # what the table says when a benchmark has several protocols
    video_metric: VideoMetric


@dataclass(frozen=True)
class Benchmark:
    """What the harness needs to know about one benchmark in the UMT feature layout."""

    name: str  # "{name}_anno.json" in the directory; the shipped-weights target
    title: str
    metric: str  # the metric's name in tables ("mAP")
    label_key: str  # the field of an annotation entry that holds the labels
    label_ndim: int  # 1: (clips,), 2: stored as (clips, annotators)
    label_form: str  # the expected labels in words, for error messages
    to_labels: Callable[[np.ndarray, str], np.ndarray]  # (finite array, "file: video 'id'") -> labels
    has_contrast: Callable[[np.ndarray], bool]  # labels can rank something (not all the same)
    protocols: tuple[Protocol, ...]  # the first is the default

    @property
    def anno_file(self) -> str:
        return f"{self.name}_anno.json"

    @property
    def protocol_names(self) -> list[str]:
        return [p.name for p in self.protocols]

    def protocol(self, name: str) -> Protocol:
        """The protocol called ``name``; unknown names are one line listing the known ones."""
        for p in self.protocols:
            if p.name == name:
                return p
        raise InputError(f"no protocol '{name}' for {self.name} (known: {', '.join(self.protocol_names)})")


BENCHMARKS: Registry[Benchmark] = Registry("benchmark")


def register_benchmark(benchmark: Benchmark) -> Benchmark:
    return BENCHMARKS.register(benchmark.name, benchmark)


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name`` (an unknown name lists the known ones)."""
    return BENCHMARKS.get(name)


def benchmarks() -> list[Benchmark]:
    """Every registered benchmark, by name."""
    return [b for _, b in BENCHMARKS.items()]


# --------------------------------------------------------------------------- the two benchmarks
def _youtube_labels(arr: np.ndarray, where: str) -> np.ndarray:
    """``match`` per clip: 1 = highlight, 0 / -1 = not (UMT counts ``match > 0``)."""
    if not np.array_equal(arr, np.round(arr)):
        raise InputError(f"{where}: 'match' must hold integers (1 highlight, 0/-1 not); restore the annotation file")
    return arr.astype(np.int64)


def _tvsum_labels(arr: np.ndarray, where: str) -> np.ndarray:
    """``anno`` is stored clips x 20 annotators (scores 1..5); kept as (annotators, clips)."""
    return arr.astype(np.float32).T.copy()


register_benchmark(Benchmark(
    name="youtube", title="YouTube Highlights", metric="mAP",
    label_key="match", label_ndim=1, label_form="a list of -1/0/1 per clip",
    to_labels=_youtube_labels, has_contrast=youtube_has_contrast,
    protocols=(Protocol("umt", "UMT protocol (AP of the full ranking per video)", youtube_video_ap),),
))
register_benchmark(Benchmark(
    name="tvsum", title="TVSum", metric="top-5 mAP",
    label_key="anno", label_ndim=2, label_form="a list of per-clip lists of annotator scores",
    to_labels=_tvsum_labels, has_contrast=tvsum_has_contrast,
    protocols=(Protocol("umt", "UMT protocol (per annotator, median split)", tvsum_video_top5_map),
               Protocol("paper", "papers' protocol (mean annotator score, top half positive)",
                        tvsum_video_top5_map_paper)),
))
