"""GPU check: every backbone on CUDA in fp16 with batching; its speed, its peak GPU memory, and
whether its GPU features agree with the CPU's.

    bash benchmarks/gpu_check.sh [OUT_DIR]            # on the CUDA machine (what a person runs)
    .venv/bin/python benchmarks/gpu_check.py --json OUT/gpu_check.json [--backbones i3d,panns]
    .venv/bin/python benchmarks/gpu_check.py --cpu-dry-run --json /tmp/g.json --backbones logmel  # on CPU

Input: one synthetic video made with ffmpeg lavfi (``testsrc2``, a moving test pattern, plus a
sine, silent from 2 to 4 s; default 24 s at 640x360), decoded once per input contract with the
project's decoders and cut on the default 2-s clip grid with the extractor's own functions.

Per backbone of the registry (visual: i3d, r3d, swin, efficientnet-lite0, efficientnet-lite0-motion;
audio: panns, mockingjay, logmel, yamnet), one row:

* weights: the published ones when `highlighter features list` shows them cached or bundled,
  else random weights of the same architecture (same compute; the row says ``random``).
  Nothing is downloaded. yamnet has no random variant: without its file the row is skipped.
* reference: CPU, float32, one clip at a time (batch 1), on the first ``--agree-clips`` clips.
* fp32: the same weights on the GPU, batched, TF32 off (IEEE float32, so the check isolates
  device bugs from precision): min cosine over the clips must be >= 0.999.
* fp16: ``features.device.inference`` (torch.autocast float16, as `extract-features` runs on CUDA),
  batched: min cosine >= 0.99, and every value finite. Why 0.99: fp16 rounds each value with
  unit roundoff u = 2^-11 = 4.9e-4. Under autocast, convolutions and matmuls take fp16 inputs and
  accumulate in fp32, while norms, softmax and reductions stay fp32, so each of the L layers adds
  an independent relative error of about u*sqrt(2), and these add in quadrature: the relative error
  of the feature vector is e ~ g*u*sqrt(2L), with g the network's error gain (a few for trained
  nets). For cos(a, a + d) ~ 1 - e^2/2: I3D (L ~ 60 conv layers) with g = 10 gives e ~ 0.054,
  cos ~ 0.9985. The 0.99 bar allows e up to 0.14 (2.6x that worst case); what fp16 actually
  breaks (overflow past 65504 to inf, a small constant rounding to 0, a wrong cast) moves a
  feature by e >~ 0.3 or makes it NaN, far below 0.99.
* speed: model video-s per wall-s = seconds of video in the clips / wall time of ``embed_clips``
  in batches of ``--batch-size`` under fp16 (one warm-up batch first; CUDA synchronised), capped by
  ``--budget-s`` per backbone; extract video-s per wall-s = `Extractor.extract` of the whole video
  (decode included) in fp16 with the same batch size.
* memory: ``torch.cuda.max_memory_allocated`` over each of the two runs (weights included).

Prints one table and writes the JSON (rewritten atomically after each row, so a run cut short
keeps what it measured). Finishes in under 5 minutes on one GPU (``--time-limit``, default 270 s:
a backbone that would start later is reported as not run).

Exit: 0 every check passed (skipped rows included); 1 an agreement check failed, a backbone
errored or was not run; 2 bad options, or no CUDA (one line; ``--cpu-dry-run`` runs the same code
on CPU with tiny inputs instead, fp16 rows then say n/a: fp16 is CUDA-only in this project).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from highlighter.errors import HighlighterError, UsageError  # noqa: E402

FP32_MIN_COSINE = 0.999
FP16_MIN_COSINE = 0.99
FP16_REASON = ("fp16 unit roundoff u = 2^-11; ~u*sqrt(2L) relative error over L autocast layers, times an "
               "error gain of up to 10, gives cos ~ 0.9985 for I3D (L ~ 60); 0.99 allows 2.6x that, while "
               "overflow / underflow-to-0 / wrong casts give cos < 0.95 or NaN")
GPU_DEFAULTS = {"duration": 24.0, "size": "640x360", "agree_clips": 4, "batch_size": 8, "budget_s": 20.0}
DRY_DEFAULTS = {"duration": 4.0, "size": "64x48", "agree_clips": 2, "batch_size": 2, "budget_s": 20.0}
SCHEMA = "highlighter-gpu-check/1"
FP16_TINY = 1e-3  # features this small sit within 2^4 of fp16's smallest normal (6.1e-5): precision thins out


# --------------------------------------------------------------------------- pure helpers
def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each row of ``a`` with the same row of ``b`` (float64); NaN where a row is not finite.

    Two all-zero rows agree (1.0): a backbone may legitimately give zeros (ReLU of silence)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"feature shapes differ: {a.shape} vs {b.shape}")
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (a * b).sum(axis=1) / (na * nb)
    cos = np.where((na == 0) & (nb == 0), 1.0, np.where((na == 0) | (nb == 0), 0.0, cos))
    finite = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    return np.where(finite, cos, np.nan)


def agreement(test: np.ndarray, ref: np.ndarray, threshold: float, label: str) -> tuple[float | None, list[str]]:
    """(min cosine, or None when some value is not finite; problems) of ``test`` against ``ref``."""
    cos = cosines(test, ref)
    if np.isnan(cos).any():
        bad = int(np.isnan(cos).sum())
        return None, [f"{label}: {bad} of {len(cos)} clip(s) have non-finite features (inf/NaN)"]
    low = float(cos.min())
    return low, ([] if low >= threshold else [f"{label}: min cosine {low:.6f} < {threshold}"])


def batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size {text!r}: use WxH, e.g. 640x360") from None
    if w < 16 or h < 16 or w % 2 or h % 2:
        raise UsageError(f"--size {text!r}: width and height must be even and at least 16")
    return w, h


# --------------------------------------------------------------------------- input
def make_video(path: Path, duration: float, size: tuple[int, int]) -> Path:
    """A moving test pattern at 30 fps with a 440 Hz sine, silent from 2 to 4 s: the second clip,
    inside the agreement clips, since silence is where audio front ends hit their floor (log(0) in fp16)."""
    from highlighter.io import run_ffmpeg

    w, h = size
    run_ffmpeg(["-y", "-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate=30:duration={duration}",
                "-f", "lavfi", "-i", f"aevalsrc=0.5*sin(2*PI*440*t)*not(between(t\\,2\\,4)):s=44100:d={duration}",
                "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18",
                "-pix_fmt", "yuv420p", "-g", "60", "-c:a", "aac", "-b:a", "128k", "-t", str(duration), str(path)],
               what="making the synthetic video")
    return path


@dataclass
class Inputs:
    """The synthetic video and its clips, decoded once per input contract."""

    video: Path
    info: Any
    starts: np.ndarray
    ends: np.ndarray
    cache: dict[tuple, list[np.ndarray]] = field(default_factory=dict)

    @classmethod
    def of(cls, video: Path) -> "Inputs":
        from highlighter.features.grid import ClipGrid
        from highlighter.io import probe_video

        info = probe_video(video)
        v = info.video
        starts, ends = ClipGrid().clips(v.start + v.duration)
        return cls(video, info, starts, ends)

    def clips(self, cls_: Any) -> list[np.ndarray]:
        """Every clip of the video for backbone class ``cls_``: decoded at its rate and size, cut on
        the grid with the extractor's own functions."""
        from highlighter.features.extract import clip_frames, clip_samples
        from highlighter.io import iter_audio, iter_frames

        visual = cls_.spec.modality == "visual"
        key = ("visual", cls_.fps, cls_.short_side) if visual else ("audio", cls_.sample_rate)
        if key not in self.cache:
            if visual:
                chunks = iter_frames(self.video, fps=cls_.fps, short_side=cls_.short_side or None, info=self.info)
                cut = clip_frames(((c.frames, np.asarray(getattr(c, "times", c.pts))) for c in chunks),
                                  self.starts, self.ends)
            else:
                sr = int(cls_.sample_rate)
                cut = clip_samples(((a.samples, a.start) for a in iter_audio(self.video, sr, 30.0, info=self.info)),
                                   sr, self.starts, self.ends)
            self.cache[key] = [clip for _i, clip, _pad in cut]
        return self.cache[key]

    def seconds(self, n: int) -> float:
        """Video seconds covered by the first ``n`` clips."""
        return float((self.ends[:n] - self.starts[:n]).sum())


