"""Inverse kinematics: fit a body model to 3D joint sequences.

Turns joint-only data (mocap, 3DPW joints, a network's joint prediction) into body-model parameters:
per-frame pose (24 rotations), per-sequence shape, per-frame pelvis translation, for any subset of the
SMPL-24 joints and any number of persons at once (batched over frames x persons).

Objective (all terms on joints from ``BodyModel.joints``, i.e. forward kinematics with no skinning):
- data: mean squared distance of the observed joints (NaN = missing);
- smoothness: squared joint acceleration, so per-frame noise does not turn into jitter;
- pose prior: small pull of every local rotation toward the rest pose, which fixes what joints cannot
  see (twist about a bone, unobserved joints);
- joint limits: knees and elbows are hinges (flexion one way, little rotation off the hinge axis);
  every other joint has a maximum rotation angle;
- shape prior: toward the average body (anny phenotypes stay in [0, 1] by construction).
Initialisation: rest pose, each frame's global orientation from a Kabsch fit of the rest torso onto the
observed torso, translation from the observed pelvis; then Adam with a decaying step.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from socialmirror.body.base import BodyModel
from socialmirror.body.skeleton import JOINT_INDEX, NUM_JOINTS, SMPL24_NAMES
from socialmirror.geometry.rotations import matrix_to_6d, sixd_to_matrix

# Joint limits of the fit: maximum rotation angle (radians) per joint away from the rest pose, outside the
# hinges. Public because the synthesizer's tests hold its poses to the same limits.
MAX_JOINT_ANGLE: dict[str, float] = {
    "left_hip": 2.2, "right_hip": 2.2, "spine1": 0.6, "spine2": 0.5, "spine3": 0.5,
    "left_ankle": 0.9, "right_ankle": 0.9, "left_foot": 0.7, "right_foot": 0.7, "neck": 0.8,
    "left_collar": 0.5, "right_collar": 0.5, "head": 0.8, "left_shoulder": 2.8, "right_shoulder": 2.8,
    "left_wrist": 1.3, "right_wrist": 1.3, "left_hand": 0.6, "right_hand": 0.6,
}
# Hinges: joint -> (child joint that gives the bone, direction the child moves under flexion in the body
# frame (y up, facing +z), allowed twist about the bone (rad)). Knees flex backward, elbows forward.
_HINGES = {
    "left_knee": ("left_ankle", (0.0, 0.0, -1.0), 0.3), "right_knee": ("right_ankle", (0.0, 0.0, -1.0), 0.3),
    "left_elbow": ("left_wrist", (0.0, 0.0, 1.0), 1.4), "right_elbow": ("right_wrist", (0.0, 0.0, 1.0), 1.4),
}
_HINGE_RANGE = (-0.1, 2.6)
_TORSO = ("pelvis", "left_hip", "right_hip", "spine1", "spine2", "spine3", "neck", "left_shoulder",
          "right_shoulder", "left_collar", "right_collar")


@dataclass
class IKConfig:
    iterations: int = 300
    lr: float = 0.05
    smooth_weight: float = 0.5  # on joint acceleration, relative to the data term
    pose_prior_weight: float = 1e-4
    limit_weight: float = 1e-2
    shape_prior_weight: float = 1e-4
    fit_shape: bool = True
    log_every: int = 0


@dataclass
class IKResult:
    rotmats: torch.Tensor  # (T, P, 24, 3, 3)
    shape: torch.Tensor  # (P, S)
    transl: torch.Tensor  # (T, P, 3) pelvis position
    joints: torch.Tensor  # (T, P, 24, 3) fitted joints
    residual_mm: float  # mean distance over observed joints
    per_joint_mm: dict = field(default_factory=dict)
    seconds: float = 0.0


def _kabsch(src: torch.Tensor, dst: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Rotation R (..., 3, 3) minimising sum w ||R src + t - dst||^2; src/dst (..., N, 3), w (..., N)."""
    ws = w.sum(-1, keepdim=True).clamp(min=1e-8)[..., None]
    mu_s = (src * w[..., None]).sum(-2, keepdim=True) / ws
    mu_d = (dst * w[..., None]).sum(-2, keepdim=True) / ws
    H = ((src - mu_s) * w[..., None]).transpose(-1, -2) @ (dst - mu_d)
    U, _, Vt = torch.linalg.svd(H)
    d = torch.sign(torch.linalg.det(Vt.transpose(-1, -2) @ U.transpose(-1, -2)))
    D = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
    return Vt.transpose(-1, -2) @ D @ U.transpose(-1, -2)


