"""The paper's data-set loaders on tiny fixtures written in each release's published schema."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from socialmirror.body.skeleton import SMPL24_NAMES
from socialmirror.data.formats.interchange import read_npz, write_npz
from socialmirror.data.datasets.paper_common import CameraParams, cameras_from_meta, estimate_up
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
    from socialmirror.data.datasets.hi4d import iter_hi4d, read_hi4d

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
    obs = s.observe("28", seed=0)  # a detector-like observation through the real camera
    assert obs.keypoints2d.shape == (3, 2, 24, 3) and s.cameras[0].size == (940, 1280)
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
    from socialmirror.data.datasets.hi4d import read_hi4d_sequence

    d, _ = _write_hi4d(tmp_path)
    s = read_hi4d_sequence(d, with_vertices=True)
    assert s.sequence.vertices.shape == (3, 2, 6890, 3)
    path = write_npz(s.sequence, tmp_path / "out.npz")
    back = read_npz(path)
    cams = cameras_from_meta(back)
    assert [c.name for c in cams] == [c.name for c in s.cameras]
    assert np.allclose(cams[0].project(back.joints3d), s.project(0), atol=1e-3)


def test_hi4d_errors_are_one_line(tmp_path):
    from socialmirror.data.datasets.hi4d import read_hi4d, read_hi4d_sequence

    with pytest.raises(InputError) as e:
        read_hi4d(tmp_path / "missing")
    assert "\n" not in str(e.value) and "missing" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="pairXX"):
        read_hi4d(tmp_path / "empty")
    d, _ = _write_hi4d(tmp_path / "x")
    # An object array in meta.npz is skipped rather than unpickled.
    np.savez(d / "meta.npz", genders=np.array([{"p": "male"}, None], dtype=object), mono_cam=np.array(4))
    s = read_hi4d_sequence(d)
    assert s.smpl.genders is None and s.cameras[0].name == "4"
    np.savez(d / "smpl" / "000099.npz", betas=np.zeros((2, 10)))
    with pytest.raises(InputError, match="lacks keys"):
        read_hi4d_sequence(d)


# ------------------------------------------------------------------------------------------- targets

def test_to_anny_targets_on_hi4d(tmp_path, anny_body):
    from socialmirror.data.datasets.hi4d import read_hi4d_sequence
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
    from socialmirror.data.datasets.hi4d import read_hi4d_sequence
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


def test_smpl_targets_reproduce_published_joints(tmp_path):
    """Hi4D-style frames whose joints_3d are what SMPL itself (smplx, with its own transl) gives for the
    parameters: the SMPL route rebuilds those joints exactly (checks the transl -> pelvis conversion)."""
    from tests.test_body_smpl import _synthetic_smpl

    from socialmirror.body import build_body_model
    from socialmirror.data.datasets.hi4d import read_hi4d_sequence
    from socialmirror.data.targets import smpl_targets

    model_dir = tmp_path / "models"
    model_dir.mkdir()
    np.savez(model_dir / "SMPL_NEUTRAL.npz", **_synthetic_smpl(np.random.default_rng(4)))
    body = build_body_model(f"smpl:{model_dir}")
    rng = np.random.default_rng(5)
    d = tmp_path / "pair00" / "hug00"
    (d / "smpl").mkdir(parents=True)
    for k in range(2):
        p = {"betas": rng.normal(size=(2, 10)), "body_pose": rng.normal(scale=0.3, size=(2, 69)),
             "global_orient": rng.normal(scale=0.5, size=(2, 3)), "transl": rng.normal(scale=0.5, size=(2, 3))}
        p = {key: v.astype(np.float32) for key, v in p.items()}
        with torch.no_grad():
            out = body.smplx_model(**{key: torch.from_numpy(v) for key, v in p.items()}, pose2rot=True)
        np.savez(d / "smpl" / f"{k:06d}.npz", joints_3d=out.joints[:, :24].numpy(), **p)
    s = read_hi4d_sequence(d)
    tg = smpl_targets(s.smpl, body, s.sequence)
    assert tg.residual_mm < 1e-2
    assert np.allclose(tg.joints.numpy(), s.sequence.joints3d, atol=1e-5)


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
    from socialmirror.data.datasets.threedpw import read_3dpw

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
    from socialmirror.data.datasets.threedpw import read_3dpw_sequence

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
    obs = s.observe(0, seed=1)  # moving camera: observed in the camera's frame, frame by frame
    assert obs.keypoints2d.shape == (3, 2, 24, 3)
    seen = obs.keypoints2d[..., 2] > 0
    clean = s.project(0)
    assert seen.any() and np.nanmedian(np.abs(obs.keypoints2d[..., :2][seen] - clean[seen])) < 40
    short = read_3dpw_sequence(root / "sequenceFiles" / "train" / "courtyard_shakeHands_00.pkl", valid_only=True)
    assert short.sequence.num_frames == 2 and short.cameras[0].R.shape == (2, 3, 3)
    with pytest.raises(InputError, match="1 subject"):
        read_3dpw_sequence(root / "sequenceFiles" / "train" / "courtyard_walkBench_00.pkl")


def test_3dpw_errors(tmp_path):
    from socialmirror.data.datasets.threedpw import read_3dpw

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


# ----------------------------------------------------------------------------------------------- CHI3D

# SMPL-24 index of each Human3.6M-25 joint the fixture builds from the SMPL-like rest skeleton.
_H36M_FROM_SMPL = {0: 0, 1: 1, 2: 4, 3: 7, 4: 2, 5: 5, 6: 8, 7: 6, 8: 12, 9: 15, 10: 15, 11: 16, 12: 18, 13: 20,
                   14: 17, 15: 19, 16: 21, 17: 10, 18: 10, 19: 11, 20: 11, 21: 22, 22: 22, 23: 23, 24: 23}
_CHI3D_CAMS = ("50591643", "58860488", "60457274", "65906101")


def _write_chi3d(subject_dir, action="Hug 1", t=3, seed=0):
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    smpl_joints = _pair_joints(rng, t, z_up=True)  # (T, 2, 24, 3)
    h36m = smpl_joints[:, :, [_H36M_FROM_SMPL[k] for k in range(25)]]
    h36m[:, :, 10, 2] += 0.12  # head top above the head
    for sub in ("joints3d_25", "smplx"):
        (subject_dir / sub).mkdir(parents=True, exist_ok=True)
    with open(subject_dir / "joints3d_25" / f"{action}.json", "w") as f:
        json.dump({"joints3d_25": h36m.transpose(1, 0, 2, 3).tolist()}, f)
    aa_body = rng.normal(scale=0.2, size=(2, t, 21, 3))
    aa_root = rng.normal(scale=0.2, size=(2, t, 1, 3))
    mats = lambda aa: Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(aa.shape[:-1] + (3, 3))  # noqa: E731
    smplx = {"transl": rng.normal(size=(2, t, 3)).tolist(), "global_orient": mats(aa_root).tolist(),
             "body_pose": mats(aa_body).tolist(), "betas": rng.normal(size=(2, t, 10)).tolist(),
             "left_hand_pose": np.zeros((2, t, 15, 3, 3)).tolist(), "right_hand_pose": np.zeros((2, t, 15, 3, 3)).tolist(),
             "jaw_pose": np.zeros((2, t, 1, 3, 3)).tolist(), "expression": np.zeros((2, t, 10)).tolist()}
    with open(subject_dir / "smplx" / f"{action}.json", "w") as f:
        json.dump(smplx, f)
    for k, cam in enumerate(_CHI3D_CAMS):
        R, tt = _camera_extrinsic(np.pi / 2 * k)
        R = R @ Y_TO_Z_UP.T
        centre = -R.T @ tt
        (subject_dir / "camera_parameters" / cam).mkdir(parents=True, exist_ok=True)
        with open(subject_dir / "camera_parameters" / cam / f"{action}.json", "w") as f:
            json.dump({"extrinsics": {"R": R.tolist(), "T": [centre.tolist()]},
                       "intrinsics_wo_distortion": {"f": [1145.0, 1144.0], "c": [450.0, 450.0]},
                       "intrinsics_w_distortion": {"f": [1145.0, 1144.0], "c": [450.0, 450.0],
                                                   "k": [0.0, 0.0, 0.0], "p": [0.0, 0.0]}}, f)
        (subject_dir / "videos" / cam).mkdir(parents=True, exist_ok=True)
        (subject_dir / "videos" / cam / f"{action}.mp4").write_bytes(b"")
    return smpl_joints, h36m, aa_body


def test_chi3d_fixture_loads(tmp_path):
    from socialmirror.data.datasets.chi3d import CHI3D_JOINT_NAMES, chi3d_action, read_chi3d

    smpl_joints, h36m, aa_body = _write_chi3d(tmp_path / "chi3d" / "train" / "s02")
    _write_chi3d(tmp_path / "chi3d" / "train" / "s02", action="HoldingHands 2", seed=1)
    _write_chi3d(tmp_path / "chi3d" / "test" / "s04", action="Push 3", seed=2)
    samples = read_chi3d(tmp_path)
    assert [(s.action, s.split) for s in samples] == [("holding hands", "train"), ("hug", "train"), ("push", "test")]
    s = samples[1]
    seq = s.sequence
    assert seq.joints3d.shape == (3, 2, 15, 3) and seq.joint_names == CHI3D_JOINT_NAMES and seq.fps == 50.0
    assert set(seq.joint_names) <= set(SMPL24_NAMES) and np.allclose(seq.up, [0, 0, 1])
    # IMAR's joints3d_25 order mapped by name: left leg (1-3) before right (4-6), left arm (11-13) before right.
    for name in ("pelvis", "left_hip", "right_knee", "left_ankle", "neck", "left_wrist", "right_shoulder"):
        assert np.allclose(seq.joint(name), smpl_joints[:, :, SMPL24_NAMES.index(name)], atol=1e-6), name
    assert s.extra["joints3d_25"].shape == (3, 2, 25, 3) and np.allclose(s.extra["joints3d_25"], h36m, atol=1e-6)
    # SMPL-X parameters: matrices back to the axis-angle they were made from.
    assert s.smpl.model == "smplx" and s.smpl.body_pose.shape == (3, 2, 63) and s.smpl.betas.shape == (3, 2, 10)
    assert np.allclose(s.smpl.body_pose, aa_body.reshape(2, 3, 63).transpose(1, 0, 2), atol=1e-5)
    assert s.smpl.rotmats().shape == (3, 2, 24, 3, 3)
    # Cameras in IMAR's convention: every camera sees both people upright and inside the 900 x 900 image.
    assert [c.name for c in s.cameras] == list(_CHI3D_CAMS) and seq.meta["videos"] == list(_CHI3D_CAMS)
    for k in range(4):
        uv = s.project(k)
        assert np.all((uv > 0) & (uv < 900))
        assert np.all(uv[:, :, seq.joint_names.index("head"), 1] < uv[:, :, seq.joint_names.index("left_ankle"), 1])
    assert [x.action for x in read_chi3d(tmp_path / "chi3d" / "test" / "s04")] == ["push"]
    assert len(read_chi3d(tmp_path, split="test")) == 1 and len(read_chi3d(tmp_path, actions=["hug"])) == 1
    assert chi3d_action("Holding hands 10") == "holding hands" and chi3d_action("Grab 1") == "grab"


def test_chi3d_errors(tmp_path):
    from socialmirror.data.datasets.chi3d import read_chi3d

    with pytest.raises(InputError, match="no such folder"):
        read_chi3d(tmp_path / "nope")
    (tmp_path / "x").mkdir()
    with pytest.raises(InputError, match="joints3d_25"):
        read_chi3d(tmp_path / "x")
    subject = tmp_path / "chi3d" / "train" / "s03"
    (subject / "joints3d_25").mkdir(parents=True)
    (subject / "joints3d_25" / "Kick 1.json").write_text(json.dumps({"joints3d_25": np.zeros((3, 25, 3)).tolist()}))
    with pytest.raises(InputError, match=r"expected \(2, T, 25, 3\)"):
        read_chi3d(tmp_path)


# ------------------------------------------------------------------------------------------- Harmony4D

def _write_harmony4d(take_dir, t=3, seed=0, drop_frame=None, colmap=True):
    rng = np.random.default_rng(seed)
    joints = _pair_joints(rng, t, z_up=True)
    (take_dir / "processed_data" / "smpl").mkdir(parents=True)
    for k in range(t):
        frame = {}
        for p, person in enumerate(("aria01", "aria02")):
            if drop_frame == k and p == 1:
                continue
            extra = rng.normal(scale=0.1, size=(21, 3)) + joints[k, p, :1]
            frame[person] = {"betas": rng.normal(size=10), "body_pose": rng.normal(scale=0.1, size=69),
                             "global_orient": rng.normal(size=3), "transl": rng.normal(size=3),
                             "joints": np.concatenate([joints[k, p], extra]),
                             "vertices": joints[k, p, :1] + rng.uniform(-0.5, 0.5, size=(6890, 3)),
                             "epoch_loss": 0.1}
        np.save(take_dir / "processed_data" / "smpl" / f"{k + 1:05d}.npy", frame, allow_pickle=True)
    for cam in ("cam01", "cam02"):
        (take_dir / "exo" / cam / "images").mkdir(parents=True)
    if colmap:
        work = take_dir / "colmap" / "workplace"
        work.mkdir(parents=True)
        work.joinpath("cameras.txt").write_text(
            "# Camera list\n1 OPENCV_FISHEYE 3840 2160 1800 1800 1920 1080 0.01 0.0 0.0 0.0\n"
            "2 OPENCV_FISHEYE 3840 2160 1810 1810 1920 1080 0.01 0.0 0.0 0.0\n")
        work.joinpath("images.txt").write_text(
            "# Image list\n1 1 0 0 0 0.5 0 2 1 cam01/00001.jpg\n10 20 1\n"
            "2 0.7071068 0 0.7071068 0 0 0 3 2 cam02/00001.jpg\n\n3 1 0 0 0 0 0 0 1 cam01/00002.jpg\n\n")
    return joints


def test_harmony4d_fixture_loads(tmp_path):
    from socialmirror.data.datasets.harmony4d import harmony4d_action, read_harmony4d, read_harmony4d_take

    joints = _write_harmony4d(tmp_path / "train" / "01_hugging" / "001_hugging")
    _write_harmony4d(tmp_path / "test" / "03_grappling2" / "025_grappling2", seed=1, drop_frame=1, colmap=False)
    samples = read_harmony4d(tmp_path)
    assert [(s.action, s.split) for s in samples] == [("grappling", "test"), ("hugging", "train")]
    s = samples[1]
    seq = s.sequence
    assert seq.joints3d.shape == (3, 2, 24, 3) and seq.joint_names == SMPL24_NAMES and seq.fps == 20.0
    assert np.allclose(seq.joints3d, joints, atol=1e-5) and np.allclose(seq.up, [0, 0, 1])
    assert seq.meta["persons"] == ["aria01", "aria02"] and seq.meta["frame_ids"] == [1, 2, 3]
    assert seq.meta["exo_cameras"] == ["cam01", "cam02"]
    assert s.smpl.model == "smpl" and s.smpl.body_pose.shape == (3, 2, 69) and s.smpl.betas.shape == (3, 2, 10)
    cams = seq.meta["colmap_cameras"]
    assert [c["name"] for c in cams] == ["cam01", "cam02"] and cams[0]["model"] == "OPENCV_FISHEYE"
    assert np.allclose(cams[1]["R"], [[0, 0, 1], [0, 1, 0], [-1, 0, 0]], atol=1e-6)  # 90 degrees about y
    assert cams[0]["t"] == [0.5, 0.0, 2.0] and s.cameras == []
    # A frame missing one person is dropped and reported.
    g = samples[0].sequence
    assert g.num_frames == 2 and g.meta["frame_ids"] == [1, 3] and g.meta["dropped_frame_ids"] == [2]
    assert harmony4d_action("01_hugging") == "hugging"
    # A take, an activity or a split folder as the root; vertices on request.
    take = tmp_path / "train" / "01_hugging" / "001_hugging"
    assert read_harmony4d(tmp_path / "train")[0].split == "train"
    assert read_harmony4d(take)[0].name == s.name
    assert read_harmony4d_take(take, with_vertices=True).sequence.vertices.shape == (3, 2, 6890, 3)
    assert len(read_harmony4d(tmp_path, split="test")) == 1


def test_harmony4d_errors(tmp_path):
    from socialmirror.data.datasets.harmony4d import read_harmony4d

    with pytest.raises(InputError, match="no such folder"):
        read_harmony4d(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="processed_data/smpl"):
        read_harmony4d(tmp_path / "empty")
    take = tmp_path / "train" / "09_karate" / "007_karate" / "processed_data" / "smpl"
    take.mkdir(parents=True)
    np.save(take / "00001.npy", {"aria01": {"betas": np.zeros(10)}}, allow_pickle=True)
    with pytest.raises(InputError, match="1 person"):
        read_harmony4d(tmp_path)
    with pytest.raises(InputError, match="split"):
        read_harmony4d(tmp_path, split="validation")


# ----------------------------------------------------------------------------------------- entry point

def test_load_paper_samples_dispatch(tmp_path, anny_body):
    from socialmirror.data.datasets import load_data_spec, load_paper_samples
    from socialmirror.data.targets import to_anny_targets

    _write_hi4d(tmp_path / "hi4d")
    root, _ = _3dpw_root(tmp_path)
    _write_chi3d(tmp_path / "chi3d" / "train" / "s02")
    _write_harmony4d(tmp_path / "h4d" / "train" / "01_hugging" / "001_hugging")
    assert [s.dataset for s in load_paper_samples("hi4d", tmp_path / "hi4d")] == ["hi4d"]
    assert len(load_data_spec(f"3dpw.test:{root}", fps=None)) == 1
    chi = load_paper_samples("chi3d", tmp_path, split="train")
    assert len(chi) == 1 and len(load_paper_samples("harmony4d", tmp_path / "h4d")) == 1
    with pytest.raises(InputError, match="unknown paper data set"):
        load_paper_samples("amass", tmp_path)
    with pytest.raises(InputError, match="no two-person sequence"):
        load_paper_samples("chi3d", tmp_path, split="test")
    # Joint subsets (CHI3D's 15 mapped joints) IK-convert too.
    tg = to_anny_targets(chi[0].sequence, anny_body, iterations=5)
    assert tg.rotmats.shape == (3, 2, 24, 3, 3) and np.isfinite(tg.residual_mm)
