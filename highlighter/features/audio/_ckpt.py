"""Shared checkpoint loading for the torch audio backbones.

Published checkpoints are pickles. We load them with ``weights_only=True`` when we
can; s3prl checkpoints also pickle training objects (argparse.Namespace, optimizer
and scheduler classes from s3prl's own modules), which that mode refuses and which
we could not import anyway. For those we unpickle with an allow-list: torch tensors,
storages and containers are real; every other class becomes an inert placeholder, so
no code from the file runs and no s3prl install is needed.
"""

from __future__ import annotations

import pickle
import types
from dataclasses import dataclass, field
from pathlib import Path

import torch

from highlighter.errors import InputError

_REAL_MODULES = ("torch", "collections", "numpy", "_codecs")
_SAFE_BUILTINS = {"set", "frozenset", "slice", "complex", "bytearray", "range", "dict", "list", "tuple",
                  "int", "float", "str", "bool", "bytes", "object"}


class _Placeholder:
    """Stands in for a pickled object whose class we do not load (optimizer, Namespace...)."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state


class _AllowListUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        root = module.split(".")[0]
        if root in _REAL_MODULES or (module == "builtins" and name in _SAFE_BUILTINS):
            return super().find_class(module, name)
        return type(name, (_Placeholder,), {"__module__": "highlighter.placeholder"})


_lenient_pickle = types.ModuleType("highlighter_lenient_pickle")
_lenient_pickle.Unpickler = _AllowListUnpickler  # type: ignore[attr-defined]
_lenient_pickle.load = lambda f, **kw: _AllowListUnpickler(f, **kw).load()  # type: ignore[attr-defined]
_lenient_pickle.__name__ = "pickle"


def load_pickle_checkpoint(path: str | Path, what: str) -> dict:
    """The checkpoint's top-level dict; InputError (one line) when the file is not one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} checkpoint {path} does not exist (pass the downloaded file, or run `highlighter weights list`)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_lenient_pickle)
        except Exception as exc:  # noqa: BLE001 - any failure means "not a checkpoint we can read"
            raise InputError(f"{path} is not a readable {what} checkpoint ({type(exc).__name__}: {exc}); "
                             f"re-download it") from exc
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{path} is not a readable {what} checkpoint ({type(exc).__name__}: {exc}); re-download it") from exc
    if not isinstance(obj, dict):
        raise InputError(f"{path} is not a {what} checkpoint (top level is {type(obj).__name__}, expected a dict)")
    return obj


@dataclass
class LoadReport:
    """Which checkpoint tensors went where: proof that a published layout maps one to one."""

    loaded: list[str] = field(default_factory=list)  # checkpoint keys copied into the model
    ignored: list[str] = field(default_factory=list)  # checkpoint keys not used on purpose (e.g. pretraining heads)
    filled: list[str] = field(default_factory=list)  # model keys absent from old checkpoints and set to defaults


def load_strict(model: torch.nn.Module, sd: dict, path: Path, what: str) -> None:
    """load_state_dict(strict=True) with a one-line InputError that names what did not match."""
    try:
        model.load_state_dict(sd, strict=True)
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
