"""The harness and `highlighter evaluate` on tiny datasets written in the UMT layout.

Visual features are built so each clip's L2 norm is a chosen number; the
`feature-norm` baseline then ranks clips in a known order and the expected
numbers are computed by hand below.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import run_cli_in_process as _cli

from highlighter.errors import InputError, UsageError
from highlighter.eval import (
    default_split,
    evaluate_method,
    evaluate_scores,
    load_dataset,
    predict,
    read_predictions,
    write_predictions,
)
from highlighter.eval.harness import select_detectors
from highlighter.methods import Detector, create_method, register_method

DV, DA = 8, 4


def _visual(norms: list[float]) -> np.ndarray:
    """(T+1, DV) rows with the given L2 norms, plus one extra row (a real release
    has a row more than labels; the loader must truncate it)."""
    rng = np.random.default_rng(len(norms))
    rows = rng.normal(size=(len(norms) + 1, DV))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows * np.array(list(norms) + [100.0])[:, None]).astype(np.float32)


def _write(root: Path, name: str, splits: dict, videos: dict) -> Path:
    """videos: vid -> (domain, norms, labels); labels as the release stores them (strings)."""
    (root / "video_features").mkdir(parents=True)
    (root / "audio_features").mkdir()
    anno = {}
    for vid, (domain, norms, labels) in videos.items():
        np.save(root / "video_features" / f"{vid}_rgb.npy", _visual(norms))
        np.save(root / "audio_features" / f"{vid}.npy", np.ones((len(norms), DA), np.float32))
        key = "match" if name == "youtube" else "anno"
        anno[vid] = {"domain": domain, key: str(labels)}
    (root / f"{name}_anno.json").write_text(json.dumps(anno))
    (root / "splits.json").write_text(json.dumps(splits))
    return root


@pytest.fixture
def youtube_dir(tmp_path):
    # val, dog: d3 match [1, 0, -1, 1], norms 4, 3, 2, 1 -> ranked [1, 0, 0, 1]:
    #   rank1 .5 * (1 + 1) / 2 = .5; rank4 rec 1 prc .5, prev prc 1/3 -> .5 * (1/3 + 1/2) / 2 = 5/24
    #   AP 17/24
    # val, ski: s2 match [0, 1, 1, 0], norms 1, 2, 3, 4 -> ranked [0, 1, 1, 0]:
    #   rank2 rec .5 prc .5, prev 0 -> .5 * .5 / 2 = 1/8; rank3 rec 1 prc 2/3 -> .5 * (1/2 + 2/3) / 2 = 7/24
    #   AP 10/24
    # mean over domains: (17/24 + 10/24) / 2 = 9/16
    videos = {
        "d1": ("dog", [1, 2, 3], [0, 1, -1]),
        "d2": ("dog", [3, 2, 1, 1], [1, 0, 0, 0]),
        "d3": ("dog", [4, 3, 2, 1], [1, 0, -1, 1]),
        "s1": ("ski", [1, 2], [1, 0]),
        "s2": ("ski", [1, 2, 3, 4], [0, 1, 1, 0]),
    }
    splits = {"dog": {"train": ["d1", "d2"], "val": ["d3"]}, "ski": {"train": ["s1"], "val": ["s2", "gone"]}}
    return _write(tmp_path / "yt", "youtube", splits, videos)


@pytest.fixture
def tvsum_dir(tmp_path):
    # every annotator scores [1, 2, 3, 4, 5, 1, 2, 3]: positives clips 2, 3, 4, 7
    # val BK: norms 8..1 -> top 5 [0, 0, 1, 1, 1] -> 17/45 (see test_eval_metrics)
    # val GA: norms put clips 7, 4, 3, 2, 0 first -> [1, 1, 1, 1, 0] -> 1.0
    # mean (17/45 + 1) / 2 = 31/45
    row = [1, 2, 3, 4, 5, 1, 2, 3]
    anno = [[float(x)] * 20 for x in row]  # (T, 20) as in the release
    videos = {
        "bk_train": ("BK", [1, 2, 3, 4, 5, 6, 7, 8], anno),
        "bk_val": ("BK", [8, 7, 6, 5, 4, 3, 2, 1], anno),
        "ga_train": ("GA", [8, 7, 6, 5, 4, 3, 2, 1], anno),
        "ga_val": ("GA", [4, 0.5, 6, 7, 8, 0.1, 0.2, 9], anno),
    }
    splits = {"BK": {"train": ["bk_train"], "val": ["bk_val"]}, "GA": {"train": ["ga_train"], "val": ["ga_val"]}}
    return _write(tmp_path / "tv", "tvsum", splits, videos)


def test_youtube_feature_norm_hand_computed(youtube_dir):
    ds = load_dataset(youtube_dir, "val")
    assert ds.missing == ["gone"]
    res = evaluate_method(create_method("feature-norm"), ds)
    assert res.dataset == "youtube" and res.split == "val" and res.method == "feature-norm"
    assert res.num_videos == 2
    assert res.per_domain == pytest.approx({"dog": 17 / 24, "ski": 10 / 24})
    assert res.overall == pytest.approx(9 / 16)


def test_tvsum_feature_norm_hand_computed(tvsum_dir):
    res = evaluate_method(create_method("feature-norm"), load_dataset(tvsum_dir, "val"))
    assert res.per_domain == pytest.approx({"BK": 17 / 45, "GA": 1.0})
    assert res.overall == pytest.approx(31 / 45)
    # "all": BK train norms 1..8 rank clip 7 first -> top 5 clips 7, 6, 5, 4, 3 ->
    #   [1, 0, 0, 1, 1]: rank1 1/3 * 1 = 1/3; rank4 rec 2/3 prc 1/2, prev 1/3 -> 1/3 * 5/12 = 5/36;
    #   rank5 rec 1 prc 3/5 -> 1/3 * 11/20 = 11/60; AP = (60 + 25 + 33)/180 = 118/180
    #   GA train = 17/45 (same ranking as BK val)
    all_res = evaluate_method(create_method("feature-norm"), load_dataset(tvsum_dir, "all"))
    assert all_res.num_videos == 4
    assert all_res.per_domain["BK"] == pytest.approx((118 / 180 + 17 / 45) / 2)
    assert all_res.per_domain["GA"] == pytest.approx((17 / 45 + 1.0) / 2)


def test_default_split(youtube_dir, tmp_path):
    assert default_split(youtube_dir) == "val"
    no_val = tmp_path / "noval"
    no_val.mkdir()
    (no_val / "splits.json").write_text(json.dumps({"dog": {"train": ["a"]}}))
    assert default_split(no_val) == "train"
    with pytest.raises(InputError, match="splits.json"):
        default_split(tmp_path / "nowhere")


def test_evaluate_scores_rejects_incomplete_or_wrong_scores(youtube_dir):
    ds = load_dataset(youtube_dir, "val")
    with pytest.raises(InputError, match="no scores for 1 of 2"):
        evaluate_scores(ds, {"d3": np.zeros(4)})
    with pytest.raises(InputError, match="video s2: 3 scores for 4 clips"):
        evaluate_scores(ds, {"d3": np.zeros(4), "s2": np.zeros(3)})


def test_random_baseline_is_seeded_and_order_independent(youtube_dir):
    ds = load_dataset(youtube_dir, "train")
    a = predict(create_method("random", seed=3), ds)
    ds.videos.reverse()
    b = predict(create_method("random", seed=3), ds)
    c = predict(create_method("random", seed=4), ds)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


@dataclass
class _LinCfg:
    dims: int = DV


class _Linear(Detector):
    """A tiny trainable detector (score = visual @ w) to exercise weights lookup."""

    uses_audio = True

    def __init__(self, dims: int = DV) -> None:
        self.config, self.info = _LinCfg(dims), {}
        self.w = np.zeros(dims, np.float32)
        self.seen_audio: list = []

    def score(self, visual, audio=None):
        self.seen_audio.append(audio)
        return visual @ self.w

    def state_dict(self):
        import torch

        return {"w": torch.from_numpy(self.w)}

    def load_state_dict(self, state):
        self.w = state["w"].float().numpy()


@pytest.fixture(autouse=True)
def _registered():
    """Register the test detector only while this module's tests run."""
    from highlighter.methods import METHODS

    register_method("test-linear")(_Linear)
    yield
    METHODS.unregister("test-linear")


