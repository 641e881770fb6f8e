"""The motion representation the diffusion models work in (the paper's D, after CloseInt).

Per person per frame: ``x = [24 joint rotations in 6D (144), shape (S), crop camera (s, tx, ty) (3)]``.
D = 157 with SMPL's 10 betas (as in the paper), 153 with anny's 6 phenotype values.

The crop camera ties each person to its detection box, so the networks see translation in a
scale-free, box-relative form; ``to_world`` / ``from_world`` convert exactly to and from the pelvis
position in the camera frame given the intrinsics and the person's box (``socialmirror.geometry.camera``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from socialmirror.body.skeleton import NUM_JOINTS
from socialmirror.geometry.camera import crop_cam_to_transl, transl_to_crop_cam
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
