"""Keypoint formats on the body's skeleton: MediaPipe-33 -> SMPL-24, COCO-17 -> MediaPipe-33, and the boxes
drawn from keypoints (the rule simulated and real detections share)."""
from __future__ import annotations

import numpy as np
import pytest

from socialmirror.body.keypoints import (KEYPOINT_INDEX, KEYPOINT_NAMES, coco17_to_mediapipe33,
                                         keypoints_box, keypoints_to_boxes, smpl24_mapped_mask, to_smpl24,
                                         to_smpl24_points)
from socialmirror.body.skeleton import JOINT_INDEX
from socialmirror.geometry.camera import box_iou

from _keypoint_helpers import standing


def test_keypoint_names_and_smpl24_mapping():
    assert len(KEYPOINT_NAMES) == 33 and KEYPOINT_NAMES[0] == "nose" and KEYPOINT_NAMES[32] == "right_foot_index"
    kp = standing(300)
    kp[KEYPOINT_INDEX["left_hip"], 2] = 0.4
    j = to_smpl24(kp)
    assert j.shape == (24, 3)
    pelvis = j[JOINT_INDEX["pelvis"]]
    hips = [KEYPOINT_INDEX["left_hip"], KEYPOINT_INDEX["right_hip"]]
    np.testing.assert_allclose(pelvis[:2], kp[hips, :2].mean(axis=0))
    assert pelvis[2] == pytest.approx(0.4)  # a joint is as confident as its weakest source
    np.testing.assert_allclose(j[JOINT_INDEX["left_wrist"], :2], kp[KEYPOINT_INDEX["left_wrist"], :2])
    ears = [KEYPOINT_INDEX["left_ear"], KEYPOINT_INDEX["right_ear"]]
    np.testing.assert_allclose(j[JOINT_INDEX["head"], :2], kp[ears, :2].mean(axis=0))
    unmapped = [JOINT_INDEX[n] for n in ("spine1", "spine2", "spine3", "left_collar", "right_collar")]
    assert np.isnan(j[unmapped, :2]).all() and (j[unmapped, 2] == 0).all()
    assert smpl24_mapped_mask().sum() == 19 and smpl24_mapped_mask(True).all()
    full = to_smpl24(kp, interpolate_torso=True)
    assert np.isfinite(full).all()
    spine = full[[JOINT_INDEX["spine1"], JOINT_INDEX["spine2"], JOINT_INDEX["spine3"]], 1]
    assert spine[0] > spine[1] > spine[2]  # going up the back (image y grows downwards)
    # Batched world landmarks (T, 33, 3) in metres map the same way.
    world = np.random.default_rng(0).normal(size=(5, 33, 3))
    w24 = to_smpl24_points(world)
    assert w24.shape == (5, 24, 3)
    np.testing.assert_allclose(w24[:, JOINT_INDEX["pelvis"]], world[:, [23, 24]].mean(axis=1))


def test_coco17_conversion():
    coco = np.arange(17 * 3, dtype=float).reshape(17, 3)
    mp33 = coco17_to_mediapipe33(coco)
    np.testing.assert_array_equal(mp33[KEYPOINT_INDEX["left_shoulder"]], coco[5])
    np.testing.assert_array_equal(mp33[KEYPOINT_INDEX["right_ankle"]], coco[16])
    heel = KEYPOINT_INDEX["left_heel"]
    assert np.isnan(mp33[heel, :2]).all() and mp33[heel, 2] == 0
    with pytest.raises(ValueError):
        coco17_to_mediapipe33(np.zeros((33, 3)))


def test_person_box_and_overlap():
    a = standing(300)
    box = keypoints_box(a, image_size=(1000, 800))
    assert box[0] < a[:, 0].min() and box[2] > a[:, 0].max() and box[1] < a[:, 1].min()
    assert box_iou(box, box) == pytest.approx(1.0)
    assert box_iou(box, keypoints_box(standing(900))) == 0.0
    assert box_iou(box, np.full(4, np.nan)) == 0.0


def test_pair_boxes_skip_undetected_frames_and_interpolate_over_them():
    """CLIFF boxes (centre, side) from a pair's SMPL-24 keypoints; a person-frame with too few joints is not
    detected, its keypoints are zeroed and its box is interpolated from the neighbouring frames."""
    moving = [to_smpl24(standing(300 + 10 * t)) for t in range(3)]
    still = to_smpl24(standing(700))
    kp = np.stack([np.stack([m, still]) for m in moving])  # (3, 2, 24, 3)
    kp[1, 0, :, 2] = 0.0  # person 0 missed in frame 1
    kp[1, 0, :2, 2] = 0.9  # ... but for two joints: fewer than min_joints
    out, boxes, detected = keypoints_to_boxes(kp)
    assert detected.tolist() == [[True, True], [False, True], [True, True]]
    assert (out[1, 0] == 0).all() and np.isfinite(out).all()
    np.testing.assert_allclose(boxes[1, 0], 0.5 * (boxes[0, 0] + boxes[2, 0]))
    given = np.nan_to_num(kp[0, 1, :, :2])[kp[0, 1, :, 2] > 0]
    np.testing.assert_allclose(boxes[0, 1, :2], 0.5 * (given.min(0) + given.max(0)))
    assert boxes[0, 1, 2] == pytest.approx(1.2 * np.ptp(given, axis=0).max())