def test_predict_passes_audio_only_to_audio_methods(youtube_dir):
    ds = load_dataset(youtube_dir, "val")
    det = _Linear()
    predict(det, ds)
    assert all(a is not None and a.shape[1] == DA for a in det.seen_audio)
    ds.videos[0].audio = None
    with pytest.raises(InputError, match="no audio features"):
        predict(det, ds)


def test_predictions_round_trip(youtube_dir, tmp_path):
    ds = load_dataset(youtube_dir, "val")
    preds = {"feature-norm": predict(create_method("feature-norm"), ds)}
    path = write_predictions(tmp_path / "p.jsonl", preds, ds)
    back = read_predictions(path)
    assert evaluate_scores(ds, back["feature-norm"]).overall == pytest.approx(9 / 16)
    (tmp_path / "bad.jsonl").write_text('{"video": "d3"}\n')
    with pytest.raises(InputError, match="bad.jsonl:1"):
        read_predictions(tmp_path / "bad.jsonl")


def _shipped(tmp_path, monkeypatch, w) -> Path:
    det = _Linear()
    det.w = np.asarray(w, np.float32)
    wdir = tmp_path / "weights"
    det.save(wdir / "test-linear-youtube.safetensors")
    monkeypatch.setenv("HIGHLIGHTER_WEIGHTS_DIR", str(wdir))
    return wdir / "test-linear-youtube.safetensors"


