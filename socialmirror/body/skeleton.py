"""The SMPL-24 skeleton: joint names, kinematic tree and graph.

Every part of the project speaks SMPL-24 (names, order and parents as SMPL defines them), whatever body
model or data set is underneath: readers map their own joints onto these names, body models return
their joints in this order, and metrics compare joints by these names.
"""
from __future__ import annotations

import numpy as np

SMPL24_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)
NUM_JOINTS = len(SMPL24_NAMES)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(SMPL24_NAMES)}

# Parent of each joint in the kinematic tree (-1 for the root), SMPL's own ordering.
SMPL24_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)

# The 19 joints of the paper's Table 1 (the VLM annotator's contact vocabulary), in the paper's order.
CONTACT_JOINTS: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)

# Left/right mirror of each joint (for flip augmentation and left/right checks).
SMPL24_MIRROR: tuple[int, ...] = tuple(
    JOINT_INDEX[n.replace("left_", "@").replace("right_", "left_").replace("@", "right_")]
    for n in SMPL24_NAMES
)


def bones() -> list[tuple[int, int]]:
    """(parent, child) index pairs of the 23 bones."""
    return [(p, c) for c, p in enumerate(SMPL24_PARENTS) if p >= 0]


def adjacency(self_loops: bool = True) -> np.ndarray:
    """Symmetric (24, 24) adjacency matrix of the skeleton graph (float32)."""
    a = np.zeros((NUM_JOINTS, NUM_JOINTS), dtype=np.float32)
    for p, c in bones():
        a[p, c] = a[c, p] = 1.0
    if self_loops:
        a += np.eye(NUM_JOINTS, dtype=np.float32)
    return a


def joint_indices(names) -> np.ndarray:
    """Indices in SMPL-24 order of the given joint names; unknown names raise ValueError."""
    unknown = [n for n in names if n not in JOINT_INDEX]
    if unknown:
        raise ValueError(f"not SMPL-24 joint names: {unknown}")
    return np.array([JOINT_INDEX[n] for n in names], dtype=np.int64)


# The stature along the skeleton: head down the spine to the pelvis, then each leg to the ankle (the mean of
# both legs). Pose-independent, unlike the vertical extent of the joints; the metrics' Person-height and the
# size MediaPipe's 3D landmarks give everybody (data.world_landmarks) are measured by it.
STATURE_CHAINS = (("head", "neck", "spine3", "spine2", "spine1", "pelvis"),
                  ("pelvis", "left_hip", "left_knee", "left_ankle"), ("pelvis", "right_hip", "right_knee", "right_ankle"))
STATURE_ENDS = ("head", "pelvis", "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle")


def stature(joints: np.ndarray, names=SMPL24_NAMES, present: np.ndarray | None = None) -> np.ndarray:
    """(..., J, 3) -> (...) chain length of STATURE_CHAINS (the spine, then the mean of the two legs) over the
    chains' joints in ``names`` and, if given, ``present`` (J,) (a data set without spine2, or MediaPipe's
    landmarks without any spine joint, measure the spine through the joints they have)."""
    have = set(names) if present is None else {n for n, k in zip(names, present) if k}

    def chain(chain_names):
        pts = joints[..., [names.index(n) for n in chain_names if n in have], :]
        return np.linalg.norm(np.diff(pts, axis=-2), axis=-1).sum(-1)
    spine, left, right = (chain(c) for c in STATURE_CHAINS)
    return spine + 0.5 * (left + right)
