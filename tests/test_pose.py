"""MediaPipe pose: the cached task bundle, detections, the second pass, and the real two-person clip."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

from socialmirror.body.keypoints import KEYPOINT_INDEX, coco17_to_mediapipe33, keypoints_box
from socialmirror.geometry.camera import box_iou
from socialmirror.paths import cache_dir
from socialmirror.perception import detect_and_track, pair_crop_boxes, select_closest_pair
from socialmirror.perception.pose import (MediaPipePoseDetector, PersonDetection, person_mask, pose_task_bundle,
                                          same_person, same_upper_body)

from _keypoint_helpers import standing as _standing

CLIP = "closeint_demo_clip"

# Boxes labelled by hand (x0, y0, x1, y1 in pixels of the 940x1280 frames, whole visible body including
# outstretched limbs): the man in the white shirt on the left, the woman on the right.
HAND_LABELS = {
    0: {"man": (165, 310, 470, 1125), "woman": (485, 398, 760, 930)},    # 000055.jpg
    7: {"man": (165, 318, 508, 978), "woman": (440, 455, 720, 930)},     # 000062.jpg
    11: {"man": (178, 338, 522, 972), "woman": (400, 443, 715, 922)},    # 000066.jpg
    15: {"man": (190, 335, 515, 982), "woman": (420, 388, 702, 928)},    # 000070.jpg
}


@pytest.fixture(scope="session")
def bundle():
    """The task bundle, built (or found) once per test session in the project's cache folder."""
    return pose_task_bundle()


@pytest.fixture(scope="module")
def detector(bundle):
    det = MediaPipePoseDetector(num_poses=2, second_pass=True, bundle_path=bundle)
    yield det
    det.close()


# -- bundle ----------------------------------------------------------------------------------------------------

def test_bundle_is_built_once_and_cached(bundle):
    assert bundle.parent == cache_dir() / "mediapipe" and bundle.suffix == ".task"
    with zipfile.ZipFile(bundle) as zf:
        assert {"pose_detector.tflite", "pose_landmarks_detector.tflite"} <= set(zf.namelist())
    stamp = bundle.stat().st_mtime_ns
    assert pose_task_bundle() == bundle and bundle.stat().st_mtime_ns == stamp  # reused, not rebuilt


def test_corrupt_or_missing_bundle_is_rebuilt(tmp_path):
    path = tmp_path / "pose.task"
    path.write_bytes(b"not a zip")
    assert pose_task_bundle(path) == path
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None and len(zf.namelist()) == 2
    missing = tmp_path / "sub" / "again.task"
    assert pose_task_bundle(missing).is_file()


def test_detection_from_coco17_keypoints():
    coco = np.arange(17 * 3, dtype=float).reshape(17, 3)
    det = PersonDetection.from_keypoints(coco17_to_mediapipe33(coco))
    assert np.isfinite(det.box).all() and np.isnan(det.world).all()


def test_box_duplicate_test_and_mask():
    a = _standing(300)
    box = keypoints_box(a, image_size=(1000, 800))
    assert box[0] < a[:, 0].min() and box[2] > a[:, 0].max() and box[1] < a[:, 1].min()
    b = a.copy()
    b[:, :2] += 5
    assert same_person(a, b)
    assert not same_person(a, _standing(420))
    mixed = a.copy()  # upper body of one person, legs of another
    mixed[23:, :2] = _standing(420)[23:, :2]
    assert not same_person(a, mixed)
    # ... which is still one upper body in one place: the same person, twice (not two people side by side).
    assert same_upper_body(a, mixed) and same_upper_body(a, b)
    assert not same_upper_body(a, _standing(420)) and not same_upper_body(a, _standing(380))
    m = person_mask(a, (800, 1000))
    assert m[int(a[KEYPOINT_INDEX["left_hip"], 1]) - 20, int(a[:, 0].mean())]  # the torso is painted
    assert not m[:, 600:].any()
    hidden = a.copy()
    # an arm the model only guesses is not painted
    hidden[[KEYPOINT_INDEX["left_elbow"], KEYPOINT_INDEX["left_wrist"]], 2] = 0.1
    elbow_to_wrist = ((a[KEYPOINT_INDEX["left_elbow"], :2] + a[KEYPOINT_INDEX["left_wrist"], :2]) / 2).astype(int)
    assert m[elbow_to_wrist[1], elbow_to_wrist[0]] and not person_mask(hidden, (800, 1000))[elbow_to_wrist[1],
                                                                                              elbow_to_wrist[0]]


