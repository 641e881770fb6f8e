"""Does each person's depth error follow their size error? Reads the JSON of one or more
``socialmirror evaluate --observe render`` runs (the per-sequence ``persons`` records, ``metrics.person_sizes``)
and prints, per method, the correlations the README quotes (issue 22, body size):

* log(depth_pred / depth_true) against log(stature_pred / stature_true): near 1 when the depth error is the
  size error (one view: a body's depth is its size over its size in pixels);
* stature_pred / stature_true against depth_true: negative when far people are estimated small;
* stature_pred against stature_true, and the mean absolute stature error;
* the pair's depth difference (farther minus nearer person, by the truth) predicted against true, over the
  pairs at least 0.3 m apart in depth: below 1 when the reconstruction squeezes the pair together in depth,
  and each of the two people's signed depth error (positive: placed too far).

    socialmirror evaluate --data npz:/tmp/sm_val --observe render --max-frames 60 --json /tmp/val.json
    .venv/bin/python scripts/placement_sizes.py /tmp/val.json
"""
from __future__ import annotations

import argparse
import json

import numpy as np


def person_rows(documents: list[dict]) -> dict[str, np.ndarray]:
    """{method: (N, 4) rows (depth_pred, depth_true, stature_pred, stature_true)} over every person of every
    sequence that has statures."""
    rows: dict[str, list] = {}
    for doc in documents:
        for records in doc.get("sequences", {}).values():
            for record in records:
                for method, p in record.get("persons", {}).items():
                    if "stature_true" in p:
                        rows.setdefault(method, []).extend(
                            zip(p["depth_pred"], p["depth_true"], p["stature_pred"], p["stature_true"]))
    return {m: np.asarray(r, dtype=np.float64) for m, r in rows.items()}


def pair_rows(documents: list[dict]) -> dict[str, np.ndarray]:
    """{method: (N, 4) rows (nearer person's depth pred, true, farther person's depth pred, true)} over every
    sequence with two people, nearer and farther by the truth."""
    rows: dict[str, list] = {}
    for doc in documents:
        for records in doc.get("sequences", {}).values():
            for record in records:
                for method, p in record.get("persons", {}).items():
                    pred, true = np.asarray(p["depth_pred"]), np.asarray(p["depth_true"])
                    if len(true) == 2:
                        near, far = np.argsort(true)
                        rows.setdefault(method, []).append((pred[near], true[near], pred[far], true[far]))
    return {m: np.asarray(r, dtype=np.float64) for m, r in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", nargs="+", help="evaluate --json outputs (render protocol)")
    args = parser.parse_args()
    documents = [json.load(open(path)) for path in args.json]
    for method, r in person_rows(documents).items():
        dp, dt, sp, st = r.T
        corr = (lambda a, b: float(np.corrcoef(a, b)[0, 1]))  # noqa: E731
        print(f"{method}: {len(r)} persons; log depth ratio vs log size ratio {corr(np.log(dp / dt), np.log(sp / st)):.2f}; "
              f"size ratio vs true depth {corr(sp / st, dt):.2f}; stature pred vs true {corr(sp, st):.2f}, "
              f"MAE {1000 * np.abs(sp - st).mean():.0f} mm (true {st.mean():.2f} +- {st.std():.2f} m, "
              f"predicted {sp.mean():.2f} +- {sp.std():.2f} m)")
    for method, r in pair_rows(documents).items():
        near_pred, near_true, far_pred, far_true = r.T
        apart = far_true - near_true >= 0.3
        ratio = (far_pred - near_pred)[apart] / (far_true - near_true)[apart]
        print(f"{method}: {len(r)} pairs; depth difference predicted / true {ratio.mean():.2f} "
              f"(median {np.median(ratio):.2f}, {apart.sum()} pairs 0.3 m or more apart); signed depth error "
              f"nearer {1000 * (near_pred - near_true).mean():+.0f} mm, farther {1000 * (far_pred - far_true).mean():+.0f} mm")


if __name__ == "__main__":
    main()
