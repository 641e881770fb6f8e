"""anny behind the BodyModel interface: the conventions every other module relies on."""
import pytest
import roma
import torch

from socialmirror.body.skeleton import JOINT_INDEX as J, SMPL24_NAMES


def _bone(joints, a, b):
    return float((joints[..., J[a], :] - joints[..., J[b], :]).norm())


def test_topology(anny_body):
    out = anny_body(torch.eye(3).expand(24, 3, 3))
    assert out.vertices.shape == (13718, 3)
    assert out.faces.shape == (27420, 3) and out.faces.dtype == torch.int64
    assert out.vertices.dtype == torch.float32 and out.joints.shape == (24, 3)


def test_adult_leg_bones_are_anthropometric(anny_body):
    j = anny_body.rest_joints()
    # Default adult (all phenotypes 0.5, about 1.63 m): femur and tibia (joint-centre lengths).
    assert 0.36 < _bone(j, "left_hip", "left_knee") < 0.50
    assert 0.33 < _bone(j, "left_knee", "left_ankle") < 0.48
    assert abs(_bone(j, "left_hip", "left_knee") - _bone(j, "right_hip", "right_knee")) < 1e-4


def test_axes_up_left_forward(anny_body):
    j = anny_body.rest_joints()
    y = j[:, 1]
    assert y[J["head"]] > y[J["neck"]] > y[J["pelvis"]] > y[J["left_knee"]] > y[J["left_ankle"]]  # up is +y
    for name in SMPL24_NAMES:
        if name.startswith("left_"):
            assert j[J[name], 0] > 0.0 > j[J[name.replace("left_", "right_")], 0]  # the body's left is +x
    assert j[J["left_foot"], 2] > j[J["left_ankle"], 2]  # toes point forward: the body faces +z
    assert torch.allclose(j[J["pelvis"]], torch.zeros(3))


def test_joints_only_path_matches_skinned_output(anny_body):
    torch.manual_seed(1)
    R = roma.rotvec_to_rotmat(0.3 * torch.randn(3, 2, 24, 3))
    shape = torch.rand(3, 2, 6)
    transl = torch.randn(3, 2, 3)
    out = anny_body(R, shape, transl)
    assert out.vertices.shape == (3, 2, 13718, 3)
    assert torch.allclose(out.joints, anny_body.joints(R, shape, transl), atol=1e-4)
    assert torch.allclose(out.joints[..., 0, :], transl, atol=1e-5)  # transl is the pelvis position


def test_global_rotation_turns_the_body_about_the_pelvis(anny_body):
    rot = roma.rotvec_to_rotmat(torch.tensor([0.0, torch.pi, 0.0]))  # half turn about up
    R = torch.eye(3).repeat(24, 1, 1)
    R[0] = rot
    j = anny_body(R).joints
    rest = anny_body.rest_joints()
    assert torch.allclose(j, rest @ rot.T, atol=1e-5)
    assert j[J["left_foot"], 2] < j[J["left_ankle"], 2]  # now facing -z


def test_knee_rotation_bends_the_leg_backward(anny_body):
    R = torch.eye(3).repeat(24, 1, 1)
    R[J["left_knee"]] = roma.rotvec_to_rotmat(torch.tensor([1.2, 0.0, 0.0]))  # about the body's left axis
    j = anny_body.joints(R)
    rest = anny_body.rest_joints()
    assert j[J["left_ankle"], 2] < rest[J["left_ankle"], 2] - 0.2
    assert torch.allclose(j[J["right_ankle"]], rest[J["right_ankle"]], atol=1e-6)


def test_differentiable_in_pose_and_shape(anny_body):
    r6 = torch.zeros(2, 24, 3, requires_grad=True)
    shape = torch.full((2, 6), 0.5, requires_grad=True)
    out = anny_body(roma.rotvec_to_rotmat(r6), shape)
    (out.vertices.square().mean() + out.joints.square().mean()).backward()
    assert r6.grad.abs().sum() > 0 and shape.grad.abs().sum() > 0