# -- second pass logic, with scripted landmarker outputs ---------------------------------------------------------

def _det(kp, source="pass1"):
    return PersonDetection(kp, np.zeros((33, 3)), keypoints_box(kp, image_size=(1000, 800)),
                           float(kp[:, 2].mean()), source=source)


def test_second_pass_recovers_a_person_hidden_behind_a_duplicate(detector, monkeypatch):
    a, b = _standing(300), _standing(520)
    b[KEYPOINT_INDEX["right_wrist"], :2] = a[KEYPOINT_INDEX["left_hip"], :2] + (0, -30)  # B's hand touches A's belly
    calls = []

    def scripted(frame, source):
        calls.append(frame.copy())
        if source == "pass1":  # MediaPipe's failure: A twice, B missing
            a2 = a.copy()
            a2[:, :2] += 4
            return [_det(a), _det(a2)]
        return [_det(b, source)]

    monkeypatch.setattr(detector, "run_landmarker", scripted)
    frame = np.full((800, 1000, 3), 90, dtype=np.uint8)
    people = detector.detect(frame)
    assert len(people) == 2 and len(calls) == 2 and detector.last_passes == 2
    assert same_person(people[0].keypoints, a) and same_person(people[1].keypoints, b)
    # The second call saw A painted over (with the frame's background colour) and B's hand on the paint ...
    assert (calls[1][int(a[KEYPOINT_INDEX["left_hip"], 1]) - 20, 300] == 90).all()
    # ... so that hand keeps its place but loses half its confidence.
    wrist = people[1].keypoints[KEYPOINT_INDEX["right_wrist"]]
    np.testing.assert_allclose(wrist[:2], b[KEYPOINT_INDEX["right_wrist"], :2], atol=1e-3)
    assert wrist[2] == pytest.approx(0.45) and people[1].source.endswith("+hidden")


def test_second_pass_prefers_unmasked_landmarks_of_a_confirmed_person(detector, monkeypatch):
    a, b = _standing(300), _standing(480)
    b_masked = b.copy()
    b_masked[KEYPOINT_INDEX["right_wrist"], :2] = a[KEYPOINT_INDEX["left_hip"], :2]  # guessed on the paint
    b_seen = b.copy()
    # seen in the unmasked frame
    b_seen[KEYPOINT_INDEX["right_wrist"], :2] = a[KEYPOINT_INDEX["left_hip"], :2] + (6, -8)

    def scripted(frame, source):
        return [_det(a), _det(b_seen)] if source == "pass1" else [_det(b_masked, source)]

    monkeypatch.setattr(detector, "run_landmarker", scripted)
    people = detector.detect(np.full((800, 1000, 3), 90, dtype=np.uint8))
    assert len(people) == 2 and people[1].source.endswith("+pass1")
    wrist = KEYPOINT_INDEX["right_wrist"]
    np.testing.assert_allclose(people[1].keypoints[wrist], b_seen[wrist], atol=1e-3)


def test_isolated_people_need_no_second_pass(detector, monkeypatch):
    apart = [_det(_standing(200)), _det(_standing(800))]
    monkeypatch.setattr(detector, "run_landmarker", lambda frame, source: list(apart))
    people = detector.detect(np.zeros((800, 1000, 3), dtype=np.uint8))
    assert len(people) == 2 and detector.last_passes == 1


