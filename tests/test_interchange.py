"""The interchange record and files: round trip, atomic writes, the validator's first-error reports."""
from __future__ import annotations

import os

import numpy as np
import pytest

from socialmirror.body.skeleton import SMPL24_NAMES
from socialmirror.data.formats import interchange
from socialmirror.data.formats.interchange import (
    InterchangeError, TwoPersonSequence, check_arrays, joint_distance, left_side_fraction, read_folder,
    read_npz, resample, select_joints, validate_npz, write_folder, write_npz,
)

NAMES = ("pelvis", "left_ankle", "right_ankle", "left_shoulder", "right_shoulder", "left_wrist", "right_wrist",
         "head")


def two_people(frames: int = 10, fps: float = 30.0, **kwargs) -> TwoPersonSequence:
    """Two ~1.7 m people 1 m apart along x, facing each other, drifting along z at 0.3 m/s."""
    # Facing +x with y up, a person's left is up x forward = -z.
    body = np.array([[0, 1.0, 0], [0, 0.08, -0.1], [0, 0.08, 0.1], [0, 1.45, -0.18], [0, 1.45, 0.18],
                     [0.2, 1.1, -0.25], [0.2, 1.1, 0.25], [0, 1.7, 0]])
    facing_back = body * [-1, 1, -1]  # turned 180 degrees about y: facing -x, left at +z
    t = np.arange(frames) / fps
    drift = np.zeros((frames, 1, 3))
    drift[:, 0, 2] = 0.3 * t
    joints = np.stack([body - [0.5, 0, 0] + drift, facing_back + [0.5, 0, 0] + drift], axis=1)
    return TwoPersonSequence(joints3d=joints, joint_names=NAMES, fps=fps, up=np.array([0.0, 1.0, 0.0]),
                             **kwargs)


def full_sequence() -> TwoPersonSequence:
    rng = np.random.default_rng(0)
    return two_people(
        action="handshake",
        vertices=rng.uniform(0, 1.5, size=(10, 2, 5, 3)),
        faces=np.array([[0, 1, 2], [2, 3, 4]], dtype=np.int32),
        text=("Person 1 shakes hands.", "Person 2 shakes hands."),
        contacts=[("right_wrist", "right_wrist", 2, 6), ("right_hand", "right_hand", 3, 3)],
        name="clip_a", source="unit test", meta={"pair": 3, "tags": ["x"]},
    )


def save_arrays(path, **arrays):
    np.savez(path, **arrays)
    return path


def good_arrays() -> dict[str, np.ndarray]:
    return two_people().to_arrays()


# ------------------------------------------------------------------------------------------ round trip

def test_round_trip_keeps_everything(tmp_path):
    seq = full_sequence()
    path = write_npz(seq, tmp_path / "clip_a.npz")
    validate_npz(path)
    back = read_npz(path)
    assert back.name == "clip_a" and back.joints3d.dtype == np.float32
    np.testing.assert_array_equal(back.joints3d, seq.joints3d)
    np.testing.assert_array_equal(back.vertices, seq.vertices)
    np.testing.assert_array_equal(back.faces, seq.faces)
    assert back.joint_names == NAMES and back.fps == 30.0 and back.action == "handshake"
    assert back.text == seq.text and back.contacts == seq.contacts
    assert back.source == "unit test" and back.meta == {"pair": 3, "tags": ["x"]}
    with np.load(path, allow_pickle=False) as f:  # readable without pickle, with the documented keys
        assert set(f.files) == {"joints3d", "joint_names", "fps", "up", "action", "vertices", "faces", "text",
                                "contacts", "source", "meta"}
        j1, j2, t0, t1 = f["contacts"][0]
        assert (str(j1), str(j2), int(t0), int(t1)) == ("right_wrist", "right_wrist", 2, 6)


def test_minimal_file_and_string_contacts(tmp_path):
    arrays = good_arrays()
    arrays["contacts"] = np.array([["left_wrist", "right_wrist", "1", "4"]])  # (K, 4) strings also accepted
    path = save_arrays(tmp_path / "m.npz", **arrays)
    seq = read_npz(path)
    assert seq.contacts == [("left_wrist", "right_wrist", 1, 4)] and seq.action is None and seq.vertices is None


