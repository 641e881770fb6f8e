"""``socialmirror cross-dataset`` (the paper's Table 4): no row scores data its bundle was trained on, the
table is what ``evaluate`` measured, and a second run trains and evaluates nothing again."""
from __future__ import annotations

import json

import pytest
import torch

from socialmirror.data.formats.interchange import write_npz
from socialmirror.evaluation.cross_dataset import CrossDatasetPlan, PlanError, TrainingSettings, run_cross_dataset
from socialmirror.evaluation.evaluate import EvaluateConfig

TINY = tuple(f"model.{part}.{key}={value}" for part in ("initial", "geometry", "infiller", "refiner")
             for key, value in (("dim", 32), ("depth", 1))) + ("train.stats_clips=16",)


def test_plan_targets_every_data_set_outside_the_source():
    plan = CrossDatasetPlan.parse(["synth=npz:/s", "cmu=cmu:/c", "bp=butepage:/b@0.5"], ["synth", "synth+bp"])
    assert plan.sources == (("synth",), ("synth", "bp"))
    assert plan.targets(("synth",)) == ["cmu", "bp"]
    assert plan.targets(("synth", "bp")) == ["cmu"]
    assert plan.training_spec(("synth", "bp")) == "npz:/s,butepage:/b@0.5"
    assert plan.evaluation_spec("bp") == "butepage:/b"  # the weight only weighs training
    assert plan.source_name(("synth", "bp")) == "synth+bp"


@pytest.mark.parametrize("datasets, sources, fault", [
    (["a=npz:/a", "b=npz:/b"], ["c"], "unknown data set 'c'"),
    (["a=npz:/a", "b=npz:/b"], ["a+b"], "nothing is left"),
    (["a=npz:/a", "a=npz:/b"], ["a"], "unique"),
    (["a"], ["a"], "NAME=SPEC"),
    (["a=npz:/a", "b=npz:/b"], ["a+a"], "named twice"),
    (["a=npz:/a", "b=npz:/b"], [], "at least one"),
])
def test_plan_errors_name_the_argument(datasets, sources, fault):
    with pytest.raises(PlanError, match=fault):
        CrossDatasetPlan.parse(datasets, sources)


def test_a_malformed_training_weight_fails_before_training():
    from socialmirror.errors import UserError
    with pytest.raises(UserError, match="weight 'x' is not a number"):
        CrossDatasetPlan.parse(["a=npz:/a@x", "b=npz:/b"], ["a"])


@pytest.fixture(scope="module")
def two_data_sets(tmp_path_factory):
    from socialmirror.data.synth import synthesize_dataset
    specs = []
    for name, seed in (("a", 1), ("b", 2)):
        folder = tmp_path_factory.mktemp(name)
        for k, seq in enumerate(synthesize_dataset(1, seed=seed)):
            write_npz(seq, folder / f"{k}.npz")
        specs.append(f"{name}=npz:{folder}")
    return specs


@pytest.mark.slow
def test_trains_once_evaluates_the_others_and_resumes(two_data_sets, tmp_path):
    torch.set_num_threads(1)
    plan = CrossDatasetPlan.parse(two_data_sets, ["a"])
    training = TrainingSettings(steps=70, threads=1, overrides=TINY)
    config = EvaluateConfig(max_frames=16, pen_stride=8, progress=False)
    said: list[str] = []
    table = run_cross_dataset(plan, tmp_path, training, config, report=said.append)

    assert list(table["results"]) == ["b"]  # the bundle of "a" is never scored on "a"
    rows = table["results"]["b"]["a"]
    assert set(rows) == {"closeint", "socialmirror"}
    evaluation = json.loads((tmp_path / "evaluations" / "a--on--b--simulate.json").read_text())
    assert evaluation["doc"]["protocol"]["checkpoint"].endswith("a.pt")
    (measured,) = evaluation["doc"]["results"].values()
    assert rows["socialmirror"]["R-MPJPE"] == measured["socialmirror"]["R-MPJPE"] > 0
    markdown = (tmp_path / "table4-simulate.md").read_text()
    assert "| socialmirror | a |" in markdown and "| closeint | a |" in markdown

    again: list[str] = []
    assert run_cross_dataset(plan, tmp_path, training, config, report=again.append) == table
    assert any("trained already" in line for line in again)
    assert any("read back" in line for line in again)
    assert not any(line.startswith("evaluating") for line in again)

    other: list[str] = []  # another evaluation setting is measured, not read back
    run_cross_dataset(plan, tmp_path, training, EvaluateConfig(max_frames=20, pen_stride=8, progress=False),
                      report=other.append)
    assert any(line.startswith("evaluating") for line in other)
