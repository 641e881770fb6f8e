"""The body's volume as spheres along its bones, and the overlap of two bodies' spheres.

A fast, differentiable proxy of ``socialmirror.metrics.penetration`` (how it relates to the metric:
``socialmirror.diffusion.guidance``'s docstring): zero exactly when no two spheres of different persons
intersect, growing smoothly with the depth of interpenetration.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import torch

from socialmirror.body.skeleton import JOINT_INDEX, NUM_JOINTS

# Body volume as spheres along segments between joints: (joint from, joint to, radius m, spheres, t0, t1),
# centres evenly spaced over the fractions t0..t1 of the segment (t > 1 extrapolates past `to`, e.g. the
# skull above the head joint, which is the head bone's base). Radii are for an average adult anny/SMPL body.
SPHERE_SEGMENTS: tuple[tuple[str, str, float, int, float, float], ...] = (
    ("pelvis", "spine1", 0.12, 3, 0.0, 1.0), ("spine1", "spine2", 0.12, 3, 0.0, 1.0),
    ("spine2", "spine3", 0.12, 3, 0.0, 1.0), ("spine3", "neck", 0.10, 3, 0.0, 1.0),
    ("left_hip", "right_hip", 0.10, 3, 0.0, 1.0),
    ("left_collar", "left_shoulder", 0.07, 2, 0.0, 1.0), ("right_collar", "right_shoulder", 0.07, 2, 0.0, 1.0),
    ("spine3", "left_shoulder", 0.08, 3, 0.3, 1.0), ("spine3", "right_shoulder", 0.08, 3, 0.3, 1.0),
    ("neck", "head", 0.06, 2, 0.0, 1.0), ("neck", "head", 0.10, 2, 1.4, 2.0),
    ("left_shoulder", "left_elbow", 0.05, 8, 0.0, 1.0), ("right_shoulder", "right_elbow", 0.05, 8, 0.0, 1.0),
    ("left_elbow", "left_wrist", 0.04, 8, 0.0, 1.0), ("right_elbow", "right_wrist", 0.04, 8, 0.0, 1.0),
    ("left_wrist", "left_hand", 0.04, 3, 0.0, 1.4), ("right_wrist", "right_hand", 0.04, 3, 0.0, 1.4),
    ("left_hip", "left_knee", 0.075, 10, 0.0, 1.0), ("right_hip", "right_knee", 0.075, 10, 0.0, 1.0),
    ("left_knee", "left_ankle", 0.055, 10, 0.0, 1.0), ("right_knee", "right_ankle", 0.055, 10, 0.0, 1.0),
    ("left_ankle", "left_foot", 0.045, 3, 0.0, 1.2), ("right_ankle", "right_foot", 0.045, 3, 0.0, 1.2),
)


@dataclass(frozen=True)
class BodySpheres:
    """Sphere centres as fixed linear combinations of the 24 joints: centres = weights @ joints."""

    weights: torch.Tensor  # (S, 24)
    radii: torch.Tensor  # (S,)

    @classmethod
    def build(cls, segments: Sequence[tuple[str, str, float, int, float, float]] = SPHERE_SEGMENTS
              ) -> "BodySpheres":
        rows, radii = [], []
        for src, dst, radius, count, t0, t1 in segments:
            i, j = JOINT_INDEX[src], JOINT_INDEX[dst]
            for k in range(count):
                t = t0 + (t1 - t0) * (k / (count - 1) if count > 1 else 0.5)
                row = torch.zeros(NUM_JOINTS)
                row[i] += 1.0 - t
                row[j] += t
                rows.append(row)
                radii.append(radius)
        return cls(torch.stack(rows), torch.tensor(radii))

    def centres(self, joints: torch.Tensor) -> torch.Tensor:
        """joints (..., 24, 3) -> sphere centres (..., S, 3)."""
        return self.weights.to(joints) @ joints


@functools.cache
def body_spheres() -> BodySpheres:
    """The default spheres (``SPHERE_SEGMENTS``), built once."""
    return BodySpheres.build()


def sphere_overlap(joints_a: torch.Tensor, joints_b: torch.Tensor, spheres: BodySpheres | None = None) -> torch.Tensor:
    """Overlap depth relu(r_i + r_j - ||c_i - c_j||) of every sphere i of body A with every sphere j of body B.
    joints (..., 24, 3) -> (..., S, S) metres."""
    spheres = spheres or body_spheres()
    ca, cb = spheres.centres(joints_a), spheres.centres(joints_b)
    radii = spheres.radii.to(joints_a)
    # Squared distances via the expanded form would be faster but loses precision near contact; S is small.
    dist = (ca[..., :, None, :] - cb[..., None, :, :]).square().sum(-1).clamp_min(1e-12).sqrt()
    return torch.relu(radii[:, None] + radii[None, :] - dist)


def sphere_penetration_mm(joints_a: torch.Tensor, joints_b: torch.Tensor, spheres: BodySpheres | None = None) -> torch.Tensor:
    """The proxy in the metric's form: per frame, the mean over both bodies' spheres of each sphere's deepest
    overlap with the other body, in mm. joints (..., 24, 3) -> (...)."""
    overlap = sphere_overlap(joints_a, joints_b, spheres)
    deepest = torch.cat([overlap.amax(-1), overlap.amax(-2)], dim=-1)
    return 1000.0 * deepest.mean(-1)
