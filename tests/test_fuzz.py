"""Fuzz every command with generated bad input (no network).

Each case asserts what the project promises for bad input: no traceback, exit code 1 or
2 (0 only for the valid controls), the first ``error:`` line names the file or the bad
value (escaped forms accepted for names with newlines), nothing new or half-written
anywhere under the test folder (working dir, outputs, cache, TMPDIR), inputs byte-for-byte
unchanged, and no pickle bomb went off.

Speed: media and inputs are generated once per module (tests/fuzz_inputs.py) and the CLI
runs in this process (``highlighter.cli.main.main`` with ``sys.argv`` patched; rich's
consoles write to whatever ``sys.stderr`` is, so capsys sees exactly what a user would).
An exception escaping ``main`` is turned into the traceback the interpreter would print.
Only named pipes run in a subprocess (an ``open`` on a pipe blocks; the process group is
killed after a timeout, so a hang fails the case instead of blocking CI). In-process cases
get a SIGALRM watchdog for the same reason.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

import fuzz_inputs as F
from cli_helpers import alarm
from fuzz_inputs import ODD_NAMES, World

IN_PROCESS_LIMIT_S = 90  # first model load on a busy 2-core machine included
SUBPROCESS_LIMIT_S = 30  # interpreter + torch import on a busy machine, then the case

FN = ["--method", "feature-norm", "--backbone", "efficientnet-lite0"]  # cheap real detect
EX = ["--visual", "efficientnet-lite0", "--no-audio"]  # cheap real extraction (bundled weights)
TINY = ["--epochs", "1", "--device", "cpu", "--set", "window=8", "--set", "k=2", "--set", "channels=2,2,4",
        "--set", "psi_channels=2", "--set", "proj_dim=8", "--set", "batch_size=4"]

Argv = Callable[[World, Path], list]  # (world, the case's work dir) -> CLI arguments
Needles = Callable[[World], list]


@dataclass(frozen=True)
class Case:
    id: str
    argv: Argv
    needles: Needles | None = None  # the first error line must contain one of these
    ok: bool = False  # a valid control: exit 0
    creates: tuple[str, ...] = ()  # globs under the work dir a valid run writes
    errors: int = 1  # error lines allowed (batch commands add a summary line)
    sub: bool = False  # run in a subprocess (named pipes)
    cwd: str = "work"  # "work" (fresh per case) or "odd" (the odd-names folder, for relative names)


def _lit(*values: str) -> Needles:
    return lambda w: list(values)


def _opt(option: str, value: str) -> Needles:
    """Needles for a bad option value: the option, or the value as given or as parsed (-1 -> -1.0)."""
    forms = [option] + ([value] if len(value) > 1 else [])
    try:
        forms.append(str(float(value)))
    except ValueError:
        pass
    return lambda w: forms


def _names(*names: str) -> Needles:
    """Needles for file names, with the escaped forms a name with a newline may take."""
    return lambda w: [f for n in names for f in F.name_forms(n)]


# ----------------------------------------------------------------------------- the cases

BAD_MEDIA = ["half.mp4", "head.mp4", "zero.mp4", "text.mp4", "random.mp4", "ftyp-noise.mp4", "ebml-noise.mkv",
             "no-moov.mp4", "index-first-half.mp4", "song.m4a", "song-as-video.mp4", "json.mp4", "gzip.mp4",
             "folder.mp4", "loop.mp4", "cycle-a.mp4", "dangling.mp4", "missing.mp4"]


def media_cases() -> list[Case]:
    """Every bad media file through every command that reads video."""
    out = []
    for f in BAD_MEDIA:
        kind = f.rsplit(".", 1)[0]
        out += [
            Case(f"info-{kind}", lambda w, d, f=f: ["info", w.m(f)], _names(f)),
            Case(f"detect-{kind}", lambda w, d, f=f: ["detect", w.m(f), *FN, "-o", d / "out"], _names(f), errors=2),
            Case(f"trim-{kind}", lambda w, d, f=f: ["trim", w.m(f), *FN, "-o", d / "reel.mp4"], _names(f), errors=2),
            Case(f"extract-{kind}", lambda w, d, f=f: ["extract-features", w.m(f), *EX, "-o", d / "feats"], _names(f),
                 errors=2),
        ]
    folders = [("empty-dir", "empty-dir", 1), ("loopdir", "cut.mp4", 2), ("onlyloop", "self.mp4", 2),
               ("badfolder", "a.mp4", 3)]
    for folder, needle, errors in folders:
        out += [
            Case(f"detect-folder-{folder}", lambda w, d, f=folder: ["detect", w.m(f), *FN, "-o", d / "out"],
                 _names(needle), errors=errors),
            Case(f"extract-folder-{folder}", lambda w, d, f=folder: ["extract-features", w.m(f), *EX, "-o", d / "f"],
                 _names(needle), errors=errors),
        ]
    return out


def odd_name_cases() -> list[Case]:
    """Odd names, passed relative to their folder after `--` (so a leading dash is a name)."""
    out = []
    for key, stem in ODD_NAMES.items():
        good, cut = f"{stem}.mp4", f"{stem}-cut.mp4"
        out += [
            Case(f"info-name-{key}-valid", lambda w, d, g=good: ["info", "--", g], ok=True, cwd="odd"),
            Case(f"info-name-{key}-truncated", lambda w, d, c=cut: ["info", "--", c], _names(cut), cwd="odd"),
            Case(f"detect-name-{key}-truncated", lambda w, d, c=cut: ["detect", *FN, "-o", d / "out", "--", c],
                 _names(cut), errors=2, cwd="odd"),
            Case(f"trim-name-{key}-truncated", lambda w, d, c=cut: ["trim", *FN, "-o", d / "reel.mp4", "--", c],
                 _names(cut), errors=2, cwd="odd"),
            Case(f"extract-name-{key}-truncated",
                 lambda w, d, c=cut: ["extract-features", *EX, "-o", d / "feats", "--", c], _names(cut), errors=2,
                 cwd="odd"),
            Case(f"trim-from-name-{key}-not-json",
                 lambda w, d, j=f"{stem}.json": ["trim", w.m("good.mp4"), "-o", d / "reel.mp4", f"--from={j}"],
                 _names(f"{stem}.json"), cwd="odd"),
            Case(f"weights-import-name-{key}-garbage",
                 lambda w, d, p=f"{stem}.pt": ["weights", "import", "i3d-rgb-imagenet-kinetics", "--", p],
                 _names(f"{stem}.pt"), cwd="odd"),
            Case(f"evaluate-name-{key}-empty-dir", lambda w, d, p=f"{stem}-data": ["evaluate", f"--data={p}"],
                 _names(f"{stem}-data"), cwd="odd"),
        ]
    return out


def EMPTY_DIR(w: World) -> list[str]:
    """An output folder given by the user must be named by its full path (not by a temp file next to it)."""
    return [str(w.media / "empty-dir")]


def option_cases() -> list[Case]:
    """Bad option values: the error line must show the value (or the option, where there is no value)."""

    def detect(*opts):
        return lambda w, d: ["detect", w.m("good.mp4"), *FN, "-o", d / "out", *opts]

    def trim(*opts):
        return lambda w, d: ["trim", w.m("good.mp4"), "--from", w.json / "valid.json", "-o", d / "reel.mp4", *opts]

    def extract(*opts):
        return lambda w, d: ["extract-features", w.m("good.mp4"), *EX, "-o", d / "feats", *opts]

    def evaluate(*opts):
        return lambda w, d: ["evaluate", "--data", w.data / "valid", "--method", "feature-norm", *opts]

    def train(*opts):
        return lambda w, d: ["train", "--method", "rasl", "--data", f"{w.data / 'valid'}:all", "-o",
                             d / "w.safetensors", *TINY, *opts]

    rows: list[tuple[str, Argv, Needles]] = [
        ("info-no-argument", lambda w, d: ["info"], _lit("VIDEO", "'video'")),
        ("info-unknown-option", lambda w, d: ["info", w.m("good.mp4"), "--nope"], _lit("--nope")),
        ("detect-no-input", lambda w, d: ["detect", *FN], _lit("INPUTS", "'inputs'")),
        ("detect-top-word", detect("--top", "abc"), _opt("--top", "abc")),
        ("detect-top-negative", detect("--top", "-5%"), _opt("--top", "-5%")),
        ("detect-top-zero", detect("--top", "0"), _opt("--top", "0")),
        ("detect-top-over-100", detect("--top", "150%"), _opt("--top", "150%")),
        ("detect-top-nan", detect("--top", "nan"), _opt("--top", "nan")),
        ("detect-top-empty", detect("--top", ""), _opt("--top", "")),
        ("detect-threshold-2", detect("--threshold", "2"), _opt("--threshold", "2")),
        ("detect-threshold-nan", detect("--threshold", "nan"), _opt("--threshold", "nan")),
        ("detect-threshold-word", detect("--threshold", "abc"), _opt("--threshold", "abc")),
        ("detect-min-length-negative", detect("--min-length", "-1"), _opt("--min-length", "-1")),
        ("detect-min-length-nan", detect("--min-length", "nan"), _opt("--min-length", "nan")),
        ("detect-max-length-zero", detect("--max-length", "0"), _opt("--max-length", "0")),
        ("detect-max-length-negative", detect("--max-length", "-3"), _opt("--max-length", "-3")),
        ("detect-merge-gap-negative", detect("--merge-gap", "-1"), _opt("--merge-gap", "-1")),
        ("detect-pad-negative", detect("--pad", "-1"), _opt("--pad", "-1")),
        ("detect-pad-inf", detect("--pad", "inf"), _opt("--pad", "inf")),
        ("detect-smooth-negative", detect("--smooth", "-1"), _opt("--smooth", "-1")),
        ("detect-smooth-nan", detect("--smooth", "nan"), _opt("--smooth", "nan")),
        ("detect-smooth-inf", detect("--smooth", "inf"), _opt("--smooth", "inf")),
        ("detect-format-xml", detect("--format", "xml"), _opt("--format", "xml")),
        ("detect-format-empty", detect("--format", ","), _opt("--format", ",")),
        ("detect-method-unknown", lambda w, d: ["detect", w.m("good.mp4"), "--method", "nope", "-o", d / "o"],
         _lit("nope")),
        ("detect-backbone-unknown", lambda w, d: ["detect", w.m("good.mp4"), "--method", "feature-norm",
                                                  "--backbone", "nope", "-o", d / "o"], _lit("nope")),
        ("detect-device-unknown", detect("--device", "quantum"), _opt("--device", "quantum")),
        ("detect-weights-missing", detect("--weights", "no-such.safetensors"), _names("no-such.safetensors")),
        ("detect-out-is-file", lambda w, d: ["detect", w.m("good.mp4"), *FN, "-o", w.m("text.mp4")],
         _names("text.mp4")),
        ("trim-order-unknown", trim("--order", "random"), _opt("--order", "random")),
        ("trim-crossfade-negative", trim("--crossfade", "-1"), _opt("--crossfade", "-1")),
        ("trim-crossfade-nan", trim("--crossfade", "nan"), _opt("--crossfade", "nan")),
        ("trim-crossfade-with-copy", trim("--crossfade", "1", "--copy"), _lit("--crossfade")),
        ("trim-crossfade-with-split", trim("--crossfade", "1", "--split"), _lit("--crossfade")),
        ("trim-top-word", trim("--top", "abc"), _opt("--top", "abc")),
        ("trim-top-zero", trim("--top", "0"), _opt("--top", "0")),
        ("trim-pad-negative", trim("--pad", "-1"), _opt("--pad", "-1")),
        ("trim-smooth-nan", trim("--smooth", "nan"), _opt("--smooth", "nan")),
        ("trim-threshold-7", trim("--threshold", "7"), _opt("--threshold", "7")),
        ("trim-out-no-extension", lambda w, d: ["trim", w.m("good.mp4"), "--from", w.json / "valid.json",
                                                "-o", d / "reel"], _names("reel")),
        ("trim-out-is-input", lambda w, d: ["trim", w.m("good.mp4"), "--from", w.json / "valid.json",
                                            "-o", w.m("good.mp4"), "--force"], _names("good.mp4")),
        ("trim-out-exists", lambda w, d: ["trim", w.m("good.mp4"), "--from", w.json / "valid.json",
                                          "-o", w.m("text.mp4")], _names("text.mp4")),
        ("trim-out-is-dir", lambda w, d: ["trim", w.m("good.mp4"), "--from", w.json / "valid.json",
                                          "-o", w.m("folder.mp4"), "--force"], _names("folder.mp4")),
        ("trim-out-parent-is-file", lambda w, d: ["trim", w.m("good.mp4"), "--from", w.json / "valid.json",
                                                  "-o", w.media / "text.mp4" / "reel.mp4"], _names("text.mp4")),
        ("trim-method-unknown", lambda w, d: ["trim", w.m("good.mp4"), "--method", "nope", "-o", d / "r.mp4"],
         _lit("nope")),
        ("trim-backbone-unknown", lambda w, d: ["trim", w.m("good.mp4"), "--method", "feature-norm",
                                                "--backbone", "nope", "-o", d / "r.mp4"], _lit("nope")),
        ("extract-batch-size-zero", extract("--batch-size", "0"), _opt("--batch-size", "0")),
        ("extract-batch-size-word", extract("--batch-size", "abc"), _opt("--batch-size", "abc")),
        ("extract-clip-seconds-zero", extract("--clip-seconds", "0"), _opt("--clip-seconds", "0")),
        ("extract-clip-seconds-negative", extract("--clip-seconds", "-1"), _opt("--clip-seconds", "-1")),
        ("extract-clip-seconds-nan", extract("--clip-seconds", "nan"), _opt("--clip-seconds", "nan")),
        ("extract-clip-seconds-inf", extract("--clip-seconds", "inf"), _opt("--clip-seconds", "inf")),
        ("extract-hop-seconds-zero", extract("--hop-seconds", "0"), _opt("--hop-seconds", "0")),
        ("extract-hop-seconds-negative", extract("--hop-seconds", "-2"), _opt("--hop-seconds", "-2")),
        ("extract-hop-seconds-nan", extract("--hop-seconds", "nan"), _opt("--hop-seconds", "nan")),
        ("extract-visual-unknown", lambda w, d: ["extract-features", w.m("good.mp4"), "--visual", "nope",
                                                 "--no-audio", "-o", d / "f"], _lit("nope")),
        ("extract-audio-unknown", lambda w, d: ["extract-features", w.m("good.mp4"), "--visual",
                                                "efficientnet-lite0", "--audio", "nope", "-o", d / "f"], _lit("nope")),
        ("extract-nothing-to-extract", lambda w, d: ["extract-features", w.m("good.mp4"), "--visual", "none",
                                                     "--audio", "none", "-o", d / "f"],
         _lit("--visual", "--audio", "nothing to extract")),
        ("extract-decoder-unknown", extract("--decoder", "nope"), _opt("--decoder", "nope")),
        ("extract-device-unknown", extract("--device", "quantum"), _opt("--device", "quantum")),
        ("extract-out-is-file", lambda w, d: ["extract-features", w.m("good.mp4"), *EX, "-o", w.m("text.mp4")],
         _names("text.mp4")),
        ("evaluate-no-data", lambda w, d: ["evaluate"], _lit("--data")),
        ("evaluate-split-unknown", evaluate("--split", "test"), _opt("--split", "test")),
        ("evaluate-method-unknown", evaluate("--method", "nope"), _opt("--method", "nope")),
        ("evaluate-seed-word", evaluate("--seed", "abc"), _opt("--seed", "abc")),
        ("evaluate-json-inside-data", lambda w, d: ["evaluate", "--data", w.data / "valid", "--json",
                                                    w.data / "valid" / "r.json"], _names("r.json")),
        ("evaluate-json-is-dir", lambda w, d: [*evaluate()(w, d), "--json", w.media / "empty-dir"], EMPTY_DIR),
        ("evaluate-json-parent-is-file", lambda w, d: [*evaluate()(w, d), "--json", w.media / "text.mp4" / "r.json"],
         _names("text.mp4")),
        ("evaluate-predictions-is-dir", lambda w, d: [*evaluate()(w, d), "--predictions", w.media / "empty-dir"],
         EMPTY_DIR),
        ("evaluate-weights-missing", evaluate("--weights", "no-such.safetensors"), _names("no-such.safetensors")),
        ("train-method-unknown", lambda w, d: ["train", "--method", "nope", "--data", w.data / "valid", "-o",
                                               d / "w.safetensors"], _lit("nope")),
        ("train-method-training-free", lambda w, d: ["train", "--method", "feature-norm", "--data", w.data / "valid",
                                                     "-o", d / "w.safetensors"], _lit("feature-norm")),
        ("train-no-data", lambda w, d: ["train", "--method", "rasl", "-o", d / "w.safetensors"], _lit("--data")),
        ("train-epochs-zero", train("--epochs", "0"), _opt("--epochs", "0")),
        ("train-epochs-negative", train("--epochs", "-1"), _opt("--epochs", "-1")),
        ("train-set-no-equals", train("--set", "nokey"), _opt("--set", "nokey")),
        ("train-set-unknown-key", train("--set", "bogus=1"), _opt("--set", "bogus=1")),
        ("train-set-bad-value", train("--set", "window=abc"), _lit("abc", "window")),
        ("train-set-negative-window", train("--set", "window=-1"), _opt("--set", "window=-1")),
        ("train-split-unknown", lambda w, d: ["train", "--method", "rasl", "--data", w.data / "valid", "--split",
                                              "test", "-o", d / "w.safetensors", *TINY], _lit("test")),
        ("train-split-count", lambda w, d: ["train", "--method", "rasl", "--data", w.data / "valid", "--split",
                                            "train", "--split", "val", "--split", "all", "-o", d / "w.safetensors",
                                            *TINY], _lit("--split")),
        ("train-data-split-unknown", lambda w, d: ["train", "--method", "rasl", "--data", f"{w.data / 'valid'}:test",
                                                   "-o", d / "w.safetensors", *TINY], _lit("test")),
        ("train-device-unknown", train("--device", "quantum"), _opt("--device", "quantum")),
        ("train-seed-word", train("--seed", "abc"), _opt("--seed", "abc")),
        ("train-out-is-dir", lambda w, d: ["train", "--method", "rasl", "--data", f"{w.data / 'valid'}:all",
                                           "-o", w.media / "empty-dir", *TINY], EMPTY_DIR),
        ("train-out-parent-is-file", lambda w, d: ["train", "--method", "rasl", "--data", f"{w.data / 'valid'}:all",
                                                   "-o", w.media / "text.mp4" / "w.safetensors", *TINY],
         _names("text.mp4")),
        ("weights-import-unknown-name", lambda w, d: ["weights", "import", "no-such-weights", w.m("good.mp4")],
         _lit("no-such-weights")),
        ("weights-fetch-unknown-name", lambda w, d: ["weights", "fetch", "no-such-weights"], _lit("no-such-weights")),
        ("weights-import-missing-file", lambda w, d: ["weights", "import", "yamnet", w.m("missing.tflite")],
         _names("missing.tflite")),
    ]
    return [Case(i, argv, needles) for i, argv, needles in rows]


def from_cases() -> list[Case]:
    """Broken `trim --from` results; the ones only re-selection reads run with --top."""
    out = []
    for key in F.from_variants({"schema_version": "1.0", "segments": [{}], "video": {}, "selection": {},
                                "clips": [{"score": 0.0}]}):
        opts = ["--top", "2"] if key in F.FROM_RESELECT else []
        out.append(Case(f"trim-from-{key}", lambda w, d, k=key, o=opts: [
            "trim", w.m("good.mp4"), "--from", w.json / f"{k}.json", "-o", d / "reel.mp4", *o], _names(f"{key}.json")))
    out += [
        Case("trim-from-missing", lambda w, d: ["trim", w.m("good.mp4"), "--from", w.json / "nope.json", "-o",
                                                d / "r.mp4"], _names("nope.json")),
        Case("trim-from-directory", lambda w, d: ["trim", w.m("good.mp4"), "--from", w.m("empty-dir"), "-o",
                                                  d / "r.mp4"], _names("empty-dir")),
        Case("trim-from-symlink-loop", lambda w, d: ["trim", w.m("good.mp4"), "--from", w.m("loop.mp4"), "-o",
                                                     d / "r.mp4"], _names("loop.mp4")),
        Case("trim-from-media-file", lambda w, d: ["trim", w.m("good.mp4"), "--from", w.m("good.mp4"), "-o",
                                                   d / "r.mp4"], _names("good.mp4")),
    ]
    return out


def weights_cases() -> list[Case]:
    """`weights import NAME FILE` with files that are not that checkpoint (ids from fuzz_inputs.build_weights)."""
    # (swin's loader costs seconds per case; its text/random cases add nothing over zero/bad-header)
    keys = [f"{kind}-{n}" for n in F.WEIGHT_NAMES for kind in ("zero", "text", "random")
            if n != "swin-base-in22k-in1k" or kind == "zero"]
    keys += [f"{kind}-{n}" for n in F.TORCH_WEIGHTS
             for kind in ("pickle-bomb", "torch-bomb", "wrong-keys", "truncated")]
    keys += [f"{kind}-swin-base-in22k-in1k" for kind in ("huge-header", "bad-header", "lying-offsets", "wrong-keys")]
    keys += ["wrong-size-yamnet", "folder", "loop"]

    def name_of(key: str) -> str:
        return next((n for n in F.WEIGHT_NAMES if key.endswith(n)), "i3d-rgb-imagenet-kinetics")

    return [Case(f"weights-import-{key}", lambda w, d, k=key: ["weights", "import", name_of(k), w.checkpoints[k]],
                 lambda w, k=key: F.name_forms(w.checkpoints[k].name)) for key in keys]


def detector_weights_cases() -> list[Case]:
    out = []
    for key in ("zero", "text", "pickle", "huge-header", "no-metadata"):
        needle = lambda w, k=key: [w.detector_weights[k].name]  # noqa: E731
        out += [
            Case(f"detect-weights-{key}", lambda w, d, k=key: [
                "detect", w.m("good.mp4"), "--backbone", "efficientnet-lite0", "--weights", w.detector_weights[k],
                "-o", d / "out"], needle),
            Case(f"evaluate-weights-{key}", lambda w, d, k=key: [
                "evaluate", "--data", w.data / "valid", "--weights", w.detector_weights[k]], needle),
        ]
    return out


DATASETS = ["empty", "file", "missing", "anno-not-json", "anno-list", "anno-binary", "no-splits", "splits-not-json",
            "splits-list", "splits-domain-list", "splits-empty", "splits-ids-not-strings", "npy-garbage",
            "npy-empty-file", "npy-pickle", "npy-1d", "npy-3d", "npy-zero-rows", "npy-nan", "npy-strings",
            "audio-garbage", "match-garbage", "match-missing", "match-nested", "match-strings",
            "anno-entry-not-object", "tvsum-wrong-shape", "all-features-missing", "features-loop"]
TRAIN_DATASETS = ["missing", "empty", "anno-not-json", "no-splits", "npy-garbage", "npy-pickle", "npy-1d",
                  "npy-zero-rows", "npy-nan", "npy-dims-mismatch", "match-garbage", "splits-empty",
                  "all-features-missing"]


def dataset_cases() -> list[Case]:
    def needles(key):
        return lambda w: F.name_forms(w.datasets[key][1])

    out = [Case(f"evaluate-data-{k}", lambda w, d, k=k: [
        "evaluate", "--data", w.datasets[k][0], "--method", "feature-norm", "--no-baselines", "--split", "all"],
        needles(k)) for k in DATASETS]
    out += [Case(f"train-data-{k}", lambda w, d, k=k: [
        "train", "--method", "rasl", "--data", f"{w.datasets[k][0]}:all", "-o", d / "w.safetensors", *TINY],
        needles(k)) for k in TRAIN_DATASETS]
    return out


def pipe_cases() -> list[Case]:
    """Named pipes nobody writes to: subprocess with a timeout, so a blocking open fails the case."""

    def p(name: str) -> Callable[[World], Path]:
        return lambda w: w.fifo / name

    rows = [
        ("info-pipe", lambda w, d: ["info", p("pipe.mp4")(w)], "pipe.mp4", 1),
        ("detect-pipe", lambda w, d: ["detect", p("pipe.mp4")(w), *FN, "-o", d / "out"], "pipe.mp4", 2),
        ("trim-pipe", lambda w, d: ["trim", p("pipe.mp4")(w), *FN, "-o", d / "r.mp4"], "pipe.mp4", 2),
        ("trim-from-pipe", lambda w, d: ["trim", w.m("good.mp4"), "--from", p("pipe.json")(w), "-o", d / "r.mp4"],
         "pipe.json", 1),
        ("extract-folder-with-pipe", lambda w, d: ["extract-features", p("dir")(w), *EX, "-o", d / "f"],
         "inside.mp4", 2),
        ("weights-import-pipe", lambda w, d: ["weights", "import", "i3d-rgb-imagenet-kinetics", p("pipe.pt")(w)],
         "pipe.pt", 1),
        ("evaluate-data-pipe", lambda w, d: ["evaluate", "--data", p("ds")(w), "--method", "feature-norm",
                                             "--split", "all"], "splits.json", 1),
    ]
    return [Case(i, argv, _names(n), errors=e, sub=True) for i, argv, n, e in rows]


def valid_cases() -> list[Case]:
    """Controls: valid input through the same runner and checks must exit 0."""
    return [
        Case("info-valid", lambda w, d: ["info", w.m("good.mp4")], ok=True),
        Case("info-valid-json", lambda w, d: ["info", "--json", w.m("good.mp4")], ok=True),
        Case("detect-valid", lambda w, d: ["detect", w.m("good.mp4"), *FN, "-o", d / "out"], ok=True,
             creates=("out", "out/good.json", "out/good.csv", "out/good.edl")),
        Case("trim-from-valid", lambda w, d: ["trim", w.m("good.mp4"), "--from", w.json / "valid.json",
                                              "-o", d / "reel.mp4"], ok=True, creates=("reel.mp4",)),
        Case("extract-valid", lambda w, d: ["extract-features", w.m("good.mp4"), *EX, "-o", d / "f"], ok=True,
             creates=("f", "f/good.features.npz")),
        Case("evaluate-valid", lambda w, d: ["evaluate", "--data", w.data / "valid", "--method", "feature-norm"],
             ok=True),
        Case("train-valid", lambda w, d: ["train", "--method", "rasl", "--data", f"{w.data / 'valid'}:all", "-o",
                                          d / "w.safetensors", *TINY], ok=True, creates=("w.safetensors",)),
    ]


CASES = (valid_cases() + media_cases() + odd_name_cases() + option_cases() + from_cases() + weights_cases()
         + detector_weights_cases() + dataset_cases() + pipe_cases())


# ----------------------------------------------------------------------------- running


class CaseTimeout(BaseException):
    """Raised by the watchdog; a BaseException so the CLI's `except Exception` cannot swallow it."""


