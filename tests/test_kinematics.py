"""Forward kinematics over a joint tree, a level at a time, against hand-computed poses and the chain rule."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from socialmirror.body.kinematics import forward_kinematics, tree_levels
from socialmirror.body.skeleton import SMPL24_PARENTS
from socialmirror.geometry.rotations import sixd_to_matrix


def _rot_z(deg: float) -> torch.Tensor:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def test_a_bent_chain_is_posed_as_computed_by_hand():
    # Root at the origin, a 1 m bone along x, then a 0.5 m bone along x. Turning the root by 90 degrees about z
    # and the middle joint by another 90: the middle joint goes to (0, 1, 0), the end to (-0.5, 1, 0).
    rest = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [1.5, 0, 0]], dtype=torch.float64)
    rotmats = torch.stack([_rot_z(90), _rot_z(90), torch.eye(3, dtype=torch.float64)])
    joints, glob = forward_kinematics(rest, rotmats, parents=(-1, 0, 1))
    np.testing.assert_allclose(joints.numpy(), [[0, 0, 0], [0, 1, 0], [-0.5, 1, 0]], atol=1e-6)
    np.testing.assert_allclose(glob[2].numpy(), _rot_z(180).numpy(), atol=1e-6)


def test_levels_pose_every_joint_as_the_chain_rule_does():
    # The definition, one joint after the other: G_j = G_parent R_j, p_j = p_parent + G_parent (r_j - r_parent).
    g = torch.Generator().manual_seed(0)
    rest = torch.randn(5, 24, 3, generator=g, dtype=torch.float64)
    rotmats = sixd_to_matrix(torch.randn(5, 24, 6, generator=g, dtype=torch.float64))
    joints, glob = forward_kinematics(rest, rotmats)
    ref_glob, ref_pos = [], []
    for j, p in enumerate(SMPL24_PARENTS):
        if p < 0:
            ref_glob.append(rotmats[:, j])
            ref_pos.append(rest[:, j])
            continue
        ref_glob.append(ref_glob[p] @ rotmats[:, j])
        ref_pos.append(ref_pos[p] + (ref_glob[p] @ (rest[:, j] - rest[:, p])[..., None])[..., 0])
    torch.testing.assert_close(joints, torch.stack(ref_pos, 1))
    torch.testing.assert_close(glob, torch.stack(ref_glob, 1))


def test_smpl24_has_nine_levels_from_the_pelvis_to_the_hands():
    levels = tree_levels(SMPL24_PARENTS)
    assert len(levels) == 9 and levels[0][0] == (0,)
    assert sorted(j for joints, _ in levels for j in joints) == list(range(24))
    assert 22 in levels[-1][0] and 23 in levels[-1][0]  # the hands, furthest from the pelvis
    for (joints, up), (previous, _) in zip(levels[1:], levels):
        assert all(SMPL24_PARENTS[j] == previous[u] for j, u in zip(joints, up))


def test_a_parent_listed_after_its_child_is_refused():
    with pytest.raises(ValueError, match="before"):
        tree_levels((-1, 2, 0))
