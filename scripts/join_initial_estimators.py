"""Give a model bundle an ensemble of initial estimators: its own, and those of other bundles trained by the
same recipe from other seeds (``models.bundle.join_initial_estimators``); every other network stays the
first bundle's. The shipped weights with a second initial estimator were measured this way (README, "Training
and the shipped weights"; worse on three of four data sets, so not shipped):

    socialmirror train initial --data npz:/tmp/sm_train14 --steps 1039 --seed 2 --out /tmp/member2.pt \\
        --set model.world_landmarks=false --set model.geometry_linear=false
    .venv/bin/python scripts/join_initial_estimators.py socialmirror/assets/weights/socialmirror_anny.pt \\
        /tmp/member2.pt -o joined.pt
"""
from __future__ import annotations

import argparse

from socialmirror.models.bundle import join_initial_estimators, load_bundle, save_bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", help="the bundle whose networks are kept")
    parser.add_argument("others", nargs="+", help="bundles whose initial estimators join the first's")
    parser.add_argument("-o", "--out", required=True, help="the joined bundle to write")
    args = parser.parse_args()
    joined = join_initial_estimators(load_bundle(args.bundle), [load_bundle(path) for path in args.others])
    save_bundle(joined, args.out)
    print(f"{args.out}: {joined.config.initial.members} initial estimators")


if __name__ == "__main__":
    main()