# --------------------------------------------------------------------------- torch pieces
@contextlib.contextmanager
def strict_fp32() -> Iterator[None]:
    """TF32 off for cuDNN convolutions and cuBLAS matmuls (Ampere+ use TF32 for float32 convs by
    default), restored afterwards; uses torch's newer ``fp32_precision`` knobs when present."""
    import torch

    mm, conv = torch.backends.cuda.matmul, getattr(torch.backends.cudnn, "conv", None)
    if hasattr(mm, "fp32_precision") and hasattr(conv, "fp32_precision"):
        saved = (mm.fp32_precision, conv.fp32_precision)
        mm.fp32_precision = conv.fp32_precision = "ieee"
        try:
            yield
        finally:
            mm.fp32_precision, conv.fp32_precision = saved
    else:
        saved = (mm.allow_tf32, torch.backends.cudnn.allow_tf32)
        mm.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        try:
            yield
        finally:
            mm.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def embed(bb: Any, clips: list[np.ndarray], batch: int, device: str, fp16: bool) -> np.ndarray:
    """(len(clips), dim) features, ``batch`` clips per ``embed_clips`` call, as the extractor calls it."""
    from highlighter.features.device import inference

    out = []
    for b in batches(clips, batch):
        with inference(device, fp16):
            out.append(np.asarray(bb.embed_clips(b), dtype=np.float32))
    return np.concatenate(out) if out else np.zeros((0, bb.spec.dim), dtype=np.float32)


