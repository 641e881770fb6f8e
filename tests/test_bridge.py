"""Bridging a tracked person's missed frames from where they were a frame earlier (perception.bridge)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from socialmirror.perception.bridge import (BridgeConfig, RecentFrames, bridge_backward, bridge_missed_frames,
                                            chains_backward, frames_to_bridge, region_around)
from socialmirror.perception.pose import PersonDetection, PoseDetector
from socialmirror.perception.recall import RegionPose

from _keypoint_helpers import standing
from _person_render import person_facing_camera

W, H = 640, 480
K = np.array([[700.0, 0, W / 2], [0, 700.0, H / 2], [0, 0, 1.0]])


def test_region_centres_on_the_hips_and_spans_the_body():
    kp = standing(300.0, cy=250.0, h=300.0)
    cx, cy, side, rotation = region_around(kp)
    hips = kp[[23, 24], :2].mean(0)
    assert (cx, cy) == pytest.approx(tuple(hips))
    far = np.linalg.norm(kp[:, :2] - hips, axis=1).max()  # the head, 0.44 body heights above the hips
    assert side == pytest.approx(2.5 * 1.15 * far)
    assert rotation == pytest.approx(0.0, abs=1e-9)
    # A person lying with the head to the image's right: the region turns a quarter the other way round
    # than a person lying head-left.
    turned = kp.copy()
    turned[:, 0], turned[:, 1] = hips[0] + (kp[:, 1] - hips[1]) * -1, hips[1] + (kp[:, 0] - hips[0])
    head_right = region_around(turned)[3]
    turned[:, 0] = 2 * hips[0] - turned[:, 0]
    head_left = region_around(turned)[3]
    assert abs(head_right) == pytest.approx(math.pi / 2) and head_left == pytest.approx(-head_right)
    unsure = kp.copy()
    unsure[23, :2] = np.nan
    assert region_around(unsure) is None


def test_frames_to_bridge_follow_a_sighting_for_max_frames():
    present = np.array([[1, 1, 0, 0, 0, 1, 0, 0],
                        [0, 0, 1, 0, 0, 0, 0, 0]], bool)
    wanted = frames_to_bridge(present, BridgeConfig(max_frames=2, min_track_frames=2))
    np.testing.assert_array_equal(wanted[0], [0, 0, 1, 1, 0, 0, 1, 1])
    assert not wanted[1].any()  # seen once: not followed
    # Frames where the pair was detected (someone else beside track 1) are left alone.
    detected = np.array([2, 2, 2, 1, 0, 1, 2, 1])
    wanted = frames_to_bridge(present, BridgeConfig(max_frames=2, min_track_frames=2), detected)
    np.testing.assert_array_equal(wanted[0], [0, 0, 0, 1, 0, 0, 0, 1])


class _SceneLandmarker:
    """The landmark model on a scene of known people: the person whose hips lie inside the region (the nearest
    to its centre), or None where nobody does."""

    def __init__(self, people_at):
        self.people_at = people_at  # frame -> list of (33, 3) keypoints
        self.calls = 0

    def _pose(self, frame, region):
        self.calls += 1
        cx, cy, side, _ = region
        people = self.people_at[int(frame[0, 0, 0])]
        hips = [p[[23, 24], :2].mean(0) for p in people]
        dist = [np.hypot(h[0] - cx, h[1] - cy) for h in hips]
        if not people or min(dist) > side / 4:
            return None
        kp = people[int(np.argmin(dist))]
        return RegionPose(kp, np.zeros((33, 3), np.float32), region_around(kp))

    def landmarks(self, frame, region):
        return self._pose(frame, region)

    def refine(self, frame, region, iterations=2):
        pose = self._pose(frame, region)
        for _ in range(iterations):
            pose = None if pose is None else self._pose(frame, pose.next_region)
        return pose


def _frame(t):
    return np.full((H, W, 3), t, np.uint8)  # the fake landmarker reads the frame's index from its pixels


def _walker_and_stander(frames: int, detected: range):
    """Person A walks right, 20 px a frame, detected by the detector only in the ``detected`` frames; person B
    stands at x = 480, detected throughout: A's keypoints per frame, B's, and the detections, the tracks'
    keypoints and ``present`` that bridging reads."""
    a = [standing(300.0 + 20 * t, cy=250.0, h=300.0) for t in range(frames)]
    b = standing(480.0, cy=250.0, h=300.0)
    per_frame = [[PersonDetection.from_keypoints(b, image_size=(W, H))] for _ in range(frames)]
    present = np.zeros((2, frames), bool)
    present[0, list(detected)] = True
    present[1] = True
    for t in detected:
        per_frame[t].insert(0, PersonDetection.from_keypoints(a[t], image_size=(W, H)))
    missing = np.full((33, 3), np.nan)
    keypoints = np.stack([np.stack([a[t] if present[0, t] else missing for t in range(frames)]),
                          np.stack([b] * frames)]).astype(np.float32)
    return a, b, per_frame, keypoints, present


def test_a_missed_person_is_followed_until_the_chain_meets_someone_else():
    # A is detected in frames 0 and 1 only. From frame 6 on A is hidden behind B: the landmark model on A's
    # region then sees B, whom the chain must not take (no box-overlap test here: only "it is someone detected
    # already").
    a, b, per_frame, keypoints, present = _walker_and_stander(10, range(2))
    scene = _SceneLandmarker({t: [a[t], b] if t < 6 else [b] for t in range(10)})
    out, added = bridge_missed_frames(per_frame, keypoints, present, _frame, scene,
                                      BridgeConfig(max_frames=30, min_track_frames=2, min_overlap=0.0))
    assert added == 4  # frames 2-5
    for t in range(2, 6):
        found = [p for p in out[t] if p.source == "bridge"]
        assert len(found) == 1
        np.testing.assert_allclose(found[0].keypoints, a[t], atol=1e-4)
    assert all(p.source != "bridge" for t in range(6, 10) for p in out[t])
    assert scene.calls == 2 + 3 + 1  # two calls after a detection, one after a bridged frame, one at frame 6
    assert [len(p) for p in per_frame] == [2, 2] + [1] * 8  # the input lists are left as they were


def test_nothing_to_bridge_reads_no_frame():
    present = np.ones((2, 5), bool)
    keypoints = np.stack([np.stack([standing(200.0)] * 5), np.stack([standing(400.0)] * 5)]).astype(np.float32)

    def no_frames(t):
        raise AssertionError("no frame should be read")
    out, added = bridge_missed_frames([[] for _ in range(5)], keypoints, present, no_frames, None)
    assert added == 0 and out == [[] for _ in range(5)]


def test_backward_chains_end_right_before_a_detection_and_reach_max_frames_back():
    present = np.array([[0, 0, 0, 0, 1, 1, 0, 1],
                        [1, 1, 1, 1, 1, 1, 1, 1],
                        [0, 0, 0, 0, 0, 0, 0, 1]], bool)
    # Track 0: frames 0-3 before its first detection (3 of them within max_frames) and frame 6 before frame 7.
    # Track 1 is never missed, track 2 is seen once (not followed).
    assert chains_backward(present, BridgeConfig(max_frames=3, min_track_frames=2)) == [(4, 0, 1), (7, 0, 6)]
    # Through frames short of the pair only: frame 2 had two people detected, so the first chain stops at 3.
    detected = np.array([1, 1, 2, 1, 2, 2, 1, 3])
    assert chains_backward(present, BridgeConfig(max_frames=3, min_track_frames=2), detected) == \
        [(4, 0, 3), (7, 0, 6)]


def test_a_person_found_late_is_followed_back_until_hidden():
    # A is detected from frame 6 on. In frames 0-1 A is hidden behind B (the model on A's region sees B, whom
    # the chain must not take).
    a, b, per_frame, keypoints, present = _walker_and_stander(8, range(6, 8))
    scene = _SceneLandmarker({t: [a[t], b] if t >= 2 else [b] for t in range(8)})
    asked = []

    def frame_at(t):
        asked.append(t)
        return _frame(t)
    out, added = bridge_backward(per_frame, keypoints, present, frame_at, scene,
                                 BridgeConfig(max_frames=30, min_track_frames=2, min_overlap=0.0))
    assert added == 4  # frames 5, 4, 3, 2
    for t in range(2, 6):
        found = [p for p in out[t] if p.source == "bridge"]
        assert len(found) == 1
        np.testing.assert_allclose(found[0].keypoints, a[t], atol=1e-4)
    assert all(p.source != "bridge" for t in (0, 1) for p in out[t])
    assert asked == [5, 4, 3, 2, 1]  # the chain stops at the first frame where A is not found


def test_recent_frames_serve_a_chain_back_to_their_size_and_refuse_older_ones():
    stream = ((t, _frame(t)) for t in range(20))
    frame_at = RecentFrames(stream, size=4)
    assert frame_at(9)[0, 0, 0] == 9
    assert [frame_at(t)[0, 0, 0] for t in (8, 7, 6)] == [8, 7, 6]
    with pytest.raises(RuntimeError, match="no longer held"):
        frame_at(5)
    assert frame_at(15)[0, 0, 0] == 15 and frame_at(12)[0, 0, 0] == 12
    with pytest.raises(RuntimeError, match="ended"):
        frame_at(25)


# ------------------------------------------------------------------------ with MediaPipe's landmark model

@pytest.fixture(scope="module")
def walking_frames(anny_body, tmp_path_factory):
    """A folder of 8 rendered frames of one clothed anny body standing upright, facing the camera, moving 5 cm
    to the right each frame."""
    import imageio.v3 as iio

    from socialmirror.render.scene import render_scene

    vertices, _, faces, colours = person_facing_camera(anny_body)
    folder = tmp_path_factory.mktemp("walking")
    for t in range(8):
        offset = np.array([-0.3 + 0.05 * t, 0.3, 4.0])
        img = render_scene((H, W), K, [(vertices + offset, faces, colours)], background=(150, 160, 150))
        iio.imwrite(folder / f"{t:03d}.png", img)
    return folder


class _BlinkingDetector(PoseDetector):
    """MediaPipe's detector that reports nobody on the frames in ``blind`` (as the real one does beside someone
    else or turned away); the frames arrive in order."""

    def __init__(self, blind):
        from socialmirror.perception.pose import MediaPipePoseDetector
        self.inner, self.blind, self.frame = MediaPipePoseDetector(num_poses=1, recall=False), set(blind), 0

    def detect(self, frame_rgb):
        t, self.frame = self.frame, self.frame + 1
        return [] if t in self.blind else self.inner.detect(frame_rgb)

    def close(self):
        self.inner.close()


@pytest.mark.parametrize("blind, without", [({3, 4, 5}, None), ({0, 1, 2}, BridgeConfig(backward=False))],
                         ids=["missed mid-walk: forward", "found late: backward"])
def test_detect_and_track_bridges_the_frames_the_detector_missed(walking_frames, blind, without):
    from socialmirror.perception.pipeline import detect_and_track
    plain = detect_and_track(walking_frames, detector=_BlinkingDetector(blind), progress=False, bridge=without)
    bridged = detect_and_track(walking_frames, detector=_BlinkingDetector(blind), progress=False,
                               bridge=BridgeConfig())
    assert plain.present.sum() == 5 and plain.meta["bridged"] == 0
    assert bridged.num_tracks == 1 and bridged.present.all() and bridged.meta["bridged"] == 3
    # The bridged frames continue the walk: the hips move right by about the same step each frame.
    hips_x = bridged.keypoints[0, :, [23, 24], 0].mean(0)
    steps = np.diff(hips_x)
    assert (steps > 0).all() and steps.max() < 2.0 * steps.min()
