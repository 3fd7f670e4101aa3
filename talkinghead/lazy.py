"""Lazy public names for a package: importing it costs nothing until a name is first used (fast start)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_getattr(package: str, api: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `api[name]` (a module path) on first use and caches the name in
    `namespace` (the package's globals())."""

    def __getattr__(name: str) -> Any:
        if name in api:
            value = getattr(import_module(api[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
