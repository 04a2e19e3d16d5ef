"""Peak RSS of `highlighter detect` and `extract-features` against the video's length.

    .venv/bin/python benchmarks/memory.py                 # detect at 10 min / 30 min / 2 h; every backbone
    .venv/bin/python benchmarks/memory.py --quick         # detect at 1 / 3 min, fast backbones at 1 / 3 min
    .venv/bin/python benchmarks/memory.py --detect 10,30 --backbones none
    .venv/bin/python benchmarks/memory.py --detect none --backbones i3d,panns --slow-minutes 1,3
    .venv/bin/python benchmarks/memory.py --detect 120 --backbone none --live /tmp/detect2h.log   # trace as it goes
    .venv/bin/python benchmarks/memory.py --detect none --fast-minutes 3,10 --minutes i3d=0.5,1

Goal (issue 14): peak RSS <= 1 GB and flat in the video's length.

Videos: ffmpeg lavfi ``testsrc2`` (moving pattern) + a beeping sine, 640x360, 25 fps,
H.264 ultrafast + AAC, made once and cached under ``/tmp/hl_memory`` (``--media-dir``).
A 10-min segment is encoded, and longer videos are that segment joined by the concat
demuxer without re-encoding, so a 2-h video costs seconds, not an hour of CPU.

Measurement: each run is a fresh ``highlighter`` CLI process (cold feature cache, its
own temporary output and cache folders), the way a user runs it. Two figures per run:
``tree``, the RSS of the CLI plus any other program it spawns (ffmpeg...), polled from
``/proc`` every ``--interval`` s (a fork that has not exec'd yet shares its parent's pages
and is not added); and ``maxrss``, ``wait4``'s ``ru_maxrss``: the exact peak of the largest
single process, what ``/usr/bin/time -f %M`` prints. PSS is not used: on a shared machine it
splits torch's library pages with other people's processes and under-reports.

Backbones run with random weights where the published checkpoint is not in the weights
cache (the same architecture and compute, so the same memory); ``yamnet`` has no random
variant and runs when its TFLite file is given (``--yamnet``, default: the one in
``../shared/weights/yamnet``), imported into a temporary weights cache. The slow
backbones (i3d, r3d, swin, mockingjay: < 1 video-s per wall-s here) run on
``--slow-minutes`` (default 1, 3) and the fast ones on ``--fast-minutes`` (default 10, 30);
``--minutes NAME=M,M`` sets one backbone's. Random and published weights cost the same RSS
once loaded (PANN and Mockingjay checkpoints are memory-mapped, see features/audio/_ckpt.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLOW = frozenset({"i3d", "r3d", "swin", "mockingjay"})
SEGMENT_MINUTES = 10


# ----------------------------------------------------------------------------- media
def ffmpeg(args: list[str]) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def encode(path: Path, seconds: float) -> Path:
    """``seconds`` of 640x360 25-fps testsrc2 + a beeping 440 Hz sine (fast encode)."""
    tmp = path.with_name(f".{path.name}.part.mp4")
    ffmpeg(["-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:beep_factor=4:sample_rate=44100:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-crf", "30", "-g", "250", "-pix_fmt", "yuv420p",
            "-threads", "1", "-c:a", "aac", "-b:a", "64k", "-shortest", str(tmp)])
    tmp.replace(path)
    return path


def video_of(minutes: float, media: Path) -> Path:
    """The cached test video of ``minutes`` (a whole number of 10-min segments is joined, not encoded)."""
    media.mkdir(parents=True, exist_ok=True)
    out = media / f"v{minutes:g}m.mp4"
    if out.is_file():
        return out
    n = minutes / SEGMENT_MINUTES
    if n < 1 or n != int(n):
        return encode(out, minutes * 60)
    seg = media / f"v{SEGMENT_MINUTES}m.mp4"
    if not seg.is_file():
        encode(seg, SEGMENT_MINUTES * 60)
    if n == 1:
        return seg
    listing = media / f"concat{int(n)}.txt"
    listing.write_text("".join(f"file '{seg.name}'\n" for _ in range(int(n))))
    tmp = out.with_name(f".{out.name}.part.mp4")
    ffmpeg(["-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(tmp)])
    tmp.replace(out)
    return out


# ----------------------------------------------------------------------------- measuring
def _children() -> dict[int, list[int]]:
    """ppid -> pids, from /proc (one pass)."""
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def tree_rss_kb(root: int) -> int:
    """RSS of ``root`` plus that of every descendant running another program (ffmpeg, ...), kB.

    A child that is still ``root``'s program is a fork about to exec (``ctypes.util.find_library``
    runs ldconfig so): it shares every page with ``root`` and would count them twice. PSS would
    split shared pages fairly, but also with unrelated processes mapping the same libraries
    (other users of the venv's torch), which hides real memory on a shared machine.
    """
    kids = _children()
    exe = _exe(root)
    total, todo = _rss_kb(root), list(kids.get(root, ()))
    while todo:
        pid = todo.pop()
        if _exe(pid) != exe:
            total += _rss_kb(pid)
        todo.extend(kids.get(pid, ()))
    return total


LIVE: Path | None = None  # --live: every RSS sample also appended here as it is taken (a partial trace survives)


def measure(cmd: list[str], env: dict[str, str], interval: float) -> dict:
    """Run ``cmd``; peak tree RSS (polled), ru_maxrss (wait4), wall seconds, RSS trace."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak, trace, status, ru = 0, [], None, None
    live = open(LIVE, "a", buffering=1) if LIVE else None
    while status is None:
        rss = tree_rss_kb(proc.pid)
        peak = max(peak, rss)
        trace.append((round(time.perf_counter() - t0, 1), rss // 1024))
        if live and len(trace) % max(1, round(5 / interval)) == 1:  # one line per ~5 s
            live.write(f"{trace[-1][0]} s {trace[-1][1]} MB peak {peak // 1024} MB {' '.join(cmd[4:6])}\n")
        pid, st, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status, ru = st, usage
            break
        time.sleep(interval)
    if live:
        live.close()
    err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"rc": proc.returncode, "wall_s": round(time.perf_counter() - t0, 1), "peak_tree_mb": peak // 1024,
            "maxrss_mb": ru.ru_maxrss // 1024, "error": err.splitlines()[-1][:200] if proc.returncode and err else "",
            "trace": trace[:: max(1, len(trace) // 60)]}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "highlighter", "-q", *args]


# ----------------------------------------------------------------------------- runs
def detect_row(minutes: float, media: Path, env: dict[str, str], interval: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="hl-mem-") as td:
        r = measure(cli("detect", str(video_of(minutes, media)), "-o", f"{td}/out", "--cache-dir", f"{td}/cache"),
                    env, interval)
    return {"what": "detect (default)", "minutes": minutes, **r}


def weights_cached(name: str, env: dict[str, str]) -> bool:
    code = ("import sys; from highlighter.features.base import backbone_class as b; "
            "from highlighter.features.weights import is_cached; "
            "w = b(sys.argv[1]).spec.weights; print(int(w is None or is_cached(w)))")
    out = subprocess.run([sys.executable, "-c", code, name], env=env, capture_output=True, text=True)
    return out.stdout.strip() == "1"


def backbone_modalities(env: dict[str, str]) -> dict[str, str]:
    """name -> modality of every backbone, asked of a child: importing them here would grow this
    process to torch's size, and a forked child's ``ru_maxrss`` keeps its parent's pages from before exec."""
    code = ("import json; from highlighter.features.base import available_backbones as a; "
            "print(json.dumps({s.name: s.modality for s in a()}))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def extract_row(name: str, modality: str, minutes: float, media: Path, env: dict[str, str],
                interval: float, random: bool) -> dict:
    pick = ["--visual", name, "--no-audio"] if modality == "visual" else ["--visual", "none", "--audio", name]
    with tempfile.TemporaryDirectory(prefix="hl-mem-") as td:
        r = measure(cli("extract-features", str(video_of(minutes, media)), "-o", td, "--device", "cpu", *pick,
                        *(["--random-weights"] if random else [])), env, interval)
    return {"what": f"extract-features {name}{' (random)' if random else ''}", "minutes": minutes, **r}


def show(row: dict) -> None:
    ok = "" if row["rc"] == 0 else f"  FAILED rc={row['rc']}: {row['error']}"
    print(f"{row['what']:44s} {row['minutes']:>6g} min {row['wall_s']:>8.1f} s {row['peak_tree_mb']:>7d} MB "
          f"{row['maxrss_mb']:>7d} MB{ok}", flush=True)


def minutes_list(s: str) -> list[float]:
    return [] if s in ("", "none") else [float(x) for x in s.split(",")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small version: detect 1,3 min; every backbone 1,3 min")
    ap.add_argument("--detect", default=None, help="minutes of video for detect (default 10,30,120); 'none'")
    ap.add_argument("--backbones", "--backbone", default="",
                    help="comma list of backbone names (default: every registered backbone); 'none'")
    ap.add_argument("--fast-minutes", default=None, help="video lengths for the fast backbones (default 10,30)")
    ap.add_argument("--slow-minutes", default="1,3", help="video lengths for i3d, r3d, swin, mockingjay")
    ap.add_argument("--minutes", action="append", default=[], metavar="NAME=M,M",
                    help="video lengths for one backbone (repeatable), e.g. i3d=0.5,1")
    ap.add_argument("--yamnet", default=str(ROOT.parent / "shared" / "weights" / "yamnet" / "yamnet_spectra_in.tflite"),
                    help="yamnet_spectra_in.tflite (yamnet has no random variant)")
    ap.add_argument("--media-dir", type=Path, default=Path("/tmp/hl_memory"))
    ap.add_argument("--interval", type=float, default=0.1, help="RSS polling period, seconds")
    ap.add_argument("--threads", type=int, default=0, help="OMP/torch threads of the runs (0: leave as is)")
    ap.add_argument("--json", type=Path, help="also write the rows (with RSS traces) here")
    ap.add_argument("--live", type=Path, help="append an RSS sample every ~5 s here while each run goes (long runs)")
    args = ap.parse_args()
    global LIVE
    LIVE = args.live
    detect_minutes = minutes_list(args.detect if args.detect is not None else ("1,3" if args.quick else "10,30,120"))
    fast_minutes = minutes_list(args.fast_minutes if args.fast_minutes is not None else
                                ("1,3" if args.quick else "10,30"))
    slow_minutes = minutes_list(args.slow_minutes)

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    print(f"peak RSS: process tree summed (polled every {args.interval:g} s) | ru_maxrss of the largest process; "
          f"cpu cores={os.cpu_count()}", flush=True)
    print(f"{'run':44s} {'video':>10s} {'wall':>10s} {'tree':>10s} {'maxrss':>10s}", flush=True)
    rows = []
    for m in detect_minutes:
        rows.append(detect_row(m, args.media_dir, env, args.interval))
        show(rows[-1])

    specs = backbone_modalities(env)
    names = list(specs) if not args.backbones else [] if args.backbones == "none" else args.backbones.split(",")
    with tempfile.TemporaryDirectory(prefix="hl-mem-cache-") as cache:
        yenv = dict(env, HIGHLIGHTER_CACHE=cache)
        for name in names:
            benv = env
            if name == "yamnet":
                if not Path(args.yamnet).is_file():
                    print(f"{'extract-features yamnet':44s} skipped: no random variant and no {args.yamnet}")
                    continue
                subprocess.run(cli("weights", "import", "yamnet", args.yamnet), env=yenv, check=True,
                               stdout=subprocess.DEVNULL)
                benv = yenv
            random = name != "yamnet" and not weights_cached(name, benv)
            own = dict(x.split("=", 1) for x in args.minutes)
            for m in minutes_list(own[name]) if name in own else slow_minutes if name in SLOW else fast_minutes:
                rows.append(extract_row(name, specs[name], m, args.media_dir, benv, args.interval, random))
                show(rows[-1])
    if args.json:
        from highlighter.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(rows, indent=1))
    worst = max((r["peak_tree_mb"] for r in rows), default=0)
    print(f"worst peak {worst} MB ({'within' if worst <= 1024 else 'OVER'} the 1 GB goal)")


if __name__ == "__main__":
    main()
