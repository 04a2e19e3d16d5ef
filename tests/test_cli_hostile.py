"""Hostile input through the real CLI (issue 9 items 3, 9, 12, 13).

Every case once reached the catch-all ("unexpected X: ..."), a rich `MarkupError`
traceback, a silent wrong result, a per-file failure after the models had loaded, or
an out-of-memory kill. Each must now give one clear line and the right exit code
(1 = error, 2 = usage error), and the cheap checks must come before any model
(no torch import at all).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import media
from test_cli_info import cli_command, run_cli

PROC_OK = Path("/proc/self/maps").exists()  # /proc: os.access says writable, mkdir fails (even for root)


@pytest.fixture(scope="module")
def env(tmp_path_factory, media_dir):
    """A tiny video, a plain file, an empty folder, and a folder for outputs."""
    d = tmp_path_factory.mktemp("hostile")
    video = media_dir / "hostile.mp4"
    if not video.exists():
        media.make_video(video, 2.0, size=(64, 48), audio=False)
    (d / "afile").write_text("not a folder\n")
    (d / "emptydir").mkdir()
    return {"d": d, "v": str(video), "file": str(d / "afile"), "dir": str(d / "emptydir"), "out": str(d / "out")}


def one_error_line(res: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in res.stderr, res.stderr
    assert "unexpected" not in lines[0], lines[0]
    return lines[0]


# (name, argv template, exit code, text the one error line must contain); "{x}" fields come from `env`.
CASES = [
    # item 3: rich markup in user text (a MarkupError traceback before)
    ("markup in a path", ["info", "{d}/[/]missing.mp4"], 1, "[/]missing.mp4"),
    ("markup in an option value", ["detect", "{v}", "-o", "{out}", "--method", "[/]nope"], 2, "'[/]nope'"),
    # item 9: each reached the catch-all or a per-file "NotADirectoryError: ..." after loading models
    ("file name too long", ["info", "{d}/" + "a" * 300 + ".mp4"], 1, "too long"),
    ("newline in a path", ["info", "{d}/new\nline.mp4"], 1, "new\\nline.mp4"),
    ("detect -o under a file", ["detect", "{v}", "-o", "{file}/sub"], 2, "is under"),
    ("detect -o is a file", ["detect", "{v}", "-o", "{file}"], 2, "is a file"),
    ("detect --cache-dir is a file", ["detect", "{v}", "-o", "{out}", "--cache-dir", "{file}"], 2, "--cache-dir"),
    ("detect --weights is a folder", ["detect", "{v}", "-o", "{out}", "--weights", "{dir}"], 1, "is a folder"),
    ("detect --device unknown", ["detect", "{v}", "-o", "{out}", "--device", "tpu"], 2, "--device"),
    ("extract -o under a file", ["extract-features", "{v}", "-o", "{file}/x", "--audio", "none"], 2, "is under"),
    ("train -o is a folder", ["train", "-m", "rasl", "-d", "{dir}", "-o", "{dir}"], 2, "is a folder"),
    ("train -o under a file", ["train", "-m", "rasl", "-d", "{dir}", "-o", "{file}/w.safetensors"], 2, "is under"),
    ("features list --modality unknown", ["features", "list", "--modality", "sound"], 2, "--modality"),
    # item 12: a per-file failure with exit 1 after the models loaded, before
    ("extract --decoder unknown", ["extract-features", "{v}", "-o", "{out}", "--decoder", "ffmpeg"], 2, "--decoder"),
]
PROC_CASES = [  # os.access says yes, mkdir says no: caught by actually creating the folder / a temp file
    ("detect -o in /proc", ["detect", "{v}", "-o", "/proc/highlighter-test"], 1, "cannot write"),
    ("extract -o in /proc", ["extract-features", "{v}", "-o", "/proc/highlighter-test"], 1, "cannot write"),
    ("train -o in /proc", ["train", "-m", "rasl", "-d", "{dir}", "-o", "/proc/w.safetensors"], 1, "cannot write"),
]


def fill(argv: list[str], env: dict) -> list[str]:
    return [a.format(**env) for a in argv]


@pytest.mark.parametrize("name,argv,code,text", CASES + (PROC_CASES if PROC_OK else []),
                         ids=[c[0] for c in CASES + (PROC_CASES if PROC_OK else [])])
def test_hostile_option_one_line(env, name, argv, code, text):
    res = run_cli(*fill(argv, env))
    assert res.returncode == code, (res.returncode, res.stderr)
    assert text in one_error_line(res)
    assert not Path(env["out"]).exists() and not Path("/proc/highlighter-test").exists()  # nothing left behind


# Out of range numbers Typer rejects itself (its usage message: exit 2, no traceback, names the option).
RANGE_CASES = [
    ("clip of 1e-9 s (3e9 clips: killed for memory before)", ["extract-features", "{v}", "-o", "{out}",
                                                              "--clip-seconds", "1e-9"], "--clip-seconds"),
    ("clip of inf s", ["extract-features", "{v}", "-o", "{out}", "--clip-seconds", "inf"], "--clip-seconds"),
    ("hop of 0 s", ["extract-features", "{v}", "-o", "{out}", "--hop-seconds", "0"], "--hop-seconds"),
    ("0 epochs (trained nothing, exit 0, before)", ["train", "-m", "rasl", "-d", "{dir}", "-o", "{d}/w.safetensors",
                                                    "--epochs", "0"], "--epochs"),
    ("negative seed", ["train", "-m", "rasl", "-d", "{dir}", "-o", "{d}/w.safetensors", "--seed", "-1"], "--seed"),
]


@pytest.mark.parametrize("name,argv,option", RANGE_CASES, ids=[c[0] for c in RANGE_CASES])
def test_out_of_range_is_usage_error(env, name, argv, option):
    res = run_cli(*fill(argv, env))
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert option in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_markup_in_file_name_is_shown_literally(env):
    path = env["d"] / "[bold]x.mp4"
    path.write_bytes(Path(env["v"]).read_bytes())
    res = run_cli("info", str(path))
    assert res.returncode == 0, res.stderr
    assert "[bold]x.mp4" in res.stdout and str(path) in res.stdout, res.stdout


def test_huge_smooth_window_does_not_overflow():
    """--smooth 1e308 gave "OverflowError: Python int too large to convert to C long" per file."""
    from highlighter.outputs.segments import SelectConfig, select_segments

    starts = np.arange(10, dtype=np.float64) * 2
    scores = np.linspace(0, 1, 10)
    segs = select_segments(starts, starts + 2, scores, SelectConfig(smooth=1e308), 20.0)
    assert segs and all(0 <= g.start < g.end <= 20 for g in segs)


# ----------------------------------------------------------------------------- item 12: cheap checks first
NO_TORCH = """
import sys
from highlighter.cli.main import main
sys.argv = ["highlighter", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    print("torch imported:", "torch" in sys.modules, "exit:", exc.code)
"""

CHEAP_CASES = [
    ("unknown --method", ["detect", "{v}", "-o", "{out}", "--method", "rasl2"], 2),
    ("bad --top", ["detect", "{v}", "-o", "{out}", "--top", "-5"], 2),
    ("missing input", ["detect", "{d}/missing.mp4", "-o", "{out}"], 1),
    ("unknown --decoder", ["extract-features", "{v}", "-o", "{out}", "--decoder", "gstreamer"], 2),
    ("missing input (extract)", ["extract-features", "{d}/missing.mp4", "-o", "{out}"], 1),
]


@pytest.mark.parametrize("name,argv,code", CHEAP_CASES, ids=[c[0] for c in CHEAP_CASES])
def test_cheap_checks_before_any_model(env, name, argv, code):
    env_vars = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    res = subprocess.run([sys.executable, "-c", NO_TORCH, *fill(argv, env)], capture_output=True, text=True,
                         timeout=120, env=env_vars)
    assert res.stdout.strip() == f"torch imported: False exit: {code}", (res.stdout, res.stderr)
    one_error_line(res)


# ----------------------------------------------------------------------------- item 9: Ctrl-C and EOFError
def test_ctrl_c_prints_one_line_and_exits_130(env, media_dir):
    """A real SIGINT while the command works: its inference engine is loaded and a 2-min video is ahead of it
    (the offline path imports no torch any more, so a tiny video would be done before the signal lands)."""
    if not PROC_OK:
        pytest.skip("needs /proc to see when the command is busy")
    video = media_dir / "hostile-long.mp4"
    if not video.exists():
        media.make_video(video, 120.0, size=(64, 48), audio=False)
    args = ["detect", str(video), "-o", env["out"], "--no-cache", "--method", "feature-norm",
            "--backbone", "efficientnet-lite0"]
    child_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    # a shell runs background jobs with SIGINT ignored; a terminal's Ctrl-C reaches a default handler
    p = subprocess.Popen([*cli_command(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=child_env, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None:
        try:
            maps = Path(f"/proc/{p.pid}/maps").read_text()
            if any(lib in maps for lib in ("libtorch", "libopenvino", "libonnxruntime")):
                break
        except OSError:
            pass
        time.sleep(0.02)
    time.sleep(0.5)  # past the engine's own start-up (a signal during OpenVINO's load can be lost: measured)
    assert p.poll() is None, "the command ended before it could be interrupted"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert p.returncode == 130, (p.returncode, err)
    assert lines == ["error: interrupted"], err


def test_eof_error_gets_a_real_message(tmp_path, capsys, monkeypatch):
    """Typer turned any EOFError into "Aborted"; here a real one, from numpy reading an empty file."""
    from highlighter.cli import main as cli

    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")

    @cli.app.command("test-read-npy")
    def _read(path: Path) -> None:
        np.load(path)

    old_term = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(sys, "argv", ["highlighter", "test-read-npy", str(empty)])
    try:
        with pytest.raises(SystemExit) as exc:
            cli.main()
    finally:
        cli.app.registered_commands.pop()
        signal.signal(signal.SIGTERM, old_term)
    err = capsys.readouterr().err
    assert exc.value.code == 1
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "end of data" in lines[0] and "abort" not in err.lower(), err


# ----------------------------------------------------------------------------- item 13: decoder chatter
@pytest.fixture(scope="module")
def corrupt_video(media_dir):
    """An H.264 file whose middle third is overwritten: the index is intact, some frames do not decode."""
    src = media.make_video(media_dir / "to_corrupt.mp4", 3.0, size=(160, 120), audio=False,
                           colors=[(0, "red"), (1, "blue"), (2, "green")])
    data = bytearray(src.read_bytes())
    start = data.find(b"mdat")
    rng = random.Random(0)
    for k in range(start + (len(data) - start) // 3, start + 2 * (len(data) - start) // 3, 97):
        data[k] = rng.randrange(256)
    dst = media_dir / "corrupt.mp4"
    dst.write_bytes(bytes(data))
    return dst


def test_decoder_messages_hidden_unless_debug(corrupt_video, tmp_path):
    pytest.importorskip("decord")
    args = ["extract-features", str(corrupt_video), "--visual", "efficientnet-lite0", "--audio", "none",
            "--random-weights", "--decoder", "decord"]
    res = run_cli(*args, "-o", str(tmp_path / "a"))
    assert res.returncode == 1, res.stderr  # decord cannot decode it: one per-file failure
    assert "[h264 @" not in res.stderr and ".cc:" not in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    res = run_cli("--debug", *args, "-o", str(tmp_path / "b"))
    shown = [ln for ln in res.stderr.splitlines() if "[h264 @" in ln]
    assert shown and all(ln.startswith("DEBUG highlighter.native: ") for ln in shown), res.stderr


def test_non_utf8_file_name(env, tmp_path):
    """A file name that is not UTF-8 failed with UnicodeEncodeError (cache key, EDL); now it is detected."""
    src = Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/clip-\xff.mp4"))
    try:
        src.write_bytes(Path(env["v"]).read_bytes())
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses non-UTF-8 names")
    out = tmp_path / "out"
    args = ["detect", str(src), "-o", str(out), "--cache-dir", str(tmp_path / "cache"),
            "--method", "feature-norm", "--backbone", "efficientnet-lite0", "--format", "json,edl"]
    res = subprocess.run([*cli_command(), *args], capture_output=True, text=True, errors="surrogateescape",
                         timeout=180, env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr and "UnicodeEncodeError" not in res.stderr, res.stderr
    edl = (out / src.with_suffix(".edl").name).read_bytes()
    assert b"clip-%FF.mp4" in edl  # the name's own bytes, as the file system has them (in the media URL)


# ----------------------------------------------------------------------------- user text in result lines and tables
def test_trim_wrote_line_with_markup_in_the_path(env, tmp_path):
    """`trim -o '[/]x.mp4'` cut the reel, then crashed printing "wrote ..." (a MarkupError)."""
    from test_trim_hostile import result_doc, write_json

    video = Path(env["v"])
    doc = write_json(tmp_path / "d.json", result_doc(video, [(0.0, 1.0)]))
    (tmp_path / "[").mkdir()
    reel = tmp_path / "[" / "]x.mp4"  # the path reads ".../[/]x.mp4"
    res = run_cli("trim", str(video), "--from", str(doc), "-o", str(reel))
    assert res.returncode == 0, res.stderr
    assert reel.is_file() and f"wrote 1 file(s): {reel} " in res.stdout, res.stdout


def test_evaluate_table_shows_user_text_whole(tmp_path):
    """Domain names come from the dataset's JSON: markup in one crashed the table, and a table wider than
    the terminal was cut to "…" when piped (`evaluate ... | cat`)."""
    import json

    from test_eval_hostile import build

    root = build(tmp_path / "youtube")
    domain = "[/]" + "d" * 250  # wider than COLUMNS=200
    anno = json.loads((root / "youtube_anno.json").read_text())
    for v in anno.values():
        v["domain"] = domain if v["domain"] == "dog" else v["domain"]
    (root / "youtube_anno.json").write_text(json.dumps(anno))
    splits = json.loads((root / "splits.json").read_text())
    (root / "splits.json").write_text(json.dumps({domain if k == "dog" else k: v for k, v in splits.items()}))
    res = run_cli("evaluate", "--data", str(root))
    assert res.returncode == 0, res.stderr
    assert domain in res.stdout and "…" not in res.stdout, res.stdout
    assert "feature-norm" in res.stdout and "random" in res.stdout


def test_weights_cache_dir_with_markup(tmp_path, env):
    """`weights --cache-dir '[/]x' list` crashed with a MarkupError; a file as --cache-dir is a usage error."""
    cache = tmp_path / "[" / "]x"
    res = run_cli("weights", "--cache-dir", str(cache), "list")
    assert res.returncode == 0, res.stderr
    assert f"cache: {cache / 'weights'}" in res.stdout and str(cache / "weights" / "rgb_imagenet.pt") in res.stdout
    assert not cache.exists()  # listing creates nothing
    res = run_cli("weights", "--cache-dir", env["file"], "fetch", "i3d-rgb-imagenet-kinetics")
    assert res.returncode == 2 and "--cache-dir" in one_error_line(res) and "is a file" in res.stderr
