"""glibc heap settings (`features.device`): `fast_heap` keeps freed buffers for reuse (speed), `bound_heap`
returns them (memory). Measured by page faults, in fresh interpreters (the settings are process-wide)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CODE = """
import os, numpy as np
from highlighter.features import device
getattr(device, "{mode}")()
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
a = np.ones(4 << 20, np.uint8)  # 4 MiB, every page written
held = rss()
del a
print(held - rss())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc heap settings are Linux-only")
def test_fast_heap_keeps_a_freed_buffer_and_bound_heap_hands_it_back():
    def returned(mode: str) -> int:
        """Bytes of resident memory a freed 4-MiB buffer gives back at once (below `fast_heap`'s 8-MiB mmap
        threshold, above `bound_heap`'s 1 MiB)."""
        out = subprocess.run([sys.executable, "-c", CODE.format(mode=mode)], capture_output=True, text=True,
                             check=True, timeout=60)
        return int(out.stdout.split()[-1])

    size = 4 << 20
    assert returned("fast_heap") < 0.1 * size  # kept in the heap for the next buffer: no faulting it in again
    assert returned("bound_heap") > 0.9 * size  # unmapped at once


def test_extractor_picks_the_heap_by_whether_torch_runs(monkeypatch):
    """No torch backbone on CPU (the offline default) -> `fast_heap`; a torch backbone -> `bound_heap` only."""
    from highlighter.features import device
    from highlighter.features.extract import ExtractConfig, Extractor

    calls: list[str] = []
    monkeypatch.setattr(device, "fast_heap", lambda: calls.append("fast"))
    monkeypatch.setattr(device, "bound_heap", lambda: calls.append("bound"))
    Extractor(ExtractConfig(visual=None, audio="logmel", device="cpu"))
    assert calls == ["bound", "fast"]
    calls.clear()
    Extractor(ExtractConfig(visual="r3d", audio=None, device="cpu", pretrained=False))
    assert calls == ["bound"]
