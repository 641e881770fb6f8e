"""Two ``socialmirror evaluate --observe render --json`` runs on the same videos, compared sequence by sequence
(each sequence's own scores, the records' ``metrics``; docs/metrics.md).

A mean over a dozen sequences moves by a tenth when one of them fails grossly (a child placed as an adult
metres away), so two runs' means say little about which is better. Paired by sequence, this prints per data
set and over all of them: how many sequences B scored lower (better) and higher than A, the median and the mean
of B - A, and the two-sided sign test's p-value (the chance of a split at least this uneven if neither run
were better).

    .venv/bin/python scripts/compare_runs.py A.json [A2.json ...] --against B.json [B2.json ...] \\
        [--metric R-MPJPE] [--method socialmirror] [--against-method METHOD]

``--against-method`` scores B by another method than A's, so that two methods of one run (an ablation's
variant against the full method, on the same videos and tracks) are paired the same way: pass the same files
as A and B.
"""
from __future__ import annotations

import argparse
import json
import math

import numpy as np


def sequence_scores(paths: list[str], method: str, metric: str) -> dict[tuple[str, str], float]:
    """{(data set, sequence): the method's score on it} over the runs' documents."""
    scores = {}
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        for dataset, records in doc.get("sequences", {}).items():
            for record in records:
                value = record.get("metrics", {}).get(method, {}).get(metric)
                if value is not None:
                    scores[(dataset, record["sequence"])] = float(value)
    return scores


def sign_test(better: int, worse: int) -> float:
    """Two-sided p-value of ``better`` against ``worse`` under a fair coin (ties left out)."""
    n = better + worse
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(better, worse) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def summary(a: np.ndarray, b: np.ndarray) -> str:
    diff = b - a
    better, worse = int((diff < 0).sum()), int((diff > 0).sum())
    return (f"{len(diff)} sequences; B better on {better}, worse on {worse} (sign test p = "
            f"{sign_test(better, worse):.2f}); B - A median {np.median(diff):+.1f}, mean {diff.mean():+.1f} "
            f"(A {a.mean():.1f}, B {b.mean():.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", nargs="+", help="run A: evaluate --json outputs (one per data set, or one for all)")
    parser.add_argument("--against", nargs="+", required=True, help="run B, the same data sets")
    parser.add_argument("--metric", default="R-MPJPE")
    parser.add_argument("--method", default="socialmirror")
    parser.add_argument("--against-method", help="B's method (default: --method)")
    args = parser.parse_args()
    a = sequence_scores(args.a, args.method, args.metric)
    b = sequence_scores(args.against, args.against_method or args.method, args.metric)
    both = sorted(set(a) & set(b))
    if not both:
        raise SystemExit("compare_runs: the two runs share no scored sequence (evaluated with per-sequence "
                         "metrics, on the same data?)")
    for dataset in sorted({d for d, _ in both}):
        keys = [k for k in both if k[0] == dataset]
        print(f"{dataset}: " + summary(np.array([a[k] for k in keys]), np.array([b[k] for k in keys])))
    print("all: " + summary(np.array([a[k] for k in both]), np.array([b[k] for k in both])))


if __name__ == "__main__":
    main()
