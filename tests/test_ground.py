"""The floor from people standing on it (geometry.ground): a camera's pitch recovered from the exact
projections of people of known size at known places."""
import math

import numpy as np
import pytest

from socialmirror.geometry.ground import FloorPrior, camera_up, estimate_floor, floor_depth_log_ratio, predicted_head_rows

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


def _feet_keypoints(feet_uv: np.ndarray) -> np.ndarray:
    """(T, P, 2) points between the feet -> (T, P, 4, 3) four foot keypoints (ankles 6 px either side and 8 px
    above, toes 6 px either side on the point's row), confidence 1."""
    offsets = np.array([[-6.0, -8.0], [6.0, -8.0], [-6.0, 0.0], [6.0, 0.0]])
    uv = feet_uv[:, :, None, :] + offsets
    return np.concatenate([uv, np.ones(uv.shape[:-1] + (1,))], -1)


def test_the_floor_gives_the_pairs_depth_ratio_from_their_feet():
    """Two people walking 3-3.6 m and 5-5.4 m ahead on a floor seen from 1.6 m up, pitched down 12 degrees: the
    log of the ratio of their depths is read from where their feet meet the floor, without their sizes; under a
    wrong pitch it is not."""
    pitch = math.radians(12.0)
    T = 20
    places = np.stack([np.stack([np.full(T, -0.5), np.linspace(3.0, 3.6, T)], -1),
                       np.stack([np.full(T, 0.7), np.linspace(5.0, 5.4, T)], -1)], 1)
    feet, heads = standing_people(pitch, 1.6, places, [1.75, 1.2])
    up = camera_up(pitch)
    ahead = np.array([0.0, 0.0, 1.0]) - up[2] * up
    ahead /= np.linalg.norm(ahead)
    points = -1.6 * up + places[..., :1] * np.array([1.0, 0.0, 0.0]) + places[..., 1:] * ahead
    truth = np.median(np.log(points[:, 0, 2] / points[:, 1, 2]))
    height = feet[..., 1] - heads[..., 1]
    got = floor_depth_log_ratio(_feet_keypoints(feet), height, K, up)
    assert got == pytest.approx(truth, abs=1e-6)
    assert floor_depth_log_ratio(_feet_keypoints(feet), height, K, camera_up(0.0)) != pytest.approx(truth, abs=0.05)


def test_a_foot_keypoint_on_the_other_persons_feet_is_not_taken_as_ones_own():
    """The far person's one ankle detected on the near person's foot (as MediaPipe does where legs overlap) in six
    of ten frames: taken as its own, it puts both at one depth there; feet that may be either's are left out,
    and the frames with each one's own feet give the ratio."""
    pitch = math.radians(10.0)
    places = np.tile(np.array([[[0.0, 5.0], [0.3, 3.5]]]), (10, 1, 1))
    feet, heads = standing_people(pitch, 1.5, places, [1.7, 1.7])
    height = feet[..., 1] - heads[..., 1]
    kp = _feet_keypoints(feet)
    up = camera_up(pitch)
    ahead = np.array([0.0, 0.0, 1.0]) - up[2] * up
    ahead /= np.linalg.norm(ahead)
    depth = [(-1.5 * up + np.array([x, 0.0, 0.0]) + d * ahead)[2] for x, d in ((0.0, 5.0), (0.3, 3.5))]
    clean = floor_depth_log_ratio(kp, height, K, up)
    assert clean == pytest.approx(math.log(depth[0] / depth[1]), abs=1e-6)
    kp[:6, 0, 0, :2] = kp[:6, 1, 3, :2] + 3.0  # the far person's left ankle on the near person's toe
    assert floor_depth_log_ratio(kp, height, K, camera_up(pitch)) == pytest.approx(clean, abs=0.01)
    assert floor_depth_log_ratio(kp, height, K, camera_up(pitch), ownership=0.0) < 0.2  # taken: one depth


def test_no_frame_with_both_peoples_feet_gives_no_ratio():
    feet, heads = standing_people(0.1, 1.5, walking_people(5), [1.7, 1.6])
    kp = _feet_keypoints(feet)
    kp[:, 1, :, 2] = 0.0
    assert floor_depth_log_ratio(kp, feet[..., 1] - heads[..., 1], K, camera_up(0.1)) is None
