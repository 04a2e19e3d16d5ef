"""Errors a user can act on.

Every error raised for bad input, missing weights or an unusable file is a
`HighlighterError`: the CLI prints its message as one line and exits non-zero,
without a traceback (``--debug`` shows it). Messages say what, which file, and
what to do.
"""

from __future__ import annotations


class HighlighterError(Exception):
    """Base class: an error whose message is shown to the user as is."""

    exit_code: int = 1


class InputError(HighlighterError):
    """A file or directory given by the user cannot be used (missing, corrupt, no video...)."""


class NoVideoStreamError(InputError):
    """The file is a media file but has no video stream."""


class WeightsMissingError(HighlighterError):
    """A pretrained checkpoint is not in the cache and cannot be downloaded."""


class UsageError(HighlighterError):
    """Options that do not fit together (exit code 2, like Typer's own usage errors)."""

    exit_code = 2


class Interrupted(HighlighterError):
    """Ctrl-C (SIGINT): the CLI says so in one line and exits 130, the shell's code for it."""

    exit_code = 130

    def __init__(self, message: str = "interrupted") -> None:
        super().__init__(message)


class HighlighterWarning(UserWarning):
    """Something ran other than what was asked (e.g. the offline fallback): the result is usable but
    Python API users must hear about it. The CLI prints its own line instead and ignores these."""
