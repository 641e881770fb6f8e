"""Bone directions in a person's own torso frame: pose evidence that carries neither the body's size nor its
global orientation (how MediaPipe's 3D landmarks are compared with a body model, and how their error is
measured)."""
from __future__ import annotations

import torch
from torch import Tensor

from socialmirror.body.skeleton import JOINT_INDEX

# The bones compared (from, to): limbs, the shoulder line (the upper body's twist against the hips), the head
# and the feet.
EVIDENCE_BONES: tuple[tuple[str, str], ...] = (
    ("left_hip", "left_knee"), ("right_hip", "right_knee"), ("left_knee", "left_ankle"),
    ("right_knee", "right_ankle"), ("left_ankle", "left_foot"), ("right_ankle", "right_foot"),
    ("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow"), ("left_elbow", "left_wrist"),
    ("right_elbow", "right_wrist"), ("right_shoulder", "left_shoulder"), ("neck", "head"),
)
BONE_INDEX = torch.tensor([[JOINT_INDEX[a], JOINT_INDEX[b]] for a, b in EVIDENCE_BONES])
# Joints a torso frame needs.
TORSO_FRAME_JOINTS: tuple[str, ...] = ("left_hip", "right_hip", "pelvis", "neck")


def bone_key(a: str, b: str) -> str:
    return f"{a}-{b}"


def torso_frames(joints: Tensor) -> Tensor:
    """(..., 24, 3) -> (..., 3, 3) rows = the torso's axes: x from the right to the left hip, y from the
    neck to the pelvis (orthogonalised), z = x cross y. The same construction on any skeleton gives a
    frame that carries neither its size nor its global orientation."""
    x = joints[..., JOINT_INDEX["left_hip"], :] - joints[..., JOINT_INDEX["right_hip"], :]
    y = joints[..., JOINT_INDEX["pelvis"], :] - joints[..., JOINT_INDEX["neck"], :]
    x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    y = y - (y * x).sum(-1, keepdim=True) * x
    y = y / y.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    return torch.stack([x, y, torch.cross(x, y, dim=-1)], dim=-2)


def bone_directions(joints: Tensor) -> Tensor:
    """Unit directions of `EVIDENCE_BONES` in the torso frame: (..., 24, 3) -> (..., B, 3)."""
    idx = BONE_INDEX.to(joints.device)
    v = joints[..., idx[:, 1], :] - joints[..., idx[:, 0], :]
    v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    return (torso_frames(joints)[..., None, :, :] @ v[..., None])[..., 0]
