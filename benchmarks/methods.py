"""Training and inference cost of the trainable detectors, per hour of video features.

    python benchmarks/methods.py                         # every trainable method, YouTube train features
    python benchmarks/methods.py --method rasl --epochs 1
    python benchmarks/methods.py --synthetic-hours 1     # random features, no ../shared needed
    python benchmarks/methods.py --method rasl --set use_sa=false --json out.json
    python benchmarks/methods.py --per-video 1,5,20      # RASL pretrained on each video at detect time

``--per-video MINUTES,...``: the added cost of RASL's per-video mode (``RASL.per_video``, its
default seeds x epochs) for one video of each length, on random features of the offline
backbones' sizes (``--dims``, default 1288 visual + 132 audio), with and without audio;
seconds per minute of video, to set next to feature extraction (``benchmarks/detect.py``).

For each method: one training run of ``--epochs`` epochs on the data (wall seconds,
scaled to one hour of features = 1800 two-second clips, per epoch), the configured
number of epochs extrapolated from that, and ``Detector.score`` on one hour of
features (one 1800-clip video, visual [+ audio when the method uses it]).

Threads: ``--threads`` (default 1) pins torch's intra-op threads, so numbers are per
core and comparable on a shared machine. Generic over the registry: a new trainable
method appears here without changes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CLIP_SECONDS = 2.0
HOUR_CLIPS = int(3600 / CLIP_SECONDS)


def synthetic_videos(hours: float, dv: int = 1024, da: int = 2048, seed: int = 0) -> list:
    """Random non-negative features (like I3D / PANN) cut into 1-4 minute videos."""
    from highlighter.eval.datasets import VideoFeatures

    rng = np.random.default_rng(seed)
    total, out = int(hours * HOUR_CLIPS), []
    while total > 0:
        t = min(total, int(rng.integers(30, 120)))
        out.append(VideoFeatures(f"s{len(out)}", "synthetic", "train",
                                 np.abs(rng.normal(size=(t, dv))).astype(np.float32),
                                 np.abs(rng.normal(size=(t, da))).astype(np.float32), np.zeros(t, np.int64)))
        total -= t
    return out


def bench_method(name: str, videos: list, epochs: int, sets: list[str]) -> dict:
    from highlighter.methods import create_method
    from highlighter.methods.config import parse_overrides

    probe = create_method(name)
    kwargs = parse_overrides(type(probe.config), sets)
    names = {f.name for f in dataclasses.fields(probe.config)}
    configured = int(kwargs.get("epochs", getattr(probe.config, "epochs", 1)))
    if "epochs" in names:
        kwargs["epochs"] = epochs
    det = create_method(name, **kwargs)
    clips = sum(v.num_clips for v in videos)
    t0 = time.perf_counter()
    det.fit(videos, seed=0)
    train_s = time.perf_counter() - t0
    per_epoch_hour = train_s / max(epochs, 1) / (clips / HOUR_CLIPS)
    rng = np.random.default_rng(1)
    vis = np.abs(rng.normal(size=(HOUR_CLIPS, videos[0].visual.shape[1]))).astype(np.float32)
    aud = None
    if videos[0].audio is not None:
        aud = np.abs(rng.normal(size=(HOUR_CLIPS, videos[0].audio.shape[1]))).astype(np.float32)
    det.score(vis[:60], aud[:60] if aud is not None else None)  # warm-up
    t0 = time.perf_counter()
    det.score(vis, aud)
    infer_s = time.perf_counter() - t0
    return {
        "method": name,
        "train_videos": len(videos),
        "train_hours": round(clips / HOUR_CLIPS, 3),
        "epochs_run": epochs,
        "train_s": round(train_s, 2),
        "train_s_per_epoch_per_hour": round(per_epoch_hour, 2),
        "configured_epochs": configured,
        "train_s_per_hour_full": round(per_epoch_hour * configured, 1),
        "infer_s_per_hour": round(infer_s, 3),
    }


def bench_per_video(minutes: float, dv: int, da: int | None, seed: int = 0) -> dict:
    """Wall seconds of ``RASL.per_video().score`` on one random video of ``minutes`` (pretraining included)."""
    from highlighter.methods.rasl import RASL

    rng = np.random.default_rng(seed)
    t = max(1, int(round(minutes * 60 / CLIP_SECONDS)))
    vis = np.abs(rng.normal(size=(t, dv))).astype(np.float32)
    aud = rng.normal(size=(t, da)).astype(np.float32) if da else None
    det = RASL.per_video()
    t0 = time.perf_counter()
    det.score(vis, aud)
    secs = time.perf_counter() - t0
    return {"minutes": minutes, "clips": t, "audio": aud is not None, "seeds": det.config.video_seeds,
            "epochs": det.config.epochs, "seconds": round(secs, 2), "s_per_min": round(secs / minutes, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", action="append", help="method name (repeatable; default: every trainable one)")
    ap.add_argument("--data", default=str(SHARED / "data" / "youtube"), help="benchmark dir (train split is used)")
    ap.add_argument("--synthetic-hours", type=float, default=0.0, help="use random features of this many hours")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], dest="sets", help="config override key=value")
    ap.add_argument("--json", type=Path, help="write the rows as JSON")
    ap.add_argument("--per-video", help="minutes,... : time RASL's per-video mode instead (see above)")
    ap.add_argument("--dims", default="1288,132", help="--per-video feature sizes: visual,audio")
    args = ap.parse_args()

    import torch

    from highlighter.methods import available_methods
    from highlighter.methods.base import method_class

    torch.set_num_threads(args.threads)
    if args.per_video:
        dv, da = (int(x) for x in args.dims.split(","))
        bench_per_video(0.5, dv, da)  # warm-up: the first call pays torch's one-time start-up
        rows = []
        print(f"rasl per-video mode, features {dv}+{da}; threads={args.threads}")
        print(f"{'minutes':>8s} {'audio':>6s} {'seeds x epochs':>15s} {'seconds':>8s} {'s per min':>10s}")
        for m in (float(x) for x in args.per_video.split(",")):
            for audio in (da, None):
                r = bench_per_video(m, dv, audio)
                rows.append(r)
                print(f"{m:8g} {str(r['audio']):>6s} {r['seeds']:>7d} x {r['epochs']:<5d} {r['seconds']:8.2f} "
                      f"{r['s_per_min']:10.2f}", flush=True)
        if args.json:
            from highlighter.atomic import atomic_write_text

            atomic_write_text(args.json, json.dumps({"per_video": rows, "threads": args.threads}, indent=2))
        return
    if args.synthetic_hours > 0 or not Path(args.data).is_dir():
        hours = args.synthetic_hours or 0.5
        videos, source = synthetic_videos(hours), f"synthetic {hours} h"
    else:
        from highlighter.eval.datasets import load_dataset

        videos, source = load_dataset(args.data, "train").videos, f"{args.data} [train]"
    methods = args.method or [m for m in available_methods() if method_class(m).trainable]
    rows = []
    print(f"data: {source}, {len(videos)} videos; threads={args.threads}")
    print(f"{'method':12s} {'train s/epoch/h':>16s} {'epochs':>7s} {'train s/h (full)':>17s} {'infer s/h':>10s}")
    for name in methods:
        r = bench_method(name, videos, args.epochs, args.sets)
        rows.append(r)
        print(f"{name:12s} {r['train_s_per_epoch_per_hour']:16.2f} {r['configured_epochs']:7d} "
              f"{r['train_s_per_hour_full']:17.1f} {r['infer_s_per_hour']:10.3f}", flush=True)
    if args.json:
        from highlighter.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps({"data": source, "threads": args.threads, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
