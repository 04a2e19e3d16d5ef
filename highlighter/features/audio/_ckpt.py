"""Checkpoint loading safe against hostile pickles: the audio backbones' loader, and
`torch_load_safe`, which every torch pickle goes through (visual: common.read_checkpoint).

Published checkpoints are pickles, and a pickle can name any importable callable
(``os.system``, ``builtins.eval``, ``torch.serialization.os.system``...) and call it
while loading. So no checkpoint is ever unpickled with the stock unpickler:

1. First ``torch.load(weights_only=True)`` inside ``torch.serialization.safe_globals``
   with ONE exact extra class, ``argparse.Namespace`` (s3prl pickles its command-line
   arguments; the class only holds attributes). PANN and current s3prl files load here.
2. Only when that refuses an unknown global (older s3prl files can pickle training
   objects such as optimizer schedules from s3prl's own modules, which ``weights_only``
   cannot map to anything) we unpickle with `_StrictUnpickler`: an EXACT (module, name)
   allow-list (`_ALLOWED`: tensor rebuilding, OrderedDict, torch.Size, torch dtypes,
   ``_codecs.encode`` for protocol-2 bytes, set/frozenset/complex) returns the real
   objects; every other name becomes an inert placeholder class. A placeholder may be
   re-created the way plain objects are pickled (``NEWOBJ`` + state: no code runs), but
   CALLING it (``REDUCE``/``INST``/``OBJ``, i.e. the file asking to run that callable)
   is refused, so the load fails instead of running anything. Nothing is matched by
   prefix: ``torch.*`` or ``numpy.*`` paths that lead to ``os.system`` are placeholders.

Why not ``weights_only`` alone: it cannot stand in for classes it does not know, and
we cannot import s3prl's. Why not a lenient unpickler: it ran code from the file.
"""

from __future__ import annotations

import _codecs
import argparse
import collections
import pickle
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch._utils

from highlighter.errors import InputError

SAFE_GLOBALS = [argparse.Namespace]  # the exact classes added to torch's weights_only allow-list


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks=None, metadata=None):
    """torch's tensor rebuild, minus any pickled backward hooks (objects from the file are never kept as code)."""
    return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, collections.OrderedDict(),
                                           metadata)


def _rebuild_parameter(data, requires_grad, backward_hooks=None):
    """torch's Parameter rebuild, minus any pickled backward hooks."""
    return torch._utils._rebuild_parameter(data, requires_grad, collections.OrderedDict())


def _allowed() -> dict[tuple[str, str], object]:
    """Every (module, name) a checkpoint may reference as a real object: exact pairs, no prefixes."""
    allowed: dict[tuple[str, str], object] = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch", "Size"): torch.Size,
        ("_codecs", "encode"): _codecs.encode,  # how protocol 2 pickles bytes
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "complex"): complex,
    }
    for name in dir(torch):  # dtypes are plain values (torch.float32, ...), not callables
        if isinstance(getattr(torch, name, None), torch.dtype):
            allowed[("torch", name)] = getattr(torch, name)
    return allowed


_ALLOWED = _allowed()


class _Placeholder:
    """Stands in for a pickled object of a class we do not load (optimizer schedule, ...).

    Re-creating it from its pickled state is inert; calling it (the file asking us to
    run that callable) is refused.
    """

    _origin = "?"

    def __init__(self, *args, **kwargs):
        raise pickle.UnpicklingError(f"refusing to call {self._origin} from the checkpoint")

    def __setstate__(self, state):
        self.__dict__["_state"] = state


def _placeholder(module: str, name: str) -> type:
    """A fresh inert class named after the pickled one (pickle memoizes it within one file)."""
    return type(name.rsplit(".", 1)[-1] or "_", (_Placeholder,),
                {"__module__": "highlighter.placeholder", "_origin": f"{module}.{name}"})


class _StrictUnpickler(pickle.Unpickler):
    """find_class: exact allow-list, else an inert placeholder; never imports anything."""

    def find_class(self, module: str, name: str):
        key = (module, name)
        return _ALLOWED[key] if key in _ALLOWED else _placeholder(module, name)


