"""CMU motion-capture pairs: two actors' BVH files as one two-person sequence on SMPL-24 joints.

The CMU database captured a few two-person interactions (subjects 18 and 19: trial 01 is "walk, shake
hands") with both actors in one capture volume, and publishes them as one BVH per actor. The cgspeed BVH
conversion used here is y-up, 120 fps, in CMU length units (0.0254 / 0.45 m per unit) and starts with a
T-pose frame added by the converter, which is dropped.

Both files share the capture volume's world frame, so the two actors are merged without moving either:
the floor is at y ~ 0 for both and their pelvises come to ~0.74 m of each other, facing, at the handshake.
The two recordings are not perfectly calibrated to each other: at the handshake the right wrists stay
~0.38 m apart rather than touching (the data README notes a 0.2-0.3 m offset).

Joint mapping (CMU joint -> SMPL-24 name), chosen by what each joint *is*, since the CMU torso in this
conversion is shorter than SMPL's (shoulder joints ~0.29 m above the pelvis instead of ~0.47 m):

- pelvis = Hips; hips = LeftUpLeg/RightUpLeg (the hip joint centres; LHipJoint/RHipJoint sit on Hips);
  knees = LeftLeg/RightLeg; ankles = LeftFoot/RightFoot; feet = LeftToeBase/RightToeBase (ball of the
  foot, where SMPL's foot joint is).
- spine1 = Spine (the top of CMU's lower back, 0.13 m above Hips; SMPL's spine1 is ~0.12 m above its
  pelvis). spine3 = Spine1: in both skeletons it is the joint where the neck and both clavicles branch off.
  spine2 is not covered: CMU has no joint between Spine and Spine1.
- neck = Neck1 (the top of CMU's lower-neck bone, ~5 cm above the shoulder line like SMPL's neck);
  head = Head. CMU's Neck, LowerBack, LeftShoulder and RightShoulder have zero offsets (they sit exactly on
  Spine1 or Hips), so mapping them would invent joints; the collars are therefore not covered.
- shoulders = LeftArm/RightArm, elbows = LeftForeArm/RightForeArm, wrists = LeftHand/RightHand,
  hands = LeftHandIndex1/RightHandIndex1 (the end of CMU's short hand bone, ~4 cm past the wrist where
  SMPL's hand joint is ~8 cm past it).

CMU's Left/Right are the body's left and right: with y up and the actor facing along the toes, the Left
joints are on the actor's left (checked in the tests).
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from socialmirror.body.skeleton import SMPL24_NAMES
from socialmirror.data.formats.bvh import BvhMotion, read_bvh
from socialmirror.data.formats.interchange import TwoPersonSequence, resample

CMU_UNIT_M = 0.0254 / 0.45
"""Metres per CMU length unit (the ASF files' ``length 0.45`` in inches)."""

CMU_TO_SMPL: dict[str, str] = {
    "pelvis": "Hips",
    "left_hip": "LeftUpLeg",
    "right_hip": "RightUpLeg",
    "spine1": "Spine",
    "left_knee": "LeftLeg",
    "right_knee": "RightLeg",
    "left_ankle": "LeftFoot",
    "right_ankle": "RightFoot",
    "spine3": "Spine1",
    "left_foot": "LeftToeBase",
    "right_foot": "RightToeBase",
    "neck": "Neck1",
    "head": "Head",
    "left_shoulder": "LeftArm",
    "right_shoulder": "RightArm",
    "left_elbow": "LeftForeArm",
    "right_elbow": "RightForeArm",
    "left_wrist": "LeftHand",
    "right_wrist": "RightHand",
    "left_hand": "LeftHandIndex1",
    "right_hand": "RightHandIndex1",
}
"""SMPL-24 name -> the CMU BVH joint that stands for it (21 of 24: no spine2, left_collar, right_collar)."""

CMU_JOINT_NAMES: tuple[str, ...] = tuple(n for n in SMPL24_NAMES if n in CMU_TO_SMPL)
"""The SMPL-24 names a CMU sequence carries, in SMPL order."""

CMU_PAIRS: dict[tuple[str, str], dict[str, tuple[str, str]]] = {
    ("18", "19"): {"01": ("handshake", "walk, shake hands")},
}
"""Known two-person subject pairs -> {trial: (action, CMU description)}."""

UP = np.array([0.0, 1.0, 0.0])


def _to_smpl(motion: BvhMotion, path: Path) -> np.ndarray:
    """(T, J, 3) positions of the mapped joints in CMU_JOINT_NAMES order."""
    missing = [CMU_TO_SMPL[n] for n in CMU_JOINT_NAMES if CMU_TO_SMPL[n] not in motion.names]
    if missing:
        raise ValueError(f"{path}: not a CMU skeleton, joints {missing} are missing")
    return motion.positions[:, [motion.index(CMU_TO_SMPL[n]) for n in CMU_JOINT_NAMES]]


def read_cmu_pair(bvh_a: str | Path, bvh_b: str | Path, fps: float | None = None,
                  action: str | None = None, name: str | None = None,
                  drop_first_frame: bool = True) -> TwoPersonSequence:
    """Two actors' CMU BVH files (same capture, same world frame) as one sequence in metres.

    Args:
        bvh_a, bvh_b: person 1's and person 2's files.
        fps: resample to this rate (e.g. 30); None keeps the capture's 120 fps.
        action: the action label to attach, if known.
        name: the sequence's name; defaults to ``<stem a>+<stem b>``.
        drop_first_frame: drop the T-pose frame that the cgspeed converter puts first.

    Files of different lengths are cut to the shorter one with a warning (the two actors of one trial
    are recorded together, so their frames correspond one to one).
    """
    paths = (Path(bvh_a), Path(bvh_b))
    motions = [read_bvh(p, scale=CMU_UNIT_M, drop_first_frame=drop_first_frame) for p in paths]
    if motions[0].fps != motions[1].fps:
        raise ValueError(f"{paths[0]} is at {motions[0].fps} fps but {paths[1]} at {motions[1].fps}: "
                         f"not one capture")
    joints = [_to_smpl(m, p) for m, p in zip(motions, paths)]
    frames = min(j.shape[0] for j in joints)
    if joints[0].shape[0] != joints[1].shape[0]:
        warnings.warn(f"{paths[0].name} has {joints[0].shape[0]} frames and {paths[1].name} "
                      f"{joints[1].shape[0]}: keeping the first {frames}", stacklevel=2)
    seq = TwoPersonSequence(
        joints3d=np.stack([joints[0][:frames], joints[1][:frames]], axis=1),
        joint_names=CMU_JOINT_NAMES,
        fps=motions[0].fps,
        up=UP,
        action=action,
        name=name or f"{paths[0].stem}+{paths[1].stem}",
        source="CMU Graphics Lab Motion Capture Database (mocap.cs.cmu.edu), BVH conversion",
        meta={
            "files": [p.name for p in paths],
            "unit_m": CMU_UNIT_M,
            "dropped_first_frame": drop_first_frame,
            "capture_fps": motions[0].fps,
            "joint_map": {n: CMU_TO_SMPL[n] for n in CMU_JOINT_NAMES},
        },
    )
    if fps is not None:
        seq = resample(seq, fps)
    return seq


_TRIAL_RE = re.compile(r"^(\d+)_(\d+)$")


def read_cmu_folder(folder: str | Path, fps: float | None = None) -> list[TwoPersonSequence]:
    """Every known two-person trial in a folder of CMU BVH files (``18_01.bvh`` + ``19_01.bvh``, ...).

    Pairs come from :data:`CMU_PAIRS`: a trial is read when both subjects' files of the same trial number
    are present. The action is attached where the trial is known (18/19 trial 01: "handshake").
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    trials: dict[str, set[str]] = {}
    for p in folder.glob("*.bvh"):
        m = _TRIAL_RE.match(p.stem)
        if m:
            trials.setdefault(m.group(1), set()).add(m.group(2))
    sequences = []
    for (sa, sb), known in sorted(CMU_PAIRS.items()):
        for trial in sorted(trials.get(sa, set()) & trials.get(sb, set())):
            action, description = known.get(trial, (None, None))
            seq = read_cmu_pair(folder / f"{sa}_{trial}.bvh", folder / f"{sb}_{trial}.bvh", fps=fps,
                                action=action, name=f"cmu_{sa}_{sb}_{trial}")
            if description:
                seq.meta["description"] = description
            sequences.append(seq)
    if not sequences:
        raise FileNotFoundError(f"no two-person CMU trial (pairs {sorted(CMU_PAIRS)}) in {folder}")
    return sequences


def load_spec(arg: str, split: str | None, seed: int) -> list[TwoPersonSequence]:
    """``cmu:DIR``: every known two-person trial in a folder of CMU BVH files."""
    from socialmirror.data.datasets import spec_folder
    return read_cmu_folder(spec_folder(arg))
