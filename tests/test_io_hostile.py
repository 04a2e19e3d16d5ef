"""Hostile inputs: named pipes, sockets, devices, symbolic link loops, containers whose
headers lie about their duration, frames that do not decode, very long file names.

Each must give one clear line (given directly) or one per-file failure (inside a
folder, the batch goes on) — never a hang, a traceback or a silently wrong grid.
The visual backbone is a real feature function (mean colour + frame count of a clip)
behind the real `Backbone` contract, so the tests run in seconds.
"""

from __future__ import annotations

import os
import random
import socket
import struct
from pathlib import Path

import numpy as np
import pytest

import media
from cli_helpers import alarm
from cli_helpers import run_cli_in_process as _cli
from highlighter.errors import InputError
from highlighter.features import base
from highlighter.features.base import Backbone, BackboneSpec
from highlighter.features.extract import (ExtractConfig, cache_path, decoded_clips, discover, extract_features,
                                          extract_many, load_or_extract)
from highlighter.features.grid import ClipGrid
from highlighter.features.store import FeatureFile, SourceKey
from highlighter.io import probe


class Colour(Backbone):
    spec = BackboneSpec("test-hostile-colour", "visual", 4, None, "mean RGB and frame count of a clip", "4 fps, 32 px")
    fps = 4.0
    short_side = 32

    def embed_clips(self, clips):
        return np.stack([np.r_[media.mean_rgb(c).mean(0), len(c)] for c in clips]).astype(np.float32)


CFG = ExtractConfig(visual="test-hostile-colour", audio=None, pretrained=False, device="cpu")


@pytest.fixture(scope="module", autouse=True)
def colour_backbone():
    base._ensure_loaded()
    base.register_backbone(Colour)
    yield
    base.unregister_backbone(Colour.spec.name)





@pytest.fixture(scope="module")
def ten_s(tmp_path_factory) -> Path:
    """10 s, 64x48, red then blue at 5 s, with audio (both tracks get lying headers below)."""
    return media.make_video(tmp_path_factory.mktemp("hostile") / "ten.mp4", 10.0, fps=10, size=(64, 48),
                            colors=[(0, "red"), (5, "blue")], sample_rate=16000)


def set_header_duration(src: Path, dst: Path, seconds: float) -> Path:
    """Copy an mp4, rewriting the 32-bit duration of every mvhd/tkhd/mdhd (version 0) box."""
    data = bytearray(src.read_bytes())
    mvhd = data.find(b"mvhd") + 4
    movie_scale = struct.unpack_from(">I", data, mvhd + 12)[0]
    for box, offset in ((b"mvhd", 16), (b"tkhd", 20), (b"mdhd", 16)):
        i = data.find(box)
        while i != -1:
            payload = i + 4
            assert data[payload] == 0, "version-1 box: 64-bit fields"
            scale = movie_scale if box == b"tkhd" else struct.unpack_from(">I", data, payload + 12)[0]
            struct.pack_into(">I", data, payload + offset, max(1, int(seconds * scale)))
            i = data.find(box, i + 4)
    dst.write_bytes(bytes(data))
    return dst


def scramble_mdat(src: Path, dst: Path) -> Path:
    """Same container (index intact), media payload replaced by random bytes."""
    data = bytearray(src.read_bytes())
    i = data.find(b"mdat")
    size = struct.unpack_from(">I", data, i - 4)[0]
    data[i + 4:i - 4 + size] = random.Random(0).randbytes(size - 8)
    dst.write_bytes(bytes(data))
    return dst


