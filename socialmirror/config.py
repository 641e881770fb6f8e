"""Typed dataclass configs, overridable from YAML files, ``key=value`` strings and command-line flags.

Every configurable part of the project takes a dataclass, and every sub-command resolves its config the same
way (``load``): the dataclass's defaults, then an optional YAML file (``--config FILE.yaml``), then
``--set a.b=value`` overrides, then the sub-command's own flags. Values are parsed with YAML's scalar rules
(``1e-4`` -> float, ``true`` -> bool, ``[1, 2]`` -> list) and checked against the field's type, so a typo
fails loudly (``ConfigError``, one line naming the key) instead of being ignored.

Preset families. A dataclass with a ``preset(name)`` classmethod (e.g. ``MethodConfig``) is a family of named
presets: a field of that type takes a preset name (``method: closeint``) or a mapping whose ``name`` picks the
preset and whose other keys adjust it (``method: {name: closeint, sampling_steps: 10}``). The layers are merged
into one mapping before it is applied, so a preset named in any layer (a flag ``--method closeint``) is applied
first and the adjustments from every layer (``--set method.sampling_steps=10``) land on it.
"""
from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from socialmirror.errors import UserError

C = TypeVar("C")


class ConfigError(UserError, ValueError):
    """An override names an unknown field or gives a value of the wrong type (one-line message)."""


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def _coerce(value: Any, typ: Any, key: str):
    origin = typing.get_origin(typ)
    if typ is Any or typ is None:
        return value
    if origin in (typing.Union, types.UnionType):  # Optional[X] and X | None alike
        args = typing.get_args(typ)
        if value is None and type(None) in args:
            return None
        candidates = [a for a in args if a is not type(None)]
        errors = []
        for a in candidates:
            try:
                return _coerce(value, a, key)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:  # an optional value: the one type's own message says more
            raise errors[0]
        raise ConfigError(f"{key}: {value!r} does not fit {typ}")
    if isinstance(value, dict):
        raise ConfigError(f"{key}: expected a single value, got a mapping")
    if origin is typing.Literal:
        choices = typing.get_args(typ)
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, choices))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            value = [value]
        args = typing.get_args(typ)
        if origin is tuple and args and Ellipsis not in args:  # a fixed-length tuple, e.g. (fx, fy, cx, cy)
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, key) for v, a in zip(value, args))
        inner = args[0] if args else Any
        out = [_coerce(v, inner, key) for v in value]
        return tuple(out) if origin is tuple else out
    if typ is float and not isinstance(value, bool):
        try:  # YAML 1.1 reads "1e-4" (no dot) as a string
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if typ is str and not isinstance(value, str):
        if isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a single value, got a list")
        return str(value)
    if isinstance(typ, type) and not isinstance(value, typ):
        raise ConfigError(f"{key}: expected {typ.__name__}, got {value!r}")
    return value


def _preset(cls: type, name: Any, key: str):
    try:
        return cls.preset(str(name))
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}".splitlines()[0]) from None


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
        family = type(current) if dataclasses.is_dataclass(current) and hasattr(type(current), "preset") else None
        if family is not None and isinstance(value, str):
            changes[key] = _preset(family, value, f"{full}.name")
        elif dataclasses.is_dataclass(current) and isinstance(value, dict):
            if family is not None and "name" in value:
                value = dict(value)
                current = _preset(family, value.pop("name"), f"{full}.name")
            changes[key] = update(current, value, prefix=f"{full}.")
        elif dataclasses.is_dataclass(current):
            raise ConfigError(f"{full}: expected a mapping of its fields, got {value!r}")
        else:
            changes[key] = _coerce(value, hints.get(key, Any), full)
    try:
        return dataclasses.replace(cfg, **changes)
    except ConfigError:
        raise
    except ValueError as exc:  # a dataclass's own check (__post_init__) of the combination of values
        where = prefix.rstrip(".") or type(cfg).__name__
        raise ConfigError(f"{where}: {exc}".splitlines()[0]) from None


def differences(cfg, base, prefix: str = "") -> dict:
    """The nested mapping of the fields where ``cfg`` differs from ``base`` (same dataclass type), such that
    ``update(base, differences(cfg, base)) == cfg``."""
    out: dict = {}
    for f in dataclasses.fields(cfg):
        a, b = getattr(cfg, f.name), getattr(base, f.name)
        if dataclasses.is_dataclass(a) and type(a) is type(b):
            inner = differences(a, b)
            if inner:
                out[f.name] = inner
        elif a != b:
            out[f.name] = to_dict(a) if dataclasses.is_dataclass(a) else a
    return out


