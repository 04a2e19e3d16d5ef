"""The Python API that ``highlighter detect`` / ``highlighter trim`` wrap.

    from highlighter.api import cut, detect, DetectConfig, write_outputs
    result = detect("match.mp4")                  # DetectResult: scores per clip + segments
    result = detect("match.mp4", DetectConfig(method="feature-norm", backbone="efficientnet-lite0"))
    write_outputs(result, "out/match")           # out/match.json, .csv, .edl (formats= for otio, fcpxml, ...)
    cut(result, "out/match-reel.mp4")             # the segments as one frame-accurate reel (ffmpeg)

Pipeline: probe -> features (cached, `features.extract.cached_features`) -> detector
score per clip -> `outputs.segments.select_segments`. `Pipeline` loads the detector and
backbones once and scores many videos, in three steps a caller may also take one by one
(`features`, `score`, `select`: re-scoring or re-selecting never touches the video again);
`detect_many` runs it over many files with `batch.run_batch` and writes the outputs.

Which backbones: ``backbone="auto"`` takes the feature backbones the detector's weights
were trained on (recorded in the weights' ``info``), else the project default
(`DEFAULT_BACKBONES`). The audio backbone is only run when the detector uses audio at
inference (RASL scores from its visual branch alone), which halves the work.

Offline: when the chosen backbone's or detector's weights are absent and cannot be
downloaded (or the cached copy is unreadable), and the user did not pin ``backbone`` or ``weights``, `offline_plan`
switches to the backbones that need no download and keeps the method asked for: RASL then
pretrains on each video itself (`RASL.per_video`), training-free methods run as they are, and
methods that need weights trained in the feature space they score fail with one line. One
line announces it (through ``log``, and as an `errors.HighlighterWarning` for API users) and the
result records what was actually used (``method.fallback``,
``method.mode``, ``method.pretrain``, ``backbones``).

Shots: `Pipeline.features` also finds the video's shot cuts (PySceneDetect's ContentDetector,
fed by the visual backbone's own decode pass through `outputs.shots.ShotTap`, so they cost no
decode of their own; kept in the feature file, so a cache hit needs no pass; a cache hit of an
older file runs `outputs.shots.find_cuts`; ``DetectConfig.shots=False`` skips it); `select`
passes them to `select_segments`, so no segment spans a cut, and records them (``cuts``).

CPU default: without a CUDA device, ``backbone="auto"`` runs the offline pair even when the I3D
checkpoint is cached (I3D + PANNs: ~1.4 min per minute of video on this 2-core CPU, ~25x the offline pair) and never downloads it;
one line (`cpu_choice_line`, kept as ``method.why``) says so; ``backbone="i3d"`` still runs it.

"No clear highlight": `clip_signal` measures, independently of the method, whether the
video's clips differ at all; a flat video gets ``signal.clear = false``, a note and one
logged line (its segments are still returned).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from highlighter.batch import BatchReport, ItemResult, Job, run_batch
from highlighter.errors import HighlighterError, HighlighterWarning, InputError, UsageError, WeightsMissingError
from highlighter.features.base import DEFAULT_AUDIO, DEFAULT_VISUAL, OFFLINE_AUDIO, OFFLINE_VISUAL
from highlighter.methods import DEFAULT_METHOD
from highlighter.outputs.schema import DetectResult, MethodInfo, Signal, VideoInfo, WeightsInfo
from highlighter.outputs.segments import SelectConfig, select_segments
from highlighter.outputs.shots import ShotCuts, ShotTap, clean_cuts, find_cuts

DEFAULT_BACKBONES: tuple[str, str | None] = (DEFAULT_VISUAL, DEFAULT_AUDIO)
DEFAULT_TARGET = "video"  # shipped weights `{method}-video.safetensors` are for raw videos

Log = Callable[[str], None]


@dataclass
class DetectConfig:
    """Everything `detect` needs besides the video."""

    method: str = DEFAULT_METHOD
    backbone: str = "auto"  # "auto", a visual backbone name, or "visual+audio" (e.g. "i3d+panns")
    weights: str | None = None  # detector weights file; None = the shipped weights of `method`
    preset: str | None = None  # the method's named config (rasl: "video" = default, "paper" = the shipped weights)
    select: SelectConfig = field(default_factory=SelectConfig)
    cache_dir: str | None = None  # feature cache; None = the default cache
    use_cache: bool = True
    device: str = "auto"
    fallback: bool = True  # allow `offline_plan` when weights are missing
    pretrain: str = "auto"  # auto: the method's weights when they fit the features, else per video (rasl); video: always
    shots: bool = True  # find shot cuts (outputs/shots.py, ~4 s per minute of 720p) so segments respect them

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
        if self.pretrain not in PRETRAIN_MODES:
            raise UsageError(f"pretrain {self.pretrain!r}: use {' or '.join(PRETRAIN_MODES)}")
        if self.preset is not None:
            from highlighter.methods.base import preset_config

            preset_config(self.method, self.preset)  # unknown preset: one line listing the method's presets
        if self.pretrain == "video" and getattr(method_class(self.method), "per_video", None) is None:
            raise UsageError(f"method '{self.method}' cannot pretrain on the video itself; "
                             "pretrain='video' is for rasl")


PRETRAIN_MODES = ("auto", "video")


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
    fallback: str | None = None  # the announced line: why the requested pipeline was replaced
    mode: str | None = None  # "weights" | "video" (pretrained per video) | None (training-free)
    why: str | None = None  # video mode: why it pretrains on the video
    no_audio: str | None = None  # video mode without an audio backbone: why
    choice: str | None = None  # the one line saying which backbones and method run and why (CPU default)


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


def load_detector(method: str, weights: str | Path | None,
                  preset: str | None = None) -> tuple[Any, WeightsInfo | None]:
    """A ready detector (`methods.shipped.resolve_detector`) and what the result records of its weights."""
    from highlighter.features.weights import sha256_file
    from highlighter.methods.shipped import resolve_detector

    r = resolve_detector(method, weights, DEFAULT_TARGET, preset=preset)
    if r.weights is None:
        return r.detector, None
    return r.detector, WeightsInfo(id=r.weights.name, sha256=sha256_file(r.weights), path=str(r.weights.resolve()))


def offline_backbones(audio_wanted: bool) -> tuple[str, str | None]:
    """(visual, audio) that need no download: `features.base.OFFLINE_VISUAL` / `OFFLINE_AUDIO`,
    each only when registered in this install (else efficientnet-lite0 / no audio)."""
    from highlighter.features.base import BACKBONES

    visual = OFFLINE_VISUAL if OFFLINE_VISUAL in BACKBONES else "efficientnet-lite0"
    audio = OFFLINE_AUDIO if audio_wanted and OFFLINE_AUDIO and OFFLINE_AUDIO in BACKBONES else None
    return visual, audio


I3D_CPU_COST = "I3D costs ~1.4 min per minute of video on a 2-core CPU, ~25x the offline pair"  # README, benchmarks/detect.py --paths


def cpu_only(device: str) -> bool:
    """Whether the backbones will run on the CPU (``auto`` without a visible CUDA device)."""
    from highlighter.features.device import resolve_device

    return device == "cpu" or (device == "auto" and resolve_device("auto") == "cpu")


I3D_CHECKPOINT_FILE = "rgb_imagenet.pt"  # features/visual/i3d.py's WeightSpec.filename


def cpu_backbones() -> tuple[str, str | None]:
    """The CPU default: the offline pair even when the I3D checkpoint is cached (I3D + PANNs + RASL:
    63-72 s per minute of video on this quiet 2-core CPU, the offline pair 9; 250-435 s under load).
    Without the checkpoint nothing is downloaded: `WeightsMissingError`, so that `offline_plan` announces the fallback as before."""
    from highlighter.features.weights import weights_dir

    # The cache file by name, not through the weights registry: that would import the i3d module
    # and torch (2 s, 0.5 GB) before decoding starts (tests/test_detect.py checks the two agree).
    if not (weights_dir() / I3D_CHECKPOINT_FILE).is_file():
        raise WeightsMissingError(f"{DEFAULT_BACKBONES[0]} weights are not cached and a CPU run does not fetch them "
                                  f"({I3D_CPU_COST}, --backbone {DEFAULT_BACKBONES[0]} to use it)")
    return offline_backbones(True)


def cpu_choice_line(visual: str, audio: str | None, method: str, mode: str | None) -> str:
    """The one line a CPU run prints (and the JSON keeps as ``method.why``) when it picks the offline pair."""
    how = {"video": "per-video", "weights": "trained weights"}.get(mode or "", "training-free")
    pair = visual + (f" + {audio}" if audio else "")
    return (f"using {pair} with {method} ({how}): CPU only, {I3D_CPU_COST}; "
            f"--backbone {DEFAULT_BACKBONES[0]} to use it")


def offline_plan(method: str, exc: WeightsMissingError) -> Plan:
    """What runs when the requested pipeline's weights are missing and the user pinned neither
    backbone nor weights: the offline backbones and the method asked for, never another one.

    Training-free methods run as they are; RASL pretrains on each video itself (its
    ``per_video``: no benchmark-trained weights needed); a method that needs weights trained
    in the feature space it scores (CHD, AVR, HPCL) cannot run there: one line says how to fix it.
    """
    from highlighter.methods.base import method_class

    cls = method_class(method)
    per_video = getattr(cls, "per_video", None)
    if cls.trainable and per_video is None:
        raise WeightsMissingError(
            f"{exc} — method '{method}' needs weights trained on the features it scores, so it has no offline "
            "fallback; fix the above, or use --method rasl (pretrains on each video) or --method feature-norm")
    det, winfo = (per_video(), None) if cls.trainable else load_detector(method, None)
    visual, audio = offline_backbones(bool(getattr(det, "uses_audio", False)))
    mode = "video" if cls.trainable else None
    head = getattr(exc, "notice", None) or f"{exc}".split(";")[0]  # unreadable cache: says how to fix it
    pair = visual + (f"+{audio}" if audio else "")
    how = ", pretrained on each video itself" if mode == "video" else ""
    return Plan(method=method, detector=det, weights=winfo, visual=visual, audio=audio, requested=method,
                fallback=f"{head} — offline fallback: backbone {pair}, method {method}{how}", mode=mode,
                why="offline: no weights for the default backbone or detector" if mode == "video" else None,
                no_audio=None if audio else "no offline audio backbone in this install")


def dims_fit(det: Any, visual: str) -> bool:
    """Whether ``det``'s weights take the features of backbone ``visual`` (unknown sizes fit)."""
    from highlighter.features.base import backbone_class

    want = getattr(getattr(det, "config", None), "visual_dim", None)
    dim = backbone_class(visual).spec.dim
    return not (want and dim and int(want) != int(dim))


