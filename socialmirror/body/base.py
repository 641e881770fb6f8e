"""One interface for every body model.

Conventions (all backends, documented in the README):
- Body frame: the SMPL canonical frame. y up, the body faces +z, +x is the body's LEFT (right-handed).
  anny's native frame (z up, facing -y) is rotated into it by the backend.
- Pose: 24 rotation matrices in SMPL-24 order (``socialmirror.body.skeleton``). Rotation 0 is the
  global orientation about the pelvis; rotation j > 0 is joint j's rotation relative to its parent,
  expressed in the rest frame, which is world-aligned for every joint (as in SMPL). All identities give
  the backend's rest pose (SMPL: T-pose; anny: its A-pose with arms about 45 degrees down).
- Shape: a backend-specific vector (SMPL: betas; anny: the six phenotype values in [0, 1]).
- Translation: the world position of the PELVIS joint. Both backends are re-rooted so that this holds
  whatever the shape, which is what the crop camera of ``socialmirror.geometry.camera`` needs (the body
  it projects is centred on its root). SMPL's own ``transl`` differs by the shape-dependent rest pelvis:
  ``SMPLBodyModel.smpl_transl_to_pelvis`` converts.
- Units: metres, float32. Leading batch dimensions are free: (T, 2, 24, 3, 3) in gives (T, 2, V, 3) out.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass

import torch
from torch import nn

from socialmirror.body.kinematics import forward_kinematics
from socialmirror.body.skeleton import NUM_JOINTS
from socialmirror.errors import UserError


@dataclass
class BodyOutput:
    vertices: torch.Tensor  # (..., V, 3) metres
    joints: torch.Tensor  # (..., 24, 3) metres, SMPL-24 order
    faces: torch.Tensor  # (F, 3) int64, shared by every body in the batch


class BodyModelError(UserError, RuntimeError):
    """A body model cannot be built (missing or unreadable model files). The message is one line."""


class BodyModel(nn.Module, abc.ABC):
    """Parameters in, vertices, faces and SMPL-24 joints out; batched and differentiable."""

    name: str
    shape_dim: int
    shape_range: tuple[float, float] | None = None  # bounds of every shape value (anny's phenotypes: [0, 1])

    @property
    @abc.abstractmethod
    def faces(self) -> torch.Tensor:
        """(F, 3) int64 triangle indices."""

    @property
    @abc.abstractmethod
    def num_vertices(self) -> int: ...

    @abc.abstractmethod
    def _forward_flat(self, rotmats: torch.Tensor, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 24, 3, 3), (B, S) -> vertices (B, V, 3), joints (B, 24, 3), pelvis at the origin."""

    def default_shape(self, *batch: int) -> torch.Tensor:
        """The neutral/average shape, broadcast to ``batch``."""
        return torch.zeros(*batch, self.shape_dim, device=self.device)

    @property
    def device(self) -> torch.device:
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    def forward(self, rotmats: torch.Tensor, shape: torch.Tensor | None = None,
                transl: torch.Tensor | None = None) -> BodyOutput:
        """rotmats (..., 24, 3, 3); shape (..., S) or None (default); transl (..., 3) pelvis position."""
        if rotmats.shape[-3:] != (NUM_JOINTS, 3, 3):
            raise ValueError(f"rotmats must be (..., {NUM_JOINTS}, 3, 3), got {tuple(rotmats.shape)}")
        batch = rotmats.shape[:-3]
        if shape is None:
            shape = self.default_shape(*batch)
        shape = shape.expand(*batch, self.shape_dim)
        flat_r = rotmats.reshape(-1, NUM_JOINTS, 3, 3).float()
        flat_s = shape.reshape(-1, self.shape_dim).float()
        verts, joints = self._forward_flat(flat_r, flat_s)
        verts = verts.reshape(*batch, -1, 3)
        joints = joints.reshape(*batch, NUM_JOINTS, 3)
        if transl is not None:
            transl = transl.float()[..., None, :]
            verts = verts + transl
            joints = joints + transl
        return BodyOutput(vertices=verts, joints=joints, faces=self.faces)

    def rest_joints(self, shape: torch.Tensor | None = None) -> torch.Tensor:
        """(..., 24, 3) joints in the rest pose, pelvis at the origin."""
        batch = () if shape is None else shape.shape[:-1]
        eye = torch.eye(3, device=self.device).expand(*batch, NUM_JOINTS, 3, 3)
        return self.forward(eye, shape).joints

    def standing_height(self, shape: torch.Tensor | None = None) -> torch.Tensor:
        """(...,) top of the head to the sole in the rest pose, metres: the height a person would say they are
        (the skeleton's stature, ``skeleton.stature``, is shorter: the head's top and the soles lie beyond it)."""
        batch = () if shape is None else shape.shape[:-1]
        eye = torch.eye(3, device=self.device).expand(*batch, NUM_JOINTS, 3, 3)
        up = self.forward(eye, shape).vertices[..., 1]  # y is up in the body frame
        return up.amax(-1) - up.amin(-1)

    def shape_of_height(self, shape: torch.Tensor, height: torch.Tensor | float, steps: int = 4) -> torch.Tensor:
        """``shape`` (..., S) moved to the standing ``height`` (metres), least in shape units: Newton steps
        along the height's gradient, within ``shape_range`` (a bound value stops moving outward). The height
        is nearly linear in the shape, so a few steps land within a millimetre where the range allows it."""
        target = torch.as_tensor(height, dtype=torch.float32, device=self.device)
        s = shape.detach().float().clone()
        for _ in range(steps):
            with torch.enable_grad():
                probe = s.clone().requires_grad_(True)
                h = self.standing_height(probe)
                (grad,) = torch.autograd.grad(h.sum(), probe)
            gap = target - h.detach()
            if self.shape_range is not None:
                lo, hi = self.shape_range
                outward = ((s <= lo) & (grad * gap[..., None] < 0)) | ((s >= hi) & (grad * gap[..., None] > 0))
                grad = torch.where(outward, torch.zeros_like(grad), grad)
            s = s + grad * (gap / grad.square().sum(-1).clamp_min(1e-9))[..., None]
            if self.shape_range is not None:
                s = s.clamp(*self.shape_range)
        return s

    def joints(self, rotmats: torch.Tensor, shape: torch.Tensor | None = None,
               transl: torch.Tensor | None = None) -> torch.Tensor:
        """Joints only, without skinning a vertex: forward kinematics of the rest joints. Equal to
        ``forward(...).joints`` for both backends, and far cheaper (IK fitting and joint losses use it)."""
        # The rest joints are computed for the shapes as given (e.g. one per person) and broadcast over
        # the rotations' batch (e.g. frames): expanding first would rebuild the rest body per frame.
        shape = self.default_shape() if shape is None else shape
        rest = self.rest_joints(shape)
        joints, _ = forward_kinematics(rest, rotmats.float())
        return joints if transl is None else joints + transl.float()[..., None, :]
