"""Forward kinematics over the SMPL-24 tree with world-aligned rest frames.

Both backends pose their joints exactly this way (SMPL by construction; anny's ``local-ref`` pose
parameterisation was checked to agree to 1e-15 m on its game_engine bone heads), so joints can be
computed from the rest joints alone, without skinning a single vertex: that is what makes IK fitting
and joint losses cheap.
"""
from __future__ import annotations

import torch

from socialmirror.body.skeleton import SMPL24_PARENTS


def forward_kinematics(rest_joints: torch.Tensor, rotmats: torch.Tensor,
                       parents: tuple[int, ...] = SMPL24_PARENTS) -> tuple[torch.Tensor, torch.Tensor]:
    """Pose the rest joints.

    rest_joints (..., J, 3), rotmats (..., J, 3, 3) local rotations (rotation 0 = global orientation
    about joint 0). Returns posed joints (..., J, 3) with joint 0 kept in place, and the global
    rotations (..., J, 3, 3).
    """
    rest_joints, rotmats = torch.broadcast_tensors(rest_joints[..., None], rotmats)
    rest_joints = rest_joints[..., 0]
    glob: list[torch.Tensor] = []
    pos: list[torch.Tensor] = []
    for j, p in enumerate(parents):
        if p < 0:
            glob.append(rotmats[..., j, :, :])
            pos.append(rest_joints[..., j, :])
        else:
            glob.append(glob[p] @ rotmats[..., j, :, :])
            bone = rest_joints[..., j, :] - rest_joints[..., p, :]
            pos.append(pos[p] + (glob[p] @ bone[..., None])[..., 0])
    return torch.stack(pos, dim=-2), torch.stack(glob, dim=-3)
