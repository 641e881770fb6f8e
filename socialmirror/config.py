"""Typed dataclass configs, overridable from YAML files and ``key=value`` strings (BUDDI-style).

Every configurable part of the project takes a dataclass; defaults live in the dataclass, a YAML file
can override any subset, and command lines add ``a.b=value`` overrides on top. Values are parsed with
YAML's scalar rules (``1e-4`` -> float, ``true`` -> bool, ``[1, 2]`` -> list) and checked against the
field's type, so a typo fails loudly instead of being ignored.
"""
from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

C = TypeVar("C")


class ConfigError(ValueError):
    """An override names an unknown field or gives a value of the wrong type (one-line message)."""


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def _coerce(value: Any, typ: Any, key: str):
    origin = typing.get_origin(typ)
    if typ is Any or typ is None:
        return value
    if origin is typing.Union or str(origin) == "types.UnionType":
        args = typing.get_args(typ)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} does not fit {typ}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            value = [value]
        args = typing.get_args(typ)
        inner = args[0] if args else Any
        out = [_coerce(v, inner, key) for v in value]
        return tuple(out) if origin is tuple else out
    if typ is float and not isinstance(value, bool):
        try:  # YAML 1.1 reads "1e-4" (no dot) as a string
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if typ is str and not isinstance(value, str):
        return str(value)
    if isinstance(typ, type) and not isinstance(value, typ):
        raise ConfigError(f"{key}: expected {typ.__name__}, got {value!r}")
    return value


def update(cfg: C, values: dict, prefix: str = "") -> C:
    """A copy of ``cfg`` with nested ``values`` applied (unknown keys raise ConfigError)."""
    hints = typing.get_type_hints(type(cfg))
    changes = {}
    names = {f.name for f in dataclasses.fields(cfg)}
    for key, value in values.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key {full!r} (known: {', '.join(sorted(names))})")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            changes[key] = update(current, value, prefix=f"{full}.")
        else:
            changes[key] = _coerce(value, hints.get(key, Any), full)
    return dataclasses.replace(cfg, **changes)


def parse_overrides(pairs: list[str]) -> dict:
    """``["a.b=1", "c=x"]`` -> ``{"a": {"b": 1}, "c": "x"}``."""
    out: dict = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {pair!r} is not key=value")
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(raw) if raw != "" else ""
    return out


def load(cls_or_cfg, yaml_path: str | Path | None = None, overrides: list[str] | None = None):
    """Defaults of the dataclass, then the YAML file, then ``key=value`` overrides."""
    cfg = cls_or_cfg() if isinstance(cls_or_cfg, type) else cls_or_cfg
    if yaml_path:
        try:
            data = yaml.safe_load(Path(yaml_path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {yaml_path}: {exc}".splitlines()[0]) from exc
        if not isinstance(data, dict):
            raise ConfigError(f"config {yaml_path} must be a mapping")
        cfg = update(cfg, data)
    if overrides:
        cfg = update(cfg, parse_overrides(overrides))
    return cfg
