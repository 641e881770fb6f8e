"""The floor from people standing on it (geometry.ground): a camera's pitch recovered from the exact
projections of people of known size at known places."""
import math

import numpy as np
import pytest

from socialmirror.geometry.ground import FloorPrior, camera_up, estimate_floor, predicted_head_rows

K = np.array([[1100.0, 0.0, 640.0], [0.0, 1100.0, 360.0], [0.0, 0.0, 1.0]])


def standing_people(pitch: float, camera_height: float, places, head_heights):
    """Image points (T, P, 2) between the feet and of the heads of people standing with their feet at
    ``places`` (T, P, 2): (metres to the right, metres ahead) on the floor, heads ``head_heights`` (P,) above."""
    up = camera_up(pitch)
    ahead = np.array([0.0, 0.0, 1.0]) - up[2] * up
    ahead /= np.linalg.norm(ahead)
    right = np.array([1.0, 0.0, 0.0])
    feet = -camera_height * up + places[..., :1] * right + places[..., 1:] * ahead  # (T, P, 3)
    heads = feet + np.asarray(head_heights)[:, None] * up
    project = (lambda x: (x @ K.T)[..., :2] / (x @ K.T)[..., 2:])  # noqa: E731
    return project(feet), project(heads)


def walking_people(T: int = 30):
    """(T, 2, 2) places of two people walking in depth past each other."""
    walk = np.linspace(0.0, 1.5, T)
    return np.stack([np.stack([np.full(T, -0.8), 3.0 + walk], -1), np.stack([np.full(T, 0.9), 4.5 - walk], -1)], 1)


def test_camera_up_of_a_level_camera_is_minus_y_and_pitch_turns_it_towards_the_camera():
    assert np.allclose(camera_up(0.0), [0.0, -1.0, 0.0])
    assert np.allclose(camera_up(math.radians(30)), [0.0, -math.cos(math.radians(30)), -0.5])


def test_predicted_head_rows_reproduce_the_projection_of_a_standing_person():
    feet, heads = standing_people(0.2, 1.5, np.array([[[0.4, 3.0]]]), [1.6])
    assert predicted_head_rows(0.2, np.array([1.6 / 1.5]), feet[0], K)[0] == pytest.approx(heads[0, 0, 1], abs=1e-6)


@pytest.mark.parametrize("pitch_deg", [0.0, 15.0, -5.0, 25.0])
def test_the_floor_fit_recovers_a_known_pitch_from_people_walking_on_it(pitch_deg):
    feet, heads = standing_people(math.radians(pitch_deg), 1.6, walking_people(), [1.55, 1.30])
    floor = estimate_floor(feet, heads, np.ones((30, 2), bool), K, FloorPrior(frames_per_person=0))
    assert math.degrees(floor.pitch) == pytest.approx(pitch_deg, abs=0.5)
    assert floor.height_ratio == pytest.approx([1.55 / 1.6, 1.30 / 1.6], rel=0.02)
    assert floor.samples == 60


def test_a_noisy_detector_still_gives_the_pitch_within_a_few_degrees():
    feet, heads = standing_people(math.radians(12.0), 1.6, walking_people(60), [1.75, 1.60])
    rng = np.random.default_rng(0)
    feet, heads = feet + rng.normal(0, 3.0, feet.shape), heads + rng.normal(0, 3.0, heads.shape)  # 3 px
    floor = estimate_floor(feet, heads, np.ones((60, 2), bool), K)
    assert abs(math.degrees(floor.pitch) - 12.0) < 3.0
    assert math.degrees(floor.pitch_sigma) < 10.0  # the people said something: surer than the prior


def test_a_person_standing_still_leaves_the_pitch_to_its_prior():
    feet, heads = standing_people(math.radians(20), 1.6, np.array([[[0.5, 4.0]]] * 10), [1.6])
    floor = estimate_floor(feet, heads, np.ones((10, 1), bool), K)
    assert abs(math.degrees(floor.pitch)) < 1.0  # any pitch fits one place: the level prior decides
    assert math.degrees(floor.pitch_sigma) > 9.0  # and says that it is unsure


