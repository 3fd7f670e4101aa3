"""Training config files (TOML): the keys are the fields of an options dataclass.

A run is fully described by its options, so a file plus `--seed` etc. on the command line reproduces it;
the merged options are stored as TOML in the weights' metadata, ready to be reused as a config file.
Top-level keys are the options' fields; the nested model sizes (the `config` field) form a `[config]` table.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file that cannot be read or holds unknown or mistyped keys."""


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check a TOML value against a dataclass field's type; ints are accepted for floats, lists for tuples."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table.")
        return build(hint, value, where)  # type: ignore[arg-type]
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be an array.")
        inner = typing.get_args(hint)[0]
        return tuple(_coerce(v, inner, where) for v in value)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if value is None else _coerce(value, args[0], where)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {value!r}.")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, not {value!r}.")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, not {value!r}.")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, not {value!r}.")
        return value
    return value


def build(cls: type[T], values: dict[str, Any], where: str = "", base: T | None = None) -> T:
    """`cls(**values)` on top of `base` (default: the defaults), with unknown keys and wrong types refused."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(where + k for k in unknown)} "
            f"(known: {', '.join(names)})."
        )
    base = base if base is not None else cls()
    kwargs = {}
    for k, v in values.items():
        current = getattr(base, k)
        if dataclasses.is_dataclass(hints[k]) and isinstance(v, dict):
            kwargs[k] = build(hints[k], v, f"{where}{k}.", current)
        else:
            kwargs[k] = _coerce(v, hints[k], where + k)
    return dataclasses.replace(base, **kwargs)  # type: ignore[type-var]


def load_options(cls: type[T], path: Path | None, overrides: dict[str, Any]) -> T:
    """Defaults <- the TOML file (if any) <- command-line overrides (only the flags actually given)."""
    opts = cls()
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} cannot be read ({exc}).") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML ({exc}).") from None
        try:
            opts = build(cls, data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    nested = {k: v for k, v in overrides.items() if isinstance(v, dict)}
    flat = {k: v for k, v in overrides.items() if v is not None and not isinstance(v, dict)}
    for k, v in nested.items():
        flat[k] = build(
            typing.get_type_hints(cls)[k], {a: b for a, b in v.items() if b is not None}, f"{k}.", getattr(opts, k)
        )
    return dataclasses.replace(opts, **flat) if flat else opts  # type: ignore[type-var]


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def to_toml(opts: Any) -> str:
    """The options as a config file that `load_options` reads back to equal options."""
    top, tables = [], []
    for f in dataclasses.fields(opts):
        v = getattr(opts, f.name)
        if dataclasses.is_dataclass(v):
            tables.append(
                f"\n[{f.name}]\n"
                + "".join(f"{g.name} = {_toml_value(getattr(v, g.name))}\n" for g in dataclasses.fields(v))
            )
        elif v is not None:
            top.append(f"{f.name} = {_toml_value(v)}\n")
    return "".join(top) + "".join(tables)