def build(name: str, device: str, pretrained: bool) -> Any:
    """The backbone, its random weights (if any) seeded so every build is the same."""
    import torch

    from highlighter.features.base import create_backbone

    torch.manual_seed(0)
    return create_backbone(name, device, pretrained)


def copy_weights(src: Any, dst: Any) -> None:
    """Make ``dst`` hold exactly ``src``'s weights (the seed already should; this makes sure)."""
    import torch

    model = getattr(src, "model", None)
    if isinstance(model, torch.nn.Module) and isinstance(getattr(dst, "model", None), torch.nn.Module):
        dst.model.load_state_dict(model.state_dict())


class Gpu:
    """Synchronise and read peak memory on CUDA; no-ops on CPU (the dry run)."""

    def __init__(self, device: str):
        import torch

        self.torch, self.device, self.on = torch, device, device.startswith("cuda")

    def sync(self) -> None:
        if self.on:
            self.torch.cuda.synchronize(self.device)

    def reset(self) -> None:
        if self.on:
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats(self.device)

    def peak_mb(self) -> float | None:
        return round(self.torch.cuda.max_memory_allocated(self.device) / 2**20, 1) if self.on else None


# --------------------------------------------------------------------------- one backbone
@dataclass(frozen=True)
class Run:
    device: str
    fp16: bool
    batch: int
    agree_clips: int
    budget_s: float


def weights_kind(name: str) -> tuple[bool, str]:
    """(use published weights?, their status as `highlighter features list` shows it)."""
    from highlighter.cli.features import weights_status
    from highlighter.features.base import backbone_class

    status = weights_status(backbone_class(name).spec)
    return status in ("cached", "bundled", "none needed"), status


def build_reference(name: str, pretrained: bool, row: dict[str, Any]) -> tuple[Any, bool] | None:
    """(CPU backbone, pretrained?): published weights, else random ones; None when neither builds."""
    try:
        return build(name, "cpu", pretrained), pretrained
    except HighlighterError as exc:
        if pretrained:
            with contextlib.suppress(HighlighterError):
                ref = build(name, "cpu", False)
                row["notes"].append(f"published weights unusable ({exc}); random weights instead")
                return ref, False
        row["notes"].append(f"cannot be built: {exc}")
        return None


def timed_embed(bb: Any, clips: list[np.ndarray], run: Run, keep: int) -> tuple[np.ndarray, float, float | None]:
    """(features of the clips done, wall seconds, peak GPU MB): batches at the run's precision after
    one warm-up batch (lazy CUDA init, cuDNN plans), until all clips or ``budget_s`` (at least ``keep``)."""
    gpu = Gpu(run.device)
    embed(bb, clips[:run.batch], run.batch, run.device, run.fp16)
    gpu.sync()
    gpu.reset()
    feats, done, t0 = [], 0, time.perf_counter()
    for b in batches(clips, run.batch):
        feats.append(embed(bb, b, run.batch, run.device, run.fp16))
        done += len(b)
        if time.perf_counter() - t0 > run.budget_s and done >= keep:
            break
    gpu.sync()
    return np.concatenate(feats), time.perf_counter() - t0, gpu.peak_mb()