def _check_dims(det: Any, visual: str, method: str) -> None:
    from highlighter.features.base import backbone_class

    want = getattr(getattr(det, "config", None), "visual_dim", None)
    dim = backbone_class(visual).spec.dim
    if want and dim and int(want) != int(dim):
        raise UsageError(f"method '{method}' weights expect {want}-d visual features but backbone '{visual}' "
                         f"gives {dim}-d; use --backbone auto or weights trained on '{visual}'")


# --------------------------------------------------------------------------- pipeline
def tap_cuts(tap: ShotTap | None, meta: dict, video: Path) -> ShotCuts | None:
    """The shot cuts of the shared decode pass, or those the feature file recorded on a cache hit;
    None when neither has them (the caller then runs `find_cuts`)."""
    if tap is not None and tap.times:
        return tap.result(video)
    saved = meta.get("shot_cuts")
    if isinstance(saved, dict) and isinstance(saved.get("cuts"), list):
        return ShotCuts(cuts=clean_cuts(saved["cuts"]), seconds=0.0)
    return None


@dataclass
class VideoFeatureSet:
    """A video's probe and features: everything `Pipeline.score` and `Pipeline.select` need,
    so a caller can score and select again without probing or extracting again."""

    path: Path
    info: Any  # io.probe.MediaInfo
    features: Any  # features.store.FeatureFile
    cached: bool = False  # loaded from the feature cache
    seconds: float = 0.0  # probe + features
    pretrain: dict | None = None  # video mode: what `Pipeline.score` pretrained on this video
    shots: Any = None  # outputs.shots.ShotCuts; None when shot detection is off


