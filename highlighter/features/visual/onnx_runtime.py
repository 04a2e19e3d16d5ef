"""CPU inference of a frame backbone on a model exported once to ONNX and cached: OpenVINO when
installed, else ONNX Runtime, else (the caller's choice) torch.

Why: EfficientNet-Lite0 at 224x224, batch 8, on this 2-core CPU (quiet machine, 2026-11-29):

==========================  ==========  ===========  =========
engine                      1 thread    2 threads    agrees
==========================  ==========  ===========  =========
torch 2.14                  38 ms*      -            -
ONNX Runtime 1.32           16.0 ms     10.3 / 20.1  6e-6
OpenVINO 2026.4             13.5 ms     7.6 / 14.7   8e-6
==========================  ==========  ===========  =========

(ms of wall per frame; with 2 threads wall / CPU; *under load, last round). OpenVINO costs
0.12-0.2 s to import and 0.2-0.25 s to compile the model (both in a thread while decoding starts,
`FrameRunner`), and a run that finds the export cached needs
neither timm nor torch for the backbone. Two threads (ONNX Runtime: intra-op; OpenVINO: two one-thread
streams, `FrameRunner._openvino`): the decode thread does not keep a whole core busy, and the backbone is
the pipeline's longest stage (ONNX Runtime's threads are told not to spin, so a waiting thread gives its
core back).

The export (``torch.onnx.export``, TorchScript exporter, opset 17, dynamic batch) runs the
first time, from the network with its weights already loaded, and is written atomically to
``<cache>/weights/onnx/<name>-<sha256 of the weights file>[:16]-v<EXPORT_VERSION>.onnx``: a
new checkpoint or a new export recipe makes a new file. The engines (and the ``onnx`` package
the exporter needs) are optional: without them, or off CPU, the backbone runs in torch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

from highlighter.errors import UsageError

log = logging.getLogger(__name__)

EXPORT_VERSION = 1  # bump when the exported graph changes (input layout, opset, head)
INPUT, OUTPUT = "x", "y"


RUNTIMES = ("auto", "openvino", "onnxruntime", "torch")
THREADS = 2  # intra-op threads of either engine (see the module doc)


def _installed(module: str) -> bool:
    """Whether ``module`` is installed, without importing it (OpenVINO's import is 0.2 s here, and it is
    done in `FrameRunner`'s loading thread instead). A broken install then fails to load there, and the
    run goes on in torch (`FrameRunner` fallback)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def openvino_available() -> bool:
    return _installed("openvino")


def ort_available() -> bool:
    return _installed("onnxruntime")


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
    """An ONNX Runtime CPU session on ``path`` (intra-op threads: ``threads``, default ORT's; no spinning)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # its warnings would break the one-line rule
    if threads:
        opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


# Frames per engine call, and ONNX Runtime's arena handed back after each call (issue 14, memory): with
# the default arena a 32-frame call keeps +800 MB for the rest of the process, 8 frames +200 MB;
# 8 frames with shrinkage peak at +110 MB and keep ~0 (benchmarks/memory.py; ~10 % slower than no shrinkage).
BATCH_FRAMES = 8


def memory_bounded_run() -> Any:
    """RunOptions that shrink the CPU arena back after each run, so nothing stays held between batches."""
    import onnxruntime as ort

    ro = ort.RunOptions()
    ro.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return ro


class FrameRunner:
    """float32 (n, 3, crop, crop) -> float32 (n, dim) on the exported model, ``BATCH_FRAMES`` at a time;
    ``engine`` says which one runs ("openvino" | "onnxruntime"). `release` drops the compiled model
    and its buffers (OpenVINO ~200 MB, ONNX Runtime ~120 MB after a video); the next call loads it again.

    The first load runs in a thread of its own from construction on (OpenVINO: import 0.2 s, read 0.08 s,
    compile 0.25 s here), so that a run decodes its first frames meanwhile instead of waiting; the first
    call waits for it. An export that cannot be loaded (damaged) is deleted, so that the next run makes it
    again, and this run goes on with ``fallback()`` (the same network in torch), with one warning."""

    def __init__(self, path: Path, engine: str, threads: int = THREADS,
                 fallback: Callable[[], Callable[[np.ndarray], np.ndarray]] | None = None):
        from concurrent.futures import ThreadPoolExecutor

        self.path, self.engine, self.threads, self.fallback = path, engine, threads, fallback
        self._run: Callable[[np.ndarray], np.ndarray] | None = None
        pool = ThreadPoolExecutor(1, thread_name_prefix="highlighter-engine")
        self._loading: Any = pool.submit(self._compile)
        pool.shutdown(wait=False)  # the thread ends with the load

    def _compile(self) -> Callable[[np.ndarray], np.ndarray]:
        """The engine as a function of the whole input (it makes the ``BATCH_FRAMES`` calls itself)."""
        if self.engine == "openvino":
            return self._openvino()
        sess, opts = session(self.path, self.threads), memory_bounded_run()
        return batched(lambda x: sess.run(None, {INPUT: x}, opts)[0])

    def _openvino(self) -> Callable[[np.ndarray], np.ndarray]:
        """OpenVINO in throughput mode: ``threads`` streams of one thread each, batches of ``BATCH_FRAMES``
        in flight on all of them at once, outputs gathered in order (bit-identical to one request on two
        threads). Why: one request on two threads syncs them after every layer, and a thread the decoder
        has preempted stalls the other; per frame 14.2-14.8 ms of CPU against 15.1-17.6 (240 frames, quiet)."""
        import openvino as ov

        compiled = ov.Core().compile_model(str(self.path), "CPU", {
            "PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": self.threads, "INFERENCE_NUM_THREADS": self.threads})
        queue = ov.AsyncInferQueue(compiled, self.threads)

        def run(x: np.ndarray) -> np.ndarray:
            starts = range(0, len(x), BATCH_FRAMES)
            out: list[Any] = [None] * len(starts)

            def done(request: Any, j: int) -> None:  # a copy: the request reuses its buffer
                out[j] = np.array(request.get_output_tensor(0).data, dtype=np.float32)

            queue.set_callback(done)
            for j, i in enumerate(starts):
                queue.start_async({0: np.ascontiguousarray(x[i:i + BATCH_FRAMES])}, j)
            queue.wait_all()
            return np.concatenate(out)

        return run

    def _load(self) -> Callable[[np.ndarray], np.ndarray]:
        if self._run is None:
            loading, self._loading = self._loading, None
            try:
                self._run = loading.result() if loading is not None else self._compile()
            except Exception as exc:  # noqa: BLE001 - a damaged export: make it again next time
                if self.fallback is None:
                    raise
                log.warning("cannot load the ONNX export %s (%s); running it in torch", self.path, exc)
                self.path.unlink(missing_ok=True)
                self._run = self.fallback()
        return self._run

    def release(self) -> None:
        if self._loading is not None and not self._loading.cancel():
            self._loading.exception()  # a load in flight finishes (its error, if any, is dropped with it)
        self._run = self._loading = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._load()(x)


def batched(run: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """``run`` (one engine call) applied ``BATCH_FRAMES`` frames at a time, outputs concatenated."""
    return lambda x: np.concatenate([run(np.ascontiguousarray(x[i:i + BATCH_FRAMES]))
                                     for i in range(0, len(x), BATCH_FRAMES)])


def pick_engine(runtime: str = "auto") -> str | None:
    """The engine ``runtime`` names, or None for torch; "auto" = OpenVINO, else ONNX Runtime, else torch.
    Naming an engine that is not installed is a usage error (one line)."""
    if runtime not in RUNTIMES:
        raise UsageError(f"unknown runtime '{runtime}'; valid: {', '.join(RUNTIMES)}")
    if runtime == "torch":
        return None
    found = {"openvino": openvino_available, "onnxruntime": ort_available}
    if runtime != "auto":
        if not found[runtime]():
            raise UsageError(f"runtime '{runtime}' is not installed; pip install {runtime} or use --runtime auto")
        return runtime
    return next((name for name, ok in found.items() if ok()), None)


def cached_session(name: str, weights: Path, build: Callable[[], Any], crop: int,
                   runtime: str = "auto") -> FrameRunner | None:
    """A `FrameRunner` on the cached export of ``name`` (exported from ``build()`` when absent), or None
    when no engine is installed or the export fails (the caller then runs torch)."""
    engine = pick_engine(runtime)
    if engine is None:
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
    return FrameRunner(path, engine, fallback=lambda: batched(torch_runner(build())))


def torch_runner(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """``model`` (the exported network in torch) as a `FrameRunner` engine: numpy in, numpy out."""
    import torch

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model.eval()(torch.from_numpy(x)).numpy().astype(np.float32)

    return run


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
