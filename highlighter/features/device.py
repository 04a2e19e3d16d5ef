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


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(requested: str = "auto") -> str:
    """A concrete torch device string; one clear error when CUDA was asked for but is absent."""
    req = (requested or "auto").strip().lower()
    if req == "auto":
        return "cuda" if _cuda_available() else "cpu"
    if req == "cpu":
        return "cpu"
    if req == "cuda" or req.startswith("cuda:"):
        if not _cuda_available():
            raise UsageError(f"--device {requested}: no CUDA GPU is visible to torch on this machine; "
                             "use --device cpu (or auto)")
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
