"""Guidance terms for the infiller's sampling (docs/architecture.md, step 6): losses on the predicted x0 that
`DDIMSampler.guide` descends with a few gradient steps.

Every term reads the motion through a `MotionDecoder` that the caller puts in `GuidanceContext.extras`
(key ``"decoder"``). The decoder turns the sampler's (normalised) x0 (B, 2, L, D) into rotations, pelvis
translations and camera-frame joints by forward kinematics of per-person rest joints fixed for the sampling
run (the shape is not guided: one anny rest-body evaluation per person instead of per frame and per step,
and FK alone is cheap and differentiable). It memoises the last x0 it decoded, so the terms of one guidance
iteration share one FK pass.

Terms (each a per-sample loss (B,), weighted and switchable through `GuidanceTerm.weight/enabled`):

* `GeometryGuidance`   0.5 * sum_{person, frame} m * mean_joint ||J(x0) - J_geo||^2       (m^2)
      J_geo: the Geometry Optimizer's joints (extras ``"geometry_joints"``), m the frame mask.
* `ContactGuidance`    sum_contacts c * Huber_d(relu(||J^1_a(x0)_t - J^2_b(x0)_t|| - r))   (m^2)
      over every frame t in t0..t1 of every annotated contact (extras ``"contacts"``, `ContactTargets`),
      c the clip's confidence, r the contact radius (0.08 m by default: joints are inside the limbs, so
      touching surfaces leave their joints a few centimetres apart), Huber_d(e) = e^2 / 2 up to d = 0.1 m
      and linear beyond (a bounded pull).
* `PenetrationGuidance` sum_frames 0.5 / n_f * sum_{i in A, j in B} relu(r_i + r_j - ||c_i - c_j||)^2  (m^2)
      over spheres placed along each person's bones (`BodySpheres`), n_f the number of overlapping pairs in
      the frame (a constant of each step, at least 1): a fast, differentiable proxy of
      `socialmirror.metrics.penetration` (see `sphere_penetration_mm` for the version in the metric's units).
* `ReprojectionGuidance` sum_{person, frame} sum_joint conf * GM(||pi(J(x0)) - u|| / b; c) / max(1, sum conf)
      pi the camera projection, u the detected keypoint, b the person's box side in pixels (so the error is
      scale-free), conf the detector's confidence, GM(e; c) = c^2 e^2 / (e^2 + c^2) the Geman-McClure
      penalty (quadratic ~e^2 near zero, saturating at c^2 for outliers; c = 0.1 box sides by default).

How the penetration proxy relates to the metric. `metrics.penetration` (CloseInt's A-PD) is the mean over
the vertices of both meshes of each vertex's depth inside the other mesh, read from a 32^3 signed distance
grid: exact for the meshes but non-differentiable and ~0.2 s per frame. The proxy replaces each body by
spheres of per-part radii along its bones (the volume a body part occupies) and measures the overlap depth
r_i + r_j - d_ij of spheres of different persons. It is zero exactly when no two spheres intersect, grows
smoothly with the depth of interpenetration, and its gradient pushes the overlapping parts apart along the
line between sphere centres. `sphere_penetration_mm` reports it per frame in the metric's form (mean over
both persons' spheres of the deepest overlap each has with the other body, in mm). Measured on 30 random
posed anny pairs at random relative placements and headings (metric 0 to 1.8 mm): Spearman 0.96, Pearson
0.91 against the metric, no case where one is clearly positive and the other zero, and the proxy ~20x the
metric's value (a sphere's depth vs. the mean over all vertices, most of which are not inside). It ignores
the skin's exact shape (hands, feet, belly), so its values are not the metric's numbers: it only guides.
The proxy costs ~0.15 ms per frame (the metric ~0.2 s).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from socialmirror.body.motion import DecodedMotion, MotionRepresentation, decode_motion
from socialmirror.body.skeleton import CONTACT_JOINTS, JOINT_INDEX
from socialmirror.diffusion.sampler import GuidanceContext, GuidanceTerm
from socialmirror.geometry.camera import crop_cam_to_transl, project
from socialmirror.losses.robust import geman_mcclure, huber
from socialmirror.losses.spheres import BodySpheres, body_spheres

__all__ = [
    "ContactGuidance", "ContactTargets", "GeometryGuidance", "MotionDecoder", "PenetrationGuidance",
    "ReprojectionGuidance", "DEFAULT_CONTACT_RADIUS",
]

DEFAULT_CONTACT_RADIUS = 0.08  # metres between two joint centres that count as touching


# ----------------------------------------------------------------------------------------------- decoding
class _ScaleGradient(torch.autograd.Function):
    """Identity forward; the backward pass multiplies the gradient by `scale` (a preconditioner)."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(scale)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (scale,) = ctx.saved_tensors
        return grad * scale, None


