"""Options that several commands share, with their defaults read from the layer that owns them.

Why here: `detect` and `trim` take the same segment options and `--method`; written once, a
default or a help text cannot drift between commands, and no command imports another.
"""

from __future__ import annotations

import dataclasses

import typer

from highlighter.errors import UsageError
from highlighter.methods import DEFAULT_METHOD
from highlighter.outputs.segments import DEFAULT_MAX_SECONDS, DEFAULT_MIN_SECONDS, SelectConfig
from highlighter.timeparse import format_seconds, parse_seconds

METHODS_HINT = "see `highlighter methods list`"


def _select_default(name: str):
    """The default of one `SelectConfig` field (what an option left unset becomes)."""
    return next(f.default for f in dataclasses.fields(SelectConfig) if f.name == name)


def seconds_parser(option: str):
    """A Typer ``parser`` for a time option: `timeparse.parse_seconds` (``2s``, ``0:30``, ``1.5``, ``500ms``),
    so every time option accepts the same forms and fails with the same one line."""
    def parse(value: str) -> float:
        return parse_seconds(value, option)

    return parse


def time_option(name: str, help: str) -> typer.models.OptionInfo:
    """An optional time option (default None = "not given") read by `seconds_parser`."""
    return typer.Option(None, name, parser=seconds_parser(name), metavar="TIME", help=help)


# Segment options shared by `detect` and `trim`: defaults None, so `trim --from` can tell "not given";
# the help names the default `SelectConfig` applies. Times take units: 2s, 500ms, 0:30, 1:02:03.5.
TOP = typer.Option(None, "--top", help="Number of segments ('5'), share of the duration ('10%') or reel length "
                   f"('30s', '0:30'). Default {_select_default('top')}.")
DURATION = time_option("--duration", "Reel length: the best moments until their total is this long ('30s', '0:30', "
                       "'1:02:03.5'); the same as --top 30s.")
THRESHOLD = typer.Option(None, "--threshold", help="Keep clips whose normalised score (0..1 per video) is >= this.")
MIN_LENGTH = time_option("--min-length", "Shortest segment (shorter ones grow within their shot). "
                         f"Default {_select_default('min_length'):g}; 0 means {DEFAULT_MIN_SECONDS:g}s with a count "
                         "or reel length.")
MAX_LENGTH = time_option("--max-length", "Longest segment (longer ones keep their best part). Default none; "
                         f"{DEFAULT_MAX_SECONDS:g}s with a count or reel length.")
MERGE_GAP = time_option("--merge-gap", "Merge segments of one shot closer than this. "
                        f"Default {_select_default('merge_gap'):g}.")
PAD = time_option("--pad", "Context added before and after each segment, within its shot. "
                  f"Default {_select_default('pad'):g}.")
SMOOTH = time_option("--smooth", "Moving-average window over the score curve (at most a fifth of the video). "
                     f"Default {_select_default('smooth'):g}s.")
CROSS_CUTS = typer.Option(None, "--cross-cuts", help="Let segments span shot cuts (by default each stays in one shot; "
                          "the cuts are in the JSON).")


def method_option(help: str = f"Detector ({METHODS_HINT}).") -> typer.models.OptionInfo:
    """``--method/-m`` defaulting to `highlighter.methods.DEFAULT_METHOD` (shown by Typer)."""
    return typer.Option(DEFAULT_METHOD, "--method", "-m", help=help)


def select_config(top, threshold, min_length, max_length, merge_gap, pad, smooth,
                  duration: float | None = None, cross_cuts: bool | None = None,
                  base: SelectConfig | None = None) -> SelectConfig:
    """A SelectConfig from CLI values; unset ones come from ``base`` (or the defaults).

    ``duration`` (seconds, from ``--duration``) becomes ``top="30s"``: one field says how much to pick.
    """
    b = base or SelectConfig()
    if duration is not None:
        if top is not None:
            raise UsageError(f"--top {top} and --duration {format_seconds(duration)}: give one of them")
        if duration <= 0:
            raise UsageError(f"--duration {format_seconds(duration)}: a reel length must be more than 0 s")
        top = format_seconds(duration)
    top_value = top if top is not None else (None if threshold is not None else b.top)
    return SelectConfig(
        top=top_value, threshold=threshold if threshold is not None else b.threshold,
        min_length=min_length if min_length is not None else b.min_length,
        max_length=max_length if max_length is not None else b.max_length,
        merge_gap=merge_gap if merge_gap is not None else b.merge_gap,
        pad=pad if pad is not None else b.pad, smooth=smooth if smooth is not None else b.smooth,
        cross_cuts=cross_cuts if cross_cuts is not None else b.cross_cuts, snap=b.snap)


# `--ray` for `detect` and `extract-features`. One option with a value (Typer has no option whose value
# may be left out, and `--ray DIR` would be ambiguous): Ray's own `ray.init(address=...)` words.
RAY = typer.Option(None, "--ray", metavar="local|auto|ADDRESS",
                   help="Run one task per video on a Ray cluster: 'local' starts one on this machine, 'auto' joins "
                        "the one `ray start` runs here, HEAD:6379 joins that one "
                        "(pip install 'highlighter\\[ray]'; paths must be the same on every node).")


def batch_runner(ray: str | None):
    """The batch runner for ``--ray``: `batch.run_batch` here, or a `batch_ray.RayRunner` (the only
    place ray is imported, so every run without --ray works without it)."""
    from highlighter.batch import run_batch

    if ray is None:
        return run_batch
    from highlighter.batch_ray import RayRunner

    return RayRunner(ray)