class JointLimits:
    """Joint-limit penalty: knees and elbows as hinges, a maximum rotation angle elsewhere (IK and the fit
    to the evidence)."""

    def __init__(self, rest: torch.Tensor):
        """rest: (P, 24, 3) rest joints, to get each hinge's axis for this body."""
        self.max_idx = torch.tensor([JOINT_INDEX[n] for n in MAX_JOINT_ANGLE])
        self.max_val = torch.tensor(list(MAX_JOINT_ANGLE.values()))
        self.hinge_idx = torch.tensor([JOINT_INDEX[n] for n in _HINGES])
        axes, twist_axes, twist_max = [], [], []
        for name, (child, flex, tmax) in _HINGES.items():
            bone = rest[:, JOINT_INDEX[child]] - rest[:, JOINT_INDEX[name]]
            bone = bone / bone.norm(dim=-1, keepdim=True)
            axis = torch.cross(bone, torch.tensor(flex).expand_as(bone), dim=-1)
            axes.append(axis / axis.norm(dim=-1, keepdim=True))
            twist_axes.append(bone)
            twist_max.append(tmax)
        self.axes = torch.stack(axes, 1)  # (P, H, 3)
        self.twist = torch.stack(twist_axes, 1)
        self.twist_max = torch.tensor(twist_max)

    def penalty(self, R: torch.Tensor) -> torch.Tensor:
        """R (T, P, 24, 3, 3) local rotations -> mean squared violation.

        Works on the matrices directly (cos of the angle from the trace, sin-weighted axis from the
        skew part): rotation-vector conversions cost ten times more and have unstable gradients at 0."""
        cos = _cos_angle(R)
        over = torch.relu(torch.cos(self.max_val) - cos[..., self.max_idx])
        Rh = R[..., self.hinge_idx, :, :]
        v = _skew_vector(Rh)  # sin(angle) * axis
        c = cos[..., self.hinge_idx]
        sflex = (v * self.axes).sum(-1)
        stwist = (v * self.twist).sum(-1)
        flex = torch.atan2(sflex, c)
        off = v - sflex[..., None] * self.axes - stwist[..., None] * self.twist
        lo, hi = _HINGE_RANGE
        hinge = torch.relu(lo - flex) + torch.relu(flex - hi)
        tw = torch.relu(stwist.abs() - torch.sin(self.twist_max))
        return (over ** 2).mean() + (hinge ** 2 + tw ** 2 + off.pow(2).sum(-1)).mean()


def _cos_angle(R: torch.Tensor) -> torch.Tensor:
    return (R.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) * 0.5


def _skew_vector(R: torch.Tensor) -> torch.Tensor:
    """vee((R - R^T) / 2) = sin(angle) * axis."""
    return 0.5 * torch.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0],
                              R[..., 1, 0] - R[..., 0, 1]], dim=-1)


def _shape_from_free(body: BodyModel, free: torch.Tensor) -> torch.Tensor:
    # anny's phenotypes live in [0, 1]: a sigmoid keeps the optimiser inside; SMPL betas are unbounded.
    return torch.sigmoid(free) if body.name == "anny" else free


def _free_from_shape(body: BodyModel, shape: torch.Tensor) -> torch.Tensor:
    return torch.logit(shape.clamp(1e-4, 1 - 1e-4)) if body.name == "anny" else shape


