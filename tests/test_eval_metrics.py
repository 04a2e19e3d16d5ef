"""Metric functions against hand-computed cases (the UMT-lineage AP)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from highlighter.errors import InputError
from highlighter.eval.metrics import (
    average_precision,
    rank_labels,
    ranked_ap,
    tvsum_positives,
    tvsum_video_top5_map,
    youtube_video_ap,
)


def test_perfect_ranking_is_one():
    # ranked [1, 1, 0]: two steps of recall 0.5, each at precision 1 -> 0.5 + 0.5
    assert average_precision([0.9, 0.8, 0.1], [1, 1, 0]) == pytest.approx(1.0)


def test_interleaved_ranking():
    # ranked [1, 0, 1], 2 positives:
    # rank1: rec .5, prc 1 -> .5 * (1 + 1) / 2 = .5
    # rank2: rec .5, prc .5 -> +0
    # rank3: rec 1, prc 2/3 -> .5 * (.5 + 2/3) / 2 = 7/24
    # total 12/24 + 7/24 = 19/24
    assert average_precision([3.0, 2.0, 1.0], [1, 0, 1]) == pytest.approx(19 / 24)


def test_negative_first_uses_previous_rank_precision():
    # ranked [0, 1]: rank1 prc 0; rank2 rec 1, prc .5 -> 1 * (0 + .5) / 2 = .25
    # (scikit-learn's AP would say .5; the reference trapezoid gives .25)
    assert average_precision([2.0, 1.0], [0, 1]) == pytest.approx(0.25)


def test_no_positive_scores_zero():
    assert average_precision([0.3, 0.2, 0.1], [0, 0, 0]) == 0.0
    assert youtube_video_ap([0.3, 0.2], [-1, 0]) == 0.0


def test_ties_rank_negatives_first():
    # scores tie between clip 0 (positive) and clip 1 (negative): pessimistic order
    # ranks the negative first -> ranked [0, 1, 0] -> rank2: rec 1, prc .5 ->
    # 1 * (0 + .5) / 2 = .25 (the favourable order would give 1.0)
    assert average_precision([0.5, 0.5, 0.1], [1, 0, 0]) == pytest.approx(0.25)
    assert list(rank_labels([0.5, 0.5, 0.1], [1, 0, 0])) == [False, True, False]
    # the order of the input must not matter for ties
    assert average_precision([0.5, 0.5, 0.1], [0, 1, 0]) == pytest.approx(0.25)


def test_constant_scores_get_the_worst_ranking():
    # all tied: ranked [0, 0, 1, 1]: rank3 rec .5 prc 1/3 -> .5 * (0 + 1/3) / 2 = 1/12
    # rank4 rec 1 prc .5 -> .5 * (1/3 + 1/2) / 2 = 5/24; total 2/24 + 5/24 = 7/24
    assert average_precision(np.zeros(4), [1, 0, 1, 0]) == pytest.approx(7 / 24)


def test_youtube_match_positive_only_above_zero():
    # match -1 and 0 are both negatives: ranked [1, 0, 0, 1] (scores descending):
    # rank1 .5 * (1 + 1) / 2 = .5; rank4 rec 1, prc .5, previous prc 1/3 ->
    # .5 * (1/3 + 1/2) / 2 = 5/24; total 17/24
    assert youtube_video_ap([4, 3, 2, 1], [1, 0, -1, 1]) == pytest.approx(17 / 24)


def test_ranked_ap_matches_reference_loop():
    rng = np.random.default_rng(0)
    for _ in range(50):
        ranked = rng.integers(0, 2, size=rng.integers(1, 20))
        # the reference loop, written out
        num_gt = ranked.sum()
        hits = ap = rec = 0.0
        prc = 1.0
        for j, gt in enumerate(ranked):
            hits += gt
            _rec, _prc = (hits / num_gt if num_gt else 0.0), hits / (j + 1)
            ap += (_rec - rec) * (prc + _prc) / 2
            rec, prc = _rec, _prc
        assert ranked_ap(ranked) == pytest.approx(ap if num_gt else 0.0)


def test_tvsum_positives_strictly_above_median():
    # sorted 1,1,2,2,3,3,4,5 -> median 2.5 (torch's lower median 2 gives the same set)
    anno = np.array([[1, 2, 3, 4, 5, 1, 2, 3]], dtype=float)
    assert list(np.flatnonzero(tvsum_positives(anno)[0])) == [2, 3, 4, 7]
    # an annotator who gives every clip the same score has no positives
    assert not tvsum_positives(np.ones((1, 6))).any()


def test_tvsum_top5_truncates_and_counts_positives_in_top5():
    anno = np.array([[1, 2, 3, 4, 5, 1, 2, 3]], dtype=float)  # positives 2, 3, 4, 7
    scores = np.arange(8, 0, -1, dtype=float)  # ranks clips 0..7 in order
    # top 5 = clips 0..4 -> [0, 0, 1, 1, 1]; clip 7 (positive, rank 8) is cut off,
    # recall denominator = 3 positives in the top 5:
    # rank3 rec 1/3 prc 1/3 -> 1/3 * (0 + 1/3) / 2 = 1/18
    # rank4 rec 2/3 prc 1/2 -> 1/3 * (1/3 + 1/2) / 2 = 5/36
    # rank5 rec 1   prc 3/5 -> 1/3 * (1/2 + 3/5) / 2 = 11/60
    # total 10/180 + 25/180 + 33/180 = 68/180 = 17/45
    assert tvsum_video_top5_map(scores, anno) == pytest.approx(17 / 45)


def test_tvsum_top5_averages_annotators_and_zero_without_positive_in_top5():
    a1 = [1, 2, 3, 4, 5, 1, 2, 3]  # 17/45 for this ranking (see above)
    a2 = [5, 5, 5, 5, 5, 1, 1, 1]  # median 5 -> no positive at all -> 0
    a3 = [1, 1, 1, 1, 1, 5, 5, 5]  # median 1 -> positives 5, 6, 7, all outside top 5 -> 0
    scores = np.arange(8, 0, -1, dtype=float)
    anno = np.array([a1, a2, a3], dtype=float)
    assert tvsum_video_top5_map(scores, anno) == pytest.approx((17 / 45 + 0 + 0) / 3)


def test_tvsum_top5_ties_at_the_cut_are_pessimistic():
    anno = np.array([[1, 1, 1, 1, 1, 4, 4, 1]], dtype=float)  # median 1 -> positives 5, 6
    # clips 0..3 score 9; clips 4..7 tie at 1: the 5th slot goes to a negative
    # (clip 4 or 7) before the positives 5, 6 -> top 5 has no positive -> 0
    scores = np.array([9, 9, 9, 9, 1, 1, 1, 1], dtype=float)
    assert tvsum_video_top5_map(scores, anno) == 0.0
    # one positive strictly ahead of the tie -> ranked top 5 [0,0,0,0,1]
    # -> rank5 rec 1 prc 1/5, previous prc 0 -> 1 * (0 + 1/5) / 2 = 0.1
    scores[5] = 2
    assert tvsum_video_top5_map(scores, anno) == pytest.approx(0.1)


def test_short_video_uses_all_clips():
    # 3 clips < 5: top-5 is the whole ranking; anno [1, 3, 2] median 2 -> positive clip 1
    # ranked by scores [clip1, clip0, clip2] -> [1, 0, 0] -> AP 1
    assert tvsum_video_top5_map([0.5, 0.9, 0.1], [[1, 3, 2]]) == pytest.approx(1.0)


def test_bad_input_is_one_clear_error():
    with pytest.raises(InputError, match="3 clips but labels have 2"):
        average_precision([1, 2, 3], [1, 0])
    with pytest.raises(InputError, match="NaN"):
        average_precision([1, np.nan], [1, 0])


def test_tvsum_paper_protocol_uses_mean_annotator_labels():
    from highlighter.eval.metrics import tvsum_paper_positives, tvsum_video_top5_map_paper

    # 3 annotators x 6 clips; the mean is [1, 2, 3, 4, 5, 6] -> top half = clips 3, 4, 5.
    anno = np.array([[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]], dtype=float)
    anno[0] = [5, 2, 3, 4, 1, 6]  # one annotator disagrees; the mean decides
    mean = anno.mean(0)
    assert tvsum_paper_positives(anno).tolist() == (mean > np.median(mean)).tolist()
    pos = tvsum_paper_positives(anno)
    perfect = np.where(pos, 10.0, 0.0) + mean / 100
    worst = -perfect
    assert tvsum_video_top5_map_paper(perfect, anno) > tvsum_video_top5_map_paper(worst, anno)
    # top 5 of a perfect ranking: 3 positives first, then 2 negatives -> AP over the top 5 = 1.
    assert tvsum_video_top5_map_paper(perfect, anno) == pytest.approx(1.0)


def test_evaluate_scores_reports_the_protocol_it_used():
    from highlighter.eval.datasets import Dataset, VideoFeatures
    from highlighter.eval.harness import evaluate_scores, protocols

    rng = np.random.default_rng(0)
    anno = rng.integers(1, 6, size=(20, 12)).astype(float)
    v = VideoFeatures(vid="a", domain="X", split="val", visual=np.ones((12, 4), np.float32), audio=None, labels=anno)
    ds = Dataset(name="tvsum", root=Path("."), split="val", videos=[v], missing=[])
    assert protocols("tvsum") == ["umt", "paper"] and protocols("youtube") == ["umt"]
    s = {"a": anno.mean(0)}  # the mean annotator score ranks perfectly under the papers' protocol
    assert evaluate_scores(ds, s, protocol="paper").overall == pytest.approx(1.0)
    assert evaluate_scores(ds, s, protocol="paper").protocol == "paper"
    assert evaluate_scores(ds, s).protocol == "umt"
