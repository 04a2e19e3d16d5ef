"""The Python API that ``highlighter detect`` / ``highlighter trim`` wrap.

    from highlighter.api import detect, DetectConfig
    result = detect("match.mp4")                  # DetectResult: scores per clip + segments
    result = detect("match.mp4", DetectConfig(method="feature-norm", backbone="efficientnet-lite0"))

Pipeline: probe -> features (cached, `features.extract.load_or_extract`) -> detector
score per clip -> `outputs.segments.select_segments`. `Pipeline` loads the detector and
backbones once and scores many videos; `detect_many` adds per-file isolation and writes
the outputs.

Which backbones: ``backbone="auto"`` takes the feature backbones the detector's weights
were trained on (recorded in the weights' ``info``), else the project default
(`DEFAULT_BACKBONES`). The audio backbone is only run when the detector uses audio at
inference (RASL scores from its visual branch alone), which halves the work.

Offline: when the chosen backbone's or detector's weights are absent and cannot be
downloaded (or the cached copy is unreadable), and the user did not pin ``backbone`` or ``weights``, `offline_fallback`
picks what works without network, one line says so, and the result records what was
actually used (``method.fallback``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from highlighter.errors import HighlighterError, InputError, UsageError, WeightsMissingError
from highlighter.outputs.schema import DetectResult, MethodInfo, VideoInfo, WeightsInfo
from highlighter.outputs.segments import SelectConfig, select_segments

DEFAULT_METHOD = "rasl"
DEFAULT_BACKBONES: tuple[str, str | None] = ("i3d", "panns")
DEFAULT_TARGET = "video"  # shipped weights `{method}-video.safetensors` are for raw videos

Log = Callable[[str], None]


@dataclass
class DetectConfig:
    """Everything `detect` needs besides the video."""

    method: str = DEFAULT_METHOD
    backbone: str = "auto"  # "auto", a visual backbone name, or "visual+audio" (e.g. "i3d+panns")
    weights: str | None = None  # detector weights file; None = the shipped weights of `method`
    select: SelectConfig = field(default_factory=SelectConfig)
    cache_dir: str | None = None  # feature cache; None = the default cache
    use_cache: bool = True
    device: str = "auto"
    fallback: bool = True  # allow `offline_fallback` when weights are missing

    def __post_init__(self) -> None:
        """Every check that needs no model, so a typo fails in a second, not after loading (no torch import
        unless a backbone is named)."""
        from highlighter.methods.base import available_methods, method_class

        if not isinstance(self.select, SelectConfig):
            raise UsageError(f"select must be a SelectConfig, got {type(self.select).__name__}")
        if self.method not in available_methods():
            method_class(self.method)  # the registry's one-line usage error, listing the valid names
        if self.backbone != "auto":
            parse_backbone(self.backbone)
        check_device(self.device)
        if self.weights is not None:
            check_weights_file(self.weights)


def check_device(spec: str) -> str:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` by syntax alone (whether CUDA is there needs torch: later)."""
    from highlighter.features.device import DEVICES

    s = str(spec).strip().lower()
    if s in DEVICES or (s.startswith("cuda:") and s[5:].isdigit()):
        return s
    raise UsageError(f"--device {spec!r}: unknown device; use {', '.join(DEVICES)} or cuda:N")


def check_weights_file(path: str | Path) -> Path:
    """A ``--weights`` path that is a readable file (its contents are checked when loaded)."""
    p = Path(path)
    try:
        is_file, is_dir = p.is_file(), p.is_dir()
    except OSError as exc:  # name too long, ...
        raise InputError(f"--weights {p}: {exc.strerror or exc}; pass a .safetensors file") from None
    if is_dir:
        raise InputError(f"--weights {p}: is a folder; pass a .safetensors file")
    if not is_file:
        raise InputError(f"--weights {p}: no such file; pass a .safetensors file (see `highlighter train`)")
    if not os.access(p, os.R_OK):
        raise InputError(f"--weights {p}: permission denied; make the file readable")
    return p


