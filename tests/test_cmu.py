"""The CMU 18/19 "walk, shake hands" pair read into one two-person sequence (needs ../shared/data)."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from socialmirror.body.skeleton import SMPL24_NAMES
from socialmirror.data.datasets.cmu import CMU_JOINT_NAMES, CMU_TO_SMPL, read_cmu_folder, read_cmu_pair
from socialmirror.data.formats.interchange import joint_distance, read_npz, validate_npz, write_npz

pytestmark = pytest.mark.shared_data


@functools.lru_cache(maxsize=1)
def _read_pair(folder: Path):
    return read_cmu_pair(folder / "18_01.bvh", folder / "19_01.bvh", action="handshake")


@pytest.fixture
def pair(shared_data):
    """Read once per session (the tests only look at it), skipped cleanly without the shared data."""
    return _read_pair(shared_data / "cmu_18_19")


def test_mapping_covers_21_smpl_joints():
    assert CMU_JOINT_NAMES == tuple(n for n in SMPL24_NAMES if n not in ("spine2", "left_collar", "right_collar"))
    assert len(set(CMU_TO_SMPL.values())) == len(CMU_TO_SMPL)  # no CMU joint stands for two SMPL joints
    for name, cmu in CMU_TO_SMPL.items():  # CMU's Left/Right prefixes agree with SMPL's sides
        assert name.startswith("left_") == cmu.startswith("Left")
        assert name.startswith("right_") == cmu.startswith("Right")


def test_shape_units_and_frame(pair):
    assert pair.joints3d.shape == (303, 2, 21, 3)  # 304 frames less the T-pose
    assert pair.fps == 120.0 and pair.action == "handshake" and pair.joint_names == CMU_JOINT_NAMES
    np.testing.assert_array_equal(pair.up, [0, 1, 0])
    # One world frame: both actors stand on the same floor (y ~ 0).
    for p in range(2):
        feet = pair.joints3d[:, p, [pair.joint_names.index("left_foot"), pair.joint_names.index("right_foot")], 1]
        assert -0.1 < feet.min() < 0.1


@pytest.mark.parametrize("a, b, low, high", [
    ("left_hip", "left_knee", 0.35, 0.50), ("right_knee", "right_ankle", 0.35, 0.50),
    ("left_shoulder", "left_elbow", 0.22, 0.38), ("right_elbow", "right_wrist", 0.15, 0.32),
    ("pelvis", "spine1", 0.08, 0.18), ("neck", "head", 0.05, 0.15),
    ("left_hip", "right_hip", 0.10, 0.30), ("left_shoulder", "right_shoulder", 0.28, 0.48),
])
def test_bone_lengths_are_metres(pair, a, b, low, high):
    """Measured: thighs 0.42 m, shins 0.42/0.46, upper arms 0.30/0.31, forearms 0.19/0.21 (18/19)."""
    length = np.linalg.norm(pair.joint(a) - pair.joint(b), axis=-1)  # (T, 2)
    assert low < length.min() and length.max() < high
    assert length.std(axis=0).max() < 1e-4  # rigid segments: forward kinematics keeps lengths exactly


def test_left_is_the_bodys_left(pair):
    """Facing along the feet (ankle -> toe), the left hip is on the actor's left (up x forward)."""
    forward = (pair.joint("left_foot") + pair.joint("right_foot")
               - pair.joint("left_ankle") - pair.joint("right_ankle"))
    forward[..., 1] = 0
    lateral = pair.joint("left_hip") - pair.joint("right_hip")
    side = np.einsum("tpi,tpi->tp", np.cross([0.0, 1.0, 0.0], forward), lateral)
    assert np.all((side > 0).mean(axis=0) > 0.95)


def test_handshake_is_in_the_middle_with_the_right_hands(pair):
    right = joint_distance(pair, "right_wrist", "right_wrist")
    frame = int(right.argmin())
    assert 0.3 * pair.num_frames < frame < 0.7 * pair.num_frames  # measured: frame 123 of 303
    assert 0.3 < right[frame] < 0.5  # the recordings' calibration offset: ~0.38 m, not 0
    for a, b in [("left_wrist", "left_wrist"), ("left_wrist", "right_wrist"), ("right_wrist", "left_wrist")]:
        assert joint_distance(pair, a, b).min() > right[frame]
    # The actors meet: pelvises ~0.74 m apart at the handshake, ~2 m at the start and the end.
    pelvis = joint_distance(pair, "pelvis", "pelvis")
    assert 0.5 < pelvis[frame] < 1.0 and pelvis[0] > 1.5 and pelvis[-1] > 1.5


def test_folder_reader_resamples_and_round_trips(shared_data, pair, tmp_path):
    (seq,) = read_cmu_folder(shared_data / "cmu_18_19", fps=30)
    assert seq.name == "cmu_18_19_01" and seq.action == "handshake" and seq.fps == 30.0
    assert seq.meta["description"] == "walk, shake hands"
    assert seq.num_frames == 76  # 302 / 4 + 1: every fourth frame of 120 fps
    np.testing.assert_allclose(seq.joints3d, pair.joints3d[::4], atol=1e-6)
    path = write_npz(seq, tmp_path / f"{seq.name}.npz")
    validate_npz(path)
    np.testing.assert_array_equal(read_npz(path).joints3d, seq.joints3d)