class MotionDecoder:
    """x0 (B, 2, L, D), in the sampler's (normalised) space -> rotations, pelvis translation, joints.

    rest_joints (B, 2, 24, 3): each person's rest joints (pelvis at the origin), fixed for the run;
    boxes (B, 2, L, 3) CLIFF boxes, K (3, 3) intrinsics; x_mean / x_std (D,) the normalisation (x = x_norm *
    std + mean), None when x0 is already in raw units.

    Preconditioning (`precondition=True`, the default). The sampler's guidance step is x0 <- x0 - lr * grad.
    Taken literally it would depend on the normalisation (a step in normalised units moves the raw value by
    std^2 times the raw gradient) and it is badly conditioned in the crop camera: depth is Z = 2 f / (b s), so
    a unit change of s moves the person by Z / s, metres. The decoder therefore rescales the gradient that
    flows back into x0 so that one guidance step is plain gradient descent on the raw 6D rotations, on tx, ty
    (metres) and on the depth Z itself (the s-gradient is multiplied by (s / Z)^2, which turns a step in s
    into a step of lr * dLoss/dZ in Z), whatever the normalisation. Guidance weights are thus in metres
    and radians-like units and transfer between bundles.
    """

    def __init__(self, representation: MotionRepresentation, rest_joints: Tensor, boxes: Tensor, K: Tensor,
                 x_mean: Tensor | None = None, x_std: Tensor | None = None, precondition: bool = True):
        self.representation = representation
        self.rest_joints = rest_joints
        self.boxes = boxes
        self.K = K
        self.x_mean = x_mean
        self.x_std = x_std
        self.precondition = precondition
        self._last_input: Tensor | None = None
        self._last_output: DecodedMotion | None = None

    def unnormalise(self, x0: Tensor) -> Tensor:
        if self.x_std is None:
            return x0
        return x0 * self.x_std.to(x0) + self.x_mean.to(x0)

    def gradient_scale(self, x0: Tensor) -> Tensor:
        """(..., D) factor applied to dLoss/dx0 (see the class docstring): P / std^2 with P = 1, except
        (s / Z)^2 on the camera scale s."""
        with torch.no_grad():
            raw = self.unnormalise(x0)
            _, _, cam = self.representation.split(raw)
            depth = crop_cam_to_transl(cam, self.boxes.to(x0), self.K.to(x0))[..., 2]
            scale = torch.ones_like(x0)
            s_index = self.representation.dim - 3
            scale[..., s_index] = (cam[..., 0] / depth.clamp_min(1e-3)).square()
            if self.x_std is not None:
                scale = scale / self.x_std.to(x0).clamp_min(1e-3).square()
        return scale

    def __call__(self, x0: Tensor) -> DecodedMotion:
        # Terms of one guidance iteration receive the very same tensor: decode it once.
        if x0 is self._last_input and self._last_output is not None:
            return self._last_output
        x = _ScaleGradient.apply(x0, self.gradient_scale(x0)) if self.precondition and x0.requires_grad else x0
        rest = self.rest_joints.to(x0)[:, :, None]  # broadcast over frames
        out = decode_motion(self.unnormalise(x), self.boxes.to(x0), self.K.to(x0), self.representation, rest)
        self._last_input, self._last_output = x0, out
        return out


def _decoder(context: GuidanceContext) -> MotionDecoder:
    try:
        return context.extras["decoder"]
    except KeyError:
        raise KeyError("guidance needs extras['decoder'] (a MotionDecoder)") from None


