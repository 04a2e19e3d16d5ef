"""Contact sheet of what `highlighter detect` picked: one thumbnail per clip, chosen ones framed.

    .venv/bin/python scripts/contact_sheet.py out/video.json [--video PATH] -o sheet.png

Every clip of the result's grid gets the frame at its middle, labelled with its time and
score; clips inside a chosen segment get a thick red frame and their rank. For looking at
the picks with one's own eyes (mAP says nothing about a single video).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

THUMB_W = 192


def frame_at(video: Path, t: float, width: int) -> Image.Image:
    """One RGB frame at ``t`` seconds, ``width`` pixels wide (ffmpeg seek + scale)."""
    cmd = ["ffmpeg", "-v", "error", "-ss", f"{t:.3f}", "-i", str(video), "-frames:v", "1",
           "-vf", f"scale={width}:-2", "-f", "image2pipe", "-vcodec", "png", "-"]
    png = subprocess.run(cmd, capture_output=True, check=True).stdout
    from io import BytesIO

    return Image.open(BytesIO(png)).convert("RGB")


def sheet(result: dict, video: Path, cols: int = 6) -> Image.Image:
    clips = result["clips"]
    starts, ends, scores = (np.asarray([c[k] for c in clips], dtype=float) for k in ("start", "end", "score"))
    chosen = {}
    for seg in result["segments"]:
        for i in np.flatnonzero((starts < seg["end"]) & (ends > seg["start"])):
            chosen.setdefault(int(i), seg["rank"])
    thumbs = [frame_at(video, (s + e) / 2, THUMB_W) for s, e in zip(starts, ends)]
    th = max(t.height for t in thumbs) + 18
    rows = -(-len(thumbs) // cols)
    out = Image.new("RGB", (cols * (THUMB_W + 8), rows * (th + 8) + 24), "white")
    d = ImageDraw.Draw(out)
    sig = result.get("signal") or {}
    d.text((4, 4), f"{Path(result['video']['path']).name}  method {result['method']['name']} "
                   f"({result['method'].get('mode') or 'weights'})  clear={sig.get('clear')}", fill="black")
    for i, t in enumerate(thumbs):
        x, y = (i % cols) * (THUMB_W + 8) + 4, (i // cols) * (th + 8) + 28
        if i in chosen:
            d.rectangle([x - 4, y - 4, x + THUMB_W + 3, y + th + 3], fill="red")
        out.paste(t, (x, y))
        label = f"{starts[i]:.0f}-{ends[i]:.0f}s  {scores[i]:.2f}" + (f"  #{chosen[i]}" if i in chosen else "")
        d.rectangle([x, y + t.height, x + THUMB_W - 1, y + th - 1], fill="white")
        d.text((x + 2, y + t.height + 3), label, fill="black")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("result", type=Path, help="a JSON written by `highlighter detect`")
    ap.add_argument("--video", type=Path, help="the video (default: the path recorded in the JSON)")
    ap.add_argument("-o", "--out", type=Path, required=True, help="PNG to write")
    args = ap.parse_args(argv)
    result = json.loads(args.result.read_text())
    video = args.video or Path(result["video"]["path"])
    if not video.is_file():
        print(f"error: {video}: video not found; pass --video", file=sys.stderr)
        return 1
    sheet(result, video).save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
