"""How the poses of a training set cover those of real recordings (issue 23, item 2): per data set, the
spread (5th, 50th and 95th percentile over every person-frame) of knee, hip and elbow flexion, the torso's
lean from the vertical and its twist (shoulder line against hip line about the vertical), and the distance
between the two people; and, for synthesized data, the count per interaction kind.

Angles in degrees from the sequences' 3D joints and their ``up``; a measure a data set lacks the joints for
(Bütepage has 8 upper-body joints) is "-".

    .venv/bin/python scripts/pose_coverage.py --data npz:/tmp/sm_train --data cmu:../shared/data/cmu_18_19 \\
        --data butepage:../shared/data/butepage_hhi
"""
from __future__ import annotations

import argparse
from collections import Counter

import numpy as np


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True).clip(1e-9)


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Degrees between direction vectors (..., 3)."""
    return np.degrees(np.arccos(np.clip((_unit(a) * _unit(b)).sum(-1), -1.0, 1.0)))


def flexion(seq, top: str, middle: str, bottom: str) -> np.ndarray:
    """(T, 2) how far a limb bends at ``middle``: 0 straight, the angle between its two segments' directions."""
    a, m, b = (seq.joint(n) for n in (top, middle, bottom))
    return _angle(m - a, b - m)


def measures(seq) -> dict[str, np.ndarray]:
    """Each measure (flattened over frames, people and sides) that ``seq`` has the joints for."""
    names, up = set(seq.joint_names), _unit(np.asarray(seq.up, dtype=np.float64))
    out: dict[str, list] = {}

    def add(key, values):
        out.setdefault(key, []).append(np.asarray(values, dtype=np.float64).reshape(-1))
    for side in ("left", "right"):
        if {f"{side}_hip", f"{side}_knee", f"{side}_ankle"} <= names:
            add("knee flexion", flexion(seq, f"{side}_hip", f"{side}_knee", f"{side}_ankle"))
        if {f"{side}_shoulder", f"{side}_elbow", f"{side}_wrist"} <= names:
            add("elbow flexion", flexion(seq, f"{side}_shoulder", f"{side}_elbow", f"{side}_wrist"))
        if {"pelvis", "neck", f"{side}_hip", f"{side}_knee"} <= names:
            trunk_down = seq.joint("pelvis") - seq.joint("neck")
            add("hip flexion", _angle(trunk_down, seq.joint(f"{side}_knee") - seq.joint(f"{side}_hip")))
    low, high = ("pelvis", "neck") if {"pelvis", "neck"} <= names else ("spine3", "head")
    if {low, high} <= names:
        add("torso lean", _angle(seq.joint(high) - seq.joint(low), up))
        centre = seq.joint(low)
        gap = centre[:, 0] - centre[:, 1]
        add("pair distance (m)", np.linalg.norm(gap - (gap @ up)[:, None] * up, axis=-1))
    if {"left_hip", "right_hip", "left_shoulder", "right_shoulder"} <= names:
        flat = (lambda v: v - (v @ up)[..., None] * up)  # noqa: E731 - onto the horizontal plane
        hips = flat(seq.joint("left_hip") - seq.joint("right_hip"))
        shoulders = flat(seq.joint("left_shoulder") - seq.joint("right_shoulder"))
        add("torso twist", _angle(hips, shoulders))
    return {k: np.concatenate(v) for k, v in out.items()}


MEASURES = ("knee flexion", "hip flexion", "elbow flexion", "torso lean", "torso twist", "pair distance (m)")


def main() -> None:
    from socialmirror.data.datasets import sequences_from_spec
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", required=True)
    parser.add_argument("--max-sequences", type=int, default=0)
    args = parser.parse_args()
    print("| data | sequences | " + " | ".join(MEASURES) + " |")
    print("|---" * (len(MEASURES) + 2) + "|")
    kinds = {}
    for spec in args.data:
        seqs = sequences_from_spec(spec, fps=None)[: args.max_sequences or None]
        pooled: dict[str, list] = {}
        for seq in seqs:
            for k, v in measures(seq).items():
                pooled.setdefault(k, []).append(v[np.isfinite(v)])
        cells = []
        for k in MEASURES:
            if k not in pooled:
                cells.append("-")
                continue
            p5, p50, p95 = np.percentile(np.concatenate(pooled[k]), [5, 50, 95])
            digits = 2 if "(m)" in k else 0
            cells.append(f"{p5:.{digits}f} / {p50:.{digits}f} / {p95:.{digits}f}")
        print(f"| {spec} | {len(seqs)} | " + " | ".join(cells) + " |")
        kinds[spec] = Counter(seq.action or "?" for seq in seqs)
    for spec, counts in kinds.items():
        print(f"{spec}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
