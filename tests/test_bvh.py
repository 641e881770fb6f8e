"""BVH parsing and forward kinematics against hand-computed positions on tiny synthetic files."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from socialmirror.data.formats.bvh import BvhError, axis_rotation, forward_kinematics, frame_rate, parse_bvh, read_bvh

# Root with 6 channels in Z X Y rotation order, a child 2 units up with X Y Z order, an End Site 1 unit
# along x. Frames: rest; root moved to (1, 2, 3) and turned 90 deg about z; root turned 90 about z then
# 90 about x (intrinsic, in channel order) with the child turned 90 about y.
TWO_JOINTS = """HIERARCHY
ROOT Root
{
\tOFFSET 0.0 0.0 0.0
\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
\tJOINT Child
\t{
\t\tOFFSET 0 2 0
\t\tCHANNELS 3 Xrotation Yrotation Zrotation
\t\tEnd Site
\t\t{
\t\t\tOFFSET 1 0 0
\t\t}
\t}
}
MOTION
Frames: 3
Frame Time: 0.1
0 0 0 0 0 0 0 0 0
1 2 3 90 0 0 0 0 0
0 0 0 90 90 0 0 90 0
"""


def test_parse_hierarchy():
    skeleton, frames, frame_time = parse_bvh(TWO_JOINTS)
    assert skeleton.names == ("Root", "Child", "Child_End")
    assert skeleton.parents == (-1, 0, 1)
    assert skeleton.end_site == (False, False, True)
    assert skeleton.channels[0] == ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")
    assert skeleton.channels[2] == ()
    assert skeleton.channel_start == (0, 6, 9)
    np.testing.assert_allclose(skeleton.offsets, [[0, 0, 0], [0, 2, 0], [1, 0, 0]])
    assert frames.shape == (3, 9) and frame_time == pytest.approx(0.1)


def test_forward_kinematics_hand_computed():
    skeleton, frames, _ = parse_bvh(TWO_JOINTS)
    pos = forward_kinematics(skeleton, frames)
    # Rest pose: offsets accumulate.
    np.testing.assert_allclose(pos[0], [[0, 0, 0], [0, 2, 0], [1, 2, 0]], atol=1e-12)
    # Rz(90) maps x -> y and y -> -x: the child's (0, 2, 0) becomes (-2, 0, 0), the end's (1, 0, 0) -> (0, 1, 0).
    np.testing.assert_allclose(pos[1], [[1, 2, 3], [-1, 2, 3], [-1, 3, 3]], atol=1e-12)
    # Root R = Rz(90) @ Rx(90): (0, 2, 0) -> Rx -> (0, 0, 2) -> Rz -> (0, 0, 2).
    # End: Rz Rx Ry(90) (1, 0, 0) = Rz Rx (0, 0, -1) = Rz (0, 1, 0) = (-1, 0, 0).
    np.testing.assert_allclose(pos[2], [[0, 0, 0], [0, 0, 2], [-1, 0, 2]], atol=1e-12)


def test_rotation_order_follows_channel_order():
    """The same angles in ZXY and XYZ channel order give different, scipy-verified positions."""
    angles = (30.0, -50.0, 70.0)

    def end_position(order: str) -> np.ndarray:
        chans = " ".join(f"{a}rotation" for a in order)
        text = (f"HIERARCHY\nROOT R\n{{\nOFFSET 0 0 0\nCHANNELS 3 {chans}\nEnd Site\n{{\nOFFSET 1 2 3\n}}\n}}\n"
                f"MOTION\nFrames: 1\nFrame Time: 0.5\n{angles[0]} {angles[1]} {angles[2]}\n")
        skeleton, frames, _ = parse_bvh(text)
        return forward_kinematics(skeleton, frames)[0, 1]

    for order in ("ZXY", "XYZ"):
        # Intrinsic rotations in channel order: scipy's upper-case sequence.
        expected = Rotation.from_euler(order, angles, degrees=True).as_matrix() @ np.array([1.0, 2.0, 3.0])
        np.testing.assert_allclose(end_position(order), expected, atol=1e-9)
    assert not np.allclose(end_position("ZXY"), end_position("XYZ"))


def test_axis_rotation_matches_right_hand_rule():
    np.testing.assert_allclose(axis_rotation("Z", 90.0) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(axis_rotation("X", 90.0) @ [0, 1, 0], [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(axis_rotation("Y", 90.0) @ [0, 0, 1], [1, 0, 0], atol=1e-12)
    assert axis_rotation("X", np.zeros((4, 5))).shape == (4, 5, 3, 3)


def test_position_channels_replace_offset_and_any_channel_count():
    """A non-root joint with position channels: they are its local translation, not added to OFFSET."""
    text = """HIERARCHY
