"""eval stage: benchmark datasets, the UMT-lineage metrics, and the harness."""

from highlighter.eval.benchmarks import Benchmark, Protocol, get_benchmark, register_benchmark  # noqa: F401
from highlighter.eval.datasets import Dataset, VideoFeatures, load_dataset  # noqa: F401
from highlighter.eval.harness import (  # noqa: F401
    EvalResult,
    default_split,
    evaluate_method,
    evaluate_scores,
    predict,
    read_predictions,
    write_predictions,
    write_results_json,
)
from highlighter.eval.metrics import (  # noqa: F401
    average_precision,
    tvsum_video_top5_map,
    youtube_video_ap,
)
