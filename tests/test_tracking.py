"""Tracking on synthetic detections: order swaps, crossings, misses, re-entry, the closest pair, crops, errors."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from socialmirror.body.keypoints import KEYPOINT_INDEX, NUM_KEYPOINTS
from socialmirror.errors import InputError
from socialmirror.perception import detect_and_track
from socialmirror.perception.pose import PersonDetection, PoseDetector
from socialmirror.perception.tracking import (Tracks, appearance_distance, pair_crop_boxes, pair_distances,
                                              select_closest_pair, track)

# A standing person facing the camera, in units of body height around the box centre (person's left = image right).
_TEMPLATE = {
    "nose": (0, -0.42), "left_eye_inner": (0.01, -0.44), "left_eye": (0.02, -0.44), "left_eye_outer": (0.03, -0.44),
    "right_eye_inner": (-0.01, -0.44), "right_eye": (-0.02, -0.44), "right_eye_outer": (-0.03, -0.44),
    "left_ear": (0.05, -0.43), "right_ear": (-0.05, -0.43), "mouth_left": (0.02, -0.40), "mouth_right": (-0.02, -0.40),
    "left_shoulder": (0.12, -0.30), "right_shoulder": (-0.12, -0.30), "left_elbow": (0.15, -0.12),
    "right_elbow": (-0.15, -0.12), "left_wrist": (0.16, 0.02), "right_wrist": (-0.16, 0.02),
    "left_pinky": (0.17, 0.05), "right_pinky": (-0.17, 0.05), "left_index": (0.16, 0.06), "right_index": (-0.16, 0.06),
    "left_thumb": (0.15, 0.05), "right_thumb": (-0.15, 0.05), "left_hip": (0.08, 0.02), "right_hip": (-0.08, 0.02),
    "left_knee": (0.08, 0.25), "right_knee": (-0.08, 0.25), "left_ankle": (0.08, 0.45), "right_ankle": (-0.08, 0.45),
    "left_heel": (0.08, 0.48), "right_heel": (-0.08, 0.48), "left_foot_index": (0.1, 0.49),
    "right_foot_index": (-0.1, 0.49),
}
_REL = np.array([_TEMPLATE[n] for n in sorted(_TEMPLATE, key=lambda n: KEYPOINT_INDEX[n])])
W, H = 1000, 600


def person(cx, cy=300.0, h=300.0, appearance=None, legs=1.0, rng=None, noise=2.0):
    rel = _REL.copy()
    rel[23:, 1] = 0.02 + (rel[23:, 1] - 0.02) * legs  # leg length changes body proportions
    xy = np.array([cx, cy]) + rel * h
    if rng is not None:
        xy = xy + rng.normal(0, noise, xy.shape)
    kp = np.concatenate([xy, np.full((NUM_KEYPOINTS, 1), 0.9)], axis=1)
    world = np.concatenate([(rel - rel[[23, 24]].mean(axis=0)) * 1.7, np.zeros((NUM_KEYPOINTS, 1))], axis=1)
    det = PersonDetection.from_keypoints(kp, world, image_size=(W, H))
    if appearance is not None:
        a = np.asarray(appearance, float)
        if rng is not None:
            a = np.clip(a + rng.normal(0, 0.003, a.shape), 0, None)
        det.appearance = a / a.sum()
    return det


def colours(rng, n):
    """n well-separated appearance histograms (the descriptor's length)."""
    out = []
    for k in range(n):
        a = rng.random(84) * 0.05
        for region in (0, 42):
            a[region + k * 7:region + (k + 1) * 7] += 1.0
        out.append(a / a.sum())
    return out


def centres_x(tracks: Tracks, track_id: int) -> np.ndarray:
    b = tracks.boxes[tracks.index(track_id)]
    return (b[:, 0] + b[:, 2]) / 2


def id_at(tracks: Tracks, frame: int, x: float) -> int:
    """The id of the track whose box centre is nearest ``x`` in ``frame``."""
    xs = [abs(centres_x(tracks, i)[frame] - x) for i in tracks.ids]
    return int(tracks.ids[int(np.nanargmin(xs))])


def test_order_swaps_keep_identities():
    rng = np.random.default_rng(1)
    frames = []
    for t in range(30):
        a, b = person(200 + 2 * t, rng=rng), person(420 - 2 * t, rng=rng)
        frames.append([a, b] if t % 2 == 0 else [b, a])
    tr = track(frames)
    assert tr.num_tracks == 2 and tr.present.all()
    assert np.allclose(centres_x(tr, 0), 200 + 2 * np.arange(30), atol=8)
    assert np.allclose(centres_x(tr, 1), 420 - 2 * np.arange(30), atol=8)


def test_crossing_people_with_shuffled_order():
    rng = np.random.default_rng(2)
    app = colours(rng, 2)
    frames = []
    for t in range(40):
        a = person(150 + 10 * t, appearance=app[0], rng=rng)
        b = person(540 - 10 * t, appearance=app[1], rng=rng)  # they cross around t = 20
        frames.append([a, b] if rng.random() < 0.5 else [b, a])
    tr = track(frames)
    assert tr.num_tracks == 2 and tr.present.all()
    assert np.allclose(centres_x(tr, id_at(tr, 0, 150)), 150 + 10 * np.arange(40), atol=8)


def test_three_frame_miss_is_bridged_and_fillable():
    rng = np.random.default_rng(3)
    frames = []
    for t in range(25):
        people = [person(200 + 3 * t, rng=rng)]
        if not 10 <= t < 13:
            people.append(person(500 - 3 * t, rng=rng))
        frames.append(people[::-1] if t % 3 == 0 else people)
    tr = track(frames)
    assert tr.num_tracks == 2
    b = tr.index(id_at(tr, 0, 500))
    assert not tr.present[b, 10:13].any() and tr.present[b, :10].all() and tr.present[b, 13:].all()
    assert np.isnan(tr.keypoints[b, 11, :, :2]).all() and (tr.keypoints[b, 11, :, 2] == 0).all()
    filled = tr.fill_gaps(max_gap=5)
    assert filled.present.all() and filled.interpolated[b, 10:13].all() and not filled.interpolated[b, :10].any()
    assert abs(centres_x(filled, int(tr.ids[b]))[11] - (500 - 33)) < 8
    assert not tr.fill_gaps(max_gap=2).present[b, 11]  # gaps longer than max_gap stay open


def test_reentry_takes_the_old_id_and_a_newcomer_gets_a_new_one():
    rng = np.random.default_rng(4)
    app = colours(rng, 3)
    frames = []
    for t in range(60):
        people = [person(200, appearance=app[0], rng=rng)]
        if t < 10 or t >= 40:  # B leaves for 30 frames (beyond max_gap) and comes back elsewhere
            people.append(person(450 if t < 10 else 750, appearance=app[1], rng=rng))
        if t >= 50:
            people.append(person(550, appearance=app[2], legs=1.2, rng=rng))
        rng.shuffle(people)
        frames.append(people)
    tr = track(frames, max_gap=10)
    assert tr.num_tracks == 3
    b = tr.index(id_at(tr, 0, 450))
    assert tr.present[b, :10].all() and tr.present[b, 40:].all() and not tr.present[b, 10:40].any()
    assert abs(centres_x(tr, int(tr.ids[b]))[45] - 750) < 8
    c = tr.index(id_at(tr, 55, 550))
    assert c != b and tr.present[c].sum() == 10


def test_reentry_by_body_proportions_when_no_appearance():
    rng = np.random.default_rng(5)
    frames = []
    for t in range(50):
        people = [person(200, legs=0.8, rng=rng)]
        if t < 10 or t >= 35:
            people.append(person(500 if t < 10 else 700, legs=1.25, rng=rng))
        frames.append(people[::-1] if t % 2 else people)
    tr = track(frames, max_gap=5)
    assert tr.num_tracks == 2
    b = tr.index(id_at(tr, 0, 500))
    assert tr.present[b, 35:].all() and abs(centres_x(tr, int(tr.ids[b]))[40] - 700) < 8


def test_beyond_the_reentry_window_a_new_track_starts():
    rng = np.random.default_rng(6)
    app = colours(rng, 2)
    frames = [[person(200, appearance=app[0], rng=rng)] + ([person(500, appearance=app[1], rng=rng)]
                                                           if t < 5 or t >= 40 else []) for t in range(45)]
    assert track(frames, max_gap=5, reentry_window=20).num_tracks == 3
    assert track(frames, max_gap=5, reentry_window=100).num_tracks == 2


def test_many_people_with_misses():
    rng = np.random.default_rng(7)
    starts = np.array([100, 250, 400, 550, 700, 850])
    frames = []
    for t in range(30):
        people = [person(x + 2 * np.sin(t / 5 + k), h=200, rng=rng) for k, x in enumerate(starts)
                  if rng.random() > 0.1 or t == 0]
        rng.shuffle(people)
        frames.append(people)
    tr = track(frames)
    assert tr.num_tracks == 6
    for x in starts:
        i = id_at(tr, 0, x)
        seen = tr.present[tr.index(i)]
        assert seen.sum() > 20 and np.allclose(centres_x(tr, i)[seen], x, atol=10)


def test_closest_pair_among_three_people():
    rng = np.random.default_rng(8)
    frames = []
    for t in range(30):
        people = [person(800, rng=rng), person(180, rng=rng), person(330, rng=rng)]
        if t < 3:  # a passer-by right next to the first person, only briefly
            people.append(person(130, rng=rng))
        rng.shuffle(people)
        frames.append(people)
    tr = track(frames)
    pair = select_closest_pair(tr)
    xs = [float(np.nanmean(centres_x(tr, i))) for i in pair]
    assert abs(xs[0] - 180) < 10 and abs(xs[1] - 330) < 10  # the close pair, left person first
    d = pair_distances(tr)
    assert len(d) >= 3


def test_one_person_or_nobody_is_a_clear_error():
    rng = np.random.default_rng(9)
    one = track([[person(300, rng=rng)] for _ in range(5)])
    with pytest.raises(InputError, match="only one person"):
        select_closest_pair(one)
    with pytest.raises(InputError, match="no person"):
        select_closest_pair(track([[] for _ in range(5)]))
    apart = track([[person(200, rng=rng)] if t < 5 else [person(700, rng=rng)] for t in range(10)], reentry_window=0)
    with pytest.raises(InputError, match="ever in view at the same time"):
        select_closest_pair(apart)


def test_pair_crop_boxes_cover_both_and_stay_inside():
    rng = np.random.default_rng(10)
    frames = []
    for t in range(12):
        frames.append([] if t in (5, 6) else [person(300 + 5 * t, rng=rng), person(450 + 5 * t, rng=rng)])
    tr = track(frames, image_size=(W, H))
    pair = select_closest_pair(tr)
    crops = pair_crop_boxes(tr, pair, margin=0.1)
    assert crops.shape == (12, 4) and np.isfinite(crops).all()
    assert (crops[:, :2] >= 0).all() and (crops[:, 2] <= W).all() and (crops[:, 3] <= H).all()
    for t in range(12):
        for i in pair:
            b = tr.boxes[tr.index(i), t]
            if np.isfinite(b).all():
                assert crops[t, 0] <= b[0] and crops[t, 1] <= b[1] and crops[t, 2] >= b[2] and crops[t, 3] >= b[3]
    side = crops[:, 2:] - crops[:, :2]
    assert np.allclose(side[:, 0], side[:, 1], atol=1) or (side >= [[W - 1, H - 1]]).any()
    # Frames with nobody take the crop interpolated from their neighbours.
    assert crops[4, 0] <= crops[5, 0] <= crops[7, 0]
    smooth = pair_crop_boxes(tr, pair, smooth=5)
    assert smooth.shape == (12, 4)


def test_tracks_roundtrip(tmp_path):
    rng = np.random.default_rng(11)
    tr = track([[person(200, rng=rng), person(400, rng=rng)] for _ in range(6)], fps=25.0, image_size=(W, H))
    tr.meta["note"] = "hello"
    path = tr.save(tmp_path / "tracks.npz")
    back = Tracks.load(path)
    assert back.fps == 25.0 and back.image_size == (W, H) and back.meta["note"] == "hello"
    np.testing.assert_array_equal(back.ids, tr.ids)
    np.testing.assert_array_equal(back.keypoints, tr.keypoints)
    np.testing.assert_array_equal(back.boxes, tr.boxes)
    assert back.keypoint_names == tr.keypoint_names
    pk = back.pair_keypoints((1, 0))
    assert pk.shape == (6, 2, NUM_KEYPOINTS, 3)
    np.testing.assert_array_equal(pk[:, 0], tr.keypoints[1])
    with pytest.raises(InputError):
        Tracks.load(tmp_path / "missing.npz")


def test_appearance_distance_basics():
    rng = np.random.default_rng(12)
    a, b = colours(rng, 2)
    assert appearance_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert appearance_distance(a, b) > 0.8
    assert appearance_distance(a, None) is None
    assert appearance_distance(np.zeros(84), a) is None


class _FakeDetector(PoseDetector):
    """A user's own detector: two people whose positions are encoded in the frame's brightness."""

    def __init__(self):
        self.closed = False

    def detect(self, frame_rgb):
        t = int(round(frame_rgb[0, 0, 0] / 10))
        people = [person(300 + 4 * t), person(600 - 4 * t)]
        return people[::-1] if t % 2 else people

    def close(self):
        self.closed = True


def test_a_plugged_in_detector_runs_through_detect_and_track(tmp_path):
    for t in range(8):
        cv2.imwrite(str(tmp_path / f"f{t}.png"), np.full((H, W, 3), 10 * t, dtype=np.uint8))
    det = _FakeDetector()
    tr = detect_and_track(tmp_path, detector=det, progress=False, fps=10)
    assert not det.closed  # a detector passed in is left to its owner
    assert tr.num_tracks == 2 and tr.present.all() and tr.fps == 10 and tr.image_size == (W, H)
    assert np.allclose(centres_x(tr, 0), 300 + 4 * np.arange(8), atol=3)
    assert set(tr.meta["timing_ms_per_frame"]) == {"read", "detect", "appearance", "track", "bridge"}
    assert tr.meta["frames"] == 8


class _SlowFakeDetector(_FakeDetector):
    """The fake detector taking longer on early frames, so that parallel workers finish out of order."""

    made: list = []

    def __init__(self):
        super().__init__()
        _SlowFakeDetector.made.append(self)

    def detect(self, frame_rgb):
        time.sleep(0.02 * (frame_rgb[0, 0, 0] < 40))
        return super().detect(frame_rgb)


def test_several_workers_detect_each_frame_once_and_keep_the_frames_order(tmp_path):
    for t in range(12):
        cv2.imwrite(str(tmp_path / f"f{t:02d}.png"), np.full((H, W, 3), 10 * t, dtype=np.uint8))
    one = detect_and_track(tmp_path, detector=_FakeDetector(), progress=False, fps=10)
    _SlowFakeDetector.made = []
    two = detect_and_track(tmp_path, detector=_SlowFakeDetector, progress=False, fps=10, workers=2)
    assert np.array_equal(one.ids, two.ids) and np.allclose(one.keypoints, two.keypoints, equal_nan=True)
    assert np.allclose(centres_x(two, 0), 300 + 4 * np.arange(12), atol=3) and two.meta["workers"] == 2
    # A detector per worker thread, made here and closed here.
    assert 1 <= len(_SlowFakeDetector.made) <= 2 and all(d.closed for d in _SlowFakeDetector.made)
    with pytest.raises(ValueError, match="a function that makes detectors"):
        detect_and_track(tmp_path, detector=_FakeDetector(), progress=False, workers=2)


class _WarmingFakeDetector(_FakeDetector):
    """The fake detector counting its warm-ups and the frames it detected."""

    made: list = []

    def __init__(self):
        super().__init__()
        self.warm_ups = self.frames = 0
        _WarmingFakeDetector.made.append(self)

    def warm_up(self):
        self.warm_ups += 1

    def detect(self, frame_rgb):
        self.frames += 1
        return super().detect(frame_rgb)


def test_a_warmed_up_pool_has_its_detectors_before_the_first_frame_and_makes_no_more():
    from socialmirror.perception.pipeline import DetectorPool
    frames = [np.full((H, W, 3), 10 * t, dtype=np.uint8) for t in range(12)]
    _WarmingFakeDetector.made = []
    pool = DetectorPool.of(_WarmingFakeDetector, 2).warm_up()
    assert len(pool.made) == 2 and all(d.warm_ups == 1 and d.frames == 0 for d in pool.made)
    warm = list(pool.detect_in_order(iter(frames)))
    assert _WarmingFakeDetector.made == pool.made and sum(d.frames for d in pool.made) == 12
    assert pool.warm_up().made == _WarmingFakeDetector.made  # warming a warm pool makes nothing
    made = list(pool.made)
    pool.close()
    assert all(d.closed for d in made)
    cold = list(DetectorPool.of(_FakeDetector, 2).detect_in_order(iter(frames)))
    assert [[p.keypoints.tolist() for p in f] for f in warm] == [[p.keypoints.tolist() for p in f] for f in cold]


def test_a_stray_detection_beside_one_person_is_not_a_partner():
    """Issue 15 case 10: one person through 40 frames and a detection seen in one frame: the one-person error,
    not a pair with an invented second body. Together in 10% of the frames is enough."""
    rng = np.random.default_rng(11)
    stray = track([[person(300, rng=rng)] + ([person(900, rng=rng)] if t == 7 else []) for t in range(40)])
    with pytest.raises(InputError, match="only one person is in view for most of the video"):
        select_closest_pair(stray)
    brief = track([[person(300, rng=rng)] + ([person(420, rng=rng)] if t < 4 else []) for t in range(40)])
    assert len(select_closest_pair(brief)) == 2


def test_a_pair_too_far_apart_to_interact_is_warned_about(caplog, tmp_path):
    """Issue 15 case 10: the pair stage names a pair whose boxes stay more than FAR_APART body heights apart."""
    import logging

    from socialmirror import pipeline
    rng = np.random.default_rng(12)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")

    def perceived(right_x):
        tr = track([[person(100, rng=rng, h=150), person(right_x, rng=rng, h=150)] for _ in range(12)],
                   image_size=(W, H))
        return pipeline.Perception(pipeline.VideoInput.at(video), tr)
    with caplog.at_level(logging.WARNING):
        pipeline.pair(perceived(250), pipeline.StageCache(None))
    assert "too far apart to interact" not in caplog.text
    with caplog.at_level(logging.WARNING):
        pipeline.pair(perceived(900), pipeline.StageCache(None))
    assert "too far apart to interact" in caplog.text


def _unjoined(frames) -> Tracks:
    """The tracker's tracks before it joins fragments."""
    from unittest import mock
    with mock.patch("socialmirror.perception.tracking.join_fragments", lambda tracks, max_gap: tracks):
        return track(frames)


def _split(tr: Tracks, index: int, first: np.ndarray) -> Tracks:
    """``tr`` with track ``index`` split in two: its frames where ``first`` holds, and the rest."""
    parts = []
    for frames in (first, ~first):
        part = tr.subset([tr.ids[index]])
        part.keypoints[:, ~frames] = np.nan
        part.world[:, ~frames] = np.nan
        part.boxes[:, ~frames] = np.nan
        part.scores[:, ~frames] = 0.0
        parts.append(part)
    others = [i for i in range(tr.num_tracks) if i != index]
    cat = (lambda name: np.concatenate([getattr(tr, name)[others]] + [getattr(p, name) for p in parts]))  # noqa: E731
    return Tracks(np.arange(tr.num_tracks + 1), cat("keypoints"), cat("world"), cat("boxes"), cat("scores"),
                  tr.fps, tr.image_size)


@pytest.mark.parametrize("how", ["taking turns", "one after the other"])
def test_one_person_split_in_two_tracks_is_joined_again(how):
    """A person the matching split into two ids (taking turns frame by frame, or one ending where the other
    begins) is one track again, seen in every frame; the partner beside them is left alone."""
    from socialmirror.perception.tracking import join_fragments
    rng = np.random.default_rng(11)
    tr = track([[person(200 + 2 * t, rng=rng), person(420 - 2 * t, rng=rng)] for t in range(30)])
    assert tr.num_tracks == 2 and join_fragments(tr) is tr  # two people seen together are never joined
    frames = np.arange(30)
    split = _split(tr, 1, frames % 2 == 0 if how == "taking turns" else frames < 15)
    joined = join_fragments(split)
    assert joined.num_tracks == 2 and joined.present.all() and joined.ids.tolist() == [0, 1]
    right = joined.ids[int(np.argmax([centres_x(joined, i)[0] for i in joined.ids]))]
    assert np.allclose(centres_x(joined, right), 420 - 2 * frames, atol=8)
    assert joined.meta["joined_fragments"] == [[1, 2]]  # the split person's two ids


def test_one_person_detected_twice_then_by_the_second_only_is_one_track():
    """A walking person is detected twice in frames 12-19 (a second skeleton with the same upper body and
    other legs, MediaPipe's duplicate) and then only as that second skeleton: the tracker makes two tracks that
    are seen together, but never as two people; they are one person, beside a partner left alone."""
    from socialmirror.perception.tracking import join_fragments
    rng = np.random.default_rng(13)
    frames = []
    for t in range(30):
        walker, twice = person(200 + 3 * t, rng=rng), person(200 + 3 * t, legs=1.4, rng=rng)
        seen = [walker] if t < 12 else [walker, twice] if t < 20 else [twice]
        frames.append(seen + [person(600, rng=rng)])
    joined = track(frames)  # the tracker joins its fragments itself
    assert joined.num_tracks == 2 and joined.present.all()
    assert joined.meta["joined_fragments"] == [[0, 2]]  # the walker and the walker's second skeleton
    walker = id_at(joined, 0, 200)
    assert np.allclose(centres_x(joined, walker), 200 + 3 * np.arange(30), atol=10)
    # Counting the doubled frames as seen together leaves three tracks.
    assert join_fragments(_unjoined(frames)).num_tracks == 2
    assert join_fragments(_unjoined(frames), duplicate=0.0).num_tracks == 3


def test_a_newcomer_where_nobody_was_is_not_joined_to_someone_who_left():
    """One person leaves at frame 15 and another appears far from them: two people, not one."""
    from socialmirror.perception.tracking import join_fragments
    rng = np.random.default_rng(12)
    frames = [[person(200, rng=rng)] if t < 15 else [person(800, rng=rng)] for t in range(30)]
    tr = track(frames, reentry_window=0)
    assert tr.num_tracks == 2 and join_fragments(tr).num_tracks == 2


def test_select_people_pairs_everyone_with_their_closest_partner():
    """Three people at x = 180, 330 and 800 and a passer-by for two frames: two people are the closest pair;
    three are everyone seen often enough, left to right, each with their nearest partner (the third's is the
    middle one), reconstructed in two pairs."""
    from socialmirror.perception.tracking import select_people
    rng = np.random.default_rng(8)
    frames = []
    for t in range(30):
        people = [person(800, rng=rng), person(180, rng=rng), person(330, rng=rng)]
        if t < 2:
            people.append(person(560, rng=rng))
        rng.shuffle(people)
        frames.append(people)
    tr = track(frames)
    left, middle, right = (id_at(tr, 10, x) for x in (180, 330, 800))
    pair = select_people(tr, 2)
    assert pair.ids == (left, middle) and pair.pairs == [(left, middle)]
    everyone = select_people(tr, 4)
    assert everyone.ids == (left, middle, right)
    assert everyone.partners == (middle, left, middle)
    assert everyone.pairs == [(left, middle), (middle, right)]  # the closest pair first
    assert everyone.closest in ((left, middle), (middle, left))
    assert select_people(tr, 3) == everyone


def test_detections_go_to_the_track_whose_clothes_they_show():
    """Two people stand side by side, overlapping; in frames 10-14 the detector puts each skeleton where the
    other stands (an overlap leaves open who is who). Frame to frame the tracks follow the places and swap
    people; settled by appearance, each track keeps one person's clothes in every frame, and without the
    settling (margin 0) it does not."""
    rng = np.random.default_rng(21)
    app = colours(rng, 2)
    frames = []
    for t in range(30):
        a, b = (340, 300) if 10 <= t < 15 else (300, 340)
        frames.append([person(a, appearance=app[0], rng=rng), person(b, appearance=app[1], rng=rng)])

    settled, swapped = track(frames), track(frames, settle_margin=0.0)
    assert settled.num_tracks == 2 and settled.present.all()
    left = id_at(settled, 0, 300)
    positions = centres_x(settled, left)
    assert np.allclose(positions[10:15], 340, atol=8) and np.allclose(positions[:10], 300, atol=8)
    left = id_at(swapped, 0, 300)
    assert np.allclose(centres_x(swapped, left), 300, atol=8)  # the places followed: person swapped


def test_settling_identities_moves_a_detection_only_where_clothes_say_so():
    """``settle_identities`` on held detections: track 0 holds person B's detections in frames 5-7 and track 1
    person A's; settled, each holds one person throughout. Detections without a descriptor stay put."""
    from socialmirror.perception.tracking import settle_identities
    rng = np.random.default_rng(22)
    app = colours(rng, 2)
    dets = [[person(300, appearance=app[0], rng=rng), person(340, appearance=app[1], rng=rng)] for _ in range(20)]
    held = [{t: dets[t][int(5 <= t < 8)] for t in range(20)}, {t: dets[t][1 - int(5 <= t < 8)] for t in range(20)}]
    settled = settle_identities(held, 20, max_gap=10, margin=0.15)
    assert all(settled[0][t] is dets[t][0] and settled[1][t] is dets[t][1] for t in range(20))
    for t in range(5, 8):  # without colours nothing tells them apart
        for d in dets[t]:
            d.appearance = None
    kept = settle_identities(held, 20, max_gap=10, margin=0.15)
    assert all(kept[i][t] is held[i][t] for i in range(2) for t in range(5, 8))


def test_appearance_costs_are_the_pairwise_distances():
    """``appearance_costs`` gives ``appearance_distance`` for every pair at once, 0.5 where nothing is shared
    (a missing descriptor, or regions seen on one side only)."""
    from socialmirror.perception.tracking import appearance_costs
    rng = np.random.default_rng(23)
    models = rng.random((3, 84))
    models[1, 42:] = 0.0  # thighs not seen
    descriptors = [rng.random(84), None, np.concatenate([np.zeros(42), rng.random(42)])]
    cost = appearance_costs(models, descriptors)
    for m in range(3):
        for k, d in enumerate(descriptors):
            expected = appearance_distance(models[m], d)
            assert cost[m, k] == pytest.approx(0.5 if expected is None else expected, abs=1e-9)