def test_select_detectors(tmp_path, monkeypatch):
    monkeypatch.setenv("HIGHLIGHTER_WEIGHTS_DIR", str(tmp_path / "empty"))
    assert [e.label for e in select_detectors("youtube")] == ["random", "feature-norm"]
    with pytest.raises(UsageError, match="no shipped weights for youtube"):
        select_detectors("youtube", ["test-linear"])
    with pytest.raises(UsageError, match="nothing to evaluate"):
        select_detectors("youtube", baselines=False)
    path = _shipped(tmp_path, monkeypatch, np.eye(DV)[0])
    entries = select_detectors("youtube", all_shipped=True, baselines=False)
    assert [(e.label, e.weights) for e in entries] == [("test-linear", path)]
    assert np.array_equal(entries[0].detector.w, np.eye(DV)[0])
    assert select_detectors("tvsum", all_shipped=True, baselines=False, methods=["random"])[0].label == "random"
    # an explicit file wins over the shipped one for the same method
    other = _Linear()
    other.w[1] = 1
    f = other.save(tmp_path / "mine.safetensors")
    entries = select_detectors("youtube", ["test-linear"], [f], baselines=False)
    assert len(entries) == 1 and entries[0].weights == f and entries[0].detector.w[1] == 1


def test_one_resolver_for_api_and_harness(tmp_path, monkeypatch):
    from highlighter.api import load_detector
    from highlighter.errors import WeightsMissingError
    from highlighter.methods.shipped import resolve_detector

    path = _shipped(tmp_path, monkeypatch, np.eye(DV)[0])  # test-linear-youtube.safetensors
    assert resolve_detector("test-linear", target="youtube").weights == path
    with pytest.raises(WeightsMissingError, match=r"no shipped weights for tvsum .*test-linear-tvsum"):
        resolve_detector("test-linear", target="tvsum")
    assert resolve_detector("random", seed=7).detector.config.seed == 7
    assert resolve_detector("feature-norm", seed=7).weights is None  # takes no seed: built without one
    # raw videos: target "video", which falls back to the youtube weights
    det, info = load_detector("test-linear", None)
    assert info.id == path.name and len(info.sha256) == 64 and np.array_equal(det.w, np.eye(DV)[0])