def test_with_the_pair_found_a_third_person_is_looked_for_only_where_the_first_call_hints_at_one(bundle,
                                                                                                 monkeypatch):
    """Asked for three people (as reconstruct's detector is), two people standing apart cost one landmarker
    call: nothing hints at a third (the first call returned two, none overlapping). A first call that returned
    as many people as asked for (one a duplicate), or ``pair_first=False``, still gets the masked pass."""
    apart = [_det(_standing(200)), _det(_standing(800))]
    with MediaPipePoseDetector(num_poses=3, bundle_path=bundle, recall=False) as det:
        monkeypatch.setattr(det, "run_landmarker", lambda frame, source: list(apart) if source == "pass1" else [])
        assert len(det.detect(np.zeros((800, 1000, 3), dtype=np.uint8))) == 2 and det.last_passes == 1
        # Three returned, one of them a duplicate: MediaPipe gave all it was asked for, someone may be missing.
        saturated = apart + [_det(_standing(200))]
        monkeypatch.setattr(det, "run_landmarker",
                            lambda frame, source: list(saturated) if source == "pass1" else [])
        assert len(det.detect(np.zeros((800, 1000, 3), dtype=np.uint8))) == 2 and det.last_passes == 2
    with MediaPipePoseDetector(num_poses=3, bundle_path=bundle, recall=False, pair_first=False) as det:
        monkeypatch.setattr(det, "run_landmarker", lambda frame, source: list(apart) if source == "pass1" else [])
        det.detect(np.zeros((800, 1000, 3), dtype=np.uint8))
        assert det.last_passes == 2


def test_empty_frame_and_bad_input(detector):
    assert detector.detect(np.full((240, 320, 3), 128, dtype=np.uint8)) == []
    with pytest.raises(ValueError):
        detector.detect(np.zeros((240, 320), dtype=np.uint8))


# -- the real two-person clip ------------------------------------------------------------------------------------

_RESULTS: dict = {}


def _clip_tracks(shared_data, detector):
    """Detection and tracking of the clip, run once per test module."""
    key = str(shared_data / CLIP)
    if key not in _RESULTS:
        _RESULTS[key] = detect_and_track(shared_data / CLIP, detector=detector, progress=False)
    return _RESULTS[key]


@pytest.mark.shared_data
def test_real_clip_both_people_in_every_frame_with_stable_identities(shared_data, detector):
    tracks = _clip_tracks(shared_data, detector)
    assert tracks.num_frames == 16 and tracks.image_size == (940, 1280)
    pair = select_closest_pair(tracks)
    idx = [tracks.index(i) for i in pair]
    assert tracks.present[idx].all(), "both people must be found in all 16 frames"
    # Identities: in every hand-labelled frame the same track is the man and the other the woman.
    for frame, labels in HAND_LABELS.items():
        for who, i in zip(("man", "woman"), idx):  # select_closest_pair returns the left person first
            own = box_iou(tracks.boxes[i, frame], np.array(labels[who], dtype=float))
            other = box_iou(tracks.boxes[i, frame], np.array(labels["woman" if who == "man" else "man"], float))
            assert own >= 0.6 and own > other + 0.3, (frame, who, own, other)
    # No identity jumps between labelled frames either: box centres move smoothly.
    centres = (tracks.boxes[idx, :, :2] + tracks.boxes[idx, :, 2:]) / 2
    assert np.abs(np.diff(centres, axis=1)).max() < 60
    crops = pair_crop_boxes(tracks, pair)
    assert crops.shape == (16, 4) and (crops[:, 2] <= 940).all() and (crops[:, 3] <= 1280).all()
    assert set(tracks.meta["timing_ms_per_frame"]) == {"read", "detect", "appearance", "track", "bridge"}


@pytest.mark.shared_data
def test_real_clip_landmarks_are_plausible(shared_data, detector):
    tracks = _clip_tracks(shared_data, detector)
    pair = select_closest_pair(tracks)
    for i in pair:
        k = tracks.keypoints[tracks.index(i)]
        w = tracks.world[tracks.index(i)]
        assert np.isfinite(k[..., :2]).all() and np.isfinite(w).all()
        # World landmarks are metric and hip-centred; shoulders sit about 0.3-0.6 m above the hips.
        np.testing.assert_allclose(w[:, [23, 24]].mean(axis=1), 0.0, atol=0.05)
        torso = np.linalg.norm(w[:, [11, 12]].mean(axis=1) - w[:, [23, 24]].mean(axis=1), axis=-1)
        assert ((torso > 0.3) & (torso < 0.7)).all()
        # The head is above the hips in the image.
        assert (k[:, KEYPOINT_INDEX["nose"], 1] < k[:, KEYPOINT_INDEX["left_hip"], 1]).all()
