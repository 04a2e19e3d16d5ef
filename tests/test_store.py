"""Feature files: round trip, atomic writes, staleness (source and config), corrupt files."""

import json
import os

import numpy as np
import pytest

from highlighter.errors import InputError
from highlighter.features.extract import ExtractConfig
from highlighter.features.grid import ClipGrid
from highlighter.features.store import (FORMAT, FORMAT_VERSION, FeatureFile, SourceKey, check_output, fast_hash,
                                        stale_reason)

KEY = {"format_version": FORMAT_VERSION, "visual": "x:random", "audio": None, "weights": {}, "grid": {}}


def _ff(source, key=KEY, audio=True):
    s, e = ClipGrid().clips(7.0)
    rng = np.random.default_rng(0)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "source": SourceKey.of(source).to_dict(),
            "key": key, "no_audio": not audio}
    return FeatureFile(starts=s, ends=e, visual=rng.normal(size=(s.size, 5)).astype(np.float32),
                       audio=rng.normal(size=(s.size, 3)).astype(np.float32) if audio else None, meta=meta)


@pytest.fixture
def src(tmp_path):
    p = tmp_path / "video.mp4"
    p.write_bytes(os.urandom(3 << 20))  # 3 MiB: first/last MiB and a middle
    return p


def test_roundtrip_and_no_pickle(tmp_path, src):
    ff = _ff(src)
    out = ff.save(tmp_path / "out" / "video.features.npz")
    back = FeatureFile.load(out)
    np.testing.assert_array_equal(back.visual, ff.visual)
    np.testing.assert_array_equal(back.audio, ff.audio)
    np.testing.assert_array_equal(back.starts, ff.starts)
    assert back.meta == json.loads(json.dumps(ff.meta)) and back.visual.dtype == np.float32
    with np.load(out, allow_pickle=False) as z:  # readable with numpy alone, no pickle
        assert set(z.files) == {"starts", "ends", "visual", "audio", "meta"}
    noaudio = _ff(src, audio=False).save(tmp_path / "b.features.npz")
    back = FeatureFile.load(noaudio)
    assert back.audio is None and back.no_audio
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["video.features.npz"]  # no temp left


def test_atomic_save_keeps_old_file_on_failure(tmp_path, src, monkeypatch):
    out = _ff(src).save(tmp_path / "v.features.npz")
    before = out.read_bytes()
    bad = _ff(src)
    bad.visual = bad.visual[:2]  # wrong number of rows -> save refuses before writing
    with pytest.raises(ValueError):
        bad.save(out)

    # the disk fails after the bytes were written (ENOSPC at fsync): old file intact, no temp left
    def enospc(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", enospc)
    with pytest.raises(OSError):
        _ff(src, audio=False).save(out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.features.npz", "video.mp4"]


def test_staleness(tmp_path, src):
    ff = _ff(src)
    out = ff.save(tmp_path / "v.features.npz")
    assert check_output(out, src, KEY) is None and not ff.is_stale(src, KEY)
    assert check_output(out, src, {**KEY, "visual": "y:random"}) == "extraction settings changed"
    # touch: same bytes, new mtime -> stale
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert check_output(out, src, KEY) == "source modified"
    # a middle-byte edit with mtime restored is not seen by the fast hash (documented), but an
    # edit of the first MiB with the mtime restored is
    _ff(src).save(out)
    st = src.stat()
    with open(src, "r+b") as f:
        f.seek(10)
        f.write(b"xx")
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert check_output(out, src, KEY) == "source modified"
    # moved / copied elsewhere -> different path -> re-extracted
    other = tmp_path / "copy.mp4"
    other.write_bytes(src.read_bytes())
    assert check_output(out, other, KEY) == "source path changed"
    assert check_output(tmp_path / "missing.features.npz", src, KEY) == "no features yet"


def test_fast_hash_covers_size_and_ends(tmp_path):
    a = tmp_path / "a"
    a.write_bytes(b"\0" * (5 << 20))
    h = fast_hash(a)
    a.write_bytes(b"\0" * ((5 << 20) - 1) + b"\1")
    assert fast_hash(a) != h
    a.write_bytes(b"\0" * ((5 << 20) + 1))
    assert fast_hash(a) != h
    small = tmp_path / "s"
    small.write_bytes(b"abc")
    assert fast_hash(small) != fast_hash(a)


def test_corrupt_or_foreign_files(tmp_path, src):
    bad = tmp_path / "bad.features.npz"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(InputError, match="corrupt"):
        FeatureFile.load(bad)
    assert check_output(bad, src, KEY) == "unreadable feature file"
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    with pytest.raises(InputError, match="not a highlighter feature file"):
        FeatureFile.load(foreign)
    assert check_output(foreign, src, KEY) == "unreadable feature file"
    with pytest.raises(InputError, match="does not exist"):
        FeatureFile.load(tmp_path / "nope.npz")
    # a truncated feature file (e.g. copied while being written by another tool)
    good = _ff(src).save(tmp_path / "g.features.npz")
    trunc = tmp_path / "t.features.npz"
    trunc.write_bytes(good.read_bytes()[:200])
    with pytest.raises(InputError):
        FeatureFile.load(trunc)


def test_config_key_changes_with_what_the_backbone_computes(monkeypatch):
    """A backbone whose computation changes (its written contract with it: efficientnet-lite0-motion's
    appearance from 2 frames instead of 4) must not reuse features cached by the old code."""
    import dataclasses

    from highlighter.features.base import backbone_class

    cls = backbone_class("efficientnet-lite0-motion")
    before = ExtractConfig(visual="efficientnet-lite0-motion", audio=None).cache_key()
    monkeypatch.setattr(cls, "spec", dataclasses.replace(cls.spec, contract=cls.spec.contract + " (changed)"))
    after = ExtractConfig(visual="efficientnet-lite0-motion", audio=None).cache_key()
    assert before["visual"] == after["visual"] and before["contracts"] != after["contracts"]
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "key": json.loads(json.dumps(before))}
    reason = stale_reason(meta, SourceKey("x", 1, 1.0, "h"), ExtractConfig(visual="efficientnet-lite0-motion",
                                                                             audio=None))
    assert reason == "extraction settings changed", reason


def test_config_key_depends_on_backbones_weights_and_grid_only():
    a = ExtractConfig(visual="i3d", audio=None, pretrained=False)
    assert a.cache_key() == ExtractConfig(visual="i3d", audio=None, pretrained=False, device="cpu",
                                          batch_size=3).cache_key()
    assert a.cache_key() != ExtractConfig(visual="i3d", audio=None, pretrained=False,
                                          grid=ClipGrid(0.2)).cache_key()
    assert a.cache_key() != ExtractConfig(visual="r3d", audio=None, pretrained=False).cache_key()
    assert a.cache_key()["visual"] == "i3d:random"
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "key": json.loads(json.dumps(a.cache_key()))}
    assert stale_reason(meta, SourceKey("x", 1, 1.0, "h"), a) == "source modified"


def test_save_under_a_long_name(tmp_path, src):
    """The temp file's name is short, so a feature file whose name nears the 255-byte limit saves."""
    out = tmp_path / "f" / ("v" * 240 + ".features.npz")
    _ff(src).save(out)
    assert FeatureFile.load(out).num_clips == _ff(src).num_clips
    assert [p.name for p in out.parent.iterdir()] == [out.name]