def timed_extract(name: str, modality: str, pretrained: bool, inputs: Inputs, run: Run) -> dict[str, Any]:
    """`Extractor.extract` of the whole video (decode included) at the run's device, precision and batch."""
    from highlighter.features.extract import ExtractConfig, Extractor

    gpu = Gpu(run.device)
    gpu.reset()
    ex = Extractor(ExtractConfig(visual=name if modality == "visual" else None,
                                 audio=name if modality == "audio" else None, pretrained=pretrained,
                                 device=run.device, batch_size=run.batch, fp16=run.fp16))
    t0 = time.perf_counter()
    ff = ex.extract(inputs.video, info=inputs.info)
    gpu.sync()
    wall = time.perf_counter() - t0
    x = ff.visual if modality == "visual" else ff.audio
    out = {"extract_video_s_per_s": round(float(ff.meta["duration"]) / wall, 2), "extract_s": round(wall, 3),
           "peak_gpu_mb_extract": gpu.peak_mb(),
           "problems": [] if x is not None and np.isfinite(x).all() else ["extract: features missing or not finite"]}
    del ex, ff
    gpu.reset()
    return out


def check_backbone(name: str, inputs: Inputs, run: Run) -> dict[str, Any]:
    """One row: build (published or random weights), agreement, speed and memory."""
    import torch

    from highlighter.features.base import backbone_class

    t0 = time.perf_counter()
    spec = backbone_class(name).spec
    pretrained, status = weights_kind(name)
    row: dict[str, Any] = {"backbone": name, "modality": spec.modality, "dim": spec.dim, "weights_status": status,
                           "batch_size": run.batch, "precision": "fp16" if run.fp16 else "fp32",
                           "status": "ok", "problems": [], "notes": []}
    built = build_reference(name, pretrained, row)
    if built is None:
        row.update(status="skipped", weights="none")
        return _finish(row, t0)
    ref, pretrained = built
    row["weights"] = "none" if status == "none needed" else ("pretrained" if ref.pretrained else "random")
    clips = inputs.clips(backbone_class(name))
    k = min(run.agree_clips, len(clips))
    row.update(clips=len(clips), agree_clips=k)

    reference = embed(ref, clips[:k], 1, "cpu", False)
    peak = float(np.abs(reference).max()) if reference.size else 0.0
    row["ref_abs_max"] = peak if np.isfinite(peak) else None  # the JSON holds no NaN
    if row["weights"] == "random" and run.fp16 and 0 < peak < FP16_TINY:
        row["notes"].append(f"random-weight features peak at {peak:.1e}, near fp16's subnormal range: "
                            "an fp16 miss may be the random init, not the device; import the real weights")
    dev = build(name, run.device, pretrained)
    copy_weights(ref, dev)
    if not isinstance(getattr(dev, "model", None), torch.nn.Module):
        row["notes"].append("no torch model: runs on the CPU whatever the device")
    del ref
    with strict_fp32():
        f32 = embed(dev, clips[:k], run.batch, run.device, False)
    row["cos_fp32"], problems = agreement(f32, reference, FP32_MIN_COSINE, "fp32 GPU vs CPU")
    row["problems"] += problems

    feats, wall, peak_mb = timed_embed(dev, clips, run, k)
    del dev
    row.update(clips_timed=len(feats), model_video_s_per_s=round(inputs.seconds(len(feats)) / wall, 2),
               model_s=round(wall, 3), peak_gpu_mb_model=peak_mb)
    if len(feats) < len(clips):
        row["notes"].append(f"model timing stopped after {len(feats)} of {len(clips)} clips (--budget-s)")
    if run.fp16:
        row["cos_fp16"], problems = agreement(feats[:k], reference, FP16_MIN_COSINE, "fp16 GPU vs CPU fp32")
        row["problems"] += problems
    else:
        row["cos_fp16"] = None
        row["notes"].append("fp16 not checked: it needs CUDA")

    e2e = timed_extract(name, spec.modality, pretrained, inputs, run)
    row["problems"] += e2e.pop("problems")
    row.update(e2e)
    if row["problems"]:
        row["status"] = "FAIL"
    return _finish(row, t0)


def _finish(row: dict[str, Any], t0: float) -> dict[str, Any]:
    row["seconds"] = round(time.perf_counter() - t0, 2)
    return row


