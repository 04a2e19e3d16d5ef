"""End-to-end seconds per minute of 720p video, by stage, next to the decode-only floor.

    python benchmarks/detect.py                          # 60-s synthetic 720p clip, efficientnet-lite0 + feature-norm
    python benchmarks/detect.py --video ../shared/videos/example.mp4
    python benchmarks/detect.py --backbone i3d --random-weights --method rasl   # default architecture, timing only
    python benchmarks/detect.py --backbone efficientnet-lite0-motion --audio logmel --method rasl --pretrain video
                                                         # the offline plan: RASL pretrained on the video itself

Stages (wall seconds, each scaled to one minute of video):

* ``decode floor (ffmpeg)``: ``ffmpeg -i V -map 0:v -f null -``, every frame at native size —
  what any tool that looks at all frames must pay;
* ``decode (backbone rate)``: `iter_frames` at the backbone's rate and short side — the
  decode share of feature extraction;
* ``features``: the extractor end to end (decode + backbone) minus the decode share;
* ``audio features``: with ``--audio``, the audio backbone end to end (its own decode pass);
* ``detector``: ``Detector.score`` on the features; with ``--pretrain video`` that includes
  the per-video pretraining (``RASL.per_video``: its seeds x epochs on this video alone);
  ``select``: `select_segments`;
* ``cut``: `trim` of the selected segments (re-encode; and ``--copy``).

Threads: ``--threads`` (default 1) sets torch's intra-op threads, so numbers are per core
and comparable on a shared machine; ffmpeg runs with ``-threads`` set to the same value.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path


def make_clip(path: Path, seconds: float) -> Path:
    """Synthetic 1280x720 30 fps clip with motion (testsrc2) and a tone."""
    from highlighter.io.ffmpeg import run_ffmpeg

    run_ffmpeg(["-y", "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}",
                "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:v", "libx264", "-preset",
                "veryfast", "-crf", "23", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
               what="making the benchmark clip")
    return path


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, help="720p video to time (default: a generated 60-s clip)")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the generated clip")
    ap.add_argument("--backbone", default="efficientnet-lite0")
    ap.add_argument("--random-weights", action="store_true", help="backbone architecture with random weights")
    ap.add_argument("--method", default="feature-norm")
    ap.add_argument("--audio", help="audio backbone too (e.g. logmel, the offline one); default: none")
    ap.add_argument("--pretrain", choices=("weights", "video"), default="weights",
                    help="video: the method pretrains on the video itself at detect time (rasl)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from highlighter.features.base import backbone_class
    from highlighter.features.extract import ExtractConfig, Extractor
    from highlighter.io import iter_frames, probe_video
    from highlighter.io.ffmpeg import run_ffmpeg
    from highlighter.methods.base import create_method, method_class
    from highlighter.outputs.segments import SelectConfig, select_segments
    from highlighter.outputs.trim import TrimConfig, trim

    with tempfile.TemporaryDirectory(prefix="hl-bench-") as td:
        td = Path(td)
        video = args.video or make_clip(td / "bench720.mp4", args.seconds)
        info = probe_video(video)
        dur = info.duration
        per_min = 60.0 / dur
        v = info.video
        rows: dict[str, float] = {}

        rows["decode floor (ffmpeg, all frames)"], _ = timed(lambda: run_ffmpeg(
            ["-threads", str(args.threads), "-i", str(video), "-map", "0:v:0", "-f", "null", "-"], what="decode"))
        bb = backbone_class(args.backbone)

        def decode_only():
            n = 0
            for c in iter_frames(video, fps=bb.fps, short_side=bb.short_side or None):
                n += c.frames.shape[0]
            return n

        rows["decode (backbone rate+size)"], nframes = timed(decode_only)
        cfg = ExtractConfig(visual=args.backbone, audio=None, pretrained=not args.random_weights, device="cpu")
        t_load, ex = timed(lambda: Extractor(cfg))
        t_extract, ff = timed(lambda: ex.extract(video))
        rows["features (backbone, excl. decode)"] = max(0.0, t_extract - rows["decode (backbone rate+size)"])
        audio = None
        if args.audio:
            acfg = ExtractConfig(visual=None, audio=args.audio, pretrained=not args.random_weights, device="cpu")
            rows[f"audio features ({args.audio}, incl. decode)"], af = timed(lambda: Extractor(acfg).extract(video))
            audio = af.audio
        cls = method_class(args.method)
        if args.pretrain == "video":
            det = cls.per_video()
            label = (f"detector (per-video pretraining {det.config.video_seeds} seeds x {det.config.epochs} epochs"
                     f"{' +audio' if audio is not None else ''}, + scoring)")
        elif not cls.trainable:
            det, label = create_method(args.method), "detector"
        else:
            det, label = create_method(args.method, visual_dim=ff.visual.shape[1]), "detector"  # untrained: timing only
        rows[label], scores = timed(lambda: det.score(ff.visual, audio if det.uses_audio else None))
        sel = SelectConfig(top="10%")
        rows["select"], segs = timed(lambda: select_segments(ff.starts, ff.ends, scores, sel, dur))
        rows["cut (re-encode)"], _ = timed(lambda: trim(video, segs, td / "reel.mp4", TrimConfig(force=True)))
        rows["cut (--copy)"], _ = timed(lambda: trim(video, segs, td / "reel_copy.mp4",
                                                     TrimConfig(copy=True, force=True)))
        end_to_end = t_extract + sum(v for k, v in rows.items() if k.startswith(("audio features", "detector"))) + \
            rows["select"] + rows["cut (re-encode)"]

    print(f"video: {video.name if args.video else 'synthetic testsrc2'} {v.width}x{v.height} {v.fps:.3g} fps, "
          f"{dur:.1f} s; backbone {args.backbone} ({'random' if args.random_weights else 'pretrained'}) "
          f"at {bb.fps:g} fps ({nframes} frames), audio {args.audio or 'none'}, method {args.method} "
          f"({args.pretrain}); torch threads {args.threads}, "
          f"{len(segs)} segments ({sum(g.duration for g in segs):.1f} s)")
    print(f"model load (once per run): {t_load:.2f} s")
    width = max(44, *(len(k) + 2 for k in rows))
    print(f"{'stage':<{width}}{'s':>9}{'s per min of video':>22}")
    for k, s in rows.items():
        print(f"{k:<{width}}{s:>9.2f}{s * per_min:>22.2f}")
    print(f"{'end to end (features+detector+select+cut)':<{width}}{end_to_end:>9.2f}{end_to_end * per_min:>22.2f}")
    if args.json:
        from highlighter.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps({
            "duration": dur, "per_minute": {k: s * per_min for k, s in rows.items()},
            "end_to_end_per_minute": end_to_end * per_min, "model_load": t_load,
            "args": {k: str(v) for k, v in vars(args).items()}}, indent=2))


if __name__ == "__main__":
    main()
