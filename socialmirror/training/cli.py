"""``socialmirror train STAGE --data SPEC --steps N --out PATH``: the argument set and its runner.

The project CLI adds these arguments to its ``train`` sub-command (``add_train_arguments``) and calls
``run_train(args)``. Data-parallel runs go through torchrun, e.g.
``torchrun --nproc_per_node=2 -m socialmirror train infiller --data synth:200 --steps 2000 --out w.pt``.
This module imports nothing heavy: the whole command line is built without torch.

``--out`` is required: training writes (and continues) the bundle there, and a default would sooner or later
overwrite the shipped weights in the package.
"""
from __future__ import annotations

import argparse

from socialmirror.config import add_config_options
from socialmirror.training import STAGES


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", choices=[*STAGES, "all"],
                        help="the stage to train, or 'all' for the recipe of the shipped weights "
                             "(initial, geometry, geometry_linear, infiller, independent, text, refiner); "
                             "a single stage continues the bundle at OUT (geometry_linear adds its slot to a "
                             "bundle that lacks it)")
    parser.add_argument("--data", required=True,
                        help="training data spec, e.g. synth:2000,cmu:../shared/data/cmu_18_19@2")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="optimisation steps (for 'all': the total over the stages)")
    budget.add_argument("--minutes", type=float,
                        help="time budget instead of steps; steps are set from the measured step time")
    budget.add_argument("--steps-like", metavar="BUNDLE",
                        help="each stage's steps as the trained BUNDLE records them: a run that compares with "
                             "that one at equal steps, however busy the machine")
    parser.add_argument("--out", required=True,
                        help="model bundle to write (and to continue from when it exists); checkpoints go to "
                             "OUT.train/")
    parser.add_argument("--resume", action="store_true", help="continue from OUT.train/STAGE.pt")
    parser.add_argument("--batch-size", type=int, help="per-process batch size (default: the stage's own)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch threads per process (default: train.threads, 1)")
    add_config_options(parser)  # model.* (recorded in the bundle, e.g. model.text_encoder) and train.*


def run_train(args: argparse.Namespace) -> int:
    from socialmirror.errors import InputError
    from socialmirror.training.trainer import train_main
    if args.steps is None and args.minutes is None and args.steps_like is None:
        raise InputError("give --steps N, --minutes M or --steps-like BUNDLE")
    return train_main(args.stage, args.data, args.steps, args.out, resume=args.resume, batch_size=args.batch_size,
                      seed=args.seed, overrides=args.overrides, config_path=args.config, threads=args.threads,
                      minutes=args.minutes, steps_like=args.steps_like)
