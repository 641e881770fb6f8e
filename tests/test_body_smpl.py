"""The SMPL backend on a synthetic SMPL-format file the test writes (no real SMPL exists here)."""
import pickle
import sys
import types

import numpy as np
import pytest
import torch

from socialmirror.body import BodyModelError, build_body_model
from socialmirror.body.kinematics import forward_kinematics
from socialmirror.body.skeleton import SMPL24_PARENTS

N_VERTS = 6890  # smplx's extra-joint vertex ids index up to 6889


def _synthetic_smpl(rng):
    joints = np.zeros((24, 3))
    for j, p in enumerate(SMPL24_PARENTS):
        if p >= 0:
            joints[j] = joints[p] + rng.normal(scale=0.12, size=3)
    verts = np.concatenate([joints, joints[rng.integers(0, 24, N_VERTS - 24)]
                            + rng.normal(scale=0.05, size=(N_VERTS - 24, 3))])
    regressor = np.zeros((24, N_VERTS))
    regressor[np.arange(24), np.arange(24)] = 1.0  # joint j sits on vertex j
    nearest = np.linalg.norm(verts[:, None] - joints[None], axis=-1).argmin(1)
    weights = np.zeros((N_VERTS, 24))
    weights[np.arange(N_VERTS), nearest] = 1.0
    return {
        "v_template": verts, "shapedirs": rng.normal(scale=0.01, size=(N_VERTS, 3, 10)),
        "posedirs": np.zeros((N_VERTS, 3, 207)), "J_regressor": regressor, "weights": weights,
        "kintree_table": np.stack([np.array(SMPL24_PARENTS) % (2 ** 32), np.arange(24)]),
        "f": rng.integers(0, N_VERTS, size=(500, 3)).astype(np.uint32),
    }


def _write_legacy_pickle(path, data):
    """Pickle the arrays as chumpy objects, as SMPL's official .pkl files do, with a throwaway fake
    chumpy module that is removed again, so loading must work without chumpy."""
    ch = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x
    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    ch.Ch = Ch
    pkg = types.ModuleType("chumpy")
    pkg.ch = ch
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = pkg, ch
    try:
        wrapped = {k: (Ch(v) if k in ("shapedirs", "v_template") else v) for k, v in data.items()}
        with open(path, "wb") as f:
            pickle.dump(wrapped, f, protocol=2)
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]


@pytest.fixture
def smpl_dir(tmp_path):
    data = _synthetic_smpl(np.random.default_rng(0))
    (tmp_path / "smpl").mkdir()
    _write_legacy_pickle(tmp_path / "smpl" / "SMPL_NEUTRAL.pkl", data)
    return tmp_path, data


def test_legacy_chumpy_pickle_loads_without_chumpy(smpl_dir):
    root, data = smpl_dir
    assert "chumpy" not in sys.modules
    body = build_body_model(f"smpl:{root}")
    assert body.shape_dim == 10 and body.num_vertices == N_VERTS
    out = body(torch.eye(3).expand(24, 3, 3), torch.zeros(10))
    rest = data["v_template"] - data["v_template"][0]
    assert np.allclose(out.vertices.numpy(), rest, atol=1e-5)  # re-rooted at the pelvis


def test_smpl_joints_are_forward_kinematics(smpl_dir):
    root, _ = smpl_dir
    body = build_body_model(f"smpl:{root}")
    torch.manual_seed(0)
    import roma
    R = roma.rotvec_to_rotmat(0.4 * torch.randn(4, 24, 3))
    betas = torch.randn(4, 10)
    transl = torch.randn(4, 3)
    out = body(R, betas, transl)
    fk, _ = forward_kinematics(body.rest_joints(betas), R)
    assert torch.allclose(out.joints, fk + transl[:, None], atol=1e-5)
    assert torch.allclose(body.joints(R, betas, transl), out.joints, atol=1e-5)
    assert torch.allclose(out.joints[:, 0], transl, atol=1e-6)


def test_smpl_transl_conversion(smpl_dir):
    root, data = smpl_dir
    body = build_body_model(f"smpl:{root}")
    betas = torch.zeros(1, 10)
    pelvis = body.smpl_transl_to_pelvis(torch.tensor([[1.0, 2.0, 3.0]]), betas)
    assert torch.allclose(pelvis, torch.tensor([[1.0, 2.0, 3.0]]) + torch.tensor(data["v_template"][0]).float())


def test_npz_model_file(tmp_path):
    data = _synthetic_smpl(np.random.default_rng(1))
    np.savez(tmp_path / "SMPL_NEUTRAL.npz", **data)
    body = build_body_model(f"smpl:{tmp_path}")
    assert body(torch.eye(3).expand(24, 3, 3)).vertices.shape == (N_VERTS, 3)


def test_missing_file_is_one_clear_line(tmp_path):
    with pytest.raises(BodyModelError) as err:
        build_body_model(f"smpl:{tmp_path}/nowhere")
    msg = str(err.value)
    assert "\n" not in msg and "SMPL_NEUTRAL.pkl" in msg and "nowhere" in msg


def test_unknown_spec():
    with pytest.raises(BodyModelError):
        build_body_model("mano")


def test_exported_smpl_parameters_pose_smplx_to_the_same_joints(tmp_path):
    """Issue 14 item 1: the parameters export writes (smplx's axis-angle global_orient / body_pose, betas, its
    own transl) given straight to smplx.create(...)(**params) reproduce the fitted joints (SMPL's first 24)."""
    import roma
    import smplx

    from socialmirror.pipeline.export import smpl_parameters
    data = _synthetic_smpl(np.random.default_rng(2))
    np.savez(tmp_path / "SMPL_NEUTRAL.npz", **data)
    body = build_body_model(f"smpl:{tmp_path}")
    torch.manual_seed(1)
    T = 5
    rotmats = roma.rotvec_to_rotmat(0.5 * torch.randn(T, 2, 24, 3))
    shape = torch.randn(2, 10)
    transl = torch.randn(T, 2, 3) + torch.tensor([0.0, 0.0, 4.0])
    joints = body(rotmats, shape[None].expand(T, -1, -1), transl).joints  # (T, 2, 24, 3)
    # smplx's SMPL reads only pickles from a path (ours need chumpy); it takes the same arrays as a struct.
    model = smplx.SMPL(model_path=str(tmp_path), data_struct=types.SimpleNamespace(**data), num_betas=10)
    for p in range(2):
        params = {k: torch.as_tensor(v) for k, v in smpl_parameters((rotmats, shape, transl), body, p).items()}
        assert params["body_pose"].shape == (T, 69) and params["betas"].shape == (1, 10)
        posed = model(**params).joints[:, :24]
        assert (posed - joints[:, p]).norm(dim=-1).max() < 0.02
        assert (posed - joints[:, p]).norm(dim=-1).max() < 1e-4  # in fact exact
