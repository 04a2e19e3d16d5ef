"""CPU inference of a frame backbone with ONNX Runtime, on a model exported once and cached.

Why: on this 2-core CPU, EfficientNet-Lite0 at 224x224 costs 19 ms of CPU per frame in ONNX
Runtime 1.32 against 38 ms in torch 2.14 (1 thread each, batch 32, measured under load; the
outputs agree to 6e-6), and a run that finds the exported model needs neither timm nor
(until the detector) torch: about 2 s less start-up.

The export (``torch.onnx.export``, TorchScript exporter, opset 17, dynamic batch) runs the
first time, from the network with its weights already loaded, and is written atomically to
``<cache>/weights/onnx/<name>-<sha256 of the weights file>[:16]-v<EXPORT_VERSION>.onnx``: a
new checkpoint or a new export recipe makes a new file. ONNX Runtime (and the ``onnx``
package the exporter needs) are optional: without them, or off CPU, the backbone runs in torch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

log = logging.getLogger(__name__)

EXPORT_VERSION = 1  # bump when the exported graph changes (input layout, opset, head)
INPUT, OUTPUT = "x", "y"


def ort_available() -> bool:
    """onnxruntime importable (importing it costs ~0.3 s; only called when the backbone is built)."""
    try:
        import onnxruntime  # noqa: F401
    except Exception:  # noqa: BLE001 - a broken install counts as absent: torch then runs
        return False
    return True


def export_available() -> bool:
    try:
        import onnx  # noqa: F401
    except Exception:  # noqa: BLE001
        return False
    return True


def onnx_cache_path(name: str, weights: Path) -> Path:
    """Where the export of backbone ``name`` with checkpoint ``weights`` is kept."""
    from highlighter import settings
    from highlighter.features.weights import sha256_file

    return settings.backbone_weights_dir() / "onnx" / f"{name}-{sha256_file(weights)[:16]}-v{EXPORT_VERSION}.onnx"


def export_onnx(model: Any, dest: Path, crop: int) -> Path:
    """Export ``model`` ((n, 3, crop, crop) float -> (n, dim)) to ``dest`` atomically."""
    import torch

    from highlighter.atomic import atomic_path

    dest.parent.mkdir(parents=True, exist_ok=True)
    x = torch.zeros(2, 3, crop, crop)
    with atomic_path(dest) as tmp, torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(model.eval(), x, str(tmp), input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: {0: "n"}, OUTPUT: {0: "n"}}, opset_version=17, dynamo=False)
    return dest


def session(path: Path, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session on ``path`` (intra-op threads: ``threads``, default ORT's)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # its warnings would break the one-line rule
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


# Frames per ONNX Runtime call, and its arena handed back after each call (issue 14, memory): with
# the default arena a 32-frame call keeps +800 MB for the rest of the process, 8 frames +200 MB;
# 8 frames with shrinkage peak at +110 MB and keep ~0 (benchmarks/memory.py; ~10 % slower than no shrinkage).
ORT_BATCH_FRAMES = 8


def memory_bounded_run() -> Any:
    """RunOptions that shrink the CPU arena back after each run, so nothing stays held between batches."""
    import onnxruntime as ort

    ro = ort.RunOptions()
    ro.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return ro


def cached_session(name: str, weights: Path, build: Callable[[], Any], crop: int) -> Any | None:
    """A session on the cached export of ``name`` (exported from ``build()`` when absent), or None
    when ONNX Runtime is missing or the export fails (the caller then runs torch)."""
    if not ort_available():
        return None
    path = onnx_cache_path(name, weights)
    if not path.is_file():
        if not export_available():
            return None
        try:
            export_onnx(build(), path, crop)
        except Exception as exc:  # noqa: BLE001 - an export problem costs speed, not the run
            log.warning("ONNX export of %s failed (%s); running it in torch", name, exc)
            return None
    try:
        return session(path, threads=1)  # the decode thread has the other core (`extract.prefetch`)
    except Exception as exc:  # noqa: BLE001 - a damaged cached export: make it again next time
        log.warning("cannot load the ONNX export %s (%s); running %s in torch", path, exc, name)
        path.unlink(missing_ok=True)
        return None


def center_crops(frames: np.ndarray, crop: int, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """uint8 (n, H, W, 3) frames (short side already the backbone's) -> float32 (n, 3, crop, crop)
    normalised as the torch path does (x / 255 - mean) / std."""
    n, h, w, _ = frames.shape
    top, left = (h - crop) // 2, (w - crop) // 2
    x = np.ascontiguousarray(frames[:, top:top + crop, left:left + crop].transpose(0, 3, 1, 2)).astype(np.float32)
    scale = (1.0 / (255.0 * np.asarray(std, np.float64))).astype(np.float32).reshape(1, 3, 1, 1)
    shift = (np.asarray(mean, np.float64) / np.asarray(std, np.float64)).astype(np.float32).reshape(1, 3, 1, 1)
    x *= scale  # (x / 255 - mean) / std as one multiply and one subtract, in place
    x -= shift
    return x
