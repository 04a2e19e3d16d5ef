"""Training-free baselines: the floor every trained detector must clear.

* ``random`` — seeded uniform scores: the chance level of each metric, computed
  by the same code as the real detectors.
* ``feature-norm`` — the L2 norm of each clip's visual feature: a "how much is
  going on" prior that needs no labels at all.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from highlighter.errors import InputError
from highlighter.methods.base import Detector, register_method


def _check_visual(visual: np.ndarray) -> np.ndarray:
    visual = np.asarray(visual)
    if visual.ndim != 2:
        raise InputError(f"visual features must be (clips, dims), got shape {visual.shape}")
    return visual


@dataclass
class RandomConfig:
    seed: int = 0


@register_method("random")
class RandomDetector(Detector):
    """Uniform random scores, reproducible per video.

    The generator is seeded from ``seed`` *and* a CRC of the video's features, so a
    video gets the same scores whatever order (or subset) the videos are scored
    in, and different videos get independent draws.
    """

    summary = "seeded uniform scores: the chance level of each metric"
    config_class = RandomConfig
    trainable = False

    def score(self, visual: np.ndarray, audio: np.ndarray | None = None) -> np.ndarray:
        visual = _check_visual(visual)
        digest = zlib.crc32(np.ascontiguousarray(visual).tobytes())
        rng = np.random.default_rng([self.config.seed, digest, visual.shape[0]])
        return rng.random(visual.shape[0]).astype(np.float32)


@register_method("feature-norm")
class FeatureNormDetector(Detector):
    """Score = L2 norm of the clip's visual feature vector."""

    summary = "L2 norm of each clip's visual feature: training-free, works in any feature space"
    trainable = False

    def score(self, visual: np.ndarray, audio: np.ndarray | None = None) -> np.ndarray:
        visual = _check_visual(visual)
        return np.linalg.norm(visual.astype(np.float64), axis=1).astype(np.float32)
