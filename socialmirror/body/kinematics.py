"""Forward kinematics over the SMPL-24 tree with world-aligned rest frames.

Both backends pose their joints exactly this way (SMPL by construction; anny's ``local-ref`` pose
parameterisation was checked to agree to 1e-15 m on its game_engine bone heads), so joints can be
computed from the rest joints alone, without skinning a single vertex: that is what makes IK fitting
and joint losses cheap.

The chain is walked a tree level at a time (SMPL-24 has 9: pelvis, hips and spine, ..., hands), every joint
of a level posed at once from its parents in the level before: 9 batched steps instead of 24 one-joint steps,
which is what the fit to the evidence repeats in every iteration (forward and backward).
"""
from __future__ import annotations

from functools import lru_cache

import torch

from socialmirror.body.skeleton import SMPL24_PARENTS


@lru_cache(maxsize=8)
def tree_levels(parents: tuple[int, ...]) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    """The tree's levels from the root: per level (its joints, each one's parent's place in the level
    before). Parents must come before their children (as in SMPL-24)."""
    depth: list[int] = []
    for j, p in enumerate(parents):
        if p >= j:
            raise ValueError(f"joint {j}'s parent {p} does not come before it")
        depth.append(0 if p < 0 else depth[p] + 1)
    levels = [tuple(j for j, d in enumerate(depth) if d == level) for level in range(max(depth) + 1)]
    if len(levels[0]) != 1:
        raise ValueError("the tree must have one root")
    return tuple((joints, tuple(0 if parents[j] < 0 else levels[k - 1].index(parents[j]) for j in joints))
                 for k, joints in enumerate(levels))


@lru_cache(maxsize=8)
def _level_indices(parents: tuple[int, ...]) -> tuple[int, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
                                                      torch.Tensor]:
    """``tree_levels`` as index tensors: the root, per level after it (its joints, their parents' places in
    the level before, their parents), and the permutation from level order back to joint order."""
    levels = tree_levels(parents)
    steps = [(torch.tensor(joints), torch.tensor(up), torch.tensor([parents[j] for j in joints]))
             for joints, up in levels[1:]]
    order = torch.tensor([j for joints, _ in levels for j in joints])
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order))
    return levels[0][0][0], steps, inverse


def forward_kinematics(rest_joints: torch.Tensor, rotmats: torch.Tensor,
                       parents: tuple[int, ...] = SMPL24_PARENTS) -> tuple[torch.Tensor, torch.Tensor]:
    """Pose the rest joints.

    rest_joints (..., J, 3), rotmats (..., J, 3, 3) local rotations (rotation 0 = global orientation
    about joint 0). Returns posed joints (..., J, 3) with joint 0 kept in place, and the global
    rotations (..., J, 3, 3).
    """
    rest_joints, rotmats = torch.broadcast_tensors(rest_joints[..., None], rotmats)
    rest_joints = rest_joints[..., 0]
    root, steps, inverse = _level_indices(tuple(parents))
    glob, pos = rotmats[..., root:root + 1, :, :], rest_joints[..., root:root + 1, :]
    globs, poss = [glob], [pos]
    device = rotmats.device
    for joints, up, their_parents in steps:
        joints, up, their_parents = joints.to(device), up.to(device), their_parents.to(device)
        parent_glob = glob.index_select(-3, up)
        bone = rest_joints.index_select(-2, joints) - rest_joints.index_select(-2, their_parents)
        pos = pos.index_select(-2, up) + (parent_glob @ bone[..., None])[..., 0]
        glob = parent_glob @ rotmats.index_select(-3, joints)
        globs.append(glob)
        poss.append(pos)
    inverse = inverse.to(device)
    return torch.cat(poss, -2).index_select(-2, inverse), torch.cat(globs, -3).index_select(-3, inverse)
