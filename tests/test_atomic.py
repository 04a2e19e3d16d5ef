"""highlighter.atomic: the one temp-file-then-rename mechanism every writer uses."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

import media
from highlighter.atomic import atomic_path, atomic_write_text, default_mode


def _names(d):
    return sorted(p.name for p in d.iterdir())


def test_atomic_path_renames_on_success_with_normal_permissions(tmp_path):
    dest = tmp_path / "sub" / "out.mp4"
    with atomic_path(dest, suffix=".part.mp4") as tmp:
        assert tmp.parent == dest.parent and tmp.name.startswith(".out.mp4.") and tmp.name.endswith(".part.mp4")
        assert not dest.exists()  # nothing at the destination until the block succeeds
        # another program writes the path (ffmpeg -y over the empty temp file)
        subprocess.run([media.ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=red:s=64x48:d=0.2",
                        str(tmp)], check=True)
    assert _names(dest.parent) == ["out.mp4"] and dest.stat().st_size > 0
    assert stat.S_IMODE(dest.stat().st_mode) == default_mode()


@pytest.mark.parametrize("exc", [RuntimeError("writer failed"), KeyboardInterrupt()])
def test_atomic_path_removes_temp_and_keeps_old_file_on_failure(tmp_path, exc):
    dest = tmp_path / "out.txt"
    dest.write_text("old")
    with pytest.raises(type(exc)):
        with atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise exc
    assert _names(tmp_path) == ["out.txt"] and dest.read_text() == "old"


def test_long_names_get_short_temp_names(tmp_path):
    dest = tmp_path / ("n" * 250 + ".json")  # 255 bytes: the longest name most file systems take
    atomic_write_text(dest, "é\n")
    assert dest.read_bytes() == "é\n".encode() and _names(tmp_path) == [dest.name]


def test_unwritable_folder_is_an_oserror_and_leaves_nothing(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(PermissionError):
            with atomic_path(ro / "x.bin"):
                pass
        assert _names(ro) == []
    finally:
        ro.chmod(0o700)