def watchdog(seconds: int):
    return alarm(seconds, CaseTimeout)


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    return exc.code if isinstance(exc.code, int) else 1  # sys.exit("msg") prints msg and exits 1


def run_in_process(argv: list[str], capsys) -> tuple[int, str, str]:
    """`highlighter ARGV` in this process: exit code, stdout, stderr as a user would see them."""
    from highlighter.cli.main import main

    capsys.readouterr()
    sys.argv = ["highlighter", *argv]
    main_module = sys.modules["__main__"]
    package = getattr(main_module, "__package__", None)
    main_module.__package__ = None  # else click names the program "python -m pytest" in usage lines
    # pytest owns the root logger, so the CLI's basicConfig is a no-op here: show WARNING+
    # records on stderr as the real process would.
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        with watchdog(IN_PROCESS_LIMIT_S):
            main()
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc)
    except CaseTimeout as exc:
        pytest.fail(f"hung: `highlighter {' '.join(argv)}` {exc}")
    except BaseException:  # escaped main(): the interpreter would print this traceback and exit 1
        sys.stderr.write(traceback.format_exc())
        code = 1
    finally:
        logging.getLogger().removeHandler(handler)
        main_module.__package__ = package
    out, err = capsys.readouterr()
    return code, out, err


def _cli_command() -> list[str]:
    script = Path(sys.executable).parent / "highlighter"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from highlighter.cli.main import main; main()"]


