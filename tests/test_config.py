from dataclasses import dataclass, field

import pytest

from socialmirror.config import ConfigError, load


@dataclass
class Inner:
    lr: float = 1e-4
    layers: tuple[int, ...] = (1, 2)


@dataclass
class Outer:
    name: str = "x"
    steps: int = 10
    inner: Inner = field(default_factory=Inner)
    device: str | None = None


def test_defaults_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 20\ninner:\n  lr: 0.001\n")
    cfg = load(Outer, path, ["inner.layers=[3, 4]", "name=run1", "inner.lr=2e-3"])
    assert cfg.steps == 20 and cfg.name == "run1"
    assert cfg.inner.lr == 2e-3 and cfg.inner.layers == (3, 4)
    assert Outer().inner.lr == 1e-4  # defaults untouched


def test_errors_are_loud():
    with pytest.raises(ConfigError, match="unknown config key 'inner.lrr'"):
        load(Outer, None, ["inner.lrr=1"])
    with pytest.raises(ConfigError):
        load(Outer, None, ["steps=many"])
    with pytest.raises(ConfigError):
        load(Outer, None, ["steps"])
