"""`highlighter detect` against PySceneDetect on the same video, side by side, and where our time goes.

    python benchmarks/detect.py                       # 3 alternating runs of each on the 173-s 720p join
    python benchmarks/detect.py --video V --repeat 5  # another video
    python benchmarks/detect.py --paths 20            # + seconds per minute of video of each backbone path
                                                      #   (on the first 20 s; I3D/PANNs with random weights
                                                      #   when their checkpoints are not cached: timing only)

The video (made once in the temp folder unless ``--video``): every clip of ../shared/videos
scaled and padded to 1280x720 at 30 fps, H.264 (x264 veryfast, GOP 60) + AAC, joined, and the
join repeated to ~173 s, the video the speed issue measured on. Without ../shared, a testsrc2 clip.

What is timed, each run in a fresh process, alternating, ``--repeat`` times (medians):

* ``scenedetect -i V -o TMP detect-content list-scenes -q`` (its CLI defaults: OpenCV backend);
* ``highlighter -q detect V -o TMP --cache-dir FRESH`` (the default: no feature cache to hit).

Wall and CPU seconds (user + sys, from the children's rusage) and peak RSS of each, the ratio
ours / scenedetect of the median walls, and the load average before and after (the machine is
shared: compare ratios, not absolute seconds). Then one more run of ours in this process gives
the stages (``timings`` of the result + model load + writing): decode (the decode thread's busy
time, which overlaps the backbone), visual features, audio features, shots (the shot tap inside
the decode thread), detector incl. per-video pretraining, select, writing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "videos"
BIN = Path(sys.executable).parent


def make_join(dest: Path, target_seconds: float = 173.0) -> Path:
    """The shared clips at 1280x720 30 fps joined, the join repeated up to ``target_seconds``."""
    from highlighter.io.ffmpeg import run_ffmpeg
    from highlighter.io.probe import probe_video

    suffixes = (".mp4", ".webm", ".mkv", ".mov")
    clips = sorted(p for p in SHARED.iterdir() if p.suffix in suffixes) if SHARED.is_dir() else []
    once = dest.with_name("join-once.mp4")
    if not clips:
        run_ffmpeg(["-y", "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={target_seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={target_seconds}", "-c:v", "libx264",
                    "-preset", "veryfast", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(dest)],
                   what="making the benchmark clip")
        return dest
    args, graph = [], ""
    for i, c in enumerate(clips):
        args += ["-i", str(c)]
        graph += (f"[{i}:v]scale=1280:720:force_original_aspect_ratio=decrease,pad=1280:720:(ow-iw)/2:(oh-ih)/2,"
                  f"setsar=1,fps=30,format=yuv420p[v{i}];[{i}:a]aresample=44100,"
                  f"aformat=channel_layouts=stereo:sample_fmts=fltp[a{i}];")
    graph += "".join(f"[v{i}][a{i}]" for i in range(len(clips))) + f"concat=n={len(clips)}:v=1:a=1[v][a]"
    run_ffmpeg(["-y", *args, "-filter_complex", graph, "-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-preset",
                "veryfast", "-crf", "23", "-g", "60", "-c:a", "aac", "-b:a", "128k", str(once)],
               what="joining the clips")
    d = probe_video(once).duration
    n, rest = int(target_seconds // d), target_seconds % d
    lst = dest.with_name("join.txt")
    lst.write_text("".join(f"file '{once.name}'\n" for _ in range(n)) + (f"file '{once.name}'\noutpoint {rest:.3f}\n"
                                                                         if rest > 1 else ""))
    from highlighter.atomic import atomic_path

    with atomic_path(dest, suffix=".part.mp4") as tmp:  # a reused file is never half-written
        run_ffmpeg(["-y", "-f", "concat", "-safe", "0", "-i", str(lst), "-c", "copy", str(tmp)],
                   what="repeating the join")
    return dest


def timed_child(cmd: list[str]) -> dict[str, float]:
    """Wall and CPU seconds of one child process (CPU from the rusage of waited-for children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "peak_rss_mb": after.ru_maxrss / 1024}  # maxrss: the largest child so far


def side_by_side(video: Path, repeat: int, work: Path) -> dict:
    sd = [str(BIN / "scenedetect"), "-i", str(video), "-o", str(work / "sd"), "detect-content", "list-scenes", "-q"]
    runs: dict[str, list[dict]] = {"scenedetect": [], "highlighter": []}
    load = [os.getloadavg()]
    for r in range(repeat):
        ours = [str(BIN / "highlighter"), "-q", "detect", str(video), "-o", str(work / f"out{r}"),
                "--cache-dir", str(work / f"cache{r}")]
        order = [("scenedetect", sd), ("highlighter", ours)]
        for name, cmd in (order if r % 2 == 0 else order[::-1]):
            runs[name].append(timed_child(cmd))
            print(f"run {r + 1}/{repeat} {name:12s} wall {runs[name][-1]['wall']:6.2f} s  "
                  f"cpu {runs[name][-1]['cpu']:6.2f} s", flush=True)
    load.append(os.getloadavg())
    med = {n: {k: statistics.median(x[k] for x in v) for k in ("wall", "cpu")} for n, v in runs.items()}
    doc = json.loads((work / "out0" / f"{video.stem}.json").read_text())
    return {"runs": runs, "median": med, "ratio_wall": med["highlighter"]["wall"] / med["scenedetect"]["wall"],
            "ratio_cpu": med["highlighter"]["cpu"] / med["scenedetect"]["cpu"], "load": load,
            "method_line": doc["method"].get("why") or doc["method"].get("fallback")}