# --------------------------------------------------------------------------- report
COLUMNS = (("backbone", 26), ("weights", 10), ("clips", 5), ("prec", 4), ("model v-s/s", 11),
           ("extract v-s/s", 13), ("peak GPU MB", 11), ("cos fp32", 9), ("cos fp16", 9), ("result", 0))


def _fmt(v: Any, digits: int = 5) -> str:
    if v is None:
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def table(rows: list[dict[str, Any]]) -> str:
    """One plain-text table, one line per backbone, problems and notes after the result."""
    lines = ["  ".join(h.ljust(w) if w else h for h, w in COLUMNS)]
    for r in rows:
        peaks = [p for p in (r.get("peak_gpu_mb_model"), r.get("peak_gpu_mb_extract")) if p is not None]
        result = r["status"] + "".join(f"; {p}" for p in r["problems"] + r["notes"])
        cells = [r["backbone"], r.get("weights", "-"), _fmt(r.get("clips")), r.get("precision", "-"),
                 _fmt(r.get("model_video_s_per_s"), 1), _fmt(r.get("extract_video_s_per_s"), 1),
                 _fmt(max(peaks) if peaks else None, 0), _fmt(r.get("cos_fp32")), _fmt(r.get("cos_fp16")), result]
        lines.append("  ".join(c.ljust(w) if w else c for c, (_h, w) in zip(cells, COLUMNS)))
    return "\n".join(lines)


def environment(device: str) -> dict[str, Any]:
    import torch

    from highlighter import __version__

    env = {"highlighter": __version__, "torch": torch.__version__, "cuda": torch.version.cuda,
           "device": device, "cpu_threads": torch.get_num_threads()}
    if device.startswith("cuda"):
        env.update(gpu=torch.cuda.get_device_name(device), cudnn=torch.backends.cudnn.version(),
                   gpu_memory_mb=round(torch.cuda.get_device_properties(device).total_memory / 2**20))
    return env


def write_json(path: Path, doc: dict[str, Any]) -> None:
    from highlighter.atomic import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(doc, indent=2, allow_nan=False) + "\n")


