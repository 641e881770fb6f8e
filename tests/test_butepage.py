"""The Bütepage recordings: parsing, units, time base, left/right, annotations, the truncated file."""
from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np
import pytest

from socialmirror.data.datasets.butepage import (
    ACTIONS, BUTEPAGE_JOINT_NAMES, ButepageError, read_annotations, read_butepage, read_recording,
    read_user_file,
)
from socialmirror.data.formats.interchange import joint_distance, left_side_fraction, validate_npz, write_npz

# ------------------------------------------------------------------------------ synthetic, always run

RAW = np.array([[100, 0, 1500], [100, 380, 1500], [100, 170, 1650], [100, 170, 1350],
                [100, -100, 1670], [100, -100, 1330], [250, -300, 1680], [250, -300, 1320]], float)


def _line(dt: float, joints: np.ndarray, with_count: bool = True) -> str:
    head = f"{dt} 8" if with_count else f"{dt}"
    return head + " " + " ".join(f"{v:.3f}" for v in joints.ravel())


def _write_recording(folder: Path, frames: int = 5, truncate: bool = False, with_count: bool = True) -> None:
    sub = folder / "shaking"
    sub.mkdir(parents=True, exist_ok=True)
    dts = [0.03, 0.04, 0.03, 0.035, 0.03, 0.04][:frames]
    for user, shift in ((1, 0.0), (2, -800.0)):
        raw = RAW * ([1, 1, 1] if user == 1 else [-1, 1, -1]) + [shift, 0, 3000 if user == 2 else 0]
        lines = [_line(dt, raw + [0, 10 * k, 0], with_count) for k, dt in enumerate(dts)]
        if truncate and user == 1:
            lines[-1] = lines[-1][: len(lines[-1]) // 2]
        (sub / f"pair_7_rec_0_user_{user}.txt").write_text("\n".join(lines) + ("" if truncate else "\n"))
    (folder / "annotation.txt").write_text("s 7 0 1 3 1\n")


def test_synthetic_recording_units_mirror_and_time(tmp_path):
    _write_recording(tmp_path)
    seq = read_recording(tmp_path, "shaking", 7, 0, fps=50.0)
    assert seq.action == "handshake" and seq.meta["action_original"] == "shaking"
    assert seq.joint_names == BUTEPAGE_JOINT_NAMES and seq.fps == 50.0
    # Times 0, .04, .07, .105, .135 s: 0.135 s at 50 fps -> 7 frames (0 .. 0.12 s).
    assert seq.num_frames == 7
    # Millimetres -> metres, x negated (the raw frame is left-handed), raw joint 6 is the right wrist.
    np.testing.assert_allclose(seq.joint("right_wrist")[0, 0], [-0.25, -0.3, 1.68], atol=1e-6)
    np.testing.assert_allclose(seq.joint("spine3")[0, 0], [-0.1, 0.0, 1.5], atol=1e-6)
    # y rises 10 mm a raw frame; at t = 0.02 s (between raw frames 0 and 1, 0.04 s apart) it is 5 mm.
    np.testing.assert_allclose(seq.joint("head")[1, 0, 1], 0.385, atol=1e-6)


def test_synthetic_formats_and_truncation(tmp_path):
    _write_recording(tmp_path / "a", with_count=False)  # the README's form, without the joint count
    dt, raw = read_user_file(tmp_path / "a" / "shaking" / "pair_7_rec_0_user_1.txt")
    assert raw.shape == (5, 8, 3) and dt[1] == pytest.approx(0.04)
    _write_recording(tmp_path / "b", truncate=True)
    with pytest.warns(UserWarning) as caught:
        seq = read_recording(tmp_path / "b", "shaking", 7, 0)
    assert [("truncated" in str(w.message), "keeping the 4" in str(w.message)) for w in caught] == \
        [(True, False), (False, True)]
    assert seq.meta["raw_frames"] == 4
    bad = tmp_path / "bad.txt"
    bad.write_text(_line(0.03, RAW) + "\n1 2 3\n" + _line(0.03, RAW) + "\n")
    with pytest.raises(ButepageError, match="bad.txt:2"):
        read_user_file(bad)


def test_synthetic_segments(tmp_path):
    _write_recording(tmp_path)
    (whole,) = read_butepage(tmp_path, fps=100.0)
    assert whole.meta["segment"]["raw_start"] == 1 and whole.meta["segment"]["leader"] == 1
    assert whole.meta["segment"]["start"] == 4  # raw frame 1 is at 0.04 s = frame 4 at 100 fps
    (cropped,) = read_butepage(tmp_path, fps=100.0, segments=True)
    assert cropped.name.endswith("_segment") and cropped.num_frames == 7  # 0.04 .. 0.105 s
    np.testing.assert_allclose(cropped.joints3d[0], whole.joints3d[4], atol=1e-6)


# ------------------------------------------------------------------------------- the real recordings

@functools.lru_cache(maxsize=1)
def _read_all(folder: Path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seqs = read_butepage(folder)
    return seqs, [str(w.message) for w in caught]


@pytest.fixture
def recordings(shared_data):
    return _read_all(shared_data / "butepage_hhi")


@pytest.mark.shared_data
def test_all_actions_read(recordings):
    seqs, _ = recordings
    assert len(seqs) == 44
    assert {s.action for s in seqs} == {"handshake", "wave", "fist_bump_rocket", "fist_bump_parachute"}
    assert {s.meta["action_original"] for s in seqs} == set(ACTIONS)
    for s in seqs:
        assert s.fps == 30.0 and s.joints3d.shape[1:] == (2, 8, 3)
        assert abs(s.meta["raw_mean_fps"] - 30.0) < 0.5  # the sensor's real rate: ~29.96 Hz on average
        assert abs(s.num_frames - s.meta["raw_frames"] * 30.0 / s.meta["raw_mean_fps"]) <= 2


@pytest.mark.shared_data
def test_truncated_recording_warns(shared_data, recordings):
    _, messages = recordings
    assert any("pair_0_rec_1_user_1.txt: truncated" in m for m in messages)
    with pytest.warns(UserWarning) as caught:
        seq = read_recording(shared_data / "butepage_hhi", "shaking", 0, 1)
    assert any("truncated" in str(w.message) for w in caught)
    assert seq.meta["raw_frames"] == 44 and seq.num_frames > 40


@pytest.mark.shared_data
def test_metres_and_plausible_bones(recordings):
    seqs, _ = recordings
    joints = np.concatenate([s.joints3d for s in seqs])
    names = BUTEPAGE_JOINT_NAMES

    def length(a, b):
        return np.median(np.linalg.norm(joints[:, :, names.index(a)] - joints[:, :, names.index(b)], axis=-1))

    assert 0.2 < length("left_shoulder", "right_shoulder") < 0.45   # measured ~0.30 m
    assert 0.15 < length("left_shoulder", "left_elbow") < 0.4       # ~0.24-0.26 m
    assert 0.15 < length("right_elbow", "right_wrist") < 0.4        # ~0.29 m
    assert 0.1 < length("spine3", "head") < 0.6
    torso_below_shoulders = np.median(
        0.5 * (joints[..., 2, 1] + joints[..., 3, 1]) - joints[..., 0, 1])
    assert 0.1 < torso_below_shoulders < 0.25  # ~0.17 m: why the torso joint is spine3


@pytest.mark.shared_data
def test_left_and_right_from_geometry(recordings):
    """Right shoulders on each person's right when facing the partner, right hands shake and wave."""
    seqs, _ = recordings
    for s in seqs:
        assert np.all(left_side_fraction(s) > 0.8), s.name
    right_raised = []
    for s in seqs:
        if s.action in ("handshake", "fist_bump_rocket", "fist_bump_parachute") and "segment" in s.meta:
            right = joint_distance(s, "right_wrist", "right_wrist").min()
            left = joint_distance(s, "left_wrist", "left_wrist").min()
            assert right < 0.4 and right < left, s.name
        if s.action == "wave":
            for p in range(2):  # the waving hand is raised higher
                raise_r = np.percentile(s.joint("right_wrist")[:, p, 1] - s.joint("spine3")[:, p, 1], 95)
                raise_l = np.percentile(s.joint("left_wrist")[:, p, 1] - s.joint("spine3")[:, p, 1], 95)
                right_raised.append(raise_r > raise_l)
    # Measured: 23 of 24 wavers raise the right hand higher (one raises both about equally).
    assert len(right_raised) == 24 and np.mean(right_raised) > 0.9


@pytest.mark.shared_data
def test_annotations_and_export(shared_data, tmp_path):
    folder = shared_data / "butepage_hhi"
    segments = read_annotations(folder / "annotation.txt")
    assert len(segments) == 40 and {s.pair for s in segments} == {1, 2, 3, 4, 5}
    assert {s.action for s in segments} == set(ACTIONS)
    cropped = read_butepage(folder, segments=True, actions=("waving",))
    assert len(cropped) == 10 and all(s.action == "wave" for s in cropped)
    first = cropped[0]
    assert first.meta["segment"]["start"] == 0 and first.meta["segment"]["stop"] == first.num_frames - 1
    validate_npz(write_npz(first, tmp_path / f"{first.name}.npz"))
