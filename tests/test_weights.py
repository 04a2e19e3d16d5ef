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

import numpy as np
import pytest

from highlighter.errors import HighlighterError, InputError, UsageError, WeightsMissingError
from highlighter.features import weights as W

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, not a multiple of one read block
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at /good.bin and /bad.bin (wrong bytes); honours `Range: bytes=N-`."""

    requests: list[dict] = []
    honour_range = True
    extra: dict[str, bytes] = {}  # more paths a test serves

    def do_GET(self):  # noqa: N802
        body = PAYLOAD if self.path == "/good.bin" else PAYLOAD[::-1] if self.path == "/bad.bin" else None
        body = type(self).extra.get(self.path, body)
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
    W.unregister_weights(name)
    _added.append(name)
    return W.register_weights(spec)


@pytest.fixture(autouse=True)
def _cleanup_registry():
    yield
    while _added:
        W.unregister_weights(_added.pop())


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


def test_settings_read_the_environment_at_call_time(tmp_path, monkeypatch):
    """One module reads the variables; both weight homes and the feature cache derive from it."""
    from highlighter import settings

    monkeypatch.setenv("HIGHLIGHTER_CACHE", str(tmp_path / "c"))
    assert settings.backbone_weights_dir() == W.weights_dir() == tmp_path / "c" / "weights"
    assert settings.feature_cache_dir() == tmp_path / "c" / "features"
    monkeypatch.setenv("HIGHLIGHTER_WEIGHTS_DIR", str(tmp_path / "det"))
    assert settings.detector_weights_dir() == tmp_path / "det"
    monkeypatch.delenv("HIGHLIGHTER_WEIGHTS_DIR")
    assert settings.detector_weights_dir() == settings.PACKAGE_WEIGHTS_DIR  # a source checkout
    for value, on in (("1", True), (" Yes ", True), ("on", True), ("0", False), ("", False), ("no", False)):
        monkeypatch.setenv("HIGHLIGHTER_OFFLINE", value)
        assert settings.offline() is on and W.offline() is on, value


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
    assert _dir_listing(cache) == ["t-imp.bin", "t-imp.bin.verified"]  # no staged copy left
    assert W.ensure_weights("t-imp", download=False) == dest


def test_import_and_download_of_a_long_file_name(tmp_path, cache, server):
    """The staged copy's name is short: a checkpoint whose name is near the 255-byte limit still installs."""
    name = "t-" + "l" * 240
    spec = _spec(name, server + "/good.bin")
    src = tmp_path / "x.bin"
    src.write_bytes(PAYLOAD)
    assert W.import_weights(name, src).read_bytes() == PAYLOAD
    assert _dir_listing(cache) == sorted([spec.filename, spec.filename + ".verified"])
    for p in cache.iterdir():
        p.unlink()
    assert W.download_weights(name, progress=False).read_bytes() == PAYLOAD
    assert _dir_listing(cache) == sorted([spec.filename, spec.filename + ".verified"])


def test_registry_is_the_shared_registry():
    """register/unregister round trip; an identical spec registers twice, a different one does not."""
    from highlighter.registry import Registry

    assert isinstance(W.WEIGHTS, Registry)
    spec = _spec("t-reg", "https://example.invalid/t-reg.bin")
    assert W.register_weights(spec) == spec and W.get_weight_spec("t-reg") == spec
    with pytest.raises(ValueError, match="registered twice"):
        W.register_weights(W.WeightSpec("t-reg", "https://example.invalid/other.bin", SHA, 1, "test", "t-reg.bin"))
    assert W.unregister_weights("t-reg") == spec
    with pytest.raises(UsageError, match="unknown weights 't-reg'.*highlighter weights list"):
        W.get_weight_spec("t-reg")


def test_corrupted_cache_is_detected(tmp_path, cache):
    _spec("t-cor", "https://example.invalid/t-cor.bin")
    src = tmp_path / "x.bin"
    src.write_bytes(PAYLOAD)
    dest = W.import_weights("t-cor", src)
    data = bytearray(PAYLOAD)
    data[10] ^= 0xFF
    dest.write_bytes(bytes(data))
    os.utime(dest, ns=(1, 1))  # new mtime: the verified stamp no longer matches
    with pytest.raises(WeightsMissingError, match="checksum mismatch.*highlighter weights fetch t-cor"):
        W.ensure_weights("t-cor", download=False)  # unreadable cache counts as missing: detect can fall back


# ----------------------------------------------------------------------------- the backbone's loader guards the cache


def _tiny_check(path: Path) -> None:
    """A stand-in backbone loader: the real safe unpickler, and a layout check (one tensor 'w' of shape (3,))."""
    import torch

    from highlighter.features.audio._ckpt import load_pickle_checkpoint

    ckpt = load_pickle_checkpoint(path, "tiny")
    if not isinstance(ckpt.get("w"), torch.Tensor) or tuple(ckpt["w"].shape) != (3,):
        raise InputError(f"{path} does not match the tiny layout: needs 'w' of shape (3,)")


def _tiny_ckpt(tmp_path: Path, shape=(3,)) -> bytes:
    import torch

    f = tmp_path / f"tiny{len(shape)}.pt"
    torch.save({"w": torch.arange(float(np.prod(shape))).reshape(shape)}, f)
    return f.read_bytes()


def _checked_spec(name: str, url: str) -> W.WeightSpec:
    spec = W.WeightSpec(name=name, url=url, sha256=None, size=None, licence="test", filename=f"{name}.pt",
                        check=_tiny_check)
    W.unregister_weights(name)
    _added.append(name)
    return W.register_weights(spec)


