"""``socialmirror train STAGE --data SPEC --steps N --out PATH``: the argument set and its runner.

The project CLI adds these arguments to its ``train`` sub-command (``add_train_arguments``) and calls
``run_train(args)``. Data-parallel runs go through torchrun, e.g.
``torchrun --nproc_per_node=2 -m socialmirror train infiller --data synth:200 --steps 2000 --out w.pt``.
"""
from __future__ import annotations

import argparse

from socialmirror.models.bundle import default_bundle_path
from socialmirror.training.stages import STAGES


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
    parser.add_argument("--out", default=str(default_bundle_path()),
                        help="model bundle to write (and to continue from when it exists); "
                             "checkpoints go to OUT.train/")
    parser.add_argument("--resume", action="store_true", help="continue from OUT.train/STAGE.pt")
    parser.add_argument("--batch-size", type=int, help="per-process batch size (default: the stage's own)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch threads per process (default 1)")
    parser.add_argument("--config", help="YAML file overriding the model/train configuration")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. model.geometry.embedding=linear or train.lr=2e-4 "
                             "(repeatable)")


def run_train(args: argparse.Namespace) -> int:
    from socialmirror.training.trainer import train_main
    if args.steps is None and args.minutes is None:
        raise SystemExit("socialmirror train: give --steps N or --minutes M")
    return train_main(args.stage, args.data, args.steps, args.out, resume=args.resume, batch_size=args.batch_size,
                      seed=args.seed, overrides=args.overrides, config_path=args.config, threads=args.threads,
                      minutes=args.minutes)
