"""The paper's data-set loaders on tiny fixtures written in each release's published schema."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from socialmirror.body.skeleton import SMPL24_NAMES
from socialmirror.data.interchange import read_npz, write_npz
from socialmirror.data.paper_common import CameraParams, cameras_from_meta, estimate_up
from socialmirror.errors import InputError

# Approximate SMPL rest joints (metres; y up, facing +z, +x = the body's left), pelvis at the origin.
_REST = np.array([
    [0, 0, 0], [0.06, -0.09, 0], [-0.06, -0.09, 0], [0, 0.11, 0], [0.1, -0.47, 0], [-0.1, -0.47, 0],
    [0, 0.25, 0], [0.09, -0.87, -0.04], [-0.09, -0.87, -0.04], [0, 0.31, 0], [0.12, -0.93, 0.08],
    [-0.12, -0.93, 0.08], [0, 0.52, 0], [0.08, 0.43, 0], [-0.08, 0.43, 0], [0, 0.6, 0.05], [0.19, 0.45, 0],
    [-0.19, 0.45, 0], [0.45, 0.44, 0], [-0.45, 0.44, 0], [0.7, 0.44, 0], [-0.7, 0.44, 0], [0.78, 0.44, 0],
    [-0.78, 0.44, 0]], dtype=np.float64)
Y_TO_Z_UP = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # y-up coordinates -> z-up coordinates


def _pair_joints(rng, t, z_up=False):
    """(T, 2, 24, 3) two standing people 1 m apart facing each other, a little noise, in metres."""
    flip = np.diag([-1.0, 1.0, -1.0])  # person 2 turned 180 degrees about up
    p0 = _REST + np.array([0, 0.93, -0.5])
    p1 = _REST @ flip.T + np.array([0, 0.93, 0.5])
    j = np.stack([p0, p1])[None] + rng.normal(scale=0.01, size=(t, 2, 24, 3))
    return j @ Y_TO_Z_UP.T if z_up else j


def _camera_extrinsic(angle):
    """World-to-camera (R, t) of a camera 4 m from the pair at 1 m height, looking at it (y-up world)."""
    c, s = np.cos(angle), np.sin(angle)
    R = np.array([[-c, 0, -s], [0, -1.0, 0], [-s, 0, c]])  # rows: image right, image down, forward
    return R, -R @ np.array([4 * s, 1.0, -4 * c])


# ------------------------------------------------------------------------------------------------ Hi4D

def _write_hi4d(root, pair="pair19", action="hug19", t=3, seed=0, cameras=True, meta=True):
    rng = np.random.default_rng(seed)
    d = root / pair / action
    (d / "smpl").mkdir(parents=True)
    joints = _pair_joints(rng, t, z_up=True)
    for k in range(t):
        np.savez(d / "smpl" / f"{k + 10:06d}.npz", betas=rng.normal(size=(2, 10)).astype(np.float32),
                 body_pose=rng.normal(scale=0.1, size=(2, 69)).astype(np.float32),
                 global_orient=rng.normal(scale=0.1, size=(2, 3)).astype(np.float32),
                 transl=rng.normal(size=(2, 3)).astype(np.float32), joints_3d=joints[k].astype(np.float32),
                 verts=(joints[k, :, :1] + rng.uniform(-0.5, 0.5, size=(2, 6890, 3))).astype(np.float32),
                 contact=np.zeros((2, 6890), np.float32))
    if cameras:
        (d / "cameras").mkdir()
        ids = np.array([4, 16, 28, 40, 52, 64, 76, 88])
        ext = np.zeros((8, 3, 4))
        for c in range(8):
            R, tt = _camera_extrinsic(2 * np.pi * c / 8)
            ext[c] = np.concatenate([R @ Y_TO_Z_UP.T, tt[:, None]], 1)  # cameras of the z-up world
        K = np.tile(np.array([[1000.0, 0, 470], [0, 1000.0, 640], [0, 0, 1]]), (8, 1, 1))
        np.savez(d / "cameras" / "rgb_cameras.npz", ids=ids, intrinsics=K, extrinsics=ext,
                 dist_coeffs=np.zeros((8, 5)))
    if meta:
        np.savez(d / "meta.npz", start=10, end=10 + t - 1, num_persons=2, genders=np.array(["male", "female"]),
                 betas=rng.normal(size=(2, 10)), contact_ids=np.array([11]), mono_cam=np.array(28))
    return d, joints


def test_hi4d_fixture_loads(tmp_path):
    from socialmirror.data.hi4d import iter_hi4d, read_hi4d

    _, joints = _write_hi4d(tmp_path)
    _write_hi4d(tmp_path, pair="pair21", action="highfive21", seed=1, cameras=False, meta=False)
    samples = read_hi4d(tmp_path)
    assert [s.action for s in samples] == ["hug", "high-five"]
    s = samples[0]
    seq = s.sequence
    assert seq.joints3d.shape == (3, 2, 24, 3) and seq.joint_names == SMPL24_NAMES
    assert np.allclose(seq.joints3d, joints, atol=1e-6)  # joints_3d used as they are (metres)
    assert seq.fps == 30.0 and np.allclose(seq.up, [0, 0, 1])  # z-up fixture world, estimated
    assert seq.vertices is None and seq.meta["frame_ids"] == [10, 11, 12]
    assert seq.meta["contact_frame_ids"] == [11] and seq.meta["mono_cam"] == "28"
    # SMPL parameters kept for the SMPL backend.
    assert s.smpl.model == "smpl" and s.smpl.body_pose.shape == (3, 2, 69) and s.smpl.betas.shape == (3, 2, 10)
    assert s.smpl.genders == ("male", "female") and s.smpl.rotmats().shape == (3, 2, 24, 3, 3)
    # Cameras: 8, monocular camera first, projection puts the people in front of the camera and in frame.
    assert len(s.cameras) == 8 and s.cameras[0].name == "28"
    uv = s.project("28")
    assert uv.shape == (3, 2, 24, 2) and np.all(np.isfinite(uv))
    assert np.all((uv[..., 0] > 0) & (uv[..., 0] < 940) & (uv[..., 1] > 0) & (uv[..., 1] < 1280))
    # A person's head is above their feet in the image (y down) from every camera.
    for cam in s.cameras:
        p = cam.project(seq.joints3d)
        assert np.all(p[:, :, SMPL24_NAMES.index("head"), 1] < p[:, :, SMPL24_NAMES.index("left_ankle"), 1])
    assert samples[1].cameras == [] and samples[1].smpl.genders is None
    # One pair / one action folder as the root, and filtering.
    assert [x.name for x in iter_hi4d(tmp_path / "pair19")] == ["hi4d_pair19_hug19"]
    assert len(read_hi4d(tmp_path / "pair21" / "highfive21")) == 1
    assert [x.action for x in iter_hi4d(tmp_path, pairs=[21])] == ["high-five"]


def test_hi4d_vertices_and_roundtrip(tmp_path):
    from socialmirror.data.hi4d import read_hi4d_sequence

    d, _ = _write_hi4d(tmp_path)
    s = read_hi4d_sequence(d, with_vertices=True)
    assert s.sequence.vertices.shape == (3, 2, 6890, 3)
    path = write_npz(s.sequence, tmp_path / "out.npz")
    back = read_npz(path)
    cams = cameras_from_meta(back)
    assert [c.name for c in cams] == [c.name for c in s.cameras]
    assert np.allclose(cams[0].project(back.joints3d), s.project(0), atol=1e-3)


def test_hi4d_errors_are_one_line(tmp_path):
    from socialmirror.data.hi4d import read_hi4d, read_hi4d_sequence

    with pytest.raises(InputError) as e:
        read_hi4d(tmp_path / "missing")
    assert "\n" not in str(e.value) and "missing" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="pairXX"):
        read_hi4d(tmp_path / "empty")
    d, _ = _write_hi4d(tmp_path / "x")
    np.savez(d / "smpl" / "000099.npz", betas=np.zeros((2, 10)))
    with pytest.raises(InputError, match="lacks keys"):
        read_hi4d_sequence(d)


# ------------------------------------------------------------------------------------------- targets

def test_to_anny_targets_on_hi4d(tmp_path, anny_body):
    from socialmirror.data.hi4d import read_hi4d_sequence
    from socialmirror.data.targets import build_targets, to_anny_targets

    d, _ = _write_hi4d(tmp_path, t=2)
    s = read_hi4d_sequence(d)
    tg = to_anny_targets(s.sequence, anny_body, iterations=15)
    assert tg.method == "ik" and tg.body == "anny"
    assert tg.rotmats.shape == (2, 2, 24, 3, 3) and tg.transl.shape == (2, 2, 3) and tg.shape.shape == (2, 6)
    assert np.isfinite(tg.residual_mm) and tg.residual_mm < 200
    # The fitted pelvis lands near the published one.
    assert torch.allclose(tg.transl, torch.from_numpy(s.sequence.joints3d[:, :, 0]), atol=0.1)
    assert build_targets(s, anny_body, iterations=2).method == "ik"  # anny: the SMPL parameters do not apply


def test_smpl_targets_with_users_smpl_files(tmp_path):
    """With SMPL files (a synthetic SMPL-format file here), the published parameters are used as they are."""
    from tests.test_body_smpl import _synthetic_smpl

    from socialmirror.body import build_body_model
    from socialmirror.data.hi4d import read_hi4d_sequence
    from socialmirror.data.targets import build_targets

    model_dir = tmp_path / "models"
    model_dir.mkdir()
    np.savez(model_dir / "SMPL_NEUTRAL.npz", **_synthetic_smpl(np.random.default_rng(3)))
    body = build_body_model(f"smpl:{model_dir}")
    d, _ = _write_hi4d(tmp_path / "data", t=2)
    s = read_hi4d_sequence(d)
    tg = build_targets(s, body)
    assert tg.method == "published-parameters" and tg.body == "smpl"
    assert tg.joints.shape == (2, 2, 24, 3) and tg.shape.shape == (2, 2, 10)
    # Pelvis = SMPL's J_0(betas) + transl.
    expected = body.smpl_transl_to_pelvis(torch.from_numpy(s.smpl.transl), torch.from_numpy(s.smpl.betas))
    assert torch.allclose(tg.transl, expected) and torch.allclose(tg.joints[:, :, 0], expected, atol=1e-5)
    assert torch.allclose(tg.rotmats, s.smpl.rotmats())


# ------------------------------------------------------------------------------------------------ 3DPW

def _write_3dpw(folder, name, subjects=2, t=3, seed=0):
    rng = np.random.default_rng(seed)
    joints = _pair_joints(rng, t)
    poses_c = np.tile(np.eye(4), (t, 1, 1))
    R, tt = _camera_extrinsic(0.3)
    poses_c[:, :3, :3], poses_c[:, :3, 3] = R, tt
    data = {
        "sequence": name,
        "betas": [rng.normal(size=10) for _ in range(subjects)],
        "poses": [rng.normal(scale=0.1, size=(t, 72)) for _ in range(subjects)],
        "trans": [rng.normal(size=(t, 3)) for _ in range(subjects)],
        "poses_60Hz": [rng.normal(size=(2 * t, 72)) for _ in range(subjects)],
        "trans_60Hz": [rng.normal(size=(2 * t, 3)) for _ in range(subjects)],
        "jointPositions": [joints[:, p].reshape(t, 72) for p in range(subjects)],
        "genders": ["m", "f"][:subjects],
        "cam_intrinsics": np.array([[1962.0, 0, 540], [0, 1969.0, 960], [0, 0, 1]]),
        "cam_poses": poses_c,
        "campose_valid": [np.array([1, 1, 0])[:t] for _ in range(subjects)],
        "img_frame_ids": np.arange(t) * 2,
        "poses2d": [rng.normal(size=(t, 3, 18)) for _ in range(subjects)],
    }
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.pkl", "wb") as f:
        pickle.dump(data, f, protocol=2)
    return joints


def _3dpw_root(tmp_path):
    base = tmp_path / "3DPW" / "sequenceFiles"
    j = _write_3dpw(base / "train", "courtyard_shakeHands_00")
    _write_3dpw(base / "train", "courtyard_basketball_00", seed=1)
    _write_3dpw(base / "train", "courtyard_walkBench_00", subjects=1, seed=2)  # one subject: excluded
    _write_3dpw(base / "test", "downtown_walkUphill_00", seed=3)
    _write_3dpw(base / "validation", "courtyard_hug_00", seed=4)  # courtyard in validation: paper train
    _write_3dpw(base / "validation", "outdoors_fencing_01", seed=5)  # neither courtyard nor downtown
    return tmp_path / "3DPW", j


def test_3dpw_paper_protocol(tmp_path):
    from socialmirror.data.threedpw import read_3dpw

    root, joints = _3dpw_root(tmp_path)
    train = read_3dpw(root, split="train")
    test = read_3dpw(root, split="test")
    assert sorted(s.name for s in train) == ["3dpw_courtyard_basketball_00", "3dpw_courtyard_hug_00",
                                             "3dpw_courtyard_shakeHands_00"]
    assert [s.name for s in test] == ["3dpw_downtown_walkUphill_00"]
    assert all(s.split == "train" for s in train) and test[0].split == "test"
    assert len(read_3dpw(root, split="all")) == 4  # fencing is in neither paper split
    official = read_3dpw(root / "sequenceFiles" / "validation", protocol="official", split="all")
    assert sorted(s.name for s in official) == ["3dpw_courtyard_hug_00", "3dpw_outdoors_fencing_01"]


def test_3dpw_sequence_contents(tmp_path):
    from socialmirror.data.threedpw import read_3dpw_sequence

    root, joints = _3dpw_root(tmp_path)
    s = read_3dpw_sequence(root / "sequenceFiles" / "train" / "courtyard_shakeHands_00.pkl")
    seq = s.sequence
    assert seq.joints3d.shape == (3, 2, 24, 3) and seq.joint_names == SMPL24_NAMES and seq.fps == 30.0
    assert np.allclose(seq.joints3d, joints, atol=1e-6) and np.allclose(seq.up, [0, 1, 0])
    assert seq.action == "shake hands" and s.split == "train"
    assert seq.meta["valid"] == [1, 1, 0] and seq.meta["img_frame_ids"] == [0, 2, 4]
    assert s.smpl.body_pose.shape == (3, 2, 69) and s.smpl.genders == ("male", "female")
    cam = s.cameras[0]
    assert cam.moving and cam.R.shape == (3, 3, 3)
    assert s.project(0).shape == (3, 2, 24, 2) and np.all(np.isfinite(s.project(0)))
    short = read_3dpw_sequence(root / "sequenceFiles" / "train" / "courtyard_shakeHands_00.pkl", valid_only=True)
    assert short.sequence.num_frames == 2 and short.cameras[0].R.shape == (2, 3, 3)
    with pytest.raises(InputError, match="1 subject"):
        read_3dpw_sequence(root / "sequenceFiles" / "train" / "courtyard_walkBench_00.pkl")


def test_3dpw_errors(tmp_path):
    from socialmirror.data.threedpw import read_3dpw

    with pytest.raises(InputError, match="no such folder"):
        read_3dpw(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="sequenceFiles"):
        read_3dpw(tmp_path / "empty")
    root, _ = _3dpw_root(tmp_path)
    with pytest.raises(InputError, match="split"):
        read_3dpw(root, split="validation")  # not a paper split
    (root / "sequenceFiles" / "test" / "broken.pkl").write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="broken.pkl"):
        read_3dpw(root, split="test")


# ---------------------------------------------------------------------------------------------- common

def test_estimate_up_and_camera_roundtrip():
    rng = np.random.default_rng(0)
    assert np.allclose(estimate_up(_pair_joints(rng, 4), SMPL24_NAMES), [0, 1, 0])
    assert np.allclose(estimate_up(_pair_joints(rng, 4, z_up=True), SMPL24_NAMES), [0, 0, 1])
    R, t = _camera_extrinsic(0.5)
    cam = CameraParams("c", np.eye(3), R, t, dist=np.zeros(5), image_size=(900, 900))
    back = CameraParams.from_dict(json.loads(json.dumps(cam.to_dict())))
    assert np.allclose(back.R, cam.R) and back.image_size == (900, 900)
    assert np.allclose(cam.to_camera(cam.center), 0, atol=1e-9)
