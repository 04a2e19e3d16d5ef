"""`highlighter weights list|fetch|import` and `highlighter features list` (CLI layer)."""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import subprocess
import sys
import threading

import pytest
from typer.testing import CliRunner

from highlighter.cli.main import app
from highlighter.features import weights as W

PAYLOAD = b"highlighter-test-weights" * 1000
runner = CliRunner()
CLI = [sys.executable, "-c", "from highlighter.cli.main import main; main()"]  # the console entry point


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HIGHLIGHTER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HIGHLIGHTER_OFFLINE", "1")
    monkeypatch.setenv("COLUMNS", "250")
    return tmp_path / "cache"


@pytest.fixture()
def test_spec():
    spec = W.WeightSpec("t-cli", "http://127.0.0.1:1/t-cli.bin", hashlib.sha256(PAYLOAD).hexdigest(), len(PAYLOAD),
                        "test", "t-cli.bin", source="test")
    W.unregister_weights(spec.name)
    W.register_weights(spec)
    yield spec
    W.unregister_weights(spec.name)


def test_weights_list_shows_known_checkpoints(cache):
    r = runner.invoke(app, ["weights", "list"])
    assert r.exit_code == 0, r.output
    for name in ("i3d-rgb-imagenet-kinetics", "r3d18-kinetics400", "swin-base-in22k-in1k"):
        assert name in r.output
    assert str(cache / "weights") in r.output


def test_weights_list_shows_url_and_known_sizes_only(cache):
    """Every row has its official URL (what `weights import` needs offline) and a size that is either
    exact, the publisher's own figure, or "unknown" — never a bare "?" or an invented number."""
    r = runner.invoke(app, ["weights", "list"])
    assert r.exit_code == 0, r.output
    header = next(line for line in r.output.splitlines() if "licence" in line)
    assert re.search(r"\burl\b", header), header
    for spec in W.available_weights():
        row = next(line for line in r.output.splitlines() if spec.name in line)
        assert spec.url[:40] in r.output
        assert " ? " not in row
        assert spec.size_text in row
    assert W.get_weight_spec("r3d18-kinetics400").size_text == "127.359 MB (torchvision)"
    assert W.get_weight_spec("i3d-rgb-imagenet-kinetics").size_text == "unknown"
    assert W.get_weight_spec("yamnet").size_text == "4.0 MB"


def test_weights_import_then_list_shows_cached(tmp_path, cache, test_spec):
    src = tmp_path / "t-cli.bin"
    src.write_bytes(PAYLOAD)
    r = runner.invoke(app, ["weights", "import", "t-cli", str(src)])
    assert r.exit_code == 0, r.output
    assert (cache / "weights" / "t-cli.bin").read_bytes() == PAYLOAD
    r = runner.invoke(app, ["weights", "list"])
    row = next(line for line in r.output.splitlines() if "t-cli" in line)
    assert "yes" in row and "0.0 MB" in row


def test_weights_cache_dir_option(tmp_path, cache, test_spec, monkeypatch):
    src = tmp_path / "t-cli.bin"
    src.write_bytes(PAYLOAD)
    other = tmp_path / "other"
    r = runner.invoke(app, ["weights", "--cache-dir", str(other), "import", "t-cli", str(src)])
    assert r.exit_code == 0, r.output
    assert (other / "weights" / "t-cli.bin").is_file()


def test_weights_fetch_from_local_server(tmp_path, cache, monkeypatch):
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        spec = W.WeightSpec("t-fetch", f"http://127.0.0.1:{srv.server_address[1]}/x.bin",
                            hashlib.sha256(PAYLOAD).hexdigest(), None, "test", "t-fetch.bin")
        W.unregister_weights(spec.name)
        W.register_weights(spec)
        monkeypatch.delenv("HIGHLIGHTER_OFFLINE")
        r = runner.invoke(app, ["weights", "fetch", "t-fetch"])
        assert r.exit_code == 0, r.output
        assert (cache / "weights" / "t-fetch.bin").read_bytes() == PAYLOAD
    finally:
        W.unregister_weights("t-fetch")
        srv.shutdown()
        srv.server_close()


def test_features_list_shows_status(cache):
    r = runner.invoke(app, ["features", "list", "--modality", "visual"])
    assert r.exit_code == 0, r.output
    rows = {line.split("│")[1].strip(): line for line in r.output.splitlines() if line.startswith("│")
            and line.split("│")[1].strip()}
    assert "bundled" in rows["efficientnet-lite0"] and "1280" in rows["efficientnet-lite0"]
    assert "missing" in rows["i3d"] and "1024" in rows["i3d"]
    (cache / "weights").mkdir(parents=True)
    (cache / "weights" / "rgb_imagenet.pt").write_bytes(b"x")
    r = runner.invoke(app, ["features", "list", "--modality", "visual"])
    row = next(line for line in r.output.splitlines() if line.startswith("│ i3d "))
    assert "cached" in row