def _frame_mask(context: GuidanceContext, like: Tensor) -> Tensor:
    """(B, 2, L) float weights of the frames to guide (extras 'frame_mask', all ones when absent)."""
    mask = context.extras.get("frame_mask")
    if mask is None:
        return torch.ones(like.shape[:3], dtype=like.dtype, device=like.device)
    return mask.to(like)


# ----------------------------------------------------------------------------------------------- geometry
class GeometryGuidance(GuidanceTerm):
    """Pull the FK joints of x0 toward the Geometry Optimizer's camera-frame joints (extras
    'geometry_joints' (B, 2, L, 24, 3))."""

    def __call__(self, x0: Tensor, context: GuidanceContext) -> Tensor:
        joints = _decoder(context)(x0).joints
        target = context.extras["geometry_joints"].to(joints)
        err = (joints - target).square().sum(-1).mean(-1)  # (B, 2, L)
        return 0.5 * (err * _frame_mask(context, joints)).sum(dim=(1, 2))


# ----------------------------------------------------------------------------------------------- contacts
@dataclass
class ContactTargets:
    """Annotated contacts unrolled to one row per (window, frame, joint pair): joint_a of person 0 and
    joint_b of person 1 should touch at frame `frame` of window `batch`, with weight `weight` (the clip's
    confidence). All (N,) tensors; SMPL-24 joint indices."""

    batch: Tensor
    frame: Tensor
    joint_a: Tensor
    joint_b: Tensor
    weight: Tensor

    @property
    def count(self) -> int:
        return int(self.batch.numel())

    @classmethod
    def empty(cls) -> "ContactTargets":
        long = torch.zeros(0, dtype=torch.long)
        return cls(long, long.clone(), long.clone(), long.clone(), torch.zeros(0))

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[int, int, int, int, float]]) -> "ContactTargets":
        if not rows:
            return cls.empty()
        b, f, ja, jb, w = zip(*rows)
        long = lambda v: torch.tensor(v, dtype=torch.long)  # noqa: E731
        return cls(long(b), long(f), long(ja), long(jb), torch.tensor(w, dtype=torch.float32))

    @staticmethod
    def joint_index(name: str) -> int:
        """SMPL-24 index of a contact joint name (the 19 names of Table 1)."""
        if name not in CONTACT_JOINTS:
            raise ValueError(f"{name!r} is not one of the contact joints {CONTACT_JOINTS}")
        return JOINT_INDEX[name]

    def swapped(self) -> "ContactTargets":
        return ContactTargets(self.batch, self.frame, self.joint_b, self.joint_a, self.weight)


class ContactGuidance(GuidanceTerm):
    """Close annotated contacts: Huber hinge on the joint distance above `radius` (extras 'contacts').

    The pull is bounded (`max_pull`, metres of gradient): an annotated contact may be wrong (a VLM's
    guess), and a far-apart pair must not be dragged through the other body, which the penetration term,
    whose pull is the overlap depth, then has to win against.
    """

    def __init__(self, weight: float = 1.0, enabled: bool = True, radius: float = DEFAULT_CONTACT_RADIUS,
                 max_pull: float = 0.1, name: str | None = None):
        super().__init__(weight, enabled, name)
        self.radius = float(radius)
        self.max_pull = float(max_pull)

    def __call__(self, x0: Tensor, context: GuidanceContext) -> Tensor:
        contacts: ContactTargets | None = context.extras.get("contacts")
        loss = x0.flatten(1).sum(1) * 0.0  # zero, but on the graph (the only enabled term may have no contact)
        if contacts is None or contacts.count == 0:
            return loss
        joints = _decoder(context)(x0).joints  # (B, 2, L, 24, 3)
        device = joints.device
        b, f = contacts.batch.to(device), contacts.frame.to(device)
        pa = joints[b, 0, f, contacts.joint_a.to(device)]
        pb = joints[b, 1, f, contacts.joint_b.to(device)]
        gap = torch.relu((pa - pb).norm(dim=-1) - self.radius)
        return loss.index_add(0, b, contacts.weight.to(joints) * huber(gap, self.max_pull))


