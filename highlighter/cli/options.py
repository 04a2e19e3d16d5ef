"""Options that several commands share, with their defaults read from the layer that owns them.

Why here: `detect` and `trim` take the same segment options and `--method`; written once, a
default or a help text cannot drift between commands, and no command imports another.
"""

from __future__ import annotations

import dataclasses

import typer

from highlighter.methods import DEFAULT_METHOD
from highlighter.outputs.segments import SelectConfig

METHODS_HINT = "see `highlighter methods list`"


def _select_default(name: str):
    """The default of one `SelectConfig` field (what an option left unset becomes)."""
    return next(f.default for f in dataclasses.fields(SelectConfig) if f.name == name)


# Segment options shared by `detect` and `trim`: defaults None, so `trim --from` can tell "not given";
# the help names the default `SelectConfig` applies.
TOP = typer.Option(None, "--top", help="Share of the duration ('10%') or number of segments ('5'). "
                   f"Default {_select_default('top')}.")
THRESHOLD = typer.Option(None, "--threshold", help="Keep clips whose normalised score (0..1 per video) is >= this.")
MIN_LENGTH = typer.Option(None, "--min-length", help="Shortest segment in seconds (shorter ones grow). "
                          f"Default {_select_default('min_length'):g}.")
MAX_LENGTH = typer.Option(None, "--max-length", help="Longest segment in seconds (longer ones keep their best part).")
MERGE_GAP = typer.Option(None, "--merge-gap", help="Merge segments closer than this many seconds. "
                         f"Default {_select_default('merge_gap'):g}.")
PAD = typer.Option(None, "--pad", help="Seconds of context added before and after each segment. "
                   f"Default {_select_default('pad'):g}.")
SMOOTH = typer.Option(None, "--smooth", help="Moving-average window over the score curve, seconds. "
                      f"Default {_select_default('smooth'):g}.")


def method_option(help: str = f"Detector ({METHODS_HINT}).") -> typer.models.OptionInfo:
    """``--method/-m`` defaulting to `highlighter.methods.DEFAULT_METHOD` (shown by Typer)."""
    return typer.Option(DEFAULT_METHOD, "--method", "-m", help=help)


def select_config(top, threshold, min_length, max_length, merge_gap, pad, smooth,
                  base: SelectConfig | None = None) -> SelectConfig:
    """A SelectConfig from CLI values; unset ones come from ``base`` (or the defaults)."""
    b = base or SelectConfig()
    top_value = top if top is not None else (None if threshold is not None else b.top)
    return SelectConfig(
        top=top_value, threshold=threshold if threshold is not None else b.threshold,
        min_length=min_length if min_length is not None else b.min_length,
        max_length=max_length if max_length is not None else b.max_length,
        merge_gap=merge_gap if merge_gap is not None else b.merge_gap,
        pad=pad if pad is not None else b.pad, smooth=smooth if smooth is not None else b.smooth)
