"""Weights manager: cache location, download with resume, checksums, atomic import.

Nothing leaves the machine: downloads go to a `http.server` on 127.0.0.1 run in a
thread by the test, serving a small file (with HTTP Range support).
"""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
from pathlib import Path

import pytest

from highlighter.errors import HighlighterError, UsageError, WeightsMissingError
from highlighter.features import weights as W

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, not a multiple of one read block
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at /good.bin and /bad.bin (wrong bytes); honours `Range: bytes=N-`."""

    requests: list[dict] = []
    honour_range = True

    def do_GET(self):  # noqa: N802
        body = PAYLOAD if self.path == "/good.bin" else PAYLOAD[::-1] if self.path == "/bad.bin" else None
        rng = self.headers.get("Range")
        type(self).requests.append({"path": self.path, "range": rng})
        if body is None:
            self.send_error(404)
            return
        start = 0
        if rng and type(self).honour_range:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HIGHLIGHTER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HIGHLIGHTER_OFFLINE", raising=False)
    _Handler.requests = []
    _Handler.honour_range = True
    return tmp_path / "cache" / "weights"


_added: list[str] = []


def _spec(name: str, url: str, sha=SHA, size=len(PAYLOAD)) -> W.WeightSpec:
    spec = W.WeightSpec(name=name, url=url, sha256=sha, size=size, licence="test", filename=f"{name}.bin")
    W._REGISTRY.pop(name, None)
    _added.append(name)
    return W.register_weights(spec)


@pytest.fixture(autouse=True)
def _cleanup_registry():
    yield
    while _added:
        W._REGISTRY.pop(_added.pop(), None)


def _dir_listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_cache_dir_env_and_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("HIGHLIGHTER_CACHE", str(tmp_path / "a"))
    assert W.weights_dir() == tmp_path / "a" / "weights"
    monkeypatch.delenv("HIGHLIGHTER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert W.weights_dir() == tmp_path / "x" / "highlighter" / "weights"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert W.weights_dir() == tmp_path / "home" / ".cache" / "highlighter" / "weights"


def test_registry_rejects_bad_specs(server):
    with pytest.raises(ValueError, match="hex"):
        _spec("t-badhex", server + "/good.bin", sha="xyz")
    with pytest.raises(ValueError, match="plain file name"):
        W.register_weights(W.WeightSpec("t-dir", "u", None, None, "l", "../evil.bin"))
    with pytest.raises(UsageError, match="unknown weights 'nope'"):
        W.get_weight_spec("nope")


def test_builtin_visual_specs_are_documented():
    specs = {s.name: s for s in W.available_weights()}
    mine = ("i3d-rgb-imagenet-kinetics", "r3d18-kinetics400", "swin-base-in22k-in1k")
    assert set(mine) <= set(specs)
    for s in (specs[n] for n in mine):
        assert s.url.startswith("https://") and s.licence and s.filename and s.source
        assert s.sha256 is None or len(s.sha256) >= 8
    assert specs["r3d18-kinetics400"].sha256 == "b3b3357e"  # torchvision's published prefix, from the file name
    assert specs["r3d18-kinetics400"].checksum_kind == "sha256 prefix (8 hex)"


def test_download_verifies_and_renames(server, cache):
    _spec("t-good", server + "/good.bin")
    path = W.ensure_weights("t-good", progress=False)
    assert path == cache / "t-good.bin" and path.read_bytes() == PAYLOAD
    assert not (cache / "t-good.bin.part").exists()
    # second call: served from the cache, no request
    n = len(_Handler.requests)
    assert W.ensure_weights("t-good", progress=False) == path
    assert len(_Handler.requests) == n


def test_download_with_rich_progress(server, cache):
    _spec("t-good", server + "/good.bin")
    assert W.download_weights("t-good", progress=True).read_bytes() == PAYLOAD


def test_resume_from_part_with_range(server, cache):
    _spec("t-good", server + "/good.bin")
    cache.mkdir(parents=True)
    (cache / "t-good.bin.part").write_bytes(PAYLOAD[:300_001])
    path = W.download_weights("t-good", progress=False)
    assert path.read_bytes() == PAYLOAD
    assert _Handler.requests[-1]["range"] == "bytes=300001-"
    assert _dir_listing(cache) == ["t-good.bin", "t-good.bin.verified"]


def test_resume_when_server_ignores_range_restarts(server, cache):
    _spec("t-good", server + "/good.bin")
    _Handler.honour_range = False
    cache.mkdir(parents=True)
    (cache / "t-good.bin.part").write_bytes(PAYLOAD[:1000])
    assert W.download_weights("t-good", progress=False).read_bytes() == PAYLOAD


def test_complete_part_with_416_is_verified(server, cache):
    _spec("t-good", server + "/good.bin")
    cache.mkdir(parents=True)
    (cache / "t-good.bin.part").write_bytes(PAYLOAD)
    assert W.download_weights("t-good", progress=False).read_bytes() == PAYLOAD


def test_bad_checksum_leaves_nothing(server, cache):
    _spec("t-bad", server + "/bad.bin")
    with pytest.raises(HighlighterError, match=f"expected sha256 {SHA}, got {hashlib.sha256(PAYLOAD[::-1]).hexdigest()}"):
        W.ensure_weights("t-bad", progress=False)
    assert _dir_listing(cache) == []


def test_prefix_checksum_is_checked_as_prefix(server, cache):
    _spec("t-prefix", server + "/good.bin", sha=SHA[:8], size=None)
    assert W.ensure_weights("t-prefix", progress=False).read_bytes() == PAYLOAD
    _spec("t-prefix-bad", server + "/bad.bin", sha=SHA[:8], size=None)
    with pytest.raises(HighlighterError, match=f"expected sha256 {SHA[:8]}…"):
        W.ensure_weights("t-prefix-bad", progress=False)


def test_size_mismatch_is_reported(tmp_path, cache):
    _spec("t-size", "https://example.invalid/t-size.bin", size=len(PAYLOAD) + 1)
    f = tmp_path / "t-size.bin"
    f.write_bytes(PAYLOAD)
    with pytest.raises(HighlighterError, match=f"has {len(PAYLOAD)} bytes, expected {len(PAYLOAD) + 1}"):
        W.import_weights("t-size", f)
    assert _dir_listing(cache) == []


def test_offline_missing_names_import_command(cache, monkeypatch):
    spec = _spec("t-off", "https://example.invalid/t-off.bin")
    monkeypatch.setenv("HIGHLIGHTER_OFFLINE", "1")
    with pytest.raises(WeightsMissingError) as ei:
        W.ensure_weights("t-off")
    msg = str(ei.value)
    assert "\n" not in msg and spec.url in msg
    assert "highlighter weights import t-off /path/to/t-off.bin" in msg


def test_failed_download_is_weights_missing(server, cache):
    _spec("t-404", server + "/missing.bin")
    with pytest.raises(WeightsMissingError, match="download failed.*highlighter weights import t-404"):
        W.ensure_weights("t-404", progress=False)
    assert not (cache / "t-404.bin").exists()


def test_import_verifies_and_copies_atomically(tmp_path, cache):
    _spec("t-imp", "https://example.invalid/t-imp.bin")
    bad = tmp_path / "bad.bin"
    bad.write_bytes(PAYLOAD[::-1])
    with pytest.raises(HighlighterError, match="checksum mismatch"):
        W.import_weights("t-imp", bad)
    assert _dir_listing(cache) == []
    good = tmp_path / "good.bin"
    good.write_bytes(PAYLOAD)
    dest = W.import_weights("t-imp", good)
    assert dest.read_bytes() == PAYLOAD and good.read_bytes() == PAYLOAD  # input untouched
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]
    assert W.ensure_weights("t-imp", download=False) == dest


def test_corrupted_cache_is_detected(tmp_path, cache):
    _spec("t-cor", "https://example.invalid/t-cor.bin")
    src = tmp_path / "x.bin"
    src.write_bytes(PAYLOAD)
    dest = W.import_weights("t-cor", src)
    data = bytearray(PAYLOAD)
    data[10] ^= 0xFF
    dest.write_bytes(bytes(data))
    os.utime(dest, ns=(1, 1))  # new mtime: the verified stamp no longer matches
    with pytest.raises(HighlighterError, match="checksum mismatch"):
        W.ensure_weights("t-cor", download=False)
