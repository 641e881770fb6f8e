"""The recipe of the shipped weights: every stage, in order, on one time (or step) budget.

    socialmirror train all --data synth:2000,cmu:../shared/data/cmu_18_19 --minutes 30 \
        --out socialmirror/assets/weights/socialmirror_anny.pt

Stages run in dependency order (the initial estimator feeds the Geometry Optimizer's input, the infiller's
initial distribution and sigma; the ControlNet copies the trained base; the refiner learns on the infiller's
samples). Each gets a fixed share of the budget; with ``--minutes`` a stage's step count is what fits in its
share at the step time measured on three probe steps, so the same command scales to the machine it runs on.
Without ``--resume`` the recipe starts from new networks, whatever OUT holds; with it, stages the bundle
records as finished are skipped and the interrupted one continues from its checkpoint. The time to build the training targets (IK fits of sequences that do not carry body
parameters, cached on disk) comes on top of the budget.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from socialmirror.body.base import BodyModel
from socialmirror.models.bundle import ModelBundle

# Share of the budget per stage, in training order. The infiller (the method's core) gets the most; the
# initial estimator is next because every later stage starts from its output. ``geometry_linear`` (Table 2's
# Linear-embedding ablation) gets 0.06; the others are their earlier shares (0.22, 0.14, 0.28, 0.10, 0.14,
# 0.12) times 0.94.
STAGE_SHARES: dict[str, float] = {
    "initial": 0.2068,
    "geometry": 0.1316,
    "geometry_linear": 0.06,
    "infiller": 0.2632,
    "independent": 0.094,
    "text": 0.1316,
    "refiner": 0.1128,
}
MIN_STAGE_STEPS = 10


def stage_budgets(minutes: float | None = None, steps: int | None = None,
                  stages: tuple[str, ...] = tuple(STAGE_SHARES)) -> dict[str, tuple[int | None, float | None]]:
    """Per stage (steps, seconds): exactly one of the two is set, from the total ``steps`` or ``minutes``."""
    if (minutes is None) == (steps is None):
        raise ValueError("give the recipe either --minutes or --steps")
    total_share = sum(STAGE_SHARES[s] for s in stages)
    out = {}
    for s in stages:
        share = STAGE_SHARES[s] / total_share
        if steps is not None:
            out[s] = (max(MIN_STAGE_STEPS, round(steps * share)), None)
        else:
            out[s] = (None, minutes * 60.0 * share)
    return out


def run_recipe(data, bundle: ModelBundle, body: BodyModel, run, out: Path, runtime, minutes: float | None = None,
               steps: int | None = None, resume: bool = False, seed: int = 0,
               report: Callable[[str], None] = print) -> None:
    from socialmirror.training.trainer import train_stage
    optional = {"independent": bundle.independent is not None,
                "geometry_linear": run.model.geometry_linear or bundle.geometry_linear is not None}
    stages = tuple(s for s in STAGE_SHARES if optional.get(s, True))
    for stage, (stage_steps, seconds) in stage_budgets(minutes, steps, stages).items():
        if resume and stage in bundle.metadata.get("stages", {}):
            report(f"{stage}: already trained; skipped")
            continue
        train_stage(stage, data, bundle, body, run, stage_steps, out, runtime, resume=resume, seed=seed,
                    seconds=seconds, report=report)
