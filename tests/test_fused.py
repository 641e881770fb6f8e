"""Skeletons fitted across two bodies, found through the track and given back their own half (perception.fused)."""
from __future__ import annotations

import numpy as np
import pytest

from socialmirror.body.keypoints import keypoints_box
from socialmirror.perception.fused import (LOWER_HALF, UPPER_HALF, FusedConfig, borrowed_halves, let_go_of_borrowed,
                                           unfuse_tracks)
from socialmirror.perception.tracking import Tracks

from _keypoint_helpers import standing

T = 30
FUSED = range(12, 18)


def leaning(cx, cy, h, degrees):
    """``standing`` turned about its hips by ``degrees`` (positive: the head towards the image's right)."""
    kp = standing(cx, cy=cy, h=h)
    hips = kp[[23, 24], :2].mean(0)
    a = np.radians(degrees)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    kp[:, :2] = (kp[:, :2] - hips) @ rot.T + hips
    return kp


def walking_pair():
    """(2, T, 33, 3): a near person (400 px tall) and a far one (260 px) walking right side by side."""
    near = np.stack([standing(200.0 + 2 * t, cy=400.0, h=400.0) for t in range(T)])
    far = np.stack([standing(330.0 + 2 * t, cy=330.0, h=260.0) for t in range(T)])
    return np.stack([near, far])


def far_on_near_legs():
    """``walking_pair`` (the truth) and what MediaPipe saw: in the FUSED frames the far person's head and
    shoulders on the near person's hips and legs."""
    truth = walking_pair()
    seen = truth.copy()
    for t in FUSED:
        seen[1, t, list(LOWER_HALF)] = truth[0, t, list(LOWER_HALF)]
    return truth, seen


def test_a_far_skeleton_ending_on_the_near_persons_legs_is_found_in_those_frames_only():
    truth, seen = far_on_near_legs()
    borrowed = borrowed_halves(seen, np.ones((2, T), bool))
    expected = np.zeros((2, T), np.int8)
    expected[1, list(FUSED)] = 1
    np.testing.assert_array_equal(borrowed, expected)
    # The track order does not matter.
    np.testing.assert_array_equal(borrowed_halves(seen[::-1], np.ones((2, T), bool)), expected[::-1])


def test_a_head_and_shoulders_borrowed_from_the_other_person_are_the_upper_half():
    truth = walking_pair()
    seen = truth.copy()
    for t in FUSED:  # the near person's legs under the far person's head and shoulders
        seen[0, t, list(UPPER_HALF)] = truth[1, t, list(UPPER_HALF)]
    borrowed = borrowed_halves(seen, np.ones((2, T), bool))
    assert set(np.flatnonzero(borrowed[0])) == set(FUSED) and (borrowed[0, list(FUSED)] == 2).all()
    assert not borrowed[1].any()


def test_people_sharing_hips_in_the_image_with_their_own_posture_throughout_are_left_alone():
    # One person behind the other, the far one leaning 40 degrees: hips on one spot, heads far apart, but
    # neither's head-to-hips offset ever changes.
    near = np.stack([standing(200.0 + 2 * t, cy=400.0, h=400.0) for t in range(T)])
    hips = near[:, [23, 24], :2].mean(1)
    far = np.stack([leaning(0.0, 0.0, 300.0, 40.0) for _ in range(T)])
    far[..., :2] += (hips - far[:, [23, 24], :2].mean(1))[:, None]
    keypoints = np.stack([near, far])
    heads = keypoints[:, 0, :11, :2].mean(1)
    torso = 0.32 * 400.0
    assert np.linalg.norm(heads[0] - heads[1]) / torso > FusedConfig().apart  # heads apart, hips shared
    assert not borrowed_halves(keypoints, np.ones((2, T), bool)).any()


def test_unseen_frames_and_short_tracks_are_not_compared():
    truth, seen = far_on_near_legs()
    present = np.ones((2, T), bool)
    present[0, list(FUSED)] = False  # the near person missed there: nobody to have borrowed from
    assert not borrowed_halves(seen, present).any()
    few = np.zeros((2, T), bool)
    few[:, 10:14] = True  # four frames each: no usual offset to compare with
    assert not borrowed_halves(seen, few).any()


def test_the_borrowed_half_is_the_persons_own_from_the_nearest_clean_frame_moved_with_the_rest():
    truth, seen = far_on_near_legs()
    present = np.ones((2, T), bool)
    borrowed = borrowed_halves(seen, present)
    restored = let_go_of_borrowed(seen, borrowed, present, confidence=0.5)
    # A person walking without changing posture: the half from frame 11 (or 18) moved with the shoulders is
    # exactly where it is.
    np.testing.assert_allclose(restored[1, :, :, :2], truth[1, :, :, :2], atol=1e-9)
    lower = list(LOWER_HALF)
    np.testing.assert_allclose(restored[1][np.ix_(list(FUSED), lower)][..., 2], 0.5 * 0.9)
    np.testing.assert_array_equal(restored[0], seen[0])
    # No clean frame to take the half from: it is left out (confidence 0).
    none_clean = let_go_of_borrowed(seen, np.ones((2, T), np.int8), present)
    assert (none_clean[..., lower, 2] == 0).all()


def test_tracks_get_the_restored_half_and_boxes_around_it():
    truth, seen = far_on_near_legs()
    boxes = np.stack([[keypoints_box(k, image_size=(640, 480)) for k in person] for person in seen])
    tracks = Tracks(ids=[4, 7], keypoints=seen, world=np.full_like(seen, np.nan), boxes=boxes,
                    scores=np.ones((2, T)), image_size=(640, 480))
    fixed, changed = unfuse_tracks(tracks, FusedConfig())
    assert changed == len(FUSED)
    t = FUSED[0]
    np.testing.assert_allclose(fixed.keypoints[1, t, :, :2], truth[1, t, :, :2], atol=1e-4)
    np.testing.assert_allclose(fixed.boxes[1, t], keypoints_box(truth[1, t], image_size=(640, 480)), atol=1e-3)
    np.testing.assert_array_equal(fixed.boxes[0], tracks.boxes[0])
    assert unfuse_tracks(Tracks(ids=[4, 7], keypoints=truth, world=np.full_like(truth, np.nan), boxes=boxes,
                                scores=np.ones((2, T)), image_size=(640, 480)))[1] == 0


@pytest.mark.parametrize("shared, apart", [(0.0, 0.5), (0.5, 0.3)])
def test_config_rejects_thresholds_that_cannot_tell_shared_from_apart(shared, apart):
    with pytest.raises(ValueError):
        FusedConfig(shared=shared, apart=apart)