class Pipeline:
    """Detector + backbones loaded once (with the offline fallback resolved).

    `run` = `features` (probe once, cached features) -> `score` -> `select`; a caller that
    keeps the `VideoFeatureSet` can score or select again without touching the video.
    """

    def __init__(self, config: DetectConfig | None = None, log: Log | None = None):
        from highlighter.features.extract import ExtractConfig, Extractor
        from highlighter.methods.base import method_class

        self.config = cfg = config or DetectConfig()
        self.log = log or (lambda _m: None)
        try:
            self.plan = self._plan(cfg)
            self.extract_config = ExtractConfig(visual=self.plan.visual, audio=self.plan.audio, device=cfg.device)
            self.extractor = Extractor(self.extract_config)
        except WeightsMissingError as exc:
            if not cfg.fallback or cfg.backbone != "auto" or cfg.weights is not None or \
                    cfg.preset not in (None, getattr(method_class(cfg.method), "default_preset", None)):
                raise  # a pinned backbone, weights file or preset is never silently replaced
            self.plan = offline_plan(cfg.method, exc)
            self.extract_config = ExtractConfig(visual=self.plan.visual, audio=self.plan.audio, device=cfg.device)
            self.extractor = Extractor(self.extract_config)
        if self.plan.fallback:
            self.log(self.plan.fallback)
            warnings.warn(self.plan.fallback, HighlighterWarning, stacklevel=2)
        elif self.plan.choice:
            self.log(self.plan.choice)
        elif self.plan.why and cfg.pretrain != "video":
            self.log(f"{self.plan.why} — {self.plan.method} pretrains on each video itself")

    def _plan(self, cfg: DetectConfig) -> Plan:
        from highlighter.methods.base import method_class

        method = cfg.method
        per_video = getattr(method_class(method), "per_video", None)
        try:
            det, winfo = load_detector(method, cfg.weights, cfg.preset)
        except WeightsMissingError:
            if per_video is None or cfg.backbone == "auto":
                raise  # auto backbones: `offline_plan` decides
            det, winfo = None, None  # a pinned backbone: pretrain on each video in its feature space
        cpu_default = False
        if cfg.backbone == "auto":
            trained_on = detector_backbones(det)
            visual, audio = trained_on or DEFAULT_BACKBONES
            if trained_on is None and visual == DEFAULT_BACKBONES[0] and cpu_only(cfg.device):
                (visual, audio), cpu_default = cpu_backbones(), True  # I3D on CPU: ~25x the offline pair
        else:
            visual, audio = parse_backbone(cfg.backbone)
        fits = det is not None and dims_fit(det, visual)
        mode, why = ("weights" if getattr(det, "trainable", False) else None), None
        if per_video is not None and winfo is None and det is not None and not det.needs_weights(det.config):
            mode, why = "video", f"{method}'s default: it pretrains on each video itself"  # any feature space
        elif per_video is not None and (cfg.pretrain == "video" or (not fits and cfg.weights is None)):
            det, mode = per_video(det if fits else None), "video"
            winfo = winfo if fits else None  # the weights it starts from, if any
            why = "asked for" if cfg.pretrain == "video" else f"no {method} weights for {visual} features"
        else:
            _check_dims(det, visual, method)
            if cfg.backbone != "auto" and audio is None and getattr(det, "uses_audio", False):
                audio = DEFAULT_BACKBONES[1]
        if not getattr(det, "uses_audio", False):
            audio = None  # the detector scores from vision alone: do not pay for audio features
        return Plan(method=method, detector=det, weights=winfo, visual=visual, audio=audio, requested=method,
                    mode=mode, why=why, no_audio=None if audio else "no audio backbone given (--backbone VISUAL+AUDIO)",
                    choice=cpu_choice_line(visual, audio, method, mode) if cpu_default else None)

    def features(self, video: str | Path, progress: Any = None) -> VideoFeatureSet:
        """Probe ``video`` once and get its features (from the cache when up to date)."""
        from highlighter.features.device import trim_heap
        from highlighter.features.extract import cached_features
        from highlighter.io.probe import probe_video

        video = Path(video)
        t0 = time.perf_counter()
        info = probe_video(video)
        cached = False
        tap = ShotTap() if self.config.shots else None  # shots from the frames the backbone's pass decodes
        if self.config.use_cache:
            ff, cached = cached_features(video, self.config.cache_dir, self.extract_config, extractor=self.extractor,
                                         progress=progress, info=info, frame_hook=tap)
        else:
            ff = self.extractor.extract(video, progress, info=info, frame_hook=tap)
        self.extractor.release()  # the frame engine's 100-200 MB go back before the detector imports torch
        trim_heap()  # and what the extraction freed (kept for reuse during it: `device.fast_heap`)
        if ff.visual is None:
            raise InputError(f"{video}: the feature file has no visual features; re-run with a visual backbone")
        seconds = time.perf_counter() - t0
        shots = None
        if self.config.shots:
            shots = tap_cuts(tap, ff.meta, video) or find_cuts(video)  # a cache hit without cuts: their own pass
        return VideoFeatureSet(video, info, ff, cached, seconds, shots=shots)

    def uses_audio(self, feats: VideoFeatureSet) -> bool:
        """Whether the detector scores from audio too (and the video has audio features)."""
        return bool(getattr(self.plan.detector, "uses_audio", False)) and feats.features.audio is not None

    def score(self, feats: VideoFeatureSet) -> np.ndarray:
        """One score per clip of ``feats`` (float64); the video is not read again."""
        ff = feats.features
        audio = ff.audio if self.uses_audio(feats) else None
        det = self.plan.detector
        with one_torch_thread():
            scores = np.asarray(det.score(ff.visual, audio), dtype=np.float64).reshape(-1)
        if scores.shape[0] != ff.starts.shape[0]:
            raise HighlighterError(f"{feats.path}: method '{self.plan.method}' returned {scores.shape[0]} scores "
                                   f"for {ff.starts.shape[0]} clips")
        if self.plan.mode == "video":
            run = dict(getattr(det, "last_run", None) or {})
            if run.get("init") == "weights" and self.plan.weights is not None:
                run["init"] = self.plan.weights.id
            no_audio = None
            if not run.get("audio"):
                no_audio = (self.plan.no_audio if self.plan.audio is None or not det.uses_audio
                            else "the video has no audio stream")
            feats.pretrain = {**run, "why": self.plan.why or "", "no_audio": no_audio}
        return scores

    def select(self, feats: VideoFeatureSet, scores: np.ndarray, select: SelectConfig | None = None,
               timings: dict[str, float] | None = None) -> DetectResult:
        """Segments of ``scores`` under ``select`` (default: the config's) as a full `DetectResult`."""
        t0 = time.perf_counter()
        select = select or self.config.select
        ff, info, video = feats.features, feats.info, feats.path
        grid_end = float(ff.meta.get("duration") or 0.0)
        duration = min(info.duration, grid_end) if grid_end > 0 and info.duration > 0 else (info.duration or grid_end)
        shots = feats.shots
        cuts = clean_cuts(shots.cuts, duration) if shots is not None and shots.cuts is not None else None
        segments = select_segments(ff.starts, ff.ends, scores, select, duration, cuts=cuts)
        timings = {**(timings or {}), **({"shots": shots.seconds} if shots else {}), "select": time.perf_counter() - t0}
        signal = clip_signal(ff.visual)
        notes = ([self.plan.fallback] if self.plan.fallback else []) + (
            ["features loaded from the cache"] if feats.cached else []) + ([signal.message] if signal.message else [])
        notes += [shots.note] if shots is not None and shots.note else []
        v = info.video
        return DetectResult(
            video=VideoInfo(path=str(video.resolve()), name=video.name, duration=float(duration),
                            width=v.display_width if v else None, height=v.display_height if v else None,
                            fps=float(v.fps) if v and v.fps else None, has_audio=info.has_audio,
                            size_bytes=info.size_bytes),
            method=MethodInfo(name=self.plan.method, weights=self.plan.weights, requested=self.plan.requested,
                              fallback=self.plan.fallback, mode=self.plan.mode, why=self.plan.choice,
                              pretrain=feats.pretrain if self.plan.mode == "video" else None),
            visual_backbone=ff.meta.get("visual_backbone") or self.extract_config.backbone_id(self.plan.visual),
            audio_backbone=(ff.meta.get("audio_backbone") if self.uses_audio(feats) else None),
            clip_seconds=float(self.extract_config.grid.clip_seconds),
            starts=np.asarray(ff.starts, dtype=np.float64), ends=np.minimum(np.asarray(ff.ends, np.float64), duration),
            scores=np.asarray(scores, dtype=np.float64), segments=segments, selection=select,
            timings=timings, notes=notes, signal=signal, cuts=cuts,
        )

    def run(self, video: str | Path, progress: Any = None) -> DetectResult:
        """`features` -> `score` -> `select` for one video."""
        feats = self.features(video, progress=progress)
        t1 = time.perf_counter()
        scores = self.score(feats)
        timings = {"features": feats.seconds, "detector": time.perf_counter() - t1}
        result = self.select(feats, scores, timings=timings)
        # wall stages only: "shots" is the shot tap's thread time, spent during the decode
        result.timings["total"] = sum(result.timings.get(k, 0.0) for k in ("features", "detector", "select"))
        if not feats.cached:  # parts of "features" (the decode thread overlaps the backbone: they overlap)
            parts = feats.features.meta.get("timings") or {}
            result.timings.update({f"features_{k}": float(v) for k, v in parts.items()})
        if result.signal is not None and result.signal.message:
            self.log(f"{feats.path.name}: {result.signal.message}")
        return result


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """torch on one intra-op thread for the detector: its networks are small, and a second thread
    cost more than it gave here (per-video RASL on the 174-s 720p join: 3.4 s CPU / 9.0 s wall with
    2 threads, 1.2 s / 3.2 s with 1, on the shared 2-core CPU). Nothing when torch is not loaded: a detector
    that never imports it (per-video RASL in numpy) must not pay its import (~1.8 s, ~0.5 GB; issue 14)."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# --------------------------------------------------------------------------- signal
FLAT_SPREAD = 0.1


def clip_signal(visual: np.ndarray, threshold: float = FLAT_SPREAD) -> Signal:
    """Whether the clips of a video differ enough for any ranking of them to mean something.

    Independent of the method: ``spread`` = the largest distance of a clip's visual feature
    from the video's mean feature, relative to the mean's length (scale-free, so one
    threshold serves every backbone; the max, not the mean, so one distinct moment in a
    still video counts). Below `FLAT_SPREAD` = 0.1 there is "no clear highlight". Measured
    (efficientnet-lite0 / efficientnet-lite0-motion, the latter over two versions of it; I3D =
    the benchmark features). Flat: lavfi colour 0 / 0; ../shared/videos/example.mp4 (solid
    colour + running timecode) 0.0015 / 0.026-0.045; static synthetic patterns with a ticking
    counter, also flat: lavfi grey + drawtext clock 0.073 / 0.055-0.070, testsrc 0.094 /
    0.051-0.060. Clear: testsrc2 (moving shapes) 0.22 / 0.27-0.69; v_ZNVhz7ctTq0.mp4 0.54 /
    0.46-0.62; v_GGSY1Qvo990.mp4 0.61 / 0.71-1.30; I3D: YouTube Highlights (234 videos) min
    0.24 (1st percentile 0.29), TVSum (50) min 0.90. A video of fewer than two clips
    (fire2.mp4, big_buck_bunny_432_433.webm: 1 clip each) has nothing to compare: it is its
    own highlight (clear, spread None).
    """
    x = np.asarray(visual, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        return Signal(clear=True, spread=None, threshold=threshold)
    mean = x.mean(axis=0)
    scale = float(np.linalg.norm(mean))
    spread = float(np.linalg.norm(x - mean, axis=1).max() / scale) if scale > 0 else 0.0
    return Signal(clear=spread >= threshold, spread=spread, threshold=threshold)


def detect(video: str | Path, config: DetectConfig | None = None, *, log: Log | None = None,
           progress: Any = None) -> DetectResult:
    """Scores and segments of one video (loads the models; use `Pipeline` for many videos)."""
    return Pipeline(config, log=log).run(video, progress=progress)


def write_outputs(result: DetectResult, stem: str | Path, formats: Iterable[str] | None = None) -> dict[str, Path]:
    """Write ``{stem}.json`` / ``.csv`` / ``.edl`` ... (``formats``: default json, csv, edl; see
    `outputs.writers.FORMATS`), each atomically (the folder is created); returns the paths by format."""
    from highlighter.outputs import writers

    return writers.write_outputs(result, stem, tuple(formats) if formats is not None else writers.DEFAULT_FORMATS)


def cut(result: DetectResult, output: str | Path, config: Any = None, *, video: str | Path | None = None,
        log: Log | None = None) -> Any:
    """Cut ``result``'s segments out of its video (or ``video``, the same file moved) into the reel
    ``output`` with ffmpeg (`outputs.trim.trim`; ``config``: a `TrimConfig`); returns the `TrimResult`."""
    from highlighter.outputs.trim import trim

    return trim(video if video is not None else result.video.path, result.segments, output, config, log=log)


# --------------------------------------------------------------------------- many files
@dataclass
class Detected:
    """What `detect_many` made of one video: the result and the files written."""

    result: DetectResult
    outputs: dict[str, Path] = field(default_factory=dict)


class VideoOutcome(ItemResult[Detected]):
    """One video of `detect_many` (a `batch.ItemResult`); ``result`` / ``outputs`` when done."""

    @property
    def result(self) -> DetectResult | None:
        return self.value.result if self.value is not None else None

    @property
    def outputs(self) -> dict[str, Path]:
        return self.value.outputs if self.value is not None else {}


def output_stem(out_dir: str | Path, rel: Path) -> Path:
    """``OUT/sub/video`` for the video ``sub/video.mp4`` found under a given folder.

    ``rel`` comes from `discover` without its suffix already: stripping again would turn
    ``a.v2.mp4`` into ``a`` (colliding with ``a.mp4``) and ``odd 19.62.mp4`` into ``odd 19``.
    """
    return Path(out_dir) / rel


@dataclass
class DetectJob:
    """The per-video work of `detect_many`: detect, write the outputs (atomically), return them.

    An object, not a closure, so that a cluster runner (`batch_ray`) can ship it: pickling drops
    the loaded models and the progress sink, and ``prepare`` loads them once per process."""

    config: DetectConfig
    formats: tuple[str, ...]
    report: bool = False
    log: Log | None = None
    progress: Any = None
    pipe: Pipeline | None = None

    def prepare(self) -> None:
        if self.pipe is None:
            self.pipe = Pipeline(self.config, log=self.log)

    def __call__(self, job: Job) -> Detected:
        from highlighter.outputs.report import write_report
        from highlighter.outputs.writers import write_outputs

        self.prepare()
        result = self.pipe.run(job.source, progress=self.progress)
        outputs = write_outputs(result, job.output, self.formats)
        if self.report:
            outputs["html"] = write_report(result, job.output.with_name(job.output.name + ".html"), video=job.source)
        return Detected(result, outputs)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "pipe": None, "progress": None}


def detect_many(inputs: Iterable[str | Path], config: DetectConfig, out_dir: str | Path,
                formats: tuple[str, ...] = ("json", "csv", "edl"), report: bool = False,
                log: Log | None = None, progress: Any = None,
                on_done: Callable[[VideoOutcome], None] | None = None, runner=run_batch) -> BatchReport[Detected]:
    """Detect in every video under ``inputs``, writing ``OUT/<name>.{json,csv,edl[,html]}``
    (with ``report``, a folder or several videos also get ``OUT/index.html`` linking every page).

    One file failing (corrupt, no video) is recorded and the rest go on; models are
    loaded once, before the first video (a missing checkpoint without fallback stops
    the run there, since it would fail every file). Returns the results in input order.
    ``runner``: `batch.run_batch`, or one with its call that runs elsewhere (`batch_ray.RayRunner`).
    """
    from highlighter.features.extract import discover
    from highlighter.outputs.report import write_index

    t0 = time.perf_counter()
    inputs = list(inputs)
    jobs = [Job(src, output_stem(out_dir, rel)) for src, rel in discover(inputs)]
    if not jobs:
        raise InputError(f"no video files found in {', '.join(str(p) for p in inputs)}")
    work = DetectJob(config, tuple(formats), report, log, progress)
    if progress is not None and hasattr(progress, "batch_start"):
        progress.batch_start(len(jobs))  # first, so the display starts before the models load (seconds)
    if runner is run_batch:  # another runner (`batch_ray`) prepares the work where it runs
        work.prepare()

    def finished(oc: ItemResult) -> None:
        if progress is not None and hasattr(progress, "video_end"):
            progress.video_end(oc.source, oc.status)
        if on_done:
            on_done(oc)

    results = runner(jobs, work, on_done=finished, result_type=VideoOutcome)
    if report and (len(jobs) > 1 or any(Path(p).is_dir() for p in inputs)):  # a folder run: one page linking all
        write_index(out_dir, results)
    return BatchReport(results, time.perf_counter() - t0)