@dataclass
class Plan:
    """What will actually run (after resolving "auto" and any fallback)."""

    method: str
    detector: Any
    weights: WeightsInfo | None
    visual: str
    audio: str | None
    requested: str
    fallback: str | None = None


# --------------------------------------------------------------------------- resolving
def parse_backbone(spec: str) -> tuple[str, str | None]:
    """``"i3d+panns"`` -> ("i3d", "panns"); ``"efficientnet-lite0"`` -> ("efficientnet-lite0", None)."""
    from highlighter.features.base import backbone_class

    parts = [p.strip() for p in spec.split("+") if p.strip()]
    if not parts or len(parts) > 2:
        raise UsageError(f"--backbone {spec!r}: give 'auto', a visual backbone, or 'visual+audio'")
    visual, audio = parts[0], (parts[1] if len(parts) == 2 else None)
    if backbone_class(visual).spec.modality != "visual":
        raise UsageError(f"--backbone {spec!r}: '{visual}' is not a visual backbone (see `highlighter info`)")
    if audio is not None and backbone_class(audio).spec.modality != "audio":
        raise UsageError(f"--backbone {spec!r}: '{audio}' is not an audio backbone (see `highlighter info`)")
    return visual, audio


def detector_backbones(det: Any) -> tuple[str, str | None] | None:
    """The (visual, audio) backbones a trained detector's ``info`` says it was trained on, if any.

    Accepted shapes: ``{"backbones": {"visual": .., "audio": ..}}``, ``{"features": {...}}``
    or ``{"visual_backbone": .., "audio_backbone": ..}``; ids like ``"i3d:pretrained"`` are
    reduced to the name.
    """
    info = getattr(det, "info", None) or {}
    d = info.get("backbones") or info.get("features") or {
        "visual": info.get("visual_backbone"), "audio": info.get("audio_backbone")}
    if not isinstance(d, dict) or not d.get("visual"):
        return None

    def name(x: Any) -> str | None:
        return str(x).split(":")[0] if x else None

    return name(d.get("visual")), name(d.get("audio"))  # type: ignore[return-value]


