import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import pytest

from socialmirror.config import ConfigError, differences, load, update


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


# ---------------------------------------------------------------------------------------------- presets
@dataclass(frozen=True)
class Sampler:
    name: str = "fast"
    steps: int = 5
    weight: float = 1.0

    @classmethod
    def preset(cls, name):
        presets = {"fast": cls("fast", 5, 1.0), "slow": cls("slow", 50, 0.5)}
        if name not in presets:
            raise ValueError(f"unknown preset {name!r}")
        return presets[name]


@dataclass
class Run:
    sampler: Sampler = field(default_factory=Sampler)
    mode: Literal["a", "b"] = "a"
    box: tuple[float, float] | None = None


def test_preset_field_takes_a_name_and_adjustments_from_any_layer(tmp_path):
    assert load(Run, None, ["sampler=slow"]).sampler == Sampler.preset("slow")
    path = tmp_path / "run.yaml"
    path.write_text("sampler:\n  steps: 7\n")
    # The flag names the preset; the file's and --set's adjustments land on it, whatever the order of layers.
    cfg = load(Run, path, ["sampler.weight=0.25"], {"sampler": {"name": "slow"}})
    assert cfg.sampler == Sampler("slow", 7, 0.25)
    path.write_text("sampler: slow\n")
    assert load(Run, path, ["sampler.steps=9"]).sampler == Sampler("slow", 9, 0.5)
    with pytest.raises(ConfigError, match="sampler.name: unknown preset 'medium'"):
        load(Run, None, ["sampler=medium"])


def test_differences_round_trip():
    base = Run()
    cfg = load(Run, None, ["sampler.steps=9", "mode=b"])
    assert differences(cfg, base) == {"sampler": {"steps": 9}, "mode": "b"}
    assert update(base, differences(cfg, base)) == cfg and differences(base, base) == {}


def test_values_are_checked_against_their_type():
    with pytest.raises(ConfigError, match="mode: 'c' is not one of 'a', 'b'"):
        load(Run, None, ["mode=c"])
    with pytest.raises(ConfigError, match="expected 2 values"):
        load(Run, None, ["box=[1, 2, 3]"])
    assert load(Run, None, ["box=[1, 2]"]).box == (1.0, 2.0)
    with pytest.raises(ConfigError, match="sampler: expected a mapping"):
        load(Run, None, ["sampler=3"])
    with pytest.raises(ConfigError, match="mode: expected a single value"):
        load(Run, None, ["mode.x=1"])


# ---------------------------------------------------------------------------------------------- shipped
def _example(name):
    from socialmirror.paths import ASSETS_DIR
    return ASSETS_DIR.parent / "configs" / name


def test_every_shipped_example_config_loads():
    from socialmirror.api import ReconstructConfig
    from socialmirror.evaluation.evaluate import EvaluateConfig
    from socialmirror.training.trainer import TrainRunConfig
    kinds = {"reconstruct.yaml": ReconstructConfig, "evaluate.yaml": EvaluateConfig, "train.yaml": TrainRunConfig}
    shipped = sorted(p.name for p in _example("").glob("*.yaml"))
    assert shipped == sorted(kinds)
    for name, cls in kinds.items():
        assert isinstance(load(cls, _example(name)), cls)
    # reconstruct.yaml spells out the defaults (a template to copy); evaluate.yaml is the README's comparison.
    assert load(ReconstructConfig, _example("reconstruct.yaml")) == ReconstructConfig()
    assert load(TrainRunConfig, _example("train.yaml")) == TrainRunConfig()
    evaluation = load(EvaluateConfig, _example("evaluate.yaml"))
    assert len(evaluation.methods) == 8 and evaluation.pen_stride == 15


def test_reconstruct_config_method_is_a_preset_with_adjustments():
    from socialmirror.api import ReconstructConfig
    from socialmirror.inference.methods import method_config
    assert ReconstructConfig(method="closeint").method == method_config("closeint")
    cfg = load(ReconstructConfig, None, ["method.sampling_steps=10", "method.guidance.geometry=0.3"],
               {"method": {"name": "no-text"}})
    assert (cfg.method.name, cfg.method.sampling_steps, cfg.method.guidance.geometry) == ("no-text", 10, 0.3)
    assert cfg.method.sampler_config().num_steps == 10
    with pytest.raises(ConfigError, match="method: stride must be at least 1"):
        load(ReconstructConfig, None, ["method.stride=0"])
    with pytest.raises(ConfigError, match="annotator"):
        load(ReconstructConfig, None, ["annotator=vlm"])


def test_evaluate_config_adjusts_every_method():
    from socialmirror.evaluation.evaluate import EvaluateConfig
    from socialmirror.inference.methods import method_config
    cfg = load(EvaluateConfig, None, ["method.sampling_steps=3", "methods=[closeint, no-text]"])
    assert cfg.method_config("closeint") == dataclasses.replace(method_config("closeint"), sampling_steps=3)
    assert cfg.method_config("no-text").text is False and cfg.method_config("no-text").sampling_steps == 3
    assert EvaluateConfig().method_config("socialmirror") == method_config("socialmirror")
    with pytest.raises(ConfigError, match="methods: unknown method 'best'"):
        load(EvaluateConfig, None, ["methods=[best]"])
    with pytest.raises(ConfigError, match="method.name"):
        load(EvaluateConfig, None, ["method=closeint"])
