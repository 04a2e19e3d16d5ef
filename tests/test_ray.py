"""`--ray`: `extract-features` and `detect` on a local Ray cluster of 2 worker processes.

Real Ray, real decoders, real backbones (the offline ones), tiny lavfi media with one file that is
not a video. Checked against a local run: the same files fail, the same outputs are written (arrays
bit for bit, every field but the wall-clock ones), an interrupted run resumes (done files skipped).
The local reference runs torch on 1 thread, as each Ray task does: efficientnet's convolutions
round differently with another thread count. One cluster serves the module (start-up costs ~10 s).

Ray stays optional: without it, `--ray` is one usage line, and no command without `--ray` imports it
(both checked in a subprocess with a stand-in ``ray`` module first on the path).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import media
from cli_helpers import run_cli_in_process as cli
from highlighter.batch_ray import LOCAL_INIT, RAY_MISSING, RayRunner, check_reachable
from highlighter.errors import InputError, UsageError
from highlighter.features.extract import ExtractConfig, Progress, extract_many

OFFLINE = ["--visual", "efficientnet-lite0-motion", "--audio", "logmel"]
GOOD = ("a.mp4", "b.mkv", "c.mp4")
WALL_CLOCK_META = ("created", "seconds", "timings")  # feature-file metadata that differs between two local runs


def subprocess_env(shadow: Path, tmp: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow), os.environ.get("PYTHONPATH", "")]),
            "HIGHLIGHTER_OFFLINE": "1", "HIGHLIGHTER_CACHE": str(tmp / "cache"), "COLUMNS": "200"}


def shadow_ray(tmp: Path, body: str) -> Path:
    """A folder holding a stand-in ``ray.py`` (first on PYTHONPATH, it hides the real one)."""
    d = tmp / "shadow"
    d.mkdir(exist_ok=True)
    (d / "ray.py").write_text(body)
    return d


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """Three tiny videos and one text file named like a video."""
    d = tmp_path_factory.mktemp("ray_in")
    media.make_video(d / "a.mp4", 3, fps=10, size=(64, 48), colors=((0, "red"), (1.5, "blue")), beep_at=1)
    media.make_video(d / "b.mkv", 2, fps=10, size=(64, 48), colors=((0, "green"), (1, "white")))
    media.make_video(d / "c.mp4", 2, fps=10, size=(64, 48), colors=((0, "yellow"), (1, "black")), audio=False)
    media.write_not_media(d / "bad.mp4")
    return d


# --------------------------------------------------------------------------- without ray
@pytest.mark.parametrize("command", ["extract-features", "detect"])
def test_ray_missing_is_one_usage_line(command, videos, tmp_path):
    shadow = shadow_ray(tmp_path, "raise ImportError(\"No module named 'ray' (stand-in)\")\n")
    extra = OFFLINE if command == "extract-features" else []
    p = subprocess.run([sys.executable, "-m", "highlighter", command, str(videos), "-o", str(tmp_path / "out"),
                        *extra, "--ray", "local"], capture_output=True, text=True, env=subprocess_env(shadow, tmp_path),
                       timeout=120)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines() == [f"error: {RAY_MISSING}"]
    assert not (tmp_path / "out").exists()


def test_no_command_without_ray_imports_it(videos, tmp_path):
    """The package, the API and a whole local `extract-features` run with a ``ray`` that fails on import."""
    shadow = shadow_ray(tmp_path, "raise RuntimeError('ray was imported without --ray')\n")
    out = tmp_path / "out"
    code = ("import sys, highlighter, highlighter.api, highlighter.batch_ray, highlighter.cli.main\n"
            f"sys.argv = ['highlighter', 'extract-features', {str(videos / 'b.mkv')!r}, '-o', {str(out)!r},"
            " '--visual', 'none', '--audio', 'logmel']\n"
            "try:\n    highlighter.cli.main.main()\nfinally:\n    assert 'ray' not in sys.modules\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=subprocess_env(shadow, tmp_path), timeout=120)
    assert p.returncode == 0, p.stderr
    assert (out / "b.features.npz").is_file()


def test_empty_address_is_a_usage_error():
    pytest.importorskip("ray", reason="ray is not installed (pip install 'highlighter[ray]')")
    with pytest.raises(UsageError, match="--ray: give 'local'"):
        RayRunner("  ")


def test_an_address_nobody_answers_is_one_line_not_minutes_of_retries():
    """``ray.init`` retries a dead address for minutes; a port nothing listens on fails at once."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        check_reachable(f"127.0.0.1:{listening.getsockname()[1]}")  # answers: no error
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()
    with pytest.raises(InputError, match=rf"--ray 127.0.0.1:{port}: no Ray cluster answers there"):
        check_reachable(f"127.0.0.1:{port}")
    check_reachable("auto")  # Ray's own words are left to Ray