def make_socket(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    return s


# --------------------------------------------------------------------------- pipes, sockets, devices
def test_non_regular_files_given_directly_are_one_line(tmp_path, monkeypatch, capsys):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    sock = make_socket(tmp_path / "sock.mp4")
    try:
        cases = {fifo: "a named pipe", tmp_path / "sock.mp4": "a socket", Path("/dev/null"): "a character device"}
        with alarm(20):
            for path, kind in cases.items():
                for call in (SourceKey.of, probe, lambda p: discover([p])):
                    with pytest.raises(InputError) as err:
                        call(path)
                    msg = str(err.value)
                    assert str(path) in msg and "not a regular file" in msg and kind in msg and "\n" not in msg
            code, out, errs = _cli(monkeypatch, capsys, "extract-features", fifo, "-o", tmp_path / "out",
                                   "--visual", CFG.visual, "--audio", "none", "--random-weights", "--device", "cpu")
    finally:
        sock.close()
    assert code == 1 and "Traceback" not in errs
    assert [ln for ln in errs.splitlines() if ln.strip()] == [f"error: {fifo}: not a regular file (a named pipe); "
                                                              "pass video files or folders"]


def test_link_loop_given_directly_is_one_line(tmp_path):
    loop = tmp_path / "loop.mp4"
    loop.symlink_to(loop.name)
    broken = tmp_path / "broken.mp4"
    broken.symlink_to("gone.mp4")
    for path, what in ((loop, "symbolic link loop"), (broken, "broken symbolic link")):
        for call in (SourceKey.of, probe, lambda p: discover([p])):
            with pytest.raises(InputError, match=what):
                call(path)


def test_pipes_sockets_and_link_loops_in_a_folder_fail_alone(tmp_path, monkeypatch, capsys):
    src = tmp_path / "in"
    src.mkdir()
    media.make_video(src / "ok.mp4", 2.0, size=(64, 48), audio=False)
    os.mkfifo(src / "pipe.mp4")
    (src / "loop.mp4").symlink_to("loop.mp4")
    (src / "a.mov").symlink_to("b.mov")
    (src / "b.mov").symlink_to("a.mov")
    sock = make_socket(src / "sock.mkv")
    try:
        with alarm(60):
            report = extract_many([src], tmp_path / "out", CFG)
            code, out, errs = _cli(monkeypatch, capsys, "extract-features", src, "-o", tmp_path / "out2",
                                   "--visual", CFG.visual, "--audio", "none", "--random-weights", "--device", "cpu")
            from highlighter.api import DetectConfig, detect_many

            outcomes = detect_many([src], DetectConfig(method="feature-norm", backbone=CFG.visual, use_cache=False,
                                                       device="cpu"), tmp_path / "det", formats=("json",))
    finally:
        sock.close()
    status = {r.source.name: (r.status, r.message) for r in report.results}
    assert status["ok.mp4"][0] == "done" and (tmp_path / "out" / "ok.features.npz").exists()
    expect = {"pipe.mp4": "a named pipe", "sock.mkv": "a socket", "loop.mp4": "symbolic link loop",
              "a.mov": "symbolic link loop", "b.mov": "symbolic link loop"}
    for name, what in expect.items():
        assert status[name][0] == "failed" and what in status[name][1] and name in status[name][1], status[name]
    assert code == 1 and "extracted 1" in out and "failed 5" in out and "Traceback" not in errs
    assert all(f"{src / name}: " in errs for name in expect)
    det = {o.source.name: o for o in outcomes}
    assert det["ok.mp4"].status == "done" and (tmp_path / "det" / "ok.json").exists()
    assert all(det[n].status == "failed" and expect[n] in det[n].message for n in expect)


# --------------------------------------------------------------------------- lying containers
def test_header_saying_one_tick_over_ten_seconds_of_frames(ten_s, tmp_path):
    lie = set_header_duration(ten_s, tmp_path / "lie.mp4", 0)
    info = probe(lie)
    assert info.duration == pytest.approx(10.0, abs=0.05)
    assert info.video.duration == pytest.approx(10.0, abs=0.05)
    assert info.audio[0].duration == pytest.approx(10.0, abs=0.1)
    ff = extract_features(lie, CFG)
    assert ff.num_clips == 5 and ff.ends[-1] == pytest.approx(10.0, abs=0.05)
    assert (ff.visual[:, 0] > 200).tolist() == [True, True, False, False, False]  # red 0-5 s, then blue
    assert (ff.visual[:, 2] > 200).tolist() == [False, False, False, True, True]  # [4, 6) is half of each
    assert ff.visual[:, 3].tolist() == [8.0] * 5  # every clip got its own 2 s of frames at 4 fps
    from highlighter.api import DetectConfig, detect

    result = detect(lie, DetectConfig(method="feature-norm", backbone=CFG.visual, use_cache=False, device="cpu"))
    assert result.video.duration == pytest.approx(10.0, abs=0.05) and len(result.starts) == 5
    assert result.segments and all(g.end - g.start >= 1.0 for g in result.segments)


def test_header_claiming_ten_hours_over_ten_seconds(ten_s, tmp_path):
    long = set_header_duration(ten_s, tmp_path / "long.mp4", 36000)
    info = probe(long)
    assert info.duration == pytest.approx(10.0, abs=0.05) and info.video.duration == pytest.approx(10.0, abs=0.05)
    assert extract_features(long, CFG).num_clips == 5


def test_frames_that_never_decode_are_an_error(ten_s, tmp_path, monkeypatch, capsys):
    bad = scramble_mdat(ten_s, tmp_path / "scrambled.mp4")
    with pytest.raises(InputError, match="does not decode|no decodable"):
        probe(bad)
    with pytest.raises(InputError, match="scrambled.mp4"):
        extract_features(bad, CFG)
    code, out, errs = _cli(monkeypatch, capsys, "extract-features", bad, "-o", tmp_path / "out",
                           "--visual", CFG.visual, "--audio", "none", "--random-weights", "--device", "cpu")
    assert code == 1 and "failed 1" in out and "Traceback" not in errs and "scrambled.mp4" in errs
    assert not (tmp_path / "out" / "scrambled.features.npz").exists()


def test_grid_is_cut_after_the_last_decoded_frame():
    grid = ClipGrid(2.0)
    assert decoded_clips(grid, 10.0, 10.25) is None  # decoded it all (last sample + one interval)
    assert decoded_clips(grid, 10.0, 9.5) is None  # same clips: the last one is only shorter
    assert decoded_clips(grid, 10.0, 6.0) == 3  # [0,2) [2,4) [4,6): no clip of repeated frames
    assert decoded_clips(grid, 10.0, 0.0) is None  # nothing decoded: the extractor raises instead


# --------------------------------------------------------------------------- long names
def test_long_file_name_fits_the_cache_and_the_outputs(ten_s, tmp_path):
    name = "x" * 242 + ".mp4"  # 246 characters, as in the report; NAME_MAX is 255
    (tmp_path / "in").mkdir()
    video = tmp_path / "in" / name
    video.write_bytes(ten_s.read_bytes())
    cached = cache_path(video, tmp_path / "cache")
    assert len(cached.name) <= 100 and cached != cache_path(tmp_path / "in" / ("x" * 243 + ".mp4"), tmp_path)
    ff = load_or_extract(video, tmp_path / "cache", CFG)
    assert cached.exists() and FeatureFile.load(cached).num_clips == ff.num_clips == 5
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [cached.name]  # no temp file left
    wide = "é" * 120 + ".mp4"  # 244 bytes: the cut must not split a character
    assert cache_path(tmp_path / wide, tmp_path).name.encode("utf-8").__len__() <= 100
    report = extract_many([tmp_path / "in"], tmp_path / "out", CFG)
    assert report.ok and len(report.done[0].output.name) <= 100 and report.done[0].output.exists()