def test_no_feet_in_view_gives_the_prior():
    feet, heads = standing_people(0.3, 1.6, np.array([[[0.0, 4.0]]] * 5), [1.6])
    floor = estimate_floor(feet, heads, np.zeros((5, 1), bool), K)  # feet not seen (an upper-body view)
    assert floor.samples == 0 and floor.pitch == 0.0 and np.allclose(floor.up, [0.0, -1.0, 0.0])


def test_feet_and_heads_read_the_smpl24_feet_and_head():
    from socialmirror.body.keypoints import feet_and_heads
    from socialmirror.body.skeleton import JOINT_INDEX
    kp = np.zeros((1, 1, 24, 3))
    kp[0, 0, JOINT_INDEX["left_foot"]] = (100, 500, 0.9)
    kp[0, 0, JOINT_INDEX["right_foot"]] = (140, 520, 0.8)
    kp[0, 0, JOINT_INDEX["head"]] = (120, 100, 0.7)
    feet, heads, seen = feet_and_heads(kp)
    assert np.allclose(feet[0, 0], (120, 510)) and np.allclose(heads[0, 0], (120, 100)) and seen[0, 0]
    kp[0, 0, JOINT_INDEX["right_foot"], 2] = 0.2
    assert not feet_and_heads(kp)[2][0, 0]


def landmark_skeleton(lean: float) -> np.ndarray:
    """(1, 1, 24, 3) SMPL-24 joints of an upright body in camera axes (y down) tilted back by ``lean`` radians,
    as MediaPipe's world landmarks show a standing person to a camera looking down (NaN elsewhere)."""
    from socialmirror.body.skeleton import JOINT_INDEX
    up = camera_up(lean)
    j = np.full((1, 1, 24, 3), np.nan)
    for name, height, side in (("left_ankle", 0.0, 0.1), ("right_ankle", 0.0, -0.1),
                               ("left_shoulder", 1.4, 0.2), ("right_shoulder", 1.4, -0.2)):
        j[0, 0, JOINT_INDEX[name]] = height * up + np.array([side, 0.0, 0.0])
    return j


def test_the_bodies_3d_gives_the_pitch_prior():
    """MediaPipe's 3D leans a standing body back by 1 / LANDMARK_PITCH_GAIN of the camera's pitch (measured):
    the prior reads the camera's pitch back from it, with its own spread; no body, the level prior."""
    from socialmirror.body.keypoints import body_axes
    from socialmirror.geometry.ground import LANDMARK_PITCH_GAIN, LANDMARK_PITCH_SIGMA, landmark_prior
    pitch = math.radians(18.0)
    axes = body_axes(landmark_skeleton(pitch / LANDMARK_PITCH_GAIN))
    np.testing.assert_allclose(axes, [camera_up(pitch / LANDMARK_PITCH_GAIN)], atol=1e-9)
    prior = landmark_prior(axes)
    assert prior.pitch == pytest.approx(pitch, abs=1e-9) and prior.pitch_sigma == LANDMARK_PITCH_SIGMA
    assert landmark_prior(body_axes(np.full((2, 1, 24, 3), np.nan))) == FloorPrior()


def test_a_person_standing_still_is_left_to_the_bodies_3d():
    """Rows that say nothing about the pitch (one place) leave it where the bodies' 3D puts it, not level."""
    from socialmirror.geometry.ground import landmark_prior
    feet, heads = standing_people(math.radians(20), 1.6, np.array([[[0.5, 4.0]]] * 10), [1.6])
    prior = landmark_prior(np.array([camera_up(math.radians(15))]))
    floor = estimate_floor(feet, heads, np.ones((10, 1), bool), K, prior)
    assert abs(math.degrees(floor.pitch) - math.degrees(prior.pitch)) < 1.0