def test_import_runs_the_loader_before_caching(tmp_path, cache):
    _checked_spec("t-chk", "https://example.invalid/t-chk.pt")
    bad = {"empty.pt": b"", "text.pt": b"not a checkpoint\n", "other-layout.pt": _tiny_ckpt(tmp_path, (2, 2))}
    for fname, data in bad.items():
        src = tmp_path / fname
        src.write_bytes(data)
        with pytest.raises(InputError) as ei:
            W.import_weights("t-chk", src)
        msg = str(ei.value)
        assert "\n" not in msg and str(src) in msg and "not a usable 't-chk' checkpoint" in msg, msg
        assert str(cache) not in msg  # the temp copy's name never shows
        assert _dir_listing(cache) == [] and src.read_bytes() == data  # nothing cached, input untouched
    good = tmp_path / "good.pt"
    good.write_bytes(_tiny_ckpt(tmp_path))
    assert W.import_weights("t-chk", good).read_bytes() == good.read_bytes()
    assert _dir_listing(cache) == ["t-chk.pt", "t-chk.pt.verified"]


@pytest.mark.parametrize("name", ["i3d-rgb-imagenet-kinetics", "panns_cnn14", "mockingjay", "swin-base-in22k-in1k"])
def test_import_refuses_files_that_are_not_the_backbone(tmp_path, cache, name):
    """Zero bytes, text, or a pickle of another layout: refused by the backbone's own loader, nothing cached."""
    import torch

    spec = W.get_weight_spec(name)
    other = tmp_path / "other.pt"
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, other)
    empty, text = tmp_path / "empty.pth", tmp_path / "notes.txt"
    empty.write_bytes(b"")
    text.write_text("see https://example.org for the weights\n")
    for src in (empty, text, other):
        with pytest.raises(InputError) as ei:
            W.import_weights(name, src)
        msg = str(ei.value)
        assert "\n" not in msg and str(src) in msg and spec.filename in msg, msg
        assert _dir_listing(cache) == []


def test_download_that_does_not_load_is_refused(server, cache, tmp_path):
    _checked_spec("t-dl", server + "/good.bin")  # serves bytes that are no checkpoint
    with pytest.raises(WeightsMissingError, match="download is not usable.*highlighter weights import t-dl"):
        W.ensure_weights("t-dl", progress=False)
    assert _dir_listing(cache) == []
    _Handler.extra = {"/tiny.pt": _tiny_ckpt(tmp_path)}
    try:
        _checked_spec("t-dl2", server + "/tiny.pt")
        assert W.ensure_weights("t-dl2", progress=False).read_bytes() == _Handler.extra["/tiny.pt"]
    finally:
        _Handler.extra = {}


def test_fetch_replaces_an_unreadable_cached_file(server, cache, tmp_path, monkeypatch):
    _Handler.extra = {"/tiny.pt": _tiny_ckpt(tmp_path)}
    try:
        _checked_spec("t-fix", server + "/tiny.pt")
        cache.mkdir(parents=True)
        (cache / "t-fix.pt").write_bytes(b"")  # imported before imports were checked
        monkeypatch.setenv("HIGHLIGHTER_OFFLINE", "1")
        with pytest.raises(WeightsMissingError, match="cached copy is unreadable.*highlighter weights import t-fix"):
            W.fetch_weights("t-fix", progress=False)
        assert (cache / "t-fix.pt").read_bytes() == b""
        monkeypatch.delenv("HIGHLIGHTER_OFFLINE")
        assert W.fetch_weights("t-fix", progress=False).read_bytes() == _Handler.extra["/tiny.pt"]
        n = len(_Handler.requests)
        W.fetch_weights("t-fix", progress=False)  # readable now: no new download
        assert len(_Handler.requests) == n
    finally:
        _Handler.extra = {}


def _bundled_backbone_available() -> bool:
    try:
        from highlighter.features.visual.efficientnet import bundled_weights_path

        return bundled_weights_path().is_file()
    except Exception:  # noqa: BLE001
        return False


@pytest.mark.skipif(not _bundled_backbone_available(), reason="efficientnet-lite0 weights package missing")
def test_unreadable_cached_backbone_falls_back_offline(cache, monkeypatch):
    """A broken cached i3d file must not block detect's offline fallback (unless the user pinned the backbone)."""
    from highlighter.api import DetectConfig, Pipeline

    monkeypatch.setenv("HIGHLIGHTER_OFFLINE", "1")
    spec = W.get_weight_spec("i3d-rgb-imagenet-kinetics")
    cache.mkdir(parents=True)
    (cache / spec.filename).write_bytes(b"")
    lines: list[str] = []
    pipe = Pipeline(DetectConfig(method="feature-norm"), log=lines.append)  # training-free: only i3d is missing
    assert pipe.plan.visual.startswith("efficientnet-lite0") and len(lines) == 1
    from highlighter.api import cpu_only

    if cpu_only("auto"):  # the CPU default never loads i3d, broken or not: its one line says what runs and why
        assert lines[0].startswith("using efficientnet-lite0") and "CPU only" in lines[0]
    else:
        assert pipe.plan.fallback == lines[0] and "unreadable" in lines[0] and str(cache / spec.filename) in lines[0]
        assert f"highlighter weights fetch {spec.name}" in lines[0] and "offline fallback" in lines[0]
    with pytest.raises(W.CachedWeightsUnreadableError) as ei:
        Pipeline(DetectConfig(method="feature-norm", backbone="i3d"))
    assert "\n" not in str(ei.value) and f"highlighter weights import {spec.name}" in str(ei.value)