# ----------------------------------------------------------------------------------------------- penetration
class PenetrationGuidance(GuidanceTerm):
    """Push the two bodies apart where their bone spheres overlap (no extras beyond the decoder).

    Only a few of the S x S sphere pairs of a frame overlap, so the pairs are found first without gradient
    (one batched distance matrix) and the loss is built on those pairs alone: the backward pass, which
    dominated the guidance's cost when it ran over every pair, then scales with the overlap, not with S^2.
    """

    def __init__(self, weight: float = 1.0, enabled: bool = True, spheres: BodySpheres | None = None,
                 name: str | None = None):
        super().__init__(weight, enabled, name)
        self.spheres = spheres

    def __call__(self, x0: Tensor, context: GuidanceContext) -> Tensor:
        joints = _decoder(context)(x0).joints  # (B, 2, L, 24, 3)
        spheres = self.spheres or body_spheres()
        centres = spheres.centres(joints)  # (B, 2, L, S, 3)
        ca, cb = centres[:, 0], centres[:, 1]
        radii = spheres.radii.to(joints)
        reach = radii[:, None] + radii[None, :]  # (S, S)
        with torch.no_grad():
            dist = torch.cdist(ca.detach(), cb.detach())  # (B, L, S, S); mm-based: ~1e-4 m precision
            hits = torch.nonzero(reach - dist > -1e-3)  # a margin for that precision; exact below
        # A frame counts when both persons are observed in it (a guessed person should not shove the other).
        mask = _frame_mask(context, joints).prod(dim=1)  # (B, L)
        loss = (joints.sum(dim=(1, 2, 3, 4)) * 0.0)  # zero, but on the graph when nothing overlaps
        if hits.numel() == 0:
            return loss
        b, f, i, j = hits.unbind(-1)
        gap = (ca[b, f, i] - cb[b, f, j]).square().sum(-1).clamp_min(1e-12).sqrt()
        overlap = torch.relu(reach[i, j] - gap)
        # Mean over the frame's overlapping pairs (their count taken as a constant of the step): the pull is
        # about the overlap depth whether two forearms cross (a few pairs) or two torsos (hundreds), i.e. a
        # curvature of order one in the translation, as for the other terms, so one step size fits all.
        frame_id = b * mask.shape[1] + f
        count = torch.zeros(mask.numel(), dtype=overlap.dtype, device=overlap.device)
        count = count.index_add(0, frame_id, (overlap > 0).to(overlap.dtype).detach()).clamp_min(1.0)
        per_pair = 0.5 * overlap.square() * mask[b, f] / count[frame_id]
        return loss.index_add(0, b, per_pair)


# ----------------------------------------------------------------------------------------------- reprojection
class ReprojectionGuidance(GuidanceTerm):
    """Keep the projected joints on the detected keypoints (extras 'keypoints2d' (B, 2, L, 24, 3) = u, v,
    confidence): Geman-McClure on the pixel error divided by the box side, weighted by confidence."""

    def __init__(self, weight: float = 1.0, enabled: bool = True, scale: float = 0.1, name: str | None = None):
        super().__init__(weight, enabled, name)
        self.scale = float(scale)

    def __call__(self, x0: Tensor, context: GuidanceContext) -> Tensor:
        decoder = _decoder(context)
        joints = decoder(x0).joints
        keypoints = context.extras["keypoints2d"].to(joints)
        pixels = project(joints, decoder.K.to(joints))
        box_side = decoder.boxes.to(joints)[..., 2].clamp_min(1.0)  # (B, 2, L)
        sq_error = (pixels - keypoints[..., :2]).square().sum(-1) / box_side[..., None].square()
        confidence = keypoints[..., 2]
        # Confidence-weighted mean over the joints: a frame's pull does not grow with how many were detected.
        rho = (geman_mcclure(sq_error, self.scale) * confidence).sum(-1) / confidence.sum(-1).clamp_min(1.0)
        return (rho * _frame_mask(context, joints)).sum(dim=(1, 2))

