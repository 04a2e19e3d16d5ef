"""What a detector trains on and scores: feature sequences per video, plus labels.

Defined here, in the detectors' own layer, so that `Detector.fit` does not depend
on the benchmark loader (`highlighter.eval.datasets` builds these and re-exports
the class).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from highlighter.errors import InputError

SPLITS = ("train", "val", "all")  # dataset splits a training/evaluation run can ask for


@dataclass
class VideoFeatures:
    """One video: features on its clip grid plus its labels."""

    vid: str
    domain: str
    split: str
    visual: np.ndarray  # (T, Dv) float32
    audio: np.ndarray | None  # (T, Da) float32, None when the file is absent
    labels: np.ndarray  # youtube: (T,) int match; tvsum: (A, T) float scores; empty = none

    @property
    def num_clips(self) -> int:
        return int(self.visual.shape[0])


def without_labels(video: VideoFeatures) -> VideoFeatures:
    """The same video with an empty label array: what unsupervised training sees."""
    return dataclasses.replace(video, labels=np.zeros(0))


def check_features(x: np.ndarray | None, dim: int, what: str, method: str) -> np.ndarray:
    """A (T, dim) float32 array, or one clear error naming what is wrong."""
    if x is None:
        raise InputError(f"{method}: needs {what} features but none were given; extract them with an {what} backbone")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != dim or x.shape[0] == 0:
        raise InputError(
            f"{method}: {what} features have shape {tuple(x.shape)}, expected (T>0, {dim}); "
            "use features from the backbone the weights were trained on"
        )
    return x
