"""Shared fixtures: a session-wide directory for generated media and ../shared (skipped when absent)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `import media` from any test

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    """A temp directory shared by the whole session, for synthetic media made with tests/media.py."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """/work/shared-style read-only data next to the repo; skips the test when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def shared_videos(shared_dir) -> Path:
    d = shared_dir / "videos"
    if not d.is_dir():
        pytest.skip(f"shared videos not found at {d}")
    return d
