"""The offline annotator (contacts with hysteresis, sentences) and the confidence from agreement."""
from __future__ import annotations

import re

import numpy as np
import pytest

from _semantics_helpers import hand_on_shoulder, handshake, to_camera
from socialmirror.body.skeleton import CONTACT_JOINTS, JOINT_INDEX
from socialmirror.semantics.annotations import Contact
from socialmirror.semantics.annotator import annotate_clips
from socialmirror.semantics.offline import (OfflineAnnotator, OfflineConfig, contact_agreement, contact_gaps,
                                            detect_contacts, image_agreement, resolve_person_order)

Y_UP = (0.0, 1.0, 0.0)


def _no_person_words(s: str) -> bool:
    return re.search(r"person\s*[12]", s, re.I) is None


def test_handshake_gives_right_wrist_contact_and_hand_sentences():
    ann = OfflineAnnotator(up=Y_UP).annotate(handshake(), start=32)
    assert (ann.start, ann.end, ann.source) == (32, 48, "offline")
    assert len(ann.contacts) == 1
    c = ann.contacts[0]
    assert (c.joint_a, c.joint_b) == ("right_wrist", "right_wrist")
    assert abs(c.t0 - 5) <= 1 and abs(c.t1 - 10) <= 1
    for s in ann.text:
        assert s.startswith("a person ") and s.endswith(".")
        assert "hand" in s and "others" in s
        assert _no_person_words(s)
    assert ann.confidence > 0.95


def test_far_apart_gives_no_contacts():
    ann = OfflineAnnotator(up=Y_UP).annotate(handshake(dz=3.0))
    assert ann.contacts == ()
    assert all("far" in s or "steps away" in s or "distance" in s for s in ann.text)
    assert all("hand" not in s for s in ann.text)


def test_camera_frame_with_default_up():
    ann = OfflineAnnotator().annotate(to_camera(handshake()))  # OpenCV camera frame, up = -y
    assert [(c.joint_a, c.joint_b, c.t0, c.t1) for c in ann.contacts] == [("right_wrist", "right_wrist", 5, 10)]
    assert all("fac" in s for s in ann.text)  # facing / face to face


def test_hand_on_shoulder_from_each_perspective():
    ann = OfflineAnnotator(up=Y_UP).annotate(hand_on_shoulder())
    assert [(c.joint_a, c.joint_b) for c in ann.contacts] == [("right_wrist", "left_shoulder")]
    t1, t2 = ann.text
    assert "right hand on the other's left shoulder" in t1
    assert "left shoulder being" in t2


def test_hysteresis_bridges_flicker_and_drops_blips():
    j = handshake(T=16, on=(2, 12))
    # frame 7: the hands drift to a gap between enter (0.10) and leave (0.15): the contact holds
    for p in (0, 1):
        j[7, p, JOINT_INDEX["right_hand"]] += np.array([0.0, 0.0, -0.09 if p == 0 else 0.09])
        j[7, p, JOINT_INDEX["right_wrist"]] += np.array([0.0, 0.0, -0.09 if p == 0 else 0.09])
    rw = CONTACT_JOINTS.index("right_wrist")
    assert 0.10 < contact_gaps(j)[7, rw, rw] < 0.15
    contacts = detect_contacts(j)
    assert [(c.t0, c.t1) for c in contacts] == [(2, 12)]
    # a single-frame touch is shorter than min_frames and is dropped
    assert detect_contacts(handshake(on=(6, 6))) == []
    assert detect_contacts(handshake(on=(6, 6)), OfflineConfig(min_frames=1))[0].t0 == 6


def test_sentences_are_deterministic_per_seed():
    j = handshake()
    a = OfflineAnnotator(up=Y_UP, seed=1).annotate(j)
    b = OfflineAnnotator(up=Y_UP, seed=1).annotate(j)
    assert a.text == b.text
    texts = {OfflineAnnotator(up=Y_UP, seed=s).annotate(j).text for s in range(8)}
    assert len(texts) > 1  # the wording varies with the seed


