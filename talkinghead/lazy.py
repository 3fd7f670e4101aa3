"""Lazy imports for a fast start: a package's public names, and a dependency's unused imports."""

from __future__ import annotations

import sys
import types
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


class _Deferred(types.ModuleType):
    """Stands in sys.modules for a module nobody has used yet; the first real use imports it."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name not in ("__path__", "__file__", "__version__", "__all__"):
            raise AttributeError(name)
        real = self.__dict__.get("_module")
        if real is None:
            for stub in [n for n, m in sys.modules.items() if isinstance(m, _Deferred)]:
                del sys.modules[stub]  # all at once: a package and its submodule are imported together
            real = self.__dict__["_module"] = import_module(self.__name__)
        return getattr(real, name)


def defer_imports(names: tuple[str, ...]) -> None:
    """Let a library import `names` for nothing until they are used: each one not yet imported is
    replaced in sys.modules by a stand-in that imports the real module at its first attribute access.
    For a dependency's import-time imports we never use (mediapipe imports matplotlib.pyplot for its
    drawing helpers: ~1 s of start-up); any later real use still works, it just pays then. A process-wide
    change, so only front ends call it (cli.py), never the library on import."""
    for name in names:
        if name not in sys.modules:
            sys.modules[name] = _Deferred(name)
    for name in names:  # `import a.b as c` reads b from a first
        parent, _, child = name.rpartition(".")
        if parent and isinstance(sys.modules.get(parent), _Deferred) and isinstance(sys.modules.get(name), _Deferred):
            object.__setattr__(sys.modules[parent], child, sys.modules[name])


# what mediapipe imports for drawing and microphone helpers we never call (~1 s of a short job's start)
MEDIAPIPE_UNUSED = ("matplotlib", "matplotlib.pyplot", "sounddevice")