# --------------------------------------------------------------------------- on a cluster
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray cluster of 2 CPUs (2 worker processes), offline, with its own weights cache;
    `--ray local` and `RayRunner` use it since this process is connected."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'highlighter[ray]')")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HIGHLIGHTER_OFFLINE", "1")  # read by the workers too: they inherit this environment
        mp.setenv("HIGHLIGHTER_CACHE", str(tmp_path_factory.mktemp("ray_cache")))
        with warnings.catch_warnings():  # Ray's FutureWarning about GPU environment variables
            warnings.simplefilter("ignore", FutureWarning)
            ray.init(num_cpus=2, logging_level="WARNING", **LOCAL_INIT)
        try:
            yield ray
        finally:
            ray.shutdown()


@pytest.fixture
def one_thread():
    """torch on 1 intra-op thread, as in each Ray task (the local reference runs must match it)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def local_features(cluster, videos, tmp_path_factory) -> Path:
    """The reference: a local run (`batch.run_batch`) over the folder."""
    import torch

    out = tmp_path_factory.mktemp("local_features")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        report = extract_many([videos], out, ExtractConfig(visual="efficientnet-lite0-motion", audio="logmel"))
    finally:
        torch.set_num_threads(before)
    assert [r.source.name for r in report.failed] == ["bad.mp4"] and len(report.done) == 3
    return out


def assert_same_features(a: Path, b: Path) -> None:
    """Every array bit for bit and every metadata field but the wall-clock ones."""
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) == sorted(Path(n).stem + ".features.npz" for n in GOOD)
    for name in names:
        with np.load(a / name) as za, np.load(b / name) as zb:
            assert za.files == zb.files
            for k in za.files:
                if k == "meta":
                    ma, mb = (json.loads(str(z["meta"][()])) for z in (za, zb))
                    for key in WALL_CLOCK_META:
                        ma.pop(key, None), mb.pop(key, None)
                    assert ma == mb, name
                else:
                    assert za[k].dtype == zb[k].dtype and za[k].tobytes() == zb[k].tobytes(), (name, k)


@pytest.mark.slow
def test_extract_features_on_ray_equals_local(cluster, videos, local_features, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    code, stdout, stderr = cli(monkeypatch, capsys, "extract-features", videos, "-o", out, *OFFLINE, "--ray", "local")
    assert code == 1, stderr  # one bad file: the run fails as a local one does, after the others finish
    assert "extracted 3 (7 s of video), up to date 0, failed 1" in stdout
    assert f"error: {videos / 'bad.mp4'}: not a readable media file" in stderr
    assert_same_features(local_features, out)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp file left by a worker


class StopAfterFirst(Progress):
    """Ctrl-C in the driver as soon as the first video is reported done."""

    def video_end(self, path: Path, status: str) -> None:
        if status == "done":
            raise KeyboardInterrupt


@pytest.mark.slow
def test_interrupted_run_resumes(cluster, videos, local_features, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    config = ExtractConfig(visual="efficientnet-lite0-motion", audio="logmel")
    with pytest.raises(KeyboardInterrupt):
        extract_many([videos], out, config, StopAfterFirst(), runner=RayRunner("local"))
    first = sorted(p.name for p in out.iterdir())
    assert first and not [n for n in first if n.startswith(".")]  # finished outputs kept, nothing half-written
    code, stdout, stderr = cli(monkeypatch, capsys, "extract-features", videos, "-o", out, *OFFLINE, "--ray", "local")
    assert code == 1, stderr
    assert f"extracted {3 - len(first)} " in stdout and f"up to date {len(first)}, failed 1" in stdout
    assert_same_features(local_features, out)


WALL_CLOCK_JSON = ("created", "timings")  # and method.pretrain.seconds: what two local runs differ in


def comparable(path: Path) -> dict:
    d = json.loads(path.read_text())
    for key in WALL_CLOCK_JSON:
        d.pop(key)
    d["method"]["pretrain"].pop("seconds")
    return d


@pytest.mark.slow
def test_detect_on_ray_equals_local(cluster, videos, one_thread, tmp_path, monkeypatch, capsys):
    files = [videos / "a.mp4", videos / "bad.mp4", videos / "b.mkv"]
    runs = {}
    for name, extra in (("local", []), ("ray", ["--ray", "local"])):
        out = tmp_path / name
        code, stdout, stderr = cli(monkeypatch, capsys, "detect", *files, "-o", out, "--cache-dir",
                                   tmp_path / f"cache-{name}", *extra)
        assert code == 1, stderr
        assert "detected 2 of 3 video(s), failed 1" in stdout
        assert f"error: {videos / 'bad.mp4'}: not a readable media file" in stderr
        assert stderr.count("offline fallback") == 1  # said once by the driver, not once per worker
        runs[name] = out
    local, ray = runs["local"], runs["ray"]
    assert sorted(p.name for p in local.iterdir()) == sorted(p.name for p in ray.iterdir()) == [
        "a.csv", "a.edl", "a.json", "b.csv", "b.edl", "b.json"]
    for stem in ("a", "b"):
        assert comparable(local / f"{stem}.json") == comparable(ray / f"{stem}.json")
        for ext in ("csv", "edl"):
            assert (local / f"{stem}.{ext}").read_bytes() == (ray / f"{stem}.{ext}").read_bytes()