def test_folder_is_sorted_and_ignores_temporary_files(tmp_path):
    seqs = [two_people(name=n) for n in ("b", "a", "c")]
    write_folder(seqs, tmp_path / "out")
    (tmp_path / "out" / ".x.npz.tmp").write_bytes(b"half written")
    (tmp_path / "out" / ".y.npz.ab12cd34.tmp.npz").write_bytes(b"half written")  # io.atomic_write's name
    assert [s.name for s in read_folder(tmp_path / "out")] == ["a", "b", "c"]
    assert [s.name for s in interchange.iter_folder(tmp_path / "out")] == ["a", "b", "c"]
    with pytest.raises(FileNotFoundError):
        read_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no .npz"):
        read_folder(tmp_path / "empty")
    with pytest.raises(InterchangeError, match="duplicate"):
        write_folder([two_people(name="a"), two_people(name="a")], tmp_path / "dup")
    with pytest.raises(InterchangeError, match="file name"):
        write_folder([two_people(name="")], tmp_path / "noname")


def test_write_is_atomic(tmp_path, monkeypatch):
    path = write_npz(two_people(name="x"), tmp_path / "x.npz")
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(interchange.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_npz(two_people(frames=20, name="x"), path)
    assert path.read_bytes() == before  # the old file is untouched
    assert os.listdir(tmp_path) == ["x.npz"]  # and no temporary file is left behind


# ------------------------------------------------------------------------------------------ validator

def _expect(tmp_path, arrays, *fragments):
    path = save_arrays(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InterchangeError) as info:
        validate_npz(path)
    message = str(info.value)
    assert "\n" not in message and "bad.npz" in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_validator_names_missing_and_unknown_keys(tmp_path):
    arrays = good_arrays()
    del arrays["up"]
    _expect(tmp_path, arrays, "up: missing")
    arrays = good_arrays()
    arrays["contact"] = np.zeros(3)  # a misspelt optional key is not silently ignored
    _expect(tmp_path, arrays, "contact: unknown key")


@pytest.mark.parametrize("key, value, fragments", [
    ("joints3d", np.zeros((10, 8, 3), np.float32), ("joints3d", "shape (10, 8, 3)", "(T, 2, J, 3)")),
    ("joints3d", np.zeros((10, 2, 8, 3), np.int64), ("joints3d", "dtype int64")),
    ("joint_names", np.array(list(NAMES[:-1]) + ["nose"]), ("joint_names", "unknown joint name 'nose'")),
    ("joint_names", np.array(NAMES[:-1] + ("pelvis",)), ("joint_names", "'pelvis' appears more than once")),
    ("joint_names", np.array(NAMES[:3]), ("joint_names", "shape (3,)")),
    ("fps", np.array(0.0), ("fps", "not a positive frame rate")),
    ("fps", np.array(-30.0), ("fps",)),
    ("up", np.array([0.0, 2.0, 0.0]), ("up", "unit vector")),
    ("up", np.array([0.0, 1.0]), ("up", "shape (2,)")),
    ("action", np.array(["a", "b"]), ("action", "expected a string")),
    ("text", np.array(["only one sentence"]), ("text", "2 strings")),
    ("contacts", np.array([("nose", "right_wrist", 1, 2)], dtype=interchange.CONTACT_DTYPE),
     ("contacts", "unknown joint name 'nose'")),
    ("contacts", np.array([("left_wrist", "right_wrist", 5, 2)], dtype=interchange.CONTACT_DTYPE),
     ("contacts", "t0 5 > t1 2")),
    ("contacts", np.array([("left_wrist", "right_wrist", 5, 10)], dtype=interchange.CONTACT_DTYPE),
     ("contacts", "outside 0..9")),
    ("faces", np.array([[0, 1, 2]]), ("faces", "without vertices")),
    ("meta", np.array("{not json"), ("meta", "not valid JSON")),
])
def test_validator_names_the_wrong_key(tmp_path, key, value, fragments):
    arrays = good_arrays()
    arrays[key] = value
    _expect(tmp_path, arrays, *fragments)


def test_validator_catches_nan_and_units(tmp_path):
    arrays = good_arrays()
    arrays["joints3d"] = arrays["joints3d"].copy()
    arrays["joints3d"][4, 1, 2, 0] = np.nan
    _expect(tmp_path, arrays, "joints3d", "NaN", "frame 4")
    good = good_arrays()["joints3d"]
    _expect(tmp_path, {**good_arrays(), "joints3d": good * 1000}, "joints3d", "millimetres", "expected metres")
    _expect(tmp_path, {**good_arrays(), "joints3d": good * 100}, "joints3d", "centimetres")
    _expect(tmp_path, {**good_arrays(), "joints3d": good / 0.0564}, "joints3d", "not metres")
    seq = full_sequence().to_arrays()
    seq["vertices"] = seq["vertices"] * 1000
    _expect(tmp_path, seq, "vertices", "millimetres")


def test_validator_reports_the_first_problem(tmp_path):
    arrays = good_arrays()
    arrays["fps"] = np.array(-1.0)
    arrays["joint_names"] = np.array(list(NAMES[:-1]) + ["nose"])
    arrays["up"] = np.array([0.0, 0.0, 0.0])
    _expect(tmp_path, arrays, "joint_names")  # joint_names is checked before fps and up


def test_validator_refuses_pickles_and_non_npz(tmp_path):
    arrays = good_arrays()
    arrays["joint_names"] = np.array(NAMES, dtype=object)
    _expect(tmp_path, arrays, "joint_names", "pickle")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(InterchangeError, match="not a readable .npz"):
        validate_npz(tmp_path / "junk.npz")


def test_constructor_enforces_the_format():
    seq = two_people()
    with pytest.raises(InterchangeError, match="millimetres"):
        TwoPersonSequence(joints3d=seq.joints3d * 1000, joint_names=NAMES, fps=30, up=[0, 1, 0])
    with pytest.raises(InterchangeError, match="unit vector"):
        TwoPersonSequence(joints3d=seq.joints3d, joint_names=NAMES, fps=30, up=[0, 0, 0])
    with pytest.raises(InterchangeError, match="JSON"):
        write_npz(two_people(name="m", meta={"bad": object()}), "/nonexistent/m.npz")
    check_arrays(seq.to_arrays())  # and a good one passes


# ------------------------------------------------------------------------------------------- helpers

def test_resample_is_linear_in_time_and_maps_contacts():
    seq = two_people(frames=31, fps=30.0, contacts=[("right_wrist", "right_wrist", 3, 30)],
                     vertices=np.ones((31, 2, 4, 3)))
    down = resample(seq, 10.0)
    assert down.fps == 10.0 and down.num_frames == 11 and down.duration == pytest.approx(seq.duration)
    np.testing.assert_allclose(down.joints3d, seq.joints3d[::3], atol=1e-6)
    assert down.contacts == [("right_wrist", "right_wrist", 1, 10)]
    assert down.vertices.shape == (11, 2, 4, 3)
    up = resample(seq, 45.0)  # in-between frames are interpolated: z drifts linearly at 0.3 m/s
    np.testing.assert_allclose(up.joint("pelvis")[:, 0, 2], 0.3 * np.arange(up.num_frames) / 45.0, atol=1e-6)
    assert up.meta["resampled_from_fps"] == 30.0
    with pytest.raises(ValueError):
        resample(seq, 0.0)


def test_select_joints_orders_and_refuses_missing():
    seq = two_people()
    sub = select_joints(seq, ["head", "pelvis"])
    assert sub.joint_names == ("head", "pelvis") and sub.joints3d.shape == (10, 2, 2, 3)
    np.testing.assert_array_equal(sub.joint("head"), seq.joint("head"))
    with pytest.raises(KeyError, match="left_knee"):
        select_joints(seq, ["pelvis", "left_knee"])
    assert set(NAMES) <= set(SMPL24_NAMES)


def test_geometry_helpers():
    seq = two_people()
    np.testing.assert_allclose(joint_distance(seq, "pelvis", "pelvis"), 1.0, atol=1e-6)
    np.testing.assert_allclose(left_side_fraction(seq), [1.0, 1.0])
    mirrored = TwoPersonSequence(joints3d=seq.joints3d * [1, 1, -1], joint_names=NAMES, fps=30, up=[0, 1, 0])
    np.testing.assert_allclose(left_side_fraction(mirrored), [0.0, 0.0])
