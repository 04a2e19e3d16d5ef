"""Times as people type them: the one parser behind every time option and `SelectConfig` field.

Why one place: editors write "30s", "0:30" or "1:02:03.5"; if each option parsed on its own,
``--pad 0.5s`` would work where ``--min-length 2s`` failed. Accepted (case-insensitive,
spaces around units allowed):

* a plain number of seconds: ``1.5``, ``30``;
* numbers with units, one or several: ``500ms``, ``30s``, ``2m``, ``1h``, ``1m30s``, ``1h2m3.5s``
  (units: ms, s/sec, m/min, h/hr, and their plurals);
* a clock: ``M:SS`` / ``H:MM:SS`` with optional fraction (``0:30``, ``1:02:03.5``); a field
  after the first must be below 60.

Negative, NaN and infinite times are refused: every time here is a length or a position
in a video. Pure (no I/O); errors are `UsageError` naming the option.
"""

from __future__ import annotations

import math
import re

from highlighter.errors import UsageError

_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
          "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
          "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0}
_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PLAIN = re.compile(rf"^{_NUM}$")
_PART = re.compile(rf"\s*({_NUM})\s*([a-z]+)")
_CLOCK = re.compile(rf"^(?:(\d+):)?(\d+):({_NUM})$")

EXAMPLES = "seconds like 30s, 1.5 or 500ms, or a clock time like 0:30 or 1:02:03.5"


def parse_seconds(value: str | int | float, what: str = "time") -> float:
    """Seconds in ``value`` (see the module docstring); `UsageError` naming ``what`` otherwise."""
    if isinstance(value, bool):
        raise UsageError(f"{what} {value!r}: not a time; give {EXAMPLES}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        seconds = _parse_text(str(value).strip().lower())
        if seconds is None:
            raise UsageError(f"{what} {value!r}: not a time; give {EXAMPLES}")
    if not math.isfinite(seconds) or seconds < 0:
        raise UsageError(f"{what} {value!r}: must be a time >= 0 ({EXAMPLES})")
    return seconds


def is_time_text(value: str) -> bool:
    """Whether ``value`` carries a unit or a colon, i.e. is unmistakably a time (not a bare count)."""
    text = str(value).strip().lower()
    return not _PLAIN.match(text) and _parse_text(text) is not None


def _parse_text(text: str) -> float | None:
    if _PLAIN.match(text):
        return float(text)
    m = _CLOCK.match(text)
    if m:
        hours, minutes, secs = m.group(1), int(m.group(2)), float(m.group(3))
        if secs >= 60 or (hours is not None and minutes >= 60):
            return None
        return (int(hours) * 3600 if hours else 0) + minutes * 60 + secs
    total, pos = 0.0, 0
    while pos < len(text):
        m = _PART.match(text, pos)
        if not m or m.group(2) not in _UNITS:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return total if pos and text else None


def format_seconds(seconds: float) -> str:
    """The canonical text of a time (``30s``, ``2.5s``): what the JSON records for ``--duration``."""
    return f"{seconds:.6g}s"