def stages(video: Path, work: Path) -> dict[str, float]:
    """One run of the default pipeline in this process, stage by stage (wall seconds)."""
    import warnings

    from highlighter.api import DetectConfig, Pipeline, write_outputs
    from highlighter.errors import HighlighterWarning

    warnings.simplefilter("ignore", HighlighterWarning)
    t = time.perf_counter()
    pipe = Pipeline(DetectConfig(cache_dir=str(work / "cache-stages")))
    load = time.perf_counter() - t
    result = pipe.run(video)
    t = time.perf_counter()
    write_outputs(result, work / "stages" / video.stem)
    tm = result.timings
    return {"model load (once per run)": load,
            "decode (thread, overlaps visual)": tm.get("features_decode", 0.0),
            "  of which shot tap": tm.get("shots", 0.0),
            "visual features (decode + backbone)": tm.get("features_visual", 0.0),
            "audio features (decode + backbone)": tm.get("features_audio", 0.0),
            "detector (incl. per-video pretraining)": tm.get("detector", 0.0),
            "select": tm.get("select", 0.0), "writing (json, csv, edl)": time.perf_counter() - t,
            "end to end in process": load + tm.get("total", 0.0) + (time.perf_counter() - t)}


def path_costs(video: Path, seconds: float, work: Path) -> dict[str, float]:
    """Seconds per minute of video of each backbone path on the first ``seconds`` s (features + detector)."""
    from highlighter.api import one_torch_thread
    from highlighter.features.base import backbone_class
    from highlighter.features.extract import ExtractConfig, Extractor
    from highlighter.features.weights import is_cached
    from highlighter.io.ffmpeg import run_ffmpeg
    from highlighter.methods.rasl import RASL

    cut = work / "path-cut.mp4"
    run_ffmpeg(["-y", "-i", str(video), "-t", str(seconds), "-c", "copy", str(cut)], what="cutting")
    out = {}
    for visual, audio in (("efficientnet-lite0-motion", "logmel"), ("i3d", "panns")):
        pretrained = all(backbone_class(n).spec.weights is None or is_cached(backbone_class(n).spec.weights)
                         for n in (visual, audio))
        ex = Extractor(ExtractConfig(visual=visual, audio=audio, pretrained=pretrained, device="cpu"))
        t = time.perf_counter()
        ff = ex.extract(cut)
        with one_torch_thread():  # as `Pipeline.score` runs the detector
            RASL.per_video().score(ff.visual, ff.audio)
        label = f"{visual} + {audio} + rasl per-video" + ("" if pretrained else " (random weights)")
        out[label] = (time.perf_counter() - t) * 60.0 / float(ff.meta["duration"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, help="video to time (default: the 173-s 720p join, made once)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-stages", action="store_true", help="skip the in-process stage breakdown")
    ap.add_argument("--paths", type=float, default=0, metavar="SECONDS",
                    help="also time each backbone path on the first SECONDS s of the video")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="hl-bench-detect-") as td:
        work = Path(td)
        join = Path(tempfile.gettempdir()) / "hl-bench-join-173s.mp4"
        video = args.video or (join if join.is_file() else make_join(join))
        from highlighter.io.probe import probe_video

        info = probe_video(video)
        v = info.video
        per_min = 60.0 / info.duration
        print(f"video: {video} {v.width}x{v.height} {v.fps:.3g} fps {v.codec}, {info.duration:.1f} s; "
              f"{os.cpu_count()} CPUs", flush=True)
        sbs = side_by_side(video, args.repeat, work)
        res = {"video": str(video), "duration": info.duration, "side_by_side": sbs}
        print(f"\n{'median of ' + str(args.repeat):<28}{'wall s':>9}{'cpu s':>9}{'wall s/min':>12}")
        for name, m in sbs["median"].items():
            print(f"{name:<28}{m['wall']:>9.2f}{m['cpu']:>9.2f}{m['wall'] * per_min:>12.2f}")
        (l1, l5, _), (m1, m5, _) = sbs["load"]
        print(f"ratio highlighter / scenedetect: wall {sbs['ratio_wall']:.2f}, cpu {sbs['ratio_cpu']:.2f} "
              f"(load average 1/5 min: {l1:.2f}/{l5:.2f} before, {m1:.2f}/{m5:.2f} after)")
        print(f"plan: {sbs['method_line']}")
        if not args.no_stages:
            st = stages(video, work)
            res["stages"] = st
            print(f"\n{'stage (one run in process)':<42}{'wall s':>9}{'s per min':>11}")
            for k, s in st.items():
                print(f"{k:<42}{s:>9.2f}{s * per_min:>11.2f}")
        if args.paths:
            pc = path_costs(video, args.paths, work)
            res["paths_seconds_per_minute"] = pc
            print(f"\n{'path (features + detector)':<62}{'s per min of video':>20}")
            for k, s in pc.items():
                print(f"{k:<62}{s:>20.1f}")
        res["load_after"] = os.getloadavg()
    if args.json:
        from highlighter.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(res, indent=2, default=float))


if __name__ == "__main__":
    main()
