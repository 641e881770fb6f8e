"""Body-model training targets for the paper's data sets, in one place.

Two routes to the parameters (24 rotations, shape, pelvis translation per person and frame) a network is
trained to predict:

- :func:`smpl_targets`: the data set's own SMPL / SMPL-X parameters on the matching backend
  (``build_body_model("smpl:DIR")`` with the user's licensed files). Exact: the rebuilt joints are the
  published ones. SMPL's ``transl`` is converted to the project's pelvis translation.
- :func:`to_anny_targets`: the default anny body fitted to the published joints with inverse kinematics
  (``socialmirror.body.ik.fit_joints``), for users without SMPL files (and for joint-only data).

:func:`build_targets` picks: published parameters when the body is the model they were fitted with,
inverse kinematics otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from socialmirror.body.base import BodyModel
from socialmirror.body.skeleton import JOINT_INDEX
from socialmirror.data.formats.interchange import TwoPersonSequence
from socialmirror.data.datasets.paper_common import PaperSample, SMPLParams
from socialmirror.body.ik import IKConfig, fit_joints


@dataclass
class BodyTargets:
    body: str  # the backend's name: "anny", "smpl", "smplx"
    method: str  # "published-parameters" or "ik"
    rotmats: torch.Tensor  # (T, 2, 24, 3, 3)
    shape: torch.Tensor  # (2, S) or (T, 2, S)
    transl: torch.Tensor  # (T, 2, 3) pelvis positions, metres
    joints: torch.Tensor  # (T, 2, 24, 3) the body's joints for these parameters
    residual_mm: float | None = None  # mean distance to the published joints (IK: the fit's residual)


def to_anny_targets(seq: TwoPersonSequence, body: BodyModel, iterations: int = 300,
                    config: IKConfig | None = None) -> BodyTargets:
    """IK-convert ``seq``'s joints (any SMPL-24 subset) to ``body``'s parameters (anny by default)."""
    cfg = config or IKConfig(iterations=iterations)
    res = fit_joints(body, seq.joints3d, seq.joint_names, cfg)
    return BodyTargets(body=body.name, method="ik", rotmats=res.rotmats, shape=res.shape, transl=res.transl,
                       joints=res.joints, residual_mm=res.residual_mm)


def smpl_targets(smpl: SMPLParams, body: BodyModel, reference: TwoPersonSequence | None = None) -> BodyTargets:
    """The published parameters on a SMPL-family backend (``body.name`` must equal ``smpl.model``)."""
    if body.name != smpl.model:
        raise ValueError(f"parameters are {smpl.model} but the body model is {body.name}: use to_anny_targets")
    device = body.device
    rot = smpl.rotmats().to(device)
    betas_np = smpl.betas
    s = body.shape_dim
    if betas_np.shape[-1] < s:
        betas_np = np.concatenate([betas_np, np.zeros(betas_np.shape[:-1] + (s - betas_np.shape[-1],),
                                                      np.float32)], -1)
    betas = torch.from_numpy(np.ascontiguousarray(betas_np[..., :s])).to(device)
    with torch.no_grad():
        smpl_transl = torch.from_numpy(smpl.transl).to(device)
        transl = body.smpl_transl_to_pelvis(smpl_transl, betas)  # type: ignore[attr-defined]
        joints = body.joints(rot, betas, transl)
    residual = None
    if reference is not None and reference.num_frames == joints.shape[0]:
        idx = [JOINT_INDEX[n] for n in reference.joint_names]  # e.g. CHI3D's 15 mapped joints
        diff = joints.cpu()[:, :, idx] - torch.from_numpy(reference.joints3d)
        residual = float(diff.norm(dim=-1).mean()) * 1000.0
    return BodyTargets(body=body.name, method="published-parameters", rotmats=rot, shape=betas, transl=transl,
                       joints=joints, residual_mm=residual)


def build_targets(sample: PaperSample, body: BodyModel, iterations: int = 300) -> BodyTargets:
    """Published parameters when ``body`` is the model they belong to, IK-converted joints otherwise."""
    if sample.smpl is not None and body.name == sample.smpl.model:
        return smpl_targets(sample.smpl, body, sample.sequence)
    return to_anny_targets(sample.sequence, body, iterations=iterations)
