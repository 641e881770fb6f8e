"""Perception recall: people MediaPipe's pose detector misses, found from face seeds, a crop around the person
found and tiles, only on frames that are short of people."""
from __future__ import annotations

import numpy as np
import pytest

from socialmirror.perception.pose import MediaPipePoseDetector, PersonDetection, partner_crop, person_mask
from socialmirror.perception.recall import FaceSeed, RegionPoseLandmarker, face_to_region, tile_boxes

from _keypoint_helpers import standing as _standing
from _person_render import person_facing_camera

W, H = 640, 480
K = np.array([[800.0, 0, W / 2], [0, 800.0, H / 2], [0, 0, 1.0]])


@pytest.fixture(scope="module")
def render_person(anny_body):
    """Render one clothed anny body standing upright, facing the camera, at camera-frame (x, z) metres:
    returns the (H, W, 3) image and the body's projected joints (24, 2)."""
    from socialmirror.render.scene import render_scene

    vertices, joints0, faces, colours = person_facing_camera(anny_body)

    def render(x: float, z: float):
        offset = np.array([x, 0.3, z])
        img = render_scene((H, W), K, [(vertices + offset, faces, colours)], background=(150, 160, 150))
        joints = joints0 + offset
        return img, (joints @ K.T)[:, :2] / joints[:, 2:3]

    return render


@pytest.fixture(scope="module")
def detectors():
    plain = MediaPipePoseDetector(num_poses=2, recall=False)
    recall = MediaPipePoseDetector(num_poses=2, recall=True)
    yield plain, recall
    plain.close()
    recall.close()


def test_tiles_overlap_and_cover_the_frame():
    tiles = tile_boxes(640, 480, grid=2, overlap=0.35)
    assert len(tiles) == 4
    covered = np.zeros((480, 640), dtype=int)
    for x0, y0, x1, y1 in tiles:
        covered[y0:y1, x0:x1] += 1
        assert 0.55 * 640 < x1 - x0 < 0.65 * 640 and 0.55 * 480 < y1 - y0 < 0.65 * 480
    assert (covered >= 1).all() and (covered[:, 300:340] >= 2).all() and (covered[220:260] >= 2).all()


def test_face_region_lies_below_the_face_and_spans_the_body():
    cx, cy, side, rotation = face_to_region(FaceSeed(np.array([100.0, 50.0, 140.0, 90.0]), 0.9, "face-short"))
    assert cx == 120.0 and rotation == 0.0
    assert cy > 90 + 2 * 40          # the hips are well below the chin
    assert cy - side / 2 < 50        # the square still holds the head


def test_region_landmarker_finds_a_person_from_a_rough_region_and_nothing_on_an_empty_one(render_person):
    img, joints = render_person(0.0, 4.0)
    landmarker = RegionPoseLandmarker()
    try:
        height = joints[:, 1].max() - joints[:, 1].min()
        hips = joints[[1, 2]].mean(axis=0)  # SMPL-24 left and right hip
        # A region off by a fifth of the body in place and size, as a face seed gives.
        rough = (hips[0] + 0.2 * height, hips[1] - 0.2 * height, 1.6 * height, 0.0)
        pose = landmarker.refine(img, rough)
        assert pose is not None
        found_hips = pose.keypoints[[23, 24], :2].mean(axis=0)
        assert np.linalg.norm(found_hips - hips) < 0.1 * height
        assert pose.keypoints[0, 1] < pose.keypoints[23, 1]  # the nose above the hips
        assert np.isfinite(pose.world).all()
        assert landmarker.refine(np.full((H, W, 3), 150, dtype=np.uint8), rough) is None
    finally:
        landmarker.close()


def test_tiles_find_a_small_person_the_detector_misses(render_person, detectors):
    plain, recall = detectors
    img, joints = render_person(2.0, 14.0)  # about 110 px tall in a 640 x 480 frame
    assert plain.detect(img) == []
    people = recall.detect(img)
    assert len(people) == 1 and people[0].source == "tile"
    hips = joints[[1, 2]].mean(axis=0)
    assert np.linalg.norm(people[0].keypoints[[23, 24], :2].mean(axis=0) - hips) < 15
    assert recall.last_passes > 2  # the tiles cost landmarker calls: counted