ROOT A
{
  OFFSET 5 0 0
  CHANNELS 1 Yrotation
  JOINT B
  {
    OFFSET 0 1 0
    CHANNELS 4 Yposition Xrotation Zposition Zrotation
    JOINT C
    {
      OFFSET 0 0 1
    }
  }
}
MOTION
Frames: 1
Frame Time: 0.0083333
90 3 0 7 0
"""
    skeleton, frames, _ = parse_bvh(text)
    assert skeleton.channels == (("Yrotation",), ("Yposition", "Xrotation", "Zposition", "Zrotation"), ())
    pos = forward_kinematics(skeleton, frames)[0]
    # Root at its OFFSET (no position channels), turned 90 about y: local z -> world x.
    np.testing.assert_allclose(pos[0], [5, 0, 0], atol=1e-12)
    # B's local translation is (0, 3, 7) (offset x kept, y and z replaced); Ry(90) (0, 3, 7) = (7, 3, 0).
    np.testing.assert_allclose(pos[1], [12, 3, 0], atol=1e-12)
    # C: Ry(90) Rx(0) Rz(0) (0, 0, 1) = (1, 0, 0).
    np.testing.assert_allclose(pos[2], [13, 3, 0], atol=1e-12)


def test_read_bvh_scale_drop_first_resample(tmp_path):
    frames = "\n".join(f"{i * 0.5} 0 0 0 0 0 0 0 0" for i in range(9))  # root x moves 0.5 unit a frame
    path = tmp_path / "walk.bvh"
    path.write_text("HIERARCHY\nROOT Hips\n{\n OFFSET 0 0 0\n CHANNELS 6 Xposition Yposition Zposition "
                    "Zrotation Yrotation Xrotation\n JOINT Head\n {\n  OFFSET 0 10 0\n  CHANNELS 3 Zrotation "
                    "Yrotation Xrotation\n  End Site\n  {\n   OFFSET 0 2 0\n  }\n }\n}\n"
                    f"MOTION\nFrames: 9\nFrame Time: .0083333\n{frames}\n")
    motion = read_bvh(path, scale=0.1)
    assert motion.fps == 120.0 and motion.positions.shape == (9, 3, 3)
    np.testing.assert_allclose(motion.joint("Head")[3], [0.15, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(motion.offsets[1], [0, 1.0, 0])

    dropped = read_bvh(path, scale=0.1, drop_first_frame=True, include_end_sites=False)
    assert dropped.names == ("Hips", "Head") and dropped.num_frames == 8
    np.testing.assert_allclose(dropped.joint("Hips")[0], [0.05, 0, 0], atol=1e-12)

    at30 = read_bvh(path, scale=0.1, fps=30)  # every fourth frame: 0, 4, 8
    assert at30.fps == 30.0 and at30.num_frames == 3
    np.testing.assert_allclose(at30.joint("Hips")[:, 0], [0.0, 0.2, 0.4], atol=1e-9)
    at48 = read_bvh(path, scale=0.1, fps=48)  # frames 0, 2.5, 5, 7.5: between neighbours
    np.testing.assert_allclose(at48.joint("Hips")[:, 0], [0.0, 0.125, 0.25, 0.375], atol=1e-9)


def test_frame_rate_snaps_printed_frame_times():
    assert frame_rate(0.0083333) == 120.0
    assert frame_rate(0.033333) == 30.0
    assert frame_rate(1 / 29.97) == pytest.approx(29.97)


@pytest.mark.parametrize("bad, message", [
    (TWO_JOINTS.replace("CHANNELS 3 Xrotation", "CHANNELS 4 Xrotation"), "CHANNELS says 4"),
    (TWO_JOINTS.replace("Zrotation Xrotation Yrotation", "Zrotation Xrotation Wrotation"), "unknown channel"),
    (TWO_JOINTS.replace("0 0 0 90 90 0 0 90 0\n", "0 0 0 90\n"), "truncated file"),
    (TWO_JOINTS.replace("Frames: 3", "Frames: x"), "Frames"),
    (TWO_JOINTS.replace("MOTION", ""), "unexpected"),
    (TWO_JOINTS.replace("\t\t\tOFFSET 1 0 0\n", "\t\t\tOFFSET 1 0 0\n\t\t\tCHANNELS 1 Xrotation\n"), "End Site"),
    ("HIERARCHY\nMOTION\nFrames: 0\nFrame Time: 0.1\n", "no ROOT"),
])
def test_parse_errors_are_one_clear_line(bad, message):
    with pytest.raises(BvhError, match=message) as info:
        parse_bvh(bad, source="bad.bvh")
    assert "\n" not in str(info.value) and "bad.bvh" in str(info.value)


def test_written_bvh_reads_back_to_the_same_joint_positions(tmp_path):
    """format_bvh is read_bvh's inverse: random rotations on the SMPL-24 tree with random bone offsets, written
    and read back, give the forward kinematics pos_j = pos_parent + G_parent offset_j, G_j = G_parent R_j."""
    from socialmirror.body.skeleton import SMPL24_NAMES, SMPL24_PARENTS
    from socialmirror.data.formats.bvh import format_bvh
    rng = np.random.default_rng(0)
    T, J = 5, len(SMPL24_NAMES)
    offsets = rng.normal(scale=0.2, size=(J, 3))
    rotations = Rotation.random(T * J, random_state=1).as_matrix().reshape(T, J, 3, 3)
    root = rng.normal(size=(T, 3))
    expected, glob = np.zeros((T, J, 3)), np.zeros((T, J, 3, 3))
    for j, p in enumerate(SMPL24_PARENTS):
        if p < 0:
            expected[:, j], glob[:, j] = root, rotations[:, j]
        else:
            expected[:, j] = expected[:, p] + np.einsum("tij,j->ti", glob[:, p], offsets[j])
            glob[:, j] = glob[:, p] @ rotations[:, j]
    path = tmp_path / "person.bvh"
    path.write_text(format_bvh(SMPL24_NAMES, SMPL24_PARENTS, offsets, root, rotations, fps=30.0,
                               end_sites={15: np.array([0.0, 0.1, 0.0])}))
    motion = read_bvh(path)
    assert motion.fps == 30.0 and motion.num_frames == T
    got = np.stack([motion.joint(n) for n in SMPL24_NAMES], axis=1)
    assert np.abs(got - expected).max() < 1e-4
    head_top = motion.joint("head_End") - motion.joint("head")
    assert np.allclose(np.linalg.norm(head_top, axis=-1), 0.1, atol=1e-5)
