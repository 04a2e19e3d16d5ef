"""One small registry of things by name (detectors, backbones, ...).

Why one: each registry needs the same four things — register (decorator or
call), look up with a helpful usage error, list, unregister (tests add entries
and must remove them) — and the same laziness: built-in entries are declared by
the module that registers them, so listing names or importing the package does
not import that module (and torch with it) until an entry is actually used.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Generic, Iterable, TypeVar

from highlighter.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> object, with lazy entries ``name -> module`` that register on import.

    ``modules`` are imported the first time a full listing (or a lookup of an unknown
    name) needs everything: the style for packages whose modules each register an
    entry that has no name until imported.
    """

    def __init__(self, kind: str, modules: Iterable[str] = ()) -> None:
        self.kind = kind  # "method", "backbone": used in error messages
        self._items: dict[str, T] = {}
        self._lazy: dict[str, str] = {}
        self._modules = tuple(modules)
        self._modules_loaded = False

    # --- adding and removing ------------------------------------------------------------
    def register(self, name: str, obj: T | None = None):
        """``register(name, obj)``, or ``@register(name)`` as a decorator; returns ``obj``."""
        if obj is None:
            return lambda o: self.register(name, o)
        old = self._items.get(name)
        if old is not None and old is not obj:
            raise ValueError(f"{self.kind} '{name}' is already registered ({old!r}); unregister it first")
        self._items[name] = obj
        self._lazy.pop(name, None)
        return obj

    def register_lazy(self, name: str, module: str) -> None:
        """Declare that importing ``module`` registers ``name`` (nothing is imported now)."""
        if name not in self._items:
            self._lazy[name] = module

    def unregister(self, name: str) -> T | None:
        """Remove ``name`` (registered or lazy); returns what was registered, if anything."""
        self._lazy.pop(name, None)
        return self._items.pop(name, None)

    # --- looking up -------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Every name, sorted; lazy entries are listed without importing their modules."""
        self._load_modules()
        return sorted({*self._items, *self._lazy})

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._lazy

    def get(self, name: str) -> T:
        """The entry, importing its module if lazy; unknown names are one-line usage errors."""
        if name not in self._items and name in self._lazy:
            module = self._lazy[name]
            importlib.import_module(module)
            if name not in self._items:
                raise RuntimeError(f"module {module} did not register {self.kind} '{name}'")
        if name not in self._items:
            self._load_modules()
        if name not in self._items:
            if name in self._lazy:
                return self.get(name)
            raise UsageError(self.unknown_message(name))
        return self._items[name]

    def items(self) -> list[tuple[str, T]]:
        """Every (name, entry), sorted by name; imports every lazy module."""
        return [(n, self.get(n)) for n in self.names()]

    def unknown_message(self, name: str) -> str:
        known = self.names()
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown {self.kind} '{name}'{hint}; available: {', '.join(known) or '(none)'}"

    def _load_modules(self) -> None:
        if self._modules_loaded:
            return
        self._modules_loaded = True  # set first: a module may list the registry while it registers
        try:
            for module in self._modules:
                importlib.import_module(module)
        except BaseException:
            self._modules_loaded = False
            raise


def lazy_registry(kind: str, entries: dict[str, str]) -> Registry:
    """A registry whose built-in entries are ``{name: module}``, imported on first use."""
    reg: Registry = Registry(kind)
    for name, module in entries.items():
        reg.register_lazy(name, module)
    return reg