def sha256_of(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_detector(method: str, weights: str | Path | None) -> tuple[Any, WeightsInfo | None]:
    """A ready detector: from ``weights``, the method's shipped weights, or fresh if training-free."""
    from highlighter.methods.base import create_method, load_method, method_class
    from highlighter.methods.shipped import shipped_path, shipped_weights

    cls = method_class(method)  # UsageError listing the valid names
    if weights is None and not cls.trainable:
        return create_method(method), None
    path = Path(weights) if weights is not None else shipped_weights(method, DEFAULT_TARGET)
    if path is None:
        raise WeightsMissingError(
            f"no weights for method '{method}' (expected {shipped_path(method, DEFAULT_TARGET)}); "
            f"pass --weights FILE, train it with `highlighter train`, or use a training-free method")
    det = load_method(path, name=method)
    return det, WeightsInfo(id=path.name, sha256=sha256_of(path), path=str(path.resolve()))


FALLBACK_VISUAL = "efficientnet-lite0"  # weights ship inside a pip package: always offline
FALLBACK_METHOD = "feature-norm"  # training-free, works in any feature space


def offline_fallback(requested: str, reason: str) -> tuple[str, str | None, str]:
    """(visual backbone, audio backbone, method) to use when the requested pipeline's weights are missing.

    Choice: EfficientNet-Lite0 (its ImageNet weights come with a registry package, so it
    runs on a fresh machine without network) + the training-free ``feature-norm`` score
    (no trained detector exists for this feature space; per-video RASL training costs
    minutes per video on a CPU). The lead may swap the method here; everything else
    (the notice, what is recorded in the output) follows from this function.
    """
    return FALLBACK_VISUAL, None, FALLBACK_METHOD


def _check_dims(det: Any, visual: str, method: str) -> None:
    from highlighter.features.base import backbone_class

    want = getattr(getattr(det, "config", None), "visual_dim", None)
    dim = backbone_class(visual).spec.dim
    if want and dim and int(want) != int(dim):
        raise UsageError(f"method '{method}' weights expect {want}-d visual features but backbone '{visual}' "
                         f"gives {dim}-d; use --backbone auto or weights trained on '{visual}'")


# --------------------------------------------------------------------------- pipeline
class Pipeline:
    """Detector + backbones loaded once (with the offline fallback resolved); `run` scores one video."""

    def __init__(self, config: DetectConfig | None = None, log: Log | None = None):
        from highlighter.features.extract import ExtractConfig, Extractor

        self.config = cfg = config or DetectConfig()
        self.log = log or (lambda _m: None)
        try:
            self.plan = self._plan(cfg.method, cfg.weights, cfg.backbone)
            self.extract_config = ExtractConfig(visual=self.plan.visual, audio=self.plan.audio, device=cfg.device)
            self.extractor = Extractor(self.extract_config)
        except WeightsMissingError as exc:
            if not cfg.fallback or cfg.backbone != "auto" or cfg.weights is not None:
                raise
            visual, audio, method = offline_fallback(cfg.method, str(exc))
            head = getattr(exc, "notice", None) or f"{exc}".split(";")[0]  # unreadable cache: says how to fix it
            reason = f"{head} — using offline fallback: backbone {visual}, method {method}"
            self.log(reason)
            det, winfo = load_detector(method, None)
            self.plan = Plan(method=method, detector=det, weights=winfo, visual=visual, audio=audio,
                             requested=cfg.method, fallback=reason)
            self.extract_config = ExtractConfig(visual=visual, audio=audio, device=cfg.device)
            self.extractor = Extractor(self.extract_config)

    def _plan(self, method: str, weights: str | None, backbone: str) -> Plan:
        det, winfo = load_detector(method, weights)
        if backbone == "auto":
            visual, audio = detector_backbones(det) or DEFAULT_BACKBONES
        else:
            visual, audio = parse_backbone(backbone)
            if audio is None and getattr(det, "uses_audio", False):
                audio = DEFAULT_BACKBONES[1]
        if not getattr(det, "uses_audio", False):
            audio = None  # the detector scores from vision alone: do not pay for audio features
        _check_dims(det, visual, method)
        return Plan(method=method, detector=det, weights=winfo, visual=visual, audio=audio, requested=method)

    def run(self, video: str | Path, progress: Any = None) -> DetectResult:
        from highlighter.features.extract import default_cache_dir, extract_features, load_or_extract
        from highlighter.io.probe import probe_video

        video = Path(video)
        t0 = time.perf_counter()
        info = probe_video(video)
        notes = [self.plan.fallback] if self.plan.fallback else []
        if self.config.use_cache:
            from highlighter.features.extract import cache_path
            from highlighter.features.store import SourceKey, check_output

            cache = Path(self.config.cache_dir) if self.config.cache_dir else default_cache_dir()
            if check_output(cache_path(video, cache), SourceKey.of(video), self.extract_config) is None:
                notes.append("features loaded from the cache")
            ff = load_or_extract(video, cache, self.extract_config, extractor=self.extractor, progress=progress)
        else:
            ff = extract_features(video, self.extract_config, extractor=self.extractor, progress=progress)
        t1 = time.perf_counter()
        if ff.visual is None:
            raise InputError(f"{video}: the feature file has no visual features; re-run with a visual backbone")
        audio = ff.audio if getattr(self.plan.detector, "uses_audio", False) else None
        scores = np.asarray(self.plan.detector.score(ff.visual, audio), dtype=np.float64).reshape(-1)
        t2 = time.perf_counter()
        if scores.shape[0] != ff.starts.shape[0]:
            raise HighlighterError(f"{video}: method '{self.plan.method}' returned {scores.shape[0]} scores "
                                   f"for {ff.starts.shape[0]} clips")
        grid_end = float(ff.meta.get("duration") or 0.0)
        duration = min(info.duration, grid_end) if grid_end > 0 and info.duration > 0 else (info.duration or grid_end)
        segments = select_segments(ff.starts, ff.ends, scores, self.config.select, duration)
        t3 = time.perf_counter()
        v = info.video
        return DetectResult(
            video=VideoInfo(path=str(video.resolve()), name=video.name, duration=float(duration),
                            width=v.display_width if v else None, height=v.display_height if v else None,
                            fps=float(v.fps) if v and v.fps else None, has_audio=info.has_audio,
                            size_bytes=info.size_bytes),
            method=MethodInfo(name=self.plan.method, weights=self.plan.weights, requested=self.plan.requested,
                              fallback=self.plan.fallback),
            visual_backbone=ff.meta.get("visual_backbone") or self.extract_config.backbone_id(self.plan.visual),
            audio_backbone=(ff.meta.get("audio_backbone") if audio is not None else None),
            clip_seconds=float(self.extract_config.grid.clip_seconds),
            starts=np.asarray(ff.starts, dtype=np.float64), ends=np.minimum(np.asarray(ff.ends, np.float64), duration),
            scores=scores, segments=segments, selection=self.config.select,
            timings={"features": t1 - t0, "detector": t2 - t1, "select": t3 - t2, "total": t3 - t0},
            notes=notes,
        )


def detect(video: str | Path, config: DetectConfig | None = None, *, log: Log | None = None,
           progress: Any = None) -> DetectResult:
    """Scores and segments of one video (loads the models; use `Pipeline` for many videos)."""
    return Pipeline(config, log=log).run(video, progress=progress)


# --------------------------------------------------------------------------- many files
@dataclass
class VideoOutcome:
    source: Path
    status: str  # "done" | "failed"
    result: DetectResult | None = None
    outputs: dict[str, Path] = field(default_factory=dict)
    message: str = ""
    seconds: float = 0.0


def output_stem(out_dir: str | Path, rel: Path) -> Path:
    """``OUT/sub/video`` for the video ``sub/video.mp4`` found under a given folder."""
    return Path(out_dir) / rel.with_suffix("") if rel.suffix else Path(out_dir) / rel


def detect_many(inputs: Iterable[str | Path], config: DetectConfig, out_dir: str | Path,
                formats: tuple[str, ...] = ("json", "csv", "edl"), report: bool = False,
                log: Log | None = None, progress: Any = None,
                on_done: Callable[[VideoOutcome], None] | None = None) -> list[VideoOutcome]:
    """Detect in every video under ``inputs``, writing ``OUT/<name>.{json,csv,edl[,html]}``.

    One file failing (corrupt, no video) is recorded and the rest go on; models are
    loaded once, before the first video (a missing checkpoint without fallback stops
    the run there, since it would fail every file).
    """
    from highlighter.features.extract import discover
    from highlighter.outputs.report import write_report
    from highlighter.outputs.writers import write_outputs

    jobs = discover(inputs)
    if not jobs:
        raise InputError(f"no video files found in {', '.join(str(p) for p in inputs)}")
    pipe = Pipeline(config, log=log)
    outcomes: list[VideoOutcome] = []
    if progress is not None and hasattr(progress, "batch_start"):
        progress.batch_start(len(jobs))
    for src, rel in jobs:
        t = time.perf_counter()
        try:
            result = pipe.run(src, progress=progress)
            stem = output_stem(out_dir, rel)
            outputs = write_outputs(result, stem, formats)
            if report:
                outputs["html"] = write_report(result, stem.with_name(stem.name + ".html"), video=src)
            oc = VideoOutcome(src, "done", result, outputs, seconds=time.perf_counter() - t)
        except HighlighterError as exc:
            oc = VideoOutcome(src, "failed", message=str(exc), seconds=time.perf_counter() - t)
        except OSError as exc:  # e.g. an output folder that became unwritable: say which file and why
            where = f" ({exc.filename})" if exc.filename else ""
            oc = VideoOutcome(src, "failed", message=f"{src}: {exc.strerror or exc}{where}",
                              seconds=time.perf_counter() - t)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
            oc = VideoOutcome(src, "failed", message=f"{src}: {type(exc).__name__}: {exc}",
                              seconds=time.perf_counter() - t)
        if progress is not None and hasattr(progress, "video_end"):
            progress.video_end(src, oc.status)
        if on_done:
            on_done(oc)
        outcomes.append(oc)
    return outcomes
