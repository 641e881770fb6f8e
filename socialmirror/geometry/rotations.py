"""Rotation conversions (torch, batched over any leading dimensions, differentiable).

The project's continuous rotation representation is the 6D one of Zhou et al. (CVPR 2019), as CloseInt
and HMR2.0 use: the first two COLUMNS of the rotation matrix, flattened row by row, i.e.
``r6 = R[..., :, :2].reshape(..., 6) = (R00, R01, R10, R11, R20, R21)``. Going back re-orthonormalises
with Gram-Schmidt (roma's ``special_gramschmidt``), so any 6-vector with independent halves maps to a
valid rotation: that is why networks predict 6D rather than matrices or axis-angle.
"""
from __future__ import annotations

import roma
import torch


def matrix_to_6d(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 6)."""
    return R[..., :, :2].reshape(*R.shape[:-2], 6)


def sixd_to_matrix(r6: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3) proper rotation matrices (Gram-Schmidt on the two columns)."""
    return roma.special_gramschmidt(r6.reshape(*r6.shape[:-1], 3, 2))


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """(..., 3) rotation vectors (axis * angle, radians) -> (..., 3, 3)."""
    return roma.rotvec_to_rotmat(aa)


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 3) rotation vectors with angle in [0, pi]."""
    return roma.rotmat_to_rotvec(R)


def axis_angle_to_6d(aa: torch.Tensor) -> torch.Tensor:
    return matrix_to_6d(axis_angle_to_matrix(aa))


def sixd_to_axis_angle(r6: torch.Tensor) -> torch.Tensor:
    return matrix_to_axis_angle(sixd_to_matrix(r6))


def euler_to_matrix(order: str, angles: torch.Tensor, degrees: bool = False) -> torch.Tensor:
    """Euler angles to matrices: ``angles[..., k]`` about axis ``order[k]``, composed as
    R = R_order[0] @ R_order[1] @ R_order[2] (BVH's convention for its channel order)."""
    return roma.euler_to_rotmat(order.upper(), angles, degrees=degrees)


def rotation_angle(R: torch.Tensor) -> torch.Tensor:
    """Angle (radians) of each rotation matrix, numerically safe near 0 and pi."""
    cos = ((R.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) * 0.5).clamp(-1.0, 1.0)
    return torch.arccos(cos)


def geodesic_distance(R1: torch.Tensor, R2: torch.Tensor) -> torch.Tensor:
    """Angle (radians) of R1^T R2."""
    return rotation_angle(R1.transpose(-1, -2) @ R2)