def test_cli_missing_weights_is_one_line_and_exit_1(tmp_path):
    env = {**os.environ, "HIGHLIGHTER_CACHE": str(tmp_path / "c"), "HIGHLIGHTER_OFFLINE": "1", "COLUMNS": "400"}
    p = subprocess.run([*CLI, "weights", "fetch", "r3d18-kinetics400"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 1
    err = p.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "highlighter weights import r3d18-kinetics400 /path/to/r3d_18-b3b3357e.pth" in err
    p = subprocess.run([*CLI, "weights", "import", "nope", "x"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and "unknown weights 'nope'" in p.stderr


def test_cli_import_refuses_a_file_that_is_not_the_checkpoint(tmp_path):
    """Zero bytes for PANN, text for I3D: one line naming the file, exit 1, and the cache stays empty."""
    env = {**os.environ, "HIGHLIGHTER_CACHE": str(tmp_path / "c"), "HIGHLIGHTER_OFFLINE": "1", "COLUMNS": "400"}
    empty, text = tmp_path / "Cnn14_mAP=0.431.pth", tmp_path / "rgb_imagenet.pt"
    empty.write_bytes(b"")
    text.write_text("<html>Dropbox preview page</html>\n")
    for name, src in (("panns_cnn14", empty), ("i3d-rgb-imagenet-kinetics", text)):
        p = subprocess.run([*CLI, "weights", "import", name, str(src)], capture_output=True, text=True, env=env,
                           timeout=300)
        err = p.stderr.strip()
        assert p.returncode == 1, (p.stdout, err)
        assert len(err.splitlines()) == 1 and "Traceback" not in err
        assert str(src) in err and f"not a usable '{name}' checkpoint" in err
        weights = tmp_path / "c" / "weights"
        assert not weights.exists() or not list(weights.iterdir())


@pytest.fixture()
def server():
    """A local HTTP server that sends PAYLOAD for any path."""
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    spec = W.WeightSpec("t-progress", f"http://127.0.0.1:{srv.server_address[1]}/x.bin",
                        hashlib.sha256(PAYLOAD).hexdigest(), len(PAYLOAD), "test", "t-progress.bin")
    W.unregister_weights(spec.name)
    W.register_weights(spec)
    yield spec
    W.unregister_weights(spec.name)
    srv.shutdown()
    srv.server_close()


def test_download_reports_to_the_callers_progress(cache, server, monkeypatch):
    """The weights manager draws nothing: it reports bytes to the reporter passed in, or, for a download
    deep in a backbone (`ensure_weights(name)`), to the one the CLI installed."""
    monkeypatch.delenv("HIGHLIGHTER_OFFLINE")
    passed: list[tuple[str, int, int | None]] = []
    W.download_weights(server.name, progress=lambda *a: passed.append(a))
    assert passed[0][1] == 0 and passed[-1][1:] == (len(PAYLOAD), len(PAYLOAD))
    assert all(label == passed[0][0] and server.name in label for label, _, _ in passed)
    assert [d for _, d, _ in passed] == sorted(d for _, d, _ in passed)

    W.weight_path(server.name).unlink()
    installed: list[tuple[str, int, int | None]] = []
    with W.reporting_downloads(lambda *a: installed.append(a)):
        W.ensure_weights(server.name)
    assert installed[-1][1] == len(PAYLOAD)
    W.weight_path(server.name).unlink()
    reported = len(installed)
    W.ensure_weights(server.name)  # the reporter is no longer installed: silent
    assert W.is_cached(server.name) and len(installed) == reported


def test_cache_dir_option_does_not_touch_the_environment(tmp_path, cache, test_spec):
    """`weights --cache-dir` applies to that command only (it used to set HIGHLIGHTER_CACHE for the process)."""
    from highlighter import settings

    src = tmp_path / "t-cli.bin"
    src.write_bytes(PAYLOAD)
    r = runner.invoke(app, ["weights", "--cache-dir", str(tmp_path / "other"), "import", "t-cli", str(src)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "other" / "weights" / "t-cli.bin").is_file()
    assert os.environ["HIGHLIGHTER_CACHE"] == str(cache) and settings.cache_root() == cache
    assert not W.is_cached("t-cli")