def test_a_benchmark_is_one_entry(tmp_path):
    """Registering a `Benchmark` is all it takes for loading, scoring and the protocol list."""
    from highlighter.eval.benchmarks import BENCHMARKS, Benchmark, Protocol, register_benchmark
    from highlighter.eval.harness import protocols

    def top1(scores, labels) -> float:  # 1 when the best-scored clip is a highlight
        return float(labels[int(np.argmax(scores))] > 0)

    register_benchmark(Benchmark(
        name="toy", title="Toy", metric="top-1", label_key="hit", label_ndim=1, label_form="a list of 0/1 per clip",
        to_labels=lambda arr, where: arr.astype(np.int64), has_contrast=lambda y: bool(0 < y.sum() < y.size),
        protocols=(Protocol("first", "the first clip", top1), Protocol("hit", "top-1 hit", top1))))
    try:
        root = tmp_path / "toy"
        (root / "video_features").mkdir(parents=True)
        for vid, norms in {"a": [1, 5, 2], "b": [9, 1, 1]}.items():
            np.save(root / "video_features" / f"{vid}_rgb.npy", _visual(norms)[:-1])
        (root / "toy_anno.json").write_text(json.dumps({"a": {"hit": "[0, 1, 0]"}, "b": {"hit": [0, 0, 1]}}))
        (root / "splits.json").write_text(json.dumps({"d": {"val": ["a", "b"]}}))
        ds = load_dataset(root, "val")
        assert ds.name == "toy" and protocols("toy") == ["first", "hit"]
        res = evaluate_method(create_method("feature-norm"), ds)
        assert res.metric == "top-1" and res.per_video == {"a": 1.0, "b": 0.0} and res.overall == 0.5
    finally:
        BENCHMARKS.unregister("toy")
    with pytest.raises(UsageError, match="unknown benchmark 'toy'"):
        load_dataset(root, "val", name="toy")


# --- the CLI ----------------------------------------------------------------------


def test_cli_evaluate_youtube_val(youtube_dir, tmp_path, monkeypatch, capsys):
    j, p = tmp_path / "out" / "r.json", tmp_path / "out" / "p.jsonl"
    code, out, err = _cli(monkeypatch, capsys, "evaluate", "--data", youtube_dir, "--json", j, "--predictions", p)
    assert code == 0, err
    assert "split 'val'" in err and "1 listed without features" in err
    assert "dog" in out and "ski" in out and "mean" in out
    fn_row = next(line for line in out.splitlines() if "feature-norm" in line)
    assert "70.83" in fn_row and "41.67" in fn_row and "56.25" in fn_row  # 17/24, 10/24, 9/16
    doc = json.loads(j.read_text())
    assert doc["split"] == "val" and doc["missing"] == ["gone"]
    assert [r["method"] for r in doc["results"]] == ["random", "feature-norm"]
    assert doc["results"][1]["per_video"]["d3"] == pytest.approx(17 / 24)
    lines = [json.loads(x) for x in p.read_text().splitlines()]
    assert len(lines) == 4 and {x["video"] for x in lines} == {"d3", "s2"}
    assert all(len(x["scores"]) == 4 for x in lines)


def test_cli_evaluate_tvsum_all_and_shipped(tvsum_dir, tmp_path, monkeypatch, capsys):
    code, out, err = _cli(monkeypatch, capsys, "evaluate", "--data", tvsum_dir, "--split", "all", "--no-baselines",
                          "--method", "feature-norm")
    assert code == 0, err
    assert "split 'all', 4 videos" in err and "top-5 mAP" in out and "random" not in out
    # shipped weights are looked up by the dataset name: youtube weights do not count for tvsum
    _shipped(tmp_path, monkeypatch, np.eye(DV)[0])
    code, out, err = _cli(monkeypatch, capsys, "evaluate", "--data", tvsum_dir, "--method", "test-linear")
    assert code == 2 and "no shipped weights for tvsum" in err and "Traceback" not in err


def test_cli_errors_are_one_line(tmp_path, monkeypatch, capsys, youtube_dir):
    code, _, err = _cli(monkeypatch, capsys, "evaluate", "--data", tmp_path / "missing")
    assert code == 1 and "dataset directory not found" in err and len(err.strip().splitlines()) == 1
    code, _, err = _cli(monkeypatch, capsys, "evaluate", "--data", youtube_dir, "--method", "nope")
    assert code == 2 and "unknown method 'nope'" in err
    code, _, err = _cli(monkeypatch, capsys, "evaluate", "--data", youtube_dir, "--split", "test")
    assert code == 2 and "--split" in err
    code, _, err = _cli(monkeypatch, capsys, "evaluate", "--data", youtube_dir, "--json", youtube_dir / "r.json")
    assert code == 2 and "inside the dataset directory" in err
