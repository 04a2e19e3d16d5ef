"""Where backbones run: ``auto`` | ``cpu`` | ``cuda`` (``cuda:N``), and fp16 on CUDA.

fp16 is applied with ``torch.autocast`` around ``embed_clips`` rather than by
casting each backbone's weights: it works for every backbone without their
cooperation, keeps numerically touchy ops (softmax, norms, the audio front
ends) in float32, and the features come back as float32 either way.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from highlighter.errors import UsageError

DEVICES = ("auto", "cpu", "cuda")


def no_gpu_device() -> bool:
    """True when this Linux machine has no NVIDIA (/dev/nvidiactl) or ROCm (/dev/kfd) device node,
    so torch cannot see a GPU: `auto` resolves to CPU without importing torch."""
    import os
    import sys

    return sys.platform.startswith("linux") and not any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/kfd"))


def _cuda_available() -> bool:
    if no_gpu_device():
        return False  # answered without importing torch (~2 s)
    import torch

    return bool(torch.cuda.is_available())


def cuda_problem() -> str | None:
    """Why torch cannot use CUDA here, in words (None when it can): a CPU-only torch build
    needs another wheel, while a CUDA build that sees no GPU points at the driver or
    CUDA_VISIBLE_DEVICES; the two need different fixes."""
    import torch

    if torch.version.cuda is None:
        return f"this torch build ({torch.__version__}) has no CUDA support; install a CUDA build of torch"
    if not _cuda_available():
        return (f"no CUDA GPU is visible to torch {torch.__version__} (CUDA {torch.version.cuda}) on this machine; "
                "check the NVIDIA driver (nvidia-smi) and CUDA_VISIBLE_DEVICES")
    return None


def resolve_device(requested: str = "auto") -> str:
    """A concrete torch device string; one clear error when CUDA was asked for but is absent."""
    req = (requested or "auto").strip().lower()
    if req == "auto":
        return "cuda" if _cuda_available() else "cpu"
    if req == "cpu":
        return "cpu"
    if req == "cuda" or req.startswith("cuda:"):
        if not _cuda_available():
            raise UsageError(f"--device {requested}: {cuda_problem()}; or use --device cpu (or auto)")
        if ":" in req:
            import torch

            idx = req.split(":", 1)[1]
            if not idx.isdigit() or int(idx) >= torch.cuda.device_count():
                raise UsageError(f"--device {requested}: there are {torch.cuda.device_count()} CUDA device(s); "
                                 "use cuda:0 .. cuda:N-1")
        return req
    raise UsageError(f"unknown device '{requested}'; valid: auto, cpu, cuda, cuda:N")


def use_fp16(device: str, requested: bool | None = None) -> bool:
    """fp16 defaults to on for CUDA and is never used on CPU (slow there, no gain)."""
    on_cuda = device.startswith("cuda")
    if requested and not on_cuda:
        raise UsageError(f"fp16 needs a CUDA device, but the device is {device}; drop --fp16 or use --device cuda")
    return on_cuda if requested is None else bool(requested)


@contextlib.contextmanager
def inference(device: str, fp16: bool) -> Iterator[None]:
    """No autograd, and autocast to float16 when ``fp16``."""
    import torch

    with torch.inference_mode():
        if fp16:
            with torch.autocast(device_type="cuda", dtype=torch.float16):
                yield
        else:
            yield


def cpu_inference(x, module) -> bool:
    """Whether ``module`` runs on ``x`` for CPU inference only (eval mode, no autograd): where the
    memory-saving in-place and piecewise paths of issue 14 apply; elsewhere the plain ops run."""
    import torch

    return x.device.type == "cpu" and not module.training and not torch.is_grad_enabled()


def batchnorm_eval_(x, bn):
    """Eval-mode BatchNorm written into ``x`` (channels on dim 1): x * w/sqrt(var+eps) + (b - mean * that).

    Why (issue 14): ``bn(x)`` allocates a second activation, and on CPU the widest ones are
    50-80 MB per clip (I3D's first conv, PANN's first block). Equal to ``bn(x)`` to float rounding;
    for inference only (no autograd through the in-place ops)."""
    scale = bn.weight * (bn.running_var + bn.eps).rsqrt()
    shift = bn.bias - bn.running_mean * scale
    shape = (1, -1) + (1,) * (x.dim() - 2)
    return x.mul_(scale.view(shape)).add_(shift.view(shape))


M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt parameters


def _libc():
    """The process's C library (glibc's `mallopt` / `malloc_trim` live there), or None off Linux."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def _mallopt(*settings: tuple[int, int]) -> None:
    """glibc ``mallopt(param, value)`` for each pair; a no-op without glibc."""
    mallopt = getattr(_libc(), "mallopt", None)
    for param, value in settings if mallopt is not None else ():
        mallopt(param, value)


def trim_heap() -> None:
    """Hand the heap's free memory back to the system now (glibc ``malloc_trim(0)``, every arena).

    Why: after `fast_heap` the heap keeps what a video's extraction freed; `api.Pipeline` calls this once the
    features are in, so that a detector importing torch (~500 MB) does not add to it. A no-op without glibc."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


def bound_heap(threshold: int = 1 << 20) -> None:
    """Blocks of ``threshold`` bytes or more straight from mmap, so freeing one returns it (glibc).

    Why (issue 14): glibc raises its mmap threshold (up to 32 MB) each time a large block is
    freed; activations of a few MB up to 32 MB then come from heap arenas (one per thread that
    allocates) that keep them: +70-100 MB of RSS over a PANN or I3D run on CPU, +127 MB at the peak of
    the default `detect` on a 10-min video (968 -> 841 MB, when it still imported torch). Setting the
    threshold turns that adjustment off. `Extractor` calls it on CPU when a backbone runs in torch.
    Trim threshold and top pad go back to glibc's defaults (128 KiB), in case `fast_heap` ran before.
    Process-wide and idempotent; a no-op without glibc."""
    _mallopt((M_MMAP_THRESHOLD, threshold), (M_TRIM_THRESHOLD, 128 << 10), (M_TOP_PAD, 128 << 10))


def fast_heap() -> None:
    """Freed memory kept for reuse instead of handed back and faulted in again (glibc): blocks below 8 MiB
    from the heap, which is trimmed only when 64 MiB or more are free at its top.

    Why (issue 14, speed): the CPU default (frame engine in OpenVINO / ONNX Runtime, no torch) allocates
    frames, crops and motion maps of 0.3-20 MB; with `bound_heap` every block of 1 MiB or more is a fresh
    mapping whose pages all fault in, and the heap top is trimmed and faulted in again: 450 k page faults and
    1.9 s of system time in a `detect` of the 173-s join. With this: ~190 k and 1.4 s. Measured variants
    (mmap threshold / trim threshold / top pad, MiB; peak RSS of `detect` on a 10-min video; page faults on
    the join): 1/64/1 662 MB, 318 k; 4/32/1 760 MB, 192 k; **8/64/1 746 MB, 191 k**; 32/64/1 747 MB, 180 k;
    64/1024/64 795 MB, 168 k, but 938 MB at 2 h (not flat); `bound_heap` 675 MB, 450 k. `Extractor` calls it
    on CPU when no backbone runs in torch (with torch, whose import alone is ~500 MB, `bound_heap` keeps the
    1-GB goal). Process-wide; a no-op without glibc."""
    _mallopt((M_MMAP_THRESHOLD, 8 << 20), (M_TRIM_THRESHOLD, 64 << 20), (M_TOP_PAD, 1 << 20))