def run_subprocess(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """The real console script in its own process group, killed (with any ffmpeg child) on timeout."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([*_cli_command(), *argv], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=SUBPROCESS_LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"hung: `highlighter {' '.join(argv)}` still running after {SUBPROCESS_LIMIT_S} s")
    return proc.returncode, out, err


# ----------------------------------------------------------------------------- checks


def scope(w: World, argv: list[str], cwd: Path, workdir: Path) -> tuple[set[Path], set[Path]]:
    """The folders a case can touch, (walked whole, listed only): its work dir and cwd, the cache, TMPDIR,
    the bomb markers, every folder in its arguments, and the folder holding each path in its arguments
    (siblings are where a temp file lands)."""
    roots, shallow = {workdir, cwd, w.cache, w.tmp, w.markers}, set()
    for arg in argv:
        for cand in {arg, arg.rsplit(":", 1)[0]}:  # train's DIR:split
            p = Path(cand)
            if not (p.is_absolute() and w.base in p.parents):
                continue
            while p != w.base and not os.path.lexists(p):
                p = p.parent  # an output that does not exist yet: watch the nearest existing folder
            if p.is_dir() and not p.is_symlink():
                roots.add(p)
            shallow.add(p.parent)
    return roots, shallow


def _looks_temporary(name: str) -> bool:
    return name.startswith((".", "tmp")) or ".part" in name or ".tmp" in name


def leftovers(before: dict, after: dict, case: Case, workdir: str) -> list[str]:
    """What a case added, removed or changed that it should not have."""
    allowed = {f"{workdir}/{g}" for g in case.creates} if case.ok else set()
    bad = []
    for rel in sorted(set(before) | set(after)):
        if before.get(rel) == after.get(rel) or rel in allowed or rel == workdir:
            continue
        parts = rel.split("/")
        if rel not in before and parts[0] == "cache" and not any(_looks_temporary(p) for p in parts[1:]) and (
                after[rel] == "dir" or parts[1:2] != ["weights"]):
            continue  # cache folders and complete feature-cache entries are fine; temp files, imports of bad files not
        state = "new" if rel not in before else ("removed" if rel not in after else "changed")
        bad.append(f"{state}: {rel!r}")
    return bad


def error_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.strip().lower().startswith("error:")]


def check(case: Case, code: int, out: str, err: str, bad_files: list[str]) -> None:
    assert "Traceback" not in err, err[-3000:]
    if case.ok:
        assert code == 0, f"valid input failed with exit {code}:\n{err}"
    else:
        assert code in (1, 2), f"exit {code} (expected 1 or 2)\nstderr: {err}\nstdout: {out[-500:]}"
        lines = error_lines(err)
        assert lines, f"no 'error:' line on stderr:\n{err}"
        assert len(lines) <= case.errors, f"{len(lines)} error lines (at most {case.errors}):\n{err}"
    assert not bad_files, "left behind or modified:\n" + "\n".join(bad_files)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    w = F.build_world(base)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {"HIGHLIGHTER_CACHE": str(w.cache), "HIGHLIGHTER_OFFLINE": "1", "COLUMNS": "200",
                     "NO_COLOR": "1", "TERM": "dumb", "TMPDIR": str(w.tmp)}.items():
            mp.setenv(k, v)
        mp.setattr(tempfile, "tempdir", str(w.tmp))
        mp.setattr(sys, "argv", list(sys.argv))
        valid = _valid_result(w)
        for key, content in F.from_variants(valid).items():
            path = w.json / f"{key}.json"
            path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
        yield w


def _valid_result(w: World) -> dict:
    """A real detect result of good.mp4 (the base every broken --from file is made from)."""
    import json

    from highlighter.cli.main import main

    sys.argv = ["highlighter", "detect", w.m("good.mp4"), *FN, "--format", "json", "-o", str(w.json / "base")]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            main()
    except SystemExit as exc:
        assert not exc.code, err.getvalue()
    produced = w.json / "base" / "good.json"
    produced.rename(w.json / "valid.json")
    (w.json / "base").rmdir()
    return json.loads((w.json / "valid.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fuzz(case: Case, world: World, capsys, monkeypatch):
    workdir = world.work / case.id.replace("/", "_")
    workdir.mkdir()
    cwd = world.odd if case.cwd == "odd" else workdir
    argv = [str(a) for a in case.argv(world, workdir)]
    roots, shallow = scope(world, argv, cwd, workdir)
    before = F.snapshot(world.base, roots, shallow)
    monkeypatch.chdir(cwd)
    if case.sub:
        code, out, err = run_subprocess(argv, cwd)
    else:
        monkeypatch.setattr(sys, "argv", sys.argv)  # restored after the case
        code, out, err = run_in_process(argv, capsys)
    after = F.snapshot(world.base, roots, shallow)
    bombs = [rel for rel in after if rel.startswith("markers/") and rel not in before]
    assert not bombs, f"a pickle in the input was unpickled (a bomb went off: {bombs})"
    check(case, code, out, err, leftovers(before, after, case, str(workdir.relative_to(world.base))))
    if not case.ok:
        first = error_lines(err)[0]
        needles = case.needles(world) if case.needles else []
        assert any(n in first for n in needles), f"error line names none of {needles!r}:\n{first}"


@pytest.mark.parametrize("argv", [["info", "MEDIA/half.mp4"], ["info"], ["detect", "MEDIA/missing.mp4", *FN]],
                         ids=["runner-error", "runner-usage-error", "runner-detect-missing"])
def test_in_process_runner_matches_the_console_script(argv, world, capsys, monkeypatch):
    """The fuzz cases trust the in-process runner only because it sees what the real process prints."""
    argv = [a.replace("MEDIA", str(world.media)) for a in argv]
    monkeypatch.setattr(sys, "argv", sys.argv)
    monkeypatch.chdir(world.work)
    assert run_in_process(argv, capsys) == run_subprocess(argv, world.work)


def test_pickle_bombs_are_live(tmp_path):
    """The bomb cases can only fail if a bomb goes off when unpickled the unsafe way."""
    import pickle

    import numpy as np
    import torch

    pickle.loads(pickle.dumps(F.Bomb(tmp_path / "raw"), protocol=2))
    torch.save({"model": F.Bomb(tmp_path / "zip")}, tmp_path / "b.pt")
    torch.load(tmp_path / "b.pt", weights_only=False)
    np.save(tmp_path / "b.npy", np.array([F.Bomb(tmp_path / "npy"), 1], dtype=object), allow_pickle=True)
    np.load(tmp_path / "b.npy", allow_pickle=True)
    assert all((tmp_path / m).is_dir() for m in ("raw", "zip", "npy"))