# --------------------------------------------------------------------------- main
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like the CLI's usage errors
        raise UsageError(f"{message}; see --help")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = _Parser(prog="gpu_check.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", default="gpu_check.json", help="where to write the results (default: %(default)s)")
    ap.add_argument("--backbones", default="", help="comma list (default: every registered backbone)")
    ap.add_argument("--cpu-dry-run", action="store_true", help="run the same code on CPU with tiny inputs")
    ap.add_argument("--duration", type=float, help=f"video seconds (default {GPU_DEFAULTS['duration']}, "
                                                   f"dry run {DRY_DEFAULTS['duration']})")
    ap.add_argument("--video", help="use this video instead of making the synthetic one (a machine without the "
                                    "ffmpeg CLI: make it elsewhere with --make-video PATH)")
    ap.add_argument("--make-video", help="only write the synthetic video (at --duration / --size) to this path")
    ap.add_argument("--size", help=f"video WxH (default {GPU_DEFAULTS['size']}, dry run {DRY_DEFAULTS['size']})")
    ap.add_argument("--batch-size", type=int, help="clips per embed_clips call (default 8, dry run 2)")
    ap.add_argument("--agree-clips", type=int, help="clips compared with the CPU (default 4, dry run 2)")
    ap.add_argument("--budget-s", type=float, help="cap on each backbone's model timing (default 20 s)")
    ap.add_argument("--time-limit", type=float, default=270.0,
                    help="no backbone starts after this many seconds (default %(default)s; the wrapper kills at 300)")
    ap.add_argument("--debug", action="store_true", help="tracebacks instead of one line per error")
    args = ap.parse_args(argv)
    for key, value in (DRY_DEFAULTS if args.cpu_dry_run else GPU_DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.duration <= 0 or args.batch_size < 1 or args.agree_clips < 1 or args.budget_s <= 0:
        raise UsageError("--duration, --batch-size, --agree-clips and --budget-s must be positive")
    return args


def pick_device(dry_run: bool) -> tuple[str, bool]:
    """(device, fp16): CUDA with fp16, or the CPU in fp32 for the dry run; one line when CUDA is absent."""
    from highlighter.features.device import cuda_problem, resolve_device

    if dry_run:
        return resolve_device("cpu"), False
    problem = cuda_problem()
    if problem:
        raise UsageError(f"{problem}; run this on a CUDA machine, or add --cpu-dry-run to test it on CPU")
    return resolve_device("cuda"), True


def backbone_list(text: str) -> list[str]:
    from highlighter.features.base import backbone_class, backbone_names

    names = [n.strip() for n in text.split(",") if n.strip()] or backbone_names()
    for n in names:
        backbone_class(n)  # an unknown name is one usage error listing the valid ones
    return names


def safe_row(name: str, inputs: Inputs, run: Run, debug: bool) -> dict[str, Any]:
    """`check_backbone`, with any error turned into an ``error`` row: one backbone failing must not
    hide the others' results (``--debug`` raises instead)."""
    try:
        return check_backbone(name, inputs, run)
    except Exception as exc:
        if debug:
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        return {"backbone": name, "status": "error", "problems": [f"{type(exc).__name__}: {first}"], "notes": []}


def header(doc: dict[str, Any]) -> str:
    env, th = doc["environment"], doc["thresholds"]
    where = f"{env['device']} ({env['gpu']})" if "gpu" in env else f"{env['device']} (CPU dry run)"
    return (f"gpu_check: {where}, torch {env['torch']}; agreement vs CPU fp32 on {doc['settings']['agree_clips']} "
            f"clip(s): fp32 min cosine >= {th['fp32_min_cosine']} (TF32 off), fp16 >= {th['fp16_min_cosine']} "
            f"({th['fp16_reason']})")


def check(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    if args.make_video:
        print(make_video(Path(args.make_video), args.duration, parse_size(args.size)))
        return 0
    if args.video and not Path(args.video).is_file():
        raise UsageError(f"{args.video}: no such video file")
    os.environ["HIGHLIGHTER_OFFLINE"] = "1"  # cached or random weights only: never download here
    device, fp16 = pick_device(args.cpu_dry_run)
    names = backbone_list(args.backbones)
    size = parse_size(args.size)
    out = Path(args.json)
    run = Run(device, fp16, args.batch_size, args.agree_clips, args.budget_s)
    doc: dict[str, Any] = {
        "schema": SCHEMA, "dry_run": args.cpu_dry_run, "environment": environment(device),
        "thresholds": {"fp32_min_cosine": FP32_MIN_COSINE, "fp16_min_cosine": FP16_MIN_COSINE,
                       "fp16_reason": FP16_REASON, "fp32_tf32": False,
                       "reference": "CPU float32, one clip at a time"},
        "input": {"source": "ffmpeg lavfi testsrc2 + 440 Hz sine at 0.5 (silent 2-4 s), H.264/AAC, 30 fps",
                  "duration": args.duration, "size": args.size, "clip_seconds": 2.0},
        "settings": {"batch_size": args.batch_size, "agree_clips": args.agree_clips, "budget_s": args.budget_s,
                     "time_limit_s": args.time_limit},
        "rows": [], "passed": None, "seconds": None,
    }
    print(header(doc), flush=True)
    if args.video:
        doc["input"] = {"source": str(args.video), "clip_seconds": 2.0}
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        video = Path(args.video) if args.video else make_video(Path(tmp) / "synthetic.mp4", args.duration, size)
        inputs = Inputs.of(video)
        for name in names:
            if time.perf_counter() - t0 > args.time_limit:
                row = {"backbone": name, "status": "not run", "notes": [],
                       "problems": [f"--time-limit {args.time_limit:g} s reached"]}
            else:
                row = safe_row(name, inputs, run, args.debug)
            doc["rows"].append(row)
            print(f"gpu_check: {name}: {row['status']} ({row.get('seconds', 0)} s)", file=sys.stderr, flush=True)
            doc["seconds"] = round(time.perf_counter() - t0, 1)
            write_json(out, doc)
    failed = [r["backbone"] for r in doc["rows"] if r["status"] not in ("ok", "skipped")]
    doc["passed"] = not failed
    doc["seconds"] = round(time.perf_counter() - t0, 1)
    write_json(out, doc)
    print(table(doc["rows"]))
    print(f"{'PASS' if not failed else 'FAIL: ' + ', '.join(failed)} in {doc['seconds']} s; JSON: {out}")
    return 0 if not failed else 1


def main(argv: list[str] | None = None) -> int:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        return check(parse_args(argv))
    except HighlighterError as exc:
        if debug:
            raise
        print(f"gpu_check: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("gpu_check: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))  # `timeout 300`: temp files removed, exit 124
    sys.exit(main())
