"""Rotations, the CLIFF crop camera and the motion representation."""
import math

import numpy as np
import pytest
import roma
import torch

from socialmirror.body.motion import MotionParams, MotionRepresentation, motion_dim
from socialmirror.geometry import rotations as rot
from socialmirror.geometry.camera import (PinholeCamera, box_from_points, box_iou, crop_cam_to_transl,
                                         translation_from_keypoints,
                                          focal_from_diagonal, in_image, intrinsics_matrix, person_boxes, project,
                                          project_points, transl_to_crop_cam, world_to_camera)


def test_6d_round_trip_and_gram_schmidt():
    R = roma.random_rotmat(100)
    assert torch.allclose(rot.sixd_to_matrix(rot.matrix_to_6d(R)), R, atol=1e-6)
    # Any 6-vector maps to a proper rotation, and a perturbed 6D keeps its first column's direction.
    r6 = rot.matrix_to_6d(R) + 0.1 * torch.randn(100, 6)
    Q = rot.sixd_to_matrix(r6)
    assert torch.allclose(Q.transpose(-1, -2) @ Q, torch.eye(3).expand(100, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(Q), torch.ones(100), atol=1e-5)
    first = r6.reshape(100, 3, 2)[..., 0]
    assert torch.allclose(Q[..., 0], first / first.norm(dim=-1, keepdim=True), atol=1e-6)


def test_axis_angle_round_trip_and_known_rotation():
    aa = torch.randn(50, 3)
    aa = aa / aa.norm(dim=-1, keepdim=True) * torch.rand(50, 1) * 3.0  # angles below pi
    assert torch.allclose(rot.matrix_to_axis_angle(rot.axis_angle_to_matrix(aa)), aa, atol=1e-5)
    Rz = rot.axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2]))
    assert torch.allclose(Rz @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
    assert torch.allclose(rot.sixd_to_axis_angle(rot.axis_angle_to_6d(aa)), aa, atol=1e-4)
    assert torch.allclose(rot.geodesic_distance(Rz, torch.eye(3)), torch.tensor(math.pi / 2), atol=1e-6)


def test_euler_composition_order():
    a = torch.tensor([0.3, -0.2, 0.5])
    expected = (rot.axis_angle_to_matrix(torch.tensor([0.0, 0.0, 0.3]))
                @ rot.axis_angle_to_matrix(torch.tensor([0.0, -0.2, 0.0]))
                @ rot.axis_angle_to_matrix(torch.tensor([0.5, 0.0, 0.0])))
    assert torch.allclose(rot.euler_to_matrix("ZYX", a), expected, atol=1e-6)


def test_crop_camera_round_trip_and_box_centre():
    K = intrinsics_matrix(focal_from_diagonal(1280, 720), 1280, 720)
    transl = torch.tensor([[0.4, -0.2, 4.0], [-1.0, 0.3, 7.5]])
    box = torch.tensor([[800.0, 300.0, 250.0], [300.0, 420.0, 180.0]])
    cam = transl_to_crop_cam(transl, box, K)
    assert torch.allclose(crop_cam_to_transl(cam, box, K), transl, atol=1e-5)
    # With tx = ty = 0 the root projects exactly onto the box centre.
    centred = crop_cam_to_transl(torch.tensor([[0.9, 0.0, 0.0]]), box[:1], K)
    assert torch.allclose(project(centred, K), box[:1, :2], atol=1e-3)
    # s is the box-relative scale: a box twice as large at the same depth means s doubles.
    assert torch.allclose(transl_to_crop_cam(transl[:1], box[:1] * torch.tensor([1, 1, 2.0]), K)[0, 0],
                          cam[0, 0] / 2)


def test_projection_and_box():
    K = intrinsics_matrix(1000.0, 640, 480)
    p = project(torch.tensor([[0.0, 0.0, 2.0], [0.2, -0.1, 2.0]]), K)
    assert torch.allclose(p, torch.tensor([[320.0, 240.0], [420.0, 190.0]]))
    box = box_from_points(torch.tensor([[10.0, 20.0], [30.0, 60.0], [999.0, 999.0]]),
                          torch.tensor([True, True, False]), scale=1.0)
    assert torch.allclose(box, torch.tensor([20.0, 40.0, 40.0]))


def test_motion_representation_dims_and_round_trip():
    assert motion_dim(10) == 157 and motion_dim(6) == 153
    rep = MotionRepresentation(6)
    R = roma.random_rotmat((5, 2, 24))
    shape = torch.rand(5, 2, 6)
    transl = torch.tensor([0.3, 0.1, 5.0]) + 0.2 * torch.randn(5, 2, 3)
    K = intrinsics_matrix(1468.6, 1280, 720)
    box = torch.tensor([640.0, 360.0, 300.0]) + torch.randn(5, 2, 3)
    x = rep.from_world(MotionParams(R, shape, transl), box, K)
    assert x.shape == (5, 2, 153)
    back = rep.to_world(x, box, K)
    assert torch.allclose(back.rotmats, R, atol=1e-5)
    assert torch.allclose(back.shape, shape) and torch.allclose(back.transl, transl, atol=1e-4)


def test_pinhole_camera_hand_values_and_points_behind():
    """x_cam = R x + t, then u = f x / z + cx: a camera 2 m behind the origin looking along +z, and one turned
    90 degrees about y; a point behind the camera projects to NaN and is never in the image."""
    K = np.array([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
    cam = PinholeCamera(np.eye(3), np.array([0.0, 0.0, 2.0]), K, (640, 480))
    pts = np.array([[0.2, -0.1, 0.0], [0.0, 0.0, -3.0]])
    uv = cam.project(cam.to_camera(pts))
    assert np.allclose(uv[0], [320 + 500 * 0.1, 240 - 500 * 0.05]) and np.isnan(uv[1]).all()
    assert cam.in_image(uv).tolist() == [True, False]
    assert np.allclose(cam.centre, [0, 0, -2]) and np.allclose(cam.extrinsics[:3, 3], [0, 0, 2])
    turned = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # world +x is the camera's +z
    assert np.allclose(world_to_camera(np.array([3.0, 0.0, 0.0]), turned, np.zeros(3)), [0, 0, 3])
    # A moving camera: one pose per frame.
    R = np.stack([np.eye(3), turned])
    moving = world_to_camera(np.array([[[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]]]), R, np.zeros((2, 3)))
    assert np.allclose(moving, [[[0, 0, 1]], [[0, 0, 1]]])
    with pytest.raises(ValueError):
        world_to_camera(np.zeros((3, 1, 3)), R, np.zeros((2, 3)))
    skewed = K.copy()
    skewed[0, 1] = 10.0
    assert np.allclose(project_points(np.array([0.2, 0.4, 2.0]), skewed), [320 + 50 + 2, 240 + 100])


def test_in_image_for_numpy_and_torch():
    uv = np.array([[0.0, 0.0], [639.9, 479.9], [640.0, 10.0], [-0.1, 10.0], [np.nan, 5.0]])
    expected = [True, True, False, False, False]
    assert in_image(uv, (640, 480)).tolist() == expected
    assert in_image(torch.from_numpy(uv), (640, 480)).tolist() == expected


def test_person_boxes_and_iou_hand_values():
    uv = np.array([[[0.0, 0.0], [10.0, 10.0], [99.0, 99.0]], [[np.nan, 1.0], [5.0, 0.0], [15.0, 10.0]]])
    boxes = person_boxes(uv, np.array([[True, True, False], [True, True, True]]))
    assert np.allclose(boxes, [[0, 0, 10, 10], [5, 0, 15, 10]])
    assert box_iou(boxes[0], boxes[1]) == pytest.approx(50 / 150)  # 5x10 overlap of two 10x10 boxes
    assert np.isnan(person_boxes(uv[:1], np.zeros((1, 3), bool))).all()
    grid = box_iou(boxes[:, None], boxes[None, :])
    assert grid.shape == (2, 2) and np.allclose(np.diag(grid), 1.0)
    assert box_iou(boxes[0], np.full(4, np.nan)) == 0.0 and box_iou(boxes[0], np.array([20.0, 0, 30, 10])) == 0.0


def test_translation_from_keypoints_recovers_a_known_placement():
    """The exact projection of a body placed at t gives t back, per item; weights of 0 are ignored (an
    outlier there changes nothing); items with fewer than two weighted points give 0."""
    g = torch.Generator().manual_seed(0)
    body = torch.randn(3, 12, 3, generator=g) * 0.4  # three "bodies" of 12 points around their origin
    truth = torch.tensor([[0.3, -0.2, 4.0], [-1.0, 0.5, 7.5], [0.0, 0.0, 2.5]])
    K = torch.tensor([[800.0, 0.0, 320.0], [0.0, 780.0, 240.0], [0.0, 0.0, 1.0]])
    uv = project(body + truth[:, None], K)
    weights = torch.ones(3, 12)
    uv[1, 0] += 300.0  # an outlier on a point without weight
    weights[1, 0] = 0.0
    weights[2, 1:] = 0.0  # one weighted point: not enough
    t = translation_from_keypoints(body, uv, weights, K)
    torch.testing.assert_close(t[:2], truth[:2], atol=1e-3, rtol=0)
    assert torch.equal(t[2], torch.zeros(3))
