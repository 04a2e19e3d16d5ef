"""`highlighter info VIDEO`: what the decoders see (a thin layer over `highlighter.io.probe`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from highlighter.cli.common import plain, show
from highlighter.io.probe import MediaInfo, probe_video


def _fmt_seconds(s: float) -> str:
    m, sec = divmod(max(s, 0.0), 60)
    h, m = divmod(int(m), 60)
    return f"{s:.3f} s ({h:d}:{m:02d}:{sec:06.3f})"


def info_rows(info: MediaInfo) -> list[tuple[str, str]]:
    """(field, value) pairs of the probe result, in display order."""
    rows = [("path", info.path), ("container", info.container), ("duration", _fmt_seconds(info.duration)),
            ("size", f"{info.size_bytes / 1e6:.2f} MB")]
    v = info.video
    if v is not None:
        res = f"{v.width}x{v.height}"
        if (v.display_width, v.display_height) != (v.width, v.height):
            res += f" (displayed {v.display_width}x{v.display_height})"
        rows += [("video codec", v.codec), ("resolution", res),
                 ("fps", f"{v.fps:.3f} ({'variable' if v.vfr else 'constant'})"),
                 ("rotation", f"{v.rotation}° clockwise" if v.rotation else "0°"),
                 ("frames", str(v.num_frames) if v.num_frames is not None else "unknown (not in the index)")]
    if not info.audio:
        rows.append(("audio", "no audio stream"))
    for a in info.audio:
        ch = {1: "mono", 2: "stereo"}.get(a.channels, f"{a.channels} ch")
        rows.append((f"audio #{a.index}", f"{a.codec}, {a.sample_rate} Hz, {ch}, {a.duration:.3f} s"))
    return rows


def info_table(info: MediaInfo) -> Table:
    """The probe result as a two-column rich table; cells are literal text (paths and codec names come from the file)."""
    t = Table(title=plain(Path(info.path).name), show_header=False, title_justify="left")
    t.add_column("field", style="bold")
    t.add_column("value")
    for field, value in info_rows(info):
        t.add_row(plain(field), plain(value))
    return t


def info_cmd(
    video: Path = typer.Argument(..., help="Video file to inspect."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Show container, duration, fps (and whether variable), resolution, rotation and audio streams."""
    info = probe_video(video)
    if as_json:
        typer.echo(json.dumps(info.to_dict(), indent=2))
    else:
        show(info_table(info))
