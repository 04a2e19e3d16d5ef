"""Feature extraction speed and memory per backbone.

For a synthetic 720p video (ffmpeg lavfi ``testsrc2`` + a sine, 30 fps, H.264/AAC,
default 60 s) this runs `extract_features` with one backbone at a time, each in a
fresh subprocess so that its peak RSS (``ru_maxrss``) is its own, and prints:

    backbone  modality  video-s per wall-s  extract s  load s  peak RSS MB

Random weights by default (the same architecture and compute as the published
checkpoints, which cannot be downloaded everywhere); ``--pretrained`` uses the
weights cache. yamnet has no random variant: it runs with its TFLite file when
``--yamnet PATH`` is given (imported into a temporary weights cache), else it is
skipped.

    .venv/bin/python benchmarks/features.py [--duration 60] [--threads 1] [--backbones a,b] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_video(path: Path, duration: float) -> Path:
    """60 s of moving 1280x720 test pattern at 30 fps with a 440 Hz tone."""
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={duration}",
           "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={duration}",
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", "-g", "60",
           "-c:a", "aac", "-b:a", "128k", "-shortest", str(path)]
    subprocess.run(cmd, check=True)
    return path


def child(args: argparse.Namespace) -> None:
    """Run one backbone and print one JSON line."""
    import torch

    torch.set_num_threads(args.threads)
    from highlighter.features.base import backbone_class
    from highlighter.features.extract import ExtractConfig, Extractor

    name = args.child
    spec = backbone_class(name).spec
    pretrained = args.pretrained or name == "yamnet" or spec.weights is None
    cfg = ExtractConfig(visual=name if spec.modality == "visual" else None,
                        audio=name if spec.modality == "audio" else None,
                        pretrained=pretrained, device=args.device, batch_size=args.batch_size)
    t0 = time.perf_counter()
    ex = Extractor(cfg)
    t1 = time.perf_counter()
    ff = ex.extract(args.video)
    t2 = time.perf_counter()
    x = ff.visual if ff.visual is not None else ff.audio
    print(json.dumps({
        "backbone": name, "modality": spec.modality, "weights": "pretrained" if pretrained else "random",
        "duration": ff.meta["duration"], "clips": int(x.shape[0]), "dim": int(x.shape[1]),
        "load_s": round(t1 - t0, 2), "extract_s": round(t2 - t1, 2),
        "video_s_per_s": round(ff.meta["duration"] / (t2 - t1), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "threads": args.threads, "device": ex.device,
    }))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run (the CPU may be shared)")
    ap.add_argument("--backbones", default="", help="comma list (default: all registered)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--pretrained", action="store_true", help="published weights (must be in the cache)")
    ap.add_argument("--yamnet", default="", help="path of yamnet_spectra_in.tflite (yamnet has no random variant)")
    ap.add_argument("--video", default="", help="use this video instead of generating one")
    ap.add_argument("--json", default="", help="also write the rows here")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    from highlighter.features.base import available_backbones

    names = [b for b in args.backbones.split(",") if b] or [s.name for s in available_backbones()]
    tmp = Path(tempfile.mkdtemp(prefix="hl-bench-"))
    env = dict(os.environ)
    if args.yamnet:
        env["HIGHLIGHTER_CACHE"] = str(tmp / "cache")
        subprocess.run([sys.executable, "-c", "import sys; from highlighter.features.weights import import_weights;"
                        "import_weights('yamnet', sys.argv[1])", args.yamnet], check=True, env=env)
    video = Path(args.video) if args.video else make_video(tmp / "bench720p.mp4", args.duration)
    print(f"video: {video} ({args.duration:.0f} s, 1280x720, 30 fps); threads={args.threads}; "
          f"cpu cores={os.cpu_count()}", flush=True)
    print(f"{'backbone':20s} {'modality':8s} {'weights':10s} {'video-s/s':>9s} {'extract s':>9s} "
          f"{'load s':>7s} {'peak RSS MB':>11s}", flush=True)
    rows = []
    for name in names:
        if name == "yamnet" and not args.yamnet and not args.pretrained:
            print(f"{name:20s} skipped: no random variant (pass --yamnet PATH)", flush=True)
            continue
        cmd = [sys.executable, __file__, "--child", name, "--video", str(video), "--threads", str(args.threads),
               "--device", args.device, "--batch-size", str(args.batch_size)] + (["--pretrained"] if args.pretrained else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            print(f"{name:20s} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1][:200]}", flush=True)
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(f"{r['backbone']:20s} {r['modality']:8s} {r['weights']:10s} {r['video_s_per_s']:9.2f} "
              f"{r['extract_s']:9.1f} {r['load_s']:7.1f} {r['peak_rss_mb']:11.0f}", flush=True)
    if args.json:
        from highlighter.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