def parse_overrides(pairs: list[str]) -> dict:
    """``["a.b=1", "c=x"]`` -> ``{"a": {"b": 1}, "c": "x"}``."""
    import yaml
    out: dict = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {pair!r} is not key=value")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            raise ConfigError(f"override {pair!r}: the value is not valid YAML") from None
        merge_into(out, _nested(key.split("."), value))
    return out


def _nested(parts: list[str], value: Any) -> dict:
    for p in reversed(parts[1:]):
        value = {p: value}
    return {parts[0]: value}


def merge_into(base: dict, extra: dict) -> dict:
    """Deep-merge ``extra`` into ``base`` (``extra`` wins); a preset name merged with a mapping keeps both
    (``"closeint"`` + ``{"sampling_steps": 10}`` -> ``{"name": "closeint", "sampling_steps": 10}``)."""
    for key, value in extra.items():
        old = base.get(key)
        if isinstance(old, str) and isinstance(value, dict):
            old = base[key] = {"name": old}
        if isinstance(old, dict) and isinstance(value, str) and old:
            value = {"name": value}
        if isinstance(old, dict) and isinstance(value, dict):
            merge_into(old, value)
        else:
            base[key] = value
    return base


def read_yaml(path: str | Path) -> dict:
    """A YAML config file as a mapping (ConfigError, one line, when it is unreadable or not a mapping)."""
    import yaml
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}".splitlines()[0]) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping")
    return data


def load(cls_or_cfg, yaml_path: str | Path | None = None, overrides: list[str] | None = None,
         flags: dict | None = None):
    """Defaults of the dataclass, then the YAML file, then ``key=value`` overrides, then ``flags`` (a nested
    mapping of the command-line flags the user gave), merged into one mapping and applied once."""
    cfg = cls_or_cfg() if isinstance(cls_or_cfg, type) else cls_or_cfg
    values: dict = {}
    if yaml_path:
        merge_into(values, read_yaml(yaml_path))
    if overrides:
        merge_into(values, parse_overrides(list(overrides)))
    if flags:
        merge_into(values, flags)
    return update(cfg, values) if values else cfg


def add_config_options(parser) -> None:
    """``--config FILE.yaml`` and repeatable ``--set KEY=VALUE`` on an argparse (sub-)parser; every sub-command
    with a config takes them (then ``load(Config, args.config, args.overrides, flags)``)."""
    parser.add_argument("--config", metavar="FILE.yaml",
                        help="YAML file overriding the defaults (examples: socialmirror/configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config value, e.g. method.sampling_steps=10 (repeatable; after "
                             "--config, before the other flags)")


# ------------------------------------------------------------------------------ settings every command shares
MAX_SEED = 2 ** 63 - 1  # numpy's and torch's generators take seeds up to this


def check_seed(seed: int, key: str = "seed") -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{key}: an integer from 0 to {MAX_SEED}, got {seed!r}")


def check_statures(statures, key: str = "statures") -> None:
    """Stated standing heights (`reconstruct` / `live --statures`): each in metres, or 0 for not known."""
    for h in statures or ():
        if h != 0 and not 0.5 <= h <= 2.5:
            raise ConfigError(f"{key}: a standing height in metres (0.5-2.5) or 0 for not known, got {h:g}")


def available_cores() -> int:
    """CPU cores this process may run on: its CPU affinity where the system has one (a container's or
    ``taskset``'s limit, which ``os.cpu_count`` does not see), else every core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity on this system (macOS, Windows)
        return max(1, os.cpu_count() or 1)


def check_threads(threads: int | None, key: str = "threads") -> None:
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"{key}: a positive number of CPU threads, got {threads!r}")


def check_device(device: str, key: str = "device") -> None:
    """The torch device must exist on this machine (checked before any work, not when the weights load)."""
    import torch
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        raise ConfigError(f"{key}: not a torch device: {device!r} (cpu, cuda, cuda:N, mps)") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key}: {device!r}, but this torch build sees no CUDA device; use --device cpu")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{key}: {device!r}, but MPS is not available here; use --device cpu")
    if kind not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"{key}: {device!r} is not supported (cpu, cuda, mps)")