def test_contact_agreement():
    j = handshake()
    right = [Contact("right_wrist", "right_wrist", 5, 10)]
    assert contact_agreement(right, j) > 0.95
    assert contact_agreement([Contact("left_ankle", "head", 0, 15)], j) == pytest.approx(0.0, abs=0.05)
    assert contact_agreement([], j) == pytest.approx(0.5)  # every geometric contact missed
    assert contact_agreement([], handshake(dz=3.0)) == 1.0  # nothing to see, nothing said
    half = contact_agreement([Contact("right_wrist", "right_wrist", 0, 15)], j)
    assert 0.3 < half < 0.9  # claimed over the whole clip, true for 6 of 16 frames
    near = contact_agreement([Contact("right_elbow", "right_wrist", 5, 10)], j)
    assert near > 0.5  # a neighbouring joint still mostly agrees
    for v in (half, near):
        assert 0.0 <= v <= 1.0


def two_people_in_the_image(T: int, gap_px) -> np.ndarray:
    """(T, 2, 24, 3) keypoints of two people 200 px tall (head at v=100, feet at v=300), person 1's right
    wrist ``gap_px[t]`` to the left of person 2's left shoulder at (500, 150); every joint seen."""
    kp = np.zeros((T, 2, 24, 3))
    kp[..., 2] = 1.0
    kp[:, :, :, 1] = np.linspace(100, 300, 24)  # heights: 200 px each
    kp[:, 1, JOINT_INDEX["left_shoulder"], :2] = (500, 150)
    kp[:, 0, JOINT_INDEX["right_wrist"], :2] = np.stack([500 - np.asarray(gap_px, float), np.full(T, 150.0)], -1)
    return kp


def test_image_agreement_scores_the_contacts_image_gap_over_the_peoples_height():
    contact = [Contact("right_wrist", "left_shoulder", 0, 3)]
    # Gaps of 10, 45, 100 and 20 px over a height of 200: 0.05, 0.225, 0.5, 0.1 -> 1, 0.5, 0, 1.
    kp = two_people_in_the_image(4, [10, 45, 100, 20])
    assert image_agreement(contact, kp) == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert image_agreement([], kp) is None  # nothing annotated: nothing to judge
    kp[:, 0, JOINT_INDEX["right_wrist"], 2] = 0.1  # the wrist never seen
    assert image_agreement(contact, kp) is None


def test_a_contact_that_does_not_meet_in_the_image_lowers_the_clips_confidence():
    j = hand_on_shoulder()
    meeting = two_people_in_the_image(16, np.full(16, 10.0))
    apart = two_people_in_the_image(16, np.full(16, 150.0))
    seen = annotate_clips("offline", joints3d=j, keypoints2d=meeting, up=Y_UP).clips[0]
    not_seen = annotate_clips("offline", joints3d=j, keypoints2d=apart, up=Y_UP).clips[0]
    alone = annotate_clips("offline", joints3d=j, up=Y_UP).clips[0]
    assert [(c.joint_a, c.joint_b) for c in alone.contacts] == [("right_wrist", "left_shoulder")]
    assert seen.confidence == pytest.approx(alone.confidence)  # the image agrees: unchanged
    assert not_seen.confidence == pytest.approx(0.0)  # 0.75 of a height apart in every frame


def test_person_order_is_resolved_from_geometry():
    j = hand_on_shoulder()
    swapped, conf = resolve_person_order([Contact("left_shoulder", "right_wrist", 3, 12)], j)
    assert swapped and conf > 0.9
    swapped, _ = resolve_person_order([Contact("right_wrist", "left_shoulder", 3, 12)], j)
    assert not swapped


def test_offline_source_of_annotate_clips():
    j = np.concatenate([handshake(), handshake(dz=3.0)])
    ann = annotate_clips("offline", joints3d=j, up=Y_UP)
    assert [(c.start, c.end) for c in ann.clips] == [(0, 16), (16, 32)]
    assert len(ann.clips[0].contacts) == 1 and ann.clips[1].contacts == ()
    assert all(c.source == "offline" and 0 <= c.confidence <= 1 for c in ann.clips)
    with pytest.raises(ValueError):
        annotate_clips("offline")


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        OfflineAnnotator().annotate(np.zeros((16, 2, 22, 3)))
    with pytest.raises(ValueError):
        OfflineAnnotator(up=(0, 0, 0))


def test_missing_joints_do_not_crash():
    j = handshake()
    j[3:5, 1] = np.nan
    ann = OfflineAnnotator(up=Y_UP).annotate(j)
    assert all(_no_person_words(s) for s in ann.text)
    assert 0.0 <= ann.confidence <= 1.0