def test_recall_runs_only_on_frames_short_of_people(detectors, monkeypatch):
    _, recall = detectors
    calls = []
    monkeypatch.setattr(recall, "find_missed", lambda frame, people: calls.append(len(people)) or people)
    apart = [PersonDetection.from_keypoints(_standing(200.0, 400.0, 300.0)),
             PersonDetection.from_keypoints(_standing(800.0, 400.0, 300.0))]
    monkeypatch.setattr(recall, "run_landmarker", lambda frame, source: list(apart))
    frame = np.zeros((800, 1000, 3), dtype=np.uint8)
    assert len(recall.detect(frame)) == 2 and calls == []
    monkeypatch.setattr(recall, "run_landmarker", lambda frame, source: list(apart[:1]))
    assert len(recall.detect(frame)) == 1 and calls == [1]


def test_partner_crop_is_a_square_around_the_person_clipped_to_the_image():
    assert partner_crop(np.array([300.0, 100.0, 400.0, 300.0]), (1000, 800)) == (210, 60, 490, 340)
    assert partner_crop(np.array([0.0, 500.0, 80.0, 800.0]), (1000, 800)) == (0, 440, 250, 800)


@pytest.mark.parametrize("child_x, found", [(330.0, True), (470.0, False)])
def test_a_small_partner_is_found_in_the_crop_around_the_person_found(detectors, monkeypatch, child_x, found):
    # The landmarker (faked) sees the adult on the whole frame and the child only in a crop, with the adult
    # painted over (as MediaPipe did on a held-out sequence: a child of 100 px beside an adult of 230 px). A
    # child standing behind the adult (boxes overlapping) is not taken: its landmarks there are guesses.
    _, recall = detectors
    adult, child = _standing(500.0, 400.0, 600.0), _standing(child_x, 520.0, 240.0)
    frame = np.full((800, 1000, 3), 100, dtype=np.uint8)
    frame[person_mask(adult, (800, 1000))] = 200
    torso = np.round(adult[[11, 12, 23, 24], :2].mean(0)).astype(int)
    crops = []

    def landmarker(image, source):
        if image.shape[:2] == frame.shape[:2]:
            return [PersonDetection.from_keypoints(adult)]
        crops.append(source)
        x0, y0, x1, y1 = partner_crop(PersonDetection.from_keypoints(adult).box, (1000, 800))
        if source != "beside" or image.shape[:2] != (y1 - y0, x1 - x0) or image[torso[1] - y0, torso[0] - x0, 0] != 100:
            return []
        moved = child.copy()
        moved[:, 0] -= x0
        moved[:, 1] -= y0
        return [PersonDetection.from_keypoints(moved, source=source)]
    monkeypatch.setattr(recall, "run_landmarker", landmarker)
    people = recall.detect(frame)
    assert crops[0] == "beside"
    if not found:
        assert len(people) == 1 and "tile" in crops  # the tiles still looked (and, faked, saw nobody)
        return
    assert len(people) == 2 and people[1].source == "beside" and crops == ["beside"]
    np.testing.assert_allclose(people[1].keypoints, child, atol=1e-3)
    assert recall.last_passes == 3  # the first call, the masked pass, the crop (no tiles needed)


@pytest.mark.shared_data
def test_a_person_turned_away_and_cut_off_is_found_from_the_face(shared_data, detectors):
    """basketball1.png: the man on the right, close to the camera, turned away and cut off by the frame, is
    invisible to MediaPipe's pose detector (even on his crop alone); his face seeds the landmark model."""
    import imageio.v3 as iio

    path = shared_data / "images" / "basketball1.png"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    img = iio.imread(path)
    img = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img[..., :3]
    plain, recall = detectors
    assert len(plain.detect(img)) == 1
    people = recall.detect(img)
    assert len(people) == 2 and people[1].source == "face"
    right = people[1].keypoints
    assert 480 < right[0, 0] < 600 and right[0, 1] < 160           # his head, top right
    assert right[[11, 12], 1].mean() < right[[23, 24], 1].mean()  # upright: shoulders above hips
    assert people[1].box[0] > people[0].box[2]                    # nobody's copy: to the right of the other man
