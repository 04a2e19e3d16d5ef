"""The `highlighter` command: a thin Typer layer over the API.

Exit codes: 0 ok, 1 error (bad input, failed job), 2 usage error.
Errors raised as `HighlighterError` print one line; `--debug` shows the traceback.
"""

from __future__ import annotations

import logging
import sys
import warnings

import typer
from typer.core import TyperCommand, TyperGroup

from highlighter import __version__, interrupts
from highlighter.cli import common, detect, evaluate, extract, features, info, methods, train, trim, weights
from highlighter.errors import HighlighterError, HighlighterWarning, InputError, Interrupted


class _FlagsShownAsFlags:
    """Help shows on/off options as bare flags (``--report``), not ``--report <bool>``: Typer prints
    every option's type, flags included. Setting a flag's metavar to "" changes only the help."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for p in params:
            if getattr(p, "is_flag", False) or getattr(p, "count", False):
                p.metavar = ""
                if getattr(p, "count", False):
                    p.show_default = False  # "-v -v": a default of 0 says nothing
        return params


class _Command(_FlagsShownAsFlags, TyperCommand):
    pass


class _Group(_FlagsShownAsFlags, TyperGroup):
    """Turns Ctrl-C and EOFError into our errors before Typer sees them: Typer makes
    the first a silent exit 130 and the second "Aborted" (click's handling of prompts)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted() from None
        except EOFError as exc:
            raise InputError(common.eof_message(exc)) from exc


def _typer(**kwargs) -> typer.Typer:
    return typer.Typer(cls=_Group, no_args_is_help=True, pretty_exceptions_enable=False,
                       context_settings={"help_option_names": ["-h", "--help"]}, **kwargs)


def _group(parent: typer.Typer, name: str, help: str, commands: dict, callback=None) -> typer.Typer:
    """A command group (``highlighter NAME SUB``) of plain functions."""
    group = _typer(help=help)
    if callback is not None:
        group.callback()(callback)
    for sub, fn in commands.items():
        group.command(sub, cls=_Command)(fn)
    parent.add_typer(group, name=name)
    return group


app = _typer(name="highlighter", help="Find the highlights in raw video and cut them out.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"highlighter {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output (-vv for debug logs)."),
    quiet: bool = typer.Option(False, "--quiet", "-q",
                               help="Only results (detect: the files written) and errors; no progress, "
                                    "summaries or warnings (e.g. the offline fallback; the JSON records it)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    common.state.verbose, common.state.quiet, common.state.debug = verbose, quiet, debug
    warnings.filterwarnings("ignore", category=HighlighterWarning)  # the CLI prints its own line (common.warn)
    level = logging.WARNING - 10 * min(verbose, 2) if not quiet else logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if debug:  # the decoders' own messages (captured by highlighter.io.quiet)
        logging.getLogger("highlighter.native").setLevel(logging.DEBUG)


# Each command is a plain function in its own module; this is the one place that names them.
for _name, _fn in {"info": info.info_cmd, "detect": detect.detect_cmd, "trim": trim.trim_cmd,
                   "extract-features": extract.extract_features_cmd, "train": train.train,
                   "evaluate": evaluate.evaluate}.items():
    app.command(_name, cls=_Command)(_fn)
_group(app, "methods", "Detectors: what each needs, shipped weights and their scores.", {"list": methods.list_cmd})
_group(app, "features", "Feature backbones.", {"list": features.list_cmd})
_group(app, "weights", "List, download or import pretrained checkpoints.",
       {"list": weights.list_cmd, "fetch": weights.fetch_cmd, "import": weights.import_cmd}, callback=weights.root)


def main() -> None:
    """Console entry point: run the app, turning known errors into one line."""
    import signal

    def _terminate() -> None:
        # SystemExit unwinds like Ctrl-C (finally blocks drop temp files, run_ffmpeg kills ffmpeg)
        # but, unlike KeyboardInterrupt, is neither swallowed by Typer nor by per-file `except Exception`.
        common.error_line("terminated (SIGTERM)")
        raise SystemExit(143)

    def _on_sigterm(_signum, _frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the cleanup short
        interrupts.deliver(_terminate)  # held while ffmpeg is being started, until it is ours to kill

    def _interrupt() -> None:
        raise KeyboardInterrupt

    def _on_sigint(_signum, _frame):  # Python's own handler, but held like SIGTERM while ffmpeg starts
        interrupts.deliver(_interrupt)

    signal.signal(signal.SIGTERM, _on_sigterm)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when SIGINT is ignored (nohup, &)
        signal.signal(signal.SIGINT, _on_sigint)
    try:
        # Without standalone mode click *returns* the code of a `typer.Exit(n)`.
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except HighlighterError as exc:
        if common.state.debug:
            raise
        common.error_line(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        common.error_line("interrupted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort as exc:  # click's prompts; Ctrl-C and EOFError are mapped by _Group
        if common.state.debug:
            raise
        cause = exc.__cause__ or exc.__context__
        common.error_line(common.eof_message(cause) if isinstance(cause, EOFError) else "aborted")
        sys.exit(130 if isinstance(cause, KeyboardInterrupt) else 1)
    except OSError as exc:  # a file system error no check caught: still one line naming the file
        if common.state.debug:
            raise
        common.error_line(common.os_error_message(exc))
        sys.exit(1)
    except Exception as exc:  # click usage errors and anything unexpected
        # typer may bundle its own copy of click, so match click's exceptions by shape.
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        if common.state.debug:
            raise
        common.error_line(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
