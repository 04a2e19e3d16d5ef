"""Detector configs: one way to build, type-check and validate them, and ``--set`` parsing.

Every detector's settings are one dataclass. Whether they come from Python
keywords, a weights file's JSON or ``--set key=value`` strings, they pass through
`make_config`, so an unknown key or a bad value is always the same one-line
`UsageError` naming the key and what is allowed.

A config declares allowed values with `choice(...)` fields and cross-field rules in
an optional ``check()`` method that raises `BadValue`.
"""

from __future__ import annotations

import dataclasses
import numbers
import types
import typing
from typing import Any, Mapping, Sequence

from highlighter.errors import UsageError


class BadValue(ValueError):
    """Raised by a config's ``check()``: ``key`` holds a value outside ``allowed``."""

    def __init__(self, key: str, allowed: str) -> None:
        super().__init__(key, allowed)
        self.key, self.allowed = key, allowed


def choice(default: str, *others: str) -> Any:
    """A string field restricted to ``(default, *others)``."""
    return dataclasses.field(default=default, metadata={"choices": (default, *others)})


def field_names(config_cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(config_cls)]


def unknown_key(prefix: str, key: str, config_cls: type) -> UsageError:
    return UsageError(f"{prefix}: unknown config key '{key}'; allowed keys: {', '.join(field_names(config_cls))}")


def make_config(config_cls: type, method: str, values: Mapping[str, Any]) -> Any:
    """``config_cls(**values)`` with unknown keys, wrong types and bad values as usage errors."""
    names = field_names(config_cls)
    for key in values:
        if key not in names:
            raise unknown_key(method, key, config_cls)
    hints = typing.get_type_hints(config_cls)
    cfg = config_cls(**{k: _coerce(method, k, v, hints[k]) for k, v in values.items()})
    for f in dataclasses.fields(config_cls):
        allowed = f.metadata.get("choices")
        if allowed and getattr(cfg, f.name) not in allowed:
            raise _bad(method, f.name, getattr(cfg, f.name), ", ".join(allowed))
    check = getattr(cfg, "check", None)
    if check is not None:
        try:
            check()
        except BadValue as exc:
            raise _bad(method, exc.key, getattr(cfg, exc.key), exc.allowed) from None
    return cfg


def _bad(method: str, key: str, value: Any, allowed: str) -> UsageError:
    shown = list(value) if isinstance(value, tuple) else value
    return UsageError(f"{method}: {key}={shown!r} is not allowed; allowed: {allowed}")


def _optional_inner(hint):
    """``X | None`` -> X; anything else -> None."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        return next(a for a in args if a is not type(None))
    return None


def _coerce(method: str, key: str, value: Any, hint) -> Any:
    """``value`` as the field's type (JSON lists -> tuples, ints -> floats), or a usage error."""
    inner = _optional_inner(hint)
    if inner is not None:
        return None if value is None else _coerce(method, key, value, inner)
    ok = True
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        value = int(value) if ok else value
    elif hint is float:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    elif typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        fixed = not (len(args) == 2 and args[1] is Ellipsis)
        ok = isinstance(value, (list, tuple)) and (not fixed or len(value) == len(args))
        if ok:
            elems = args if fixed else (args[0],) * len(value)
            value = tuple(_coerce(method, key, v, t) for v, t in zip(value, elems))
    if not ok:
        raise UsageError(f"{method}: {key}={value!r} is not allowed; expected {_describe(hint)}")
    return value


def _describe(hint) -> str:
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {args[0].__name__}"
        return f"{len(args)} values ({', '.join(a.__name__ for a in args)})"
    return getattr(hint, "__name__", str(hint))


# --- ``--set key=value`` ---------------------------------------------------------------------


def parse_overrides(config_cls: type, pairs: Sequence[str]) -> dict:
    """``["key=value", ...]`` -> typed kwargs for ``config_cls``; unknown keys are usage errors."""
    hints = typing.get_type_hints(config_cls)
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"--set {pair}: expected key=value; allowed keys: {', '.join(field_names(config_cls))}")
        key, raw = (p.strip() for p in pair.split("=", 1))
        if key not in hints or key not in field_names(config_cls):
            raise unknown_key(f"--set {key}", key, config_cls)
        out[key] = _convert(raw, hints[key], key)
    return out


def _convert(raw: str, hint, key: str):
    """Parse a ``--set`` string into the type of the config field."""
    inner = _optional_inner(hint)
    if inner is not None:
        return None if raw.lower() in ("none", "null") else _convert(raw, inner, key)
    if hint is bool:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"--set {key}={raw}: expected true or false")
    if hint in (int, float):
        try:
            return hint(raw)
        except ValueError:
            raise UsageError(f"--set {key}={raw}: expected {hint.__name__}") from None
    if typing.get_origin(hint) in (tuple, list):
        args = typing.get_args(hint)
        elem = args[0] if args else str
        return tuple(_convert(p.strip(), elem, key) for p in raw.split(",") if p.strip())
    return raw