_strict_pickle = types.ModuleType("highlighter_strict_pickle")
_strict_pickle.Unpickler = _StrictUnpickler  # type: ignore[attr-defined]
_strict_pickle.load = lambda f, **kw: _StrictUnpickler(f, **kw).load()  # type: ignore[attr-defined]
_strict_pickle.UnpicklingError = pickle.UnpicklingError  # type: ignore[attr-defined]
_strict_pickle.__name__ = "pickle"


def torch_load_safe(path: Path) -> object:
    """Unpickle a torch checkpoint without ever running code from it (see the module doc).

    Tensors are memory-mapped from the file when its format allows (torch's zip format): what
    a loader does not use (an s3prl checkpoint's optimizer state, twice the model) is never
    read into memory; a Mockingjay checkpoint then peaks at 0.9 GB instead of 1.8 (issue 14)."""
    with warnings.catch_warnings():  # torch's notes on odd pickle protocols would break the one-line error
        warnings.simplefilter("ignore", UserWarning)
        try:
            with torch.serialization.safe_globals(SAFE_GLOBALS):
                return _load(path, weights_only=True)
        except pickle.UnpicklingError:  # an unknown global: retry with placeholders, still no code
            return _load(path, weights_only=False, pickle_module=_strict_pickle)


def _load(path: Path, **kwargs) -> object:
    """``torch.load`` on the CPU, memory-mapped unless the file is in the legacy (pre-zip) format."""
    try:
        return torch.load(path, map_location="cpu", mmap=True, **kwargs)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise
        return torch.load(path, map_location="cpu", **kwargs)


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}".rstrip(": ")


def load_pickle_checkpoint(path: str | Path, what: str) -> dict:
    """The checkpoint's top-level dict; InputError (one line) when the file is not one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} checkpoint {path} does not exist (pass the downloaded file, or run `highlighter weights list`)")
    try:
        obj = torch_load_safe(path)
    except Exception as exc:  # noqa: BLE001 - any failure means "not a checkpoint we can read"
        raise InputError(f"{path} is not a readable {what} checkpoint ({_first_line(exc)}); re-download it") from exc
    if not isinstance(obj, dict):
        raise InputError(f"{path} is not a {what} checkpoint (top level is {type(obj).__name__}, expected a dict)")
    return obj


@dataclass
class LoadReport:
    """Which checkpoint tensors went where: proof that a published layout maps one to one."""

    loaded: list[str] = field(default_factory=list)  # checkpoint keys copied into the model
    ignored: list[str] = field(default_factory=list)  # checkpoint keys not used on purpose (e.g. pretraining heads)
    filled: list[str] = field(default_factory=list)  # model keys absent from old checkpoints and set to defaults


def load_strict(model: torch.nn.Module, sd: dict, path: Path, what: str, assign: bool = False) -> None:
    """load_state_dict(strict=True) with a one-line InputError that names what did not match.

    ``assign``: the tensors of ``sd`` replace the model's (a model built on the meta device gets
    real weights without a second copy); any tensor left on the meta device is then an error."""
    try:
        model.load_state_dict(sd, strict=True, assign=assign)
    except RuntimeError as exc:
        want = model.state_dict()
        missing = [k for k in want if k not in sd]
        extra = [k for k in sd if k not in want]
        shape = [k for k in want if k in sd and tuple(sd[k].shape) != tuple(want[k].shape)]
        parts = []
        for label, keys in (("missing", missing), ("unexpected", extra), ("wrong shape", shape)):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {keys[0]})")
        detail = "; ".join(parts) or str(exc).splitlines()[0]
        raise InputError(f"{path} does not match the {what} layout: {detail}; is it the right checkpoint?") from exc
    if assign:
        left = [k for k, v in (*model.named_parameters(), *model.named_buffers()) if v.is_meta]
        if left:
            raise InputError(f"{path} leaves {len(left)} {what} tensor(s) unset (e.g. {left[0]}); "
                             "is it the right checkpoint?")