def fit_joints(body: BodyModel, target: np.ndarray | torch.Tensor, joint_names=SMPL24_NAMES,
               config: IKConfig | None = None, init_shape: torch.Tensor | None = None) -> IKResult:
    """Fit ``body`` to joints ``target`` (T, P, J, 3) or (T, J, 3) in metres named by ``joint_names``
    (any subset of SMPL-24; NaN marks a missing joint). The target's world frame is free (any up axis):
    the global orientation absorbs it. Returns parameters and the fit residual."""
    cfg = config or IKConfig()
    t0 = time.perf_counter()
    tgt = torch.as_tensor(np.asarray(target, dtype=np.float32))
    single = tgt.dim() == 3
    if single:
        tgt = tgt[:, None]
    T, P, J, _ = tgt.shape
    names = list(joint_names)
    if len(names) != J:
        raise ValueError(f"{J} target joints but {len(names)} joint names")
    idx = torch.tensor([JOINT_INDEX[n] for n in names])
    valid = torch.isfinite(tgt).all(-1)  # (T, P, J)
    if not valid.any():
        raise ValueError("no finite target joint to fit")
    tgt = torch.where(valid[..., None], tgt, torch.zeros_like(tgt))
    w = valid.float()

    with torch.no_grad():
        shape0 = init_shape if init_shape is not None else body.default_shape(P)
        rest = body.rest_joints(shape0)  # (P, 24, 3)
        R0, transl0 = _initial_alignment(rest, tgt, w, idx, names)

    r6 = torch.eye(3).expand(T, P, NUM_JOINTS, 3, 3).clone()
    r6[:, :, 0] = R0
    r6 = matrix_to_6d(r6).requires_grad_(True)
    transl = transl0.clone().requires_grad_(True)
    free = _free_from_shape(body, shape0.clone()).requires_grad_(cfg.fit_shape)
    limits = JointLimits(rest)
    params = [r6, transl] + ([free] if cfg.fit_shape else [])
    opt = torch.optim.Adam(params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.iterations, eta_min=cfg.lr * 0.02)
    shape_ref = body.default_shape(P)
    wsum = w.sum().clamp(min=1)
    for it in range(cfg.iterations):
        opt.zero_grad(set_to_none=True)
        R = sixd_to_matrix(r6)
        shape = _shape_from_free(body, free)
        joints = body.joints(R, shape[None], transl)
        data = (((joints[:, :, idx] - tgt) ** 2).sum(-1) * w).sum() / wsum
        loss = _with_priors(data, cfg, joints, R, shape, shape_ref, limits)
        loss.backward()
        opt.step()
        sched.step()
        if cfg.log_every and it % cfg.log_every == 0:
            print(f"ik {it:4d} loss {loss.item():.6f} data-rms {data.sqrt().item() * 1000:.1f} mm")

    with torch.no_grad():
        R = sixd_to_matrix(r6)
        shape = _shape_from_free(body, free)
        joints = body.joints(R, shape[None], transl)
        dist = (joints[:, :, idx] - tgt).norm(dim=-1)
        residual = float((dist * w).sum() / wsum) * 1000.0
        per_joint = {n: float((dist[..., k] * w[..., k]).sum() / w[..., k].sum().clamp(min=1)) * 1000.0
                     for k, n in enumerate(names)}
    out = IKResult(R.detach(), shape.detach(), transl.detach(), joints.detach(), residual, per_joint,
                   time.perf_counter() - t0)
    if single:
        out.rotmats, out.transl, out.joints = out.rotmats[:, 0], out.transl[:, 0], out.joints[:, 0]
        out.shape = out.shape[0]
    return out


def _initial_alignment(rest: torch.Tensor, tgt: torch.Tensor, w: torch.Tensor, idx: torch.Tensor,
                       names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per frame and person, the global orientation (T, P, 3, 3) and pelvis (T, P, 3) that best align the rest
    joints' torso with the target's (Kabsch over the torso joints present; all joints if too few). Frames with
    no torso joint borrow the nearest fitted frame."""
    torso = [k for k, n in enumerate(names) if n in _TORSO]
    if len(torso) < 3:
        torso = list(range(len(names)))
    ti = torch.tensor(torso)
    T, P = tgt.shape[:2]
    src = rest[:, idx[ti]].expand(T, P, -1, -1)
    R0 = _kabsch(src, tgt[:, :, ti], w[:, :, ti])
    # Pelvis from the target (hips midpoint or the Kabsch-aligned rest pelvis where absent).
    mu_s = (src * w[:, :, ti, None]).sum(-2) / w[:, :, ti].sum(-1, keepdim=True).clamp(min=1)
    mu_d = (tgt[:, :, ti] * w[:, :, ti, None]).sum(-2) / w[:, :, ti].sum(-1, keepdim=True).clamp(min=1)
    transl0 = mu_d - (R0 @ mu_s[..., None])[..., 0]
    missing_frames = w[:, :, ti].sum(-1) == 0
    if missing_frames.any():
        transl0, R0 = _fill_missing(transl0, R0, missing_frames)
    return R0, transl0


def _with_priors(loss: torch.Tensor, cfg: "IKConfig", joints: torch.Tensor, R: torch.Tensor, shape: torch.Tensor,
                 shape_ref: torch.Tensor, limits: "JointLimits") -> torch.Tensor:
    """The data term ``loss`` plus smoothness, the pull toward the rest pose, the joint limits and (fitting
    shape) the shape prior."""
    if joints.shape[0] > 2 and cfg.smooth_weight > 0:
        acc = joints[2:] - 2 * joints[1:-1] + joints[:-2]
        loss = loss + cfg.smooth_weight * (acc ** 2).sum(-1).mean()
    # 1 - cos(angle) ~ angle^2 / 2: a smooth pull toward the rest pose (root excluded).
    loss = loss + cfg.pose_prior_weight * 2.0 * (1.0 - _cos_angle(R[:, :, 1:])).mean()
    loss = loss + cfg.limit_weight * limits.penalty(R)
    if cfg.fit_shape:
        loss = loss + cfg.shape_prior_weight * ((shape - shape_ref) ** 2).sum(-1).mean()
    return loss


def _fill_missing(transl, R, missing):
    for p in range(transl.shape[1]):
        good = (~missing[:, p]).nonzero()[:, 0]
        if len(good) == 0:
            continue
        for t in missing[:, p].nonzero()[:, 0].tolist():
            k = good[(good - t).abs().argmin()]
            transl[t, p], R[t, p] = transl[k, p], R[k, p]
    return transl, R
