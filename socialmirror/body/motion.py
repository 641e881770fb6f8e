"""The motion representation the diffusion models work in (the paper's D, after CloseInt).

Per person per frame: ``x = [24 joint rotations in 6D (144), shape (S), crop camera (s, tx, ty) (3)]``.
D = 157 with SMPL's 10 betas (as in the paper), 153 with anny's 6 phenotype values.

The crop camera ties each person to its detection box, so the networks see translation in a
scale-free, box-relative form; ``to_world`` / ``from_world`` convert exactly to and from the pelvis
position in the camera frame given the intrinsics and the person's box (``socialmirror.geometry.camera``).

Decoding a motion to the body (rotations, pelvis, joints) has one home here: ``decode_motion`` poses each
person's rest joints by forward kinematics. Shape is a per-person property, so callers pool the per-frame
shape estimates first (``pooled_shape``) and build the rest skeleton once per person (anny's rest body is the
costly part); ``motion_to_joints`` does both for a body model. The bundle's training losses, the estimator's
result and the infiller's guidance all decode through these.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from socialmirror.body.base import BodyModel
from socialmirror.body.kinematics import forward_kinematics
from socialmirror.body.skeleton import NUM_JOINTS
from socialmirror.geometry.camera import broadcast_intrinsics, crop_cam_to_transl, transl_to_crop_cam
from socialmirror.geometry.rotations import matrix_to_6d, sixd_to_matrix

ROT_DIM = NUM_JOINTS * 6
CAM_DIM = 3


def motion_dim(shape_dim: int) -> int:
    return ROT_DIM + shape_dim + CAM_DIM


@dataclass
class MotionParams:
    """Unpacked motion: rotations (..., 24, 3, 3), shape (..., S), pelvis translation (..., 3), camera frame."""

    rotmats: torch.Tensor
    shape: torch.Tensor
    transl: torch.Tensor


class MotionRepresentation:
    """Packs and unpacks x for one body model's shape size."""

    def __init__(self, shape_dim: int):
        self.shape_dim = shape_dim
        self.dim = motion_dim(shape_dim)

    def pack(self, rotmats: torch.Tensor, shape: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
        """rotmats (..., 24, 3, 3), shape (..., S), cam (..., 3) -> x (..., D)."""
        r6 = matrix_to_6d(rotmats).reshape(*rotmats.shape[:-3], ROT_DIM)
        return torch.cat([r6, shape.expand(*r6.shape[:-1], self.shape_dim), cam], dim=-1)

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (..., D) -> (rot6d (..., 24, 6), shape (..., S), cam (..., 3))."""
        if x.shape[-1] != self.dim:
            raise ValueError(f"motion vectors must have D = {self.dim} for shape size {self.shape_dim}, "
                             f"got {x.shape[-1]}")
        r6 = x[..., :ROT_DIM].reshape(*x.shape[:-1], NUM_JOINTS, 6)
        return r6, x[..., ROT_DIM:ROT_DIM + self.shape_dim], x[..., ROT_DIM + self.shape_dim:]

    def to_world(self, x: torch.Tensor, box: torch.Tensor, K: torch.Tensor) -> MotionParams:
        """x (..., D) + the person's CLIFF box (..., 3) + intrinsics -> rotations, shape, pelvis position."""
        r6, shape, cam = self.split(x)
        return MotionParams(sixd_to_matrix(r6), shape, crop_cam_to_transl(cam, box, K))

    def from_world(self, params: MotionParams, box: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        return self.pack(params.rotmats, params.shape, transl_to_crop_cam(params.transl, box, K))


@dataclass
class DecodedMotion:
    """A motion on the body, camera frame: rotations (..., 24, 3, 3), pelvis (..., 3), joints (..., 24, 3)."""

    rotmats: torch.Tensor
    transl: torch.Tensor
    joints: torch.Tensor


def pooled_shape(shape: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Per-frame shapes (..., L, S) -> one per person (..., S): the mean over the frames with ``weight``
    (..., L) > 0 (e.g. where the person was observed), over all frames for a person with none."""
    if weight is None:
        return shape.mean(-2)
    w = weight.to(shape.dtype)[..., None]
    weighted = (shape * w).sum(-2) / w.sum(-2).clamp_min(1.0)
    return torch.where(w.sum(-2) > 0, weighted, shape.mean(-2))


def decode_motion(x: torch.Tensor, boxes: torch.Tensor, K: torch.Tensor, representation: MotionRepresentation,
                  rest_joints: torch.Tensor) -> DecodedMotion:
    """Raw (not normalised) motions x (..., D), the persons' CLIFF boxes (..., 3), intrinsics broadcastable to
    them and rest joints (pelvis at the origin) broadcastable to (..., 24, 3) -> the decoded motion."""
    params = representation.to_world(x, boxes, K)
    joints, _ = forward_kinematics(rest_joints.to(params.rotmats), params.rotmats)
    return DecodedMotion(params.rotmats, params.transl, joints + params.transl[..., None, :])


def motion_to_joints(x: torch.Tensor, boxes: torch.Tensor, K: torch.Tensor, body: BodyModel,
                     representation: MotionRepresentation | None = None) -> torch.Tensor:
    """Camera-frame joints (B, 2, L, 24, 3) of raw motions x (B, 2, L, D) with boxes (B, 2, L, 3) and
    intrinsics (3, 3) or (B, 3, 3): each person's shape pooled over the clip's frames, then ``decode_motion``."""
    representation = representation or MotionRepresentation(body.shape_dim)
    rest = body.rest_joints(pooled_shape(representation.split(x)[1]))[..., None, :, :]  # broadcast over frames
    K = broadcast_intrinsics(K.to(x.dtype), x.dim() - 1)
    return decode_motion(x, boxes, K, representation, rest).joints