def test_children_are_smaller(anny_body):
    shape = torch.full((2, 6), 0.5)
    shape[1, 1] = 0.1  # age
    v = anny_body(torch.eye(3).expand(2, 24, 3, 3), shape).vertices
    height = v[..., 1].amax(-1) - v[..., 1].amin(-1)
    torch.testing.assert_close(anny_body.standing_height(shape), height)  # head top to sole, the rest pose
    assert 1.45 < height[0] < 1.9
    assert height[1] < height[0] - 0.3


def test_skin_rig_is_the_body_as_plain_linear_blend_skinning(anny_body):
    """The rig that scene.glb holds: SMPL-style forward kinematics on its 30 bones (each bone's rotation taken
    from its SMPL-24 joint, pivoting about its rest head) and its collapsed weights give the body's own
    vertices, for a random pose and shape."""
    torch.manual_seed(0)
    shape = torch.rand(6)
    R = roma.rotvec_to_rotmat(0.4 * torch.randn(24, 3))
    rig = anny_body.skin_rig(shape)
    assert len(rig.names) == 30 and torch.allclose(rig.weights.sum(1), torch.ones(1), atol=1e-5)
    G, P = [], []
    for k, p in enumerate(rig.parents):
        local = R[rig.rotation_of[k]]
        G.append(local if p < 0 else G[p] @ local)
        P.append(rig.heads[k] if p < 0 else P[p] + G[p] @ (rig.heads[k] - rig.heads[p]))
    G, P = torch.stack(G), torch.stack(P)
    per_bone = torch.einsum("kij,vkj->vki", G, rig.rest_vertices[:, None] - rig.heads[None]) + P[None]
    skinned = (rig.weights[..., None] * per_bone).sum(1)
    assert (skinned - anny_body(R, shape).vertices).norm(dim=-1).max() < 1e-4


def test_vertices_are_anny_s_own_skinning_over_all_its_bones(anny_body):
    """The body skins over the 30 driven bones only: the vertices anny's own model gives (every one of its
    bones, its own dense linear blend skinning) for random poses and shapes, to a micrometre."""
    torch.manual_seed(1)
    R = roma.rotvec_to_rotmat(0.5 * torch.randn(3, 24, 3))
    shape = torch.rand(3, 6)
    C = anny_body._C
    delta = torch.eye(4).repeat(3, anny_body._num_bones, 1, 1)
    delta[:, anny_body.driven_bones, :3, :3] = (C.T @ R @ C)[:, anny_body.driver_joints]
    own = anny_body.anny(pose_parameters=delta, phenotype_kwargs=shape)
    pelvis = own["bone_poses"][:, anny_body._pelvis_bone, None, :3, 3]
    expected = (own["vertices"] - pelvis) @ C.T
    assert (anny_body(R, shape).vertices - expected).norm(dim=-1).max() < 1e-5


def test_a_stated_height_is_reached_within_a_millimetre_inside_the_phenotypes_range(anny_body):
    """`shape_of_height` from the average body and from a child: the standing height (head top to sole in the
    rest pose) lands on the target, the phenotypes stay in [0, 1], and the average body is left alone at its
    own height."""
    average = anny_body.default_shape(1)
    child = average.clone()
    child[0, 1] = 0.1  # age
    for start in (average, child):
        for target in (1.05, 1.45, 1.75, 1.95):
            shape = anny_body.shape_of_height(start, target)
            assert float(anny_body.standing_height(shape)) == pytest.approx(target, abs=1e-3)
            assert float(shape.min()) >= 0.0 and float(shape.max()) <= 1.0
    own = float(anny_body.standing_height(average))
    assert 1.5 < own < 1.8  # anny's average adult
    torch.testing.assert_close(anny_body.shape_of_height(average, own), average, atol=1e-4, rtol=0)

