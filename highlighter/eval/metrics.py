"""Highlight-detection metrics of the UMT / QD-DETR / lighthouse lineage.

Both benchmarks score a per-clip ranking with the same average precision (AP):
sort clips by score, descending; walk down the ranking computing precision and
recall at each rank; start from (recall 0, precision 1) and integrate precision
over recall with the trapezoid rule. Two quirks of that reference AP are kept on
purpose, so our numbers are comparable with published ones:

* the trapezoid at a positive uses the precision *at the previous rank*, so a
  negative at rank 1 pulls the first segment down (``[0, 1]`` scores 0.25, not
  the 0.5 of scikit-learn's AP);
* a video without any positive scores 0 (it is still counted in the mean).

Ties. A detector that gives many clips the same score must not profit from the
order a sort happens to leave them in. We rank tied scores *pessimistically*:
within a group of equal scores, negatives come before positives. For the full
ranking AP (YouTube Highlights) this is the worst ordering of each tie group, and a
constant detector gets the lowest AP its labels allow. For TVSum top-5 it puts
negatives into the top 5 first; because that AP counts only the positives inside
the top 5, this fixed rule is not always the exact minimum, but it never lets a
tie pull a positive forward. The rule is the same for every detector.
"""

from __future__ import annotations

import numpy as np

from highlighter.errors import InputError


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if scores.shape != labels.shape:
        raise InputError(f"scores have {scores.size} clips but labels have {labels.size}; they must match")
    if not np.all(np.isfinite(scores)):
        raise InputError("scores contain NaN or infinite values; a detector must give a finite score per clip")
    return scores, labels.astype(bool)


def rank_labels(scores: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """Binary labels in rank order (score descending, ties: negatives first)."""
    scores, pos = _check(scores, positives)
    # lexsort sorts by the last key first: score descending, then positives last.
    order = np.lexsort((pos.astype(np.int8), -scores))
    return pos[order]


def ranked_ap(ranked: np.ndarray) -> float:
    """AP of a ranked binary label list (the UMT ``evaluate`` loop, vectorised).

    Recall is relative to the positives *in this list*; 0 when there are none.
    """
    ranked = np.asarray(ranked, dtype=np.float64).reshape(-1)
    num_gt = ranked.sum()
    if num_gt == 0:
        return 0.0
    hits = np.cumsum(ranked)
    rec = np.concatenate(([0.0], hits / num_gt))
    prc = np.concatenate(([1.0], hits / np.arange(1, ranked.size + 1)))
    return float(np.sum(np.diff(rec) * (prc[:-1] + prc[1:]) / 2.0))


def average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """AP of the whole ranking of one video (1-D scores, 1-D binary labels)."""
    return ranked_ap(rank_labels(scores, positives))


def youtube_video_ap(scores: np.ndarray, match: np.ndarray) -> float:
    """YouTube Highlights AP of one video: a clip is positive when ``match > 0``."""
    match = np.asarray(match).reshape(-1)
    return average_precision(scores, match > 0)


def tvsum_positives(anno: np.ndarray) -> np.ndarray:
    """(A, T) annotator scores -> (A, T) bool: strictly above that annotator's median.

    The reference uses ``torch.median`` (the lower middle value for an even count);
    we use numpy's median (mean of the two middle values). "Strictly above" gives
    the same set with either: no score lies strictly between the two middle values.
    """
    anno = np.asarray(anno, dtype=np.float64)
    if anno.ndim != 2:
        raise InputError(f"TVSum labels must be (annotators, clips), got shape {anno.shape}")
    return anno > np.median(anno, axis=1, keepdims=True)


def youtube_has_contrast(match: np.ndarray) -> bool:
    """Whether a YouTube video's labels can rank anything: some clip with ``match > 0`` and some without."""
    pos = np.asarray(match).reshape(-1) > 0
    return bool(pos.any() and not pos.all())


def tvsum_has_contrast(anno: np.ndarray) -> bool:
    """Whether a TVSum video's labels can rank anything: some annotator scores some clip above their median."""
    anno = np.asarray(anno)
    return bool(anno.size) and bool(tvsum_positives(anno).any())


def tvsum_video_top5_map(scores: np.ndarray, anno: np.ndarray, k: int = 5) -> float:
    """TVSum top-5 AP of one video, averaged over its annotators.

    For each annotator: rank clips (ties pessimistic), keep the top ``k``, and take
    the AP of those ``k`` with recall relative to the positives *within the top k*
    (the reference's denominator), so a top-k without positives scores 0.
    Averaging per video over annotators and then over videos equals the reference's
    order (per annotator over videos, then over annotators): both are plain means
    over the same full annotator x video grid.
    """
    pos = tvsum_positives(anno)
    aps = [ranked_ap(rank_labels(scores, p)[:k]) for p in pos]
    return float(np.mean(aps)) if aps else 0.0


def tvsum_paper_positives(anno: np.ndarray) -> np.ndarray:
    """(A, T) annotator scores -> (T,) bool: clips whose *mean* score is strictly above its median.

    The papers' protocol (RASL Sec. IV-A "we average the importance scores of the
    manual labels of every segment"; HPCL Sec. 4.1 "select the higher 50% of the
    scores"): one label set per video instead of one per annotator.
    """
    anno = np.asarray(anno, dtype=np.float64)
    if anno.ndim != 2:
        raise InputError(f"TVSum labels must be (annotators, clips), got shape {anno.shape}")
    mean = anno.mean(axis=0)
    return mean > np.median(mean)


def tvsum_video_top5_map_paper(scores: np.ndarray, anno: np.ndarray, k: int = 5) -> float:
    """TVSum top-5 AP of one video under the papers' protocol (mean-annotator labels).

    Same ranked AP and tie rule as `tvsum_video_top5_map`; only the positives differ.
    """
    return ranked_ap(rank_labels(scores, tvsum_paper_positives(anno))[:k])
