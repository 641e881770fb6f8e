"""The recipe of the shipped weights: every stage, in order, on one time (or step) budget.

    socialmirror train all --data synth:2000,cmu:../shared/data/cmu_18_19 --minutes 30 \
        --out socialmirror/assets/weights/socialmirror_anny.pt

Stages run in dependency order (the initial estimator feeds the Geometry Optimizer's input, the infiller's
initial distribution and sigma; the ControlNet copies the trained base; the refiner learns on the infiller's
samples). Each gets a fixed share of the budget; with ``--minutes`` a stage's step count is what fits in its
share at the step time measured on three probe steps, so the same command scales to the machine it runs on.
The trainer runs the recipe (``socialmirror.training.trainer.train_recipe``): without ``--resume`` it starts
from new networks, whatever OUT holds; with it, stages the bundle records as finished are skipped and the
interrupted one continues from its checkpoint. The time to build the training targets (IK fits of sequences
that do not carry body parameters, cached on disk) comes on top of the budget.

This module is the plan only (which stages, in which order, with which share): it imports nothing of the
trainer, so the trainer can read it.
"""
from __future__ import annotations


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
