"""SMPL and SMPL-X through ``smplx``, with the user's own (licensed) model files.

No SMPL file ships with the project or may be committed. Point ``--body smpl:DIR`` at a folder laid out
as smplx expects (``DIR/smpl/SMPL_NEUTRAL.pkl`` or ``.npz``, ``DIR/smplx/SMPLX_NEUTRAL.npz``; a folder
holding the file directly works too).

Legacy ``.pkl`` files pickle ``chumpy`` arrays, and chumpy does not import on Python 3.11. They are read
here with an unpickler that maps every chumpy class onto a stub keeping the array chumpy stored in its
``x`` state, so chumpy is never needed.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from socialmirror.body.base import BodyModel, BodyModelError
from socialmirror.body.skeleton import NUM_JOINTS

SMPL_KINDS = ("smpl", "smplx")
_FILE_STEMS = {"smpl": "SMPL", "smplx": "SMPLX"}


class _ChumpyStub:
    """Stands in for any chumpy class while unpickling: keeps the value chumpy stored as ``x``."""

    def __init__(self, *args, **kwargs):
        self.x = None

    def __setstate__(self, state):
        self.x = state.get("x") if isinstance(state, dict) else None


class _NoChumpyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module.split(".")[0] == "chumpy":
            return _ChumpyStub
        return super().find_class(module, name)


def _to_numpy(value):
    if isinstance(value, _ChumpyStub):
        return np.asarray(value.x)
    if hasattr(value, "toarray"):  # scipy sparse (SMPL's J_regressor)
        return np.asarray(value.toarray())
    return value


def load_model_file(path: str | Path) -> dict:
    """Read an SMPL-family model file (.pkl, legacy chumpy pickles included, or .npz) into numpy arrays."""
    path = Path(path)
    if not path.is_file():
        raise BodyModelError(f"SMPL model file not found: {path}")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=True) as z:
                data = {k: z[k] for k in z.files}
        else:
            with open(path, "rb") as f:
                data = _NoChumpyUnpickler(f, encoding="latin1").load()
    except Exception as exc:  # noqa: BLE001 - any parse failure is one user-facing error
        raise BodyModelError(f"cannot read SMPL model file {path}: {exc}") from exc
    data = {k: _to_numpy(v) for k, v in dict(data).items()}
    missing = [k for k in ("v_template", "shapedirs", "J_regressor", "weights", "kintree_table", "f")
               if k not in data]
    if missing:
        raise BodyModelError(f"{path} is not an SMPL-family model file (missing {', '.join(missing)})")
    return data


def resolve_model_file(root: str | Path, kind: str = "smpl", gender: str = "neutral") -> Path:
    """Find ``<root>/<kind>/<STEM>_<GENDER>.(pkl|npz)`` (or directly in root); one clear error if absent."""
    if kind not in SMPL_KINDS:
        raise BodyModelError(f"unknown SMPL kind {kind!r}: expected one of {SMPL_KINDS}")
    root = Path(root).expanduser()
    if root.is_file():
        return root
    stem = f"{_FILE_STEMS[kind]}_{gender.upper()}"
    candidates = [root / kind / f"{stem}{ext}" for ext in (".npz", ".pkl")]
    candidates += [root / f"{stem}{ext}" for ext in (".npz", ".pkl")]
    for c in candidates:
        if c.is_file():
            return c
    raise BodyModelError(
        f"{kind.upper()} model file not found: expected {candidates[1]} (or .npz); SMPL files are licensed "
        f"and not shipped: register at smpl.is.tue.mpg.de, download them, and pass --body {kind}:{root}")


class _Struct:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class SMPLBodyModel(BodyModel):
    """SMPL (or SMPL-X body) behind the project's BodyModel interface; shape = the first ``num_betas`` betas.

    For SMPL-X, rotations 1..21 drive the body joints and SMPL-24's two hand joints are read at the middle
    finger roots (their rotations are not used: the hands keep SMPL-X's flat default).
    """

    name = "smpl"

    def __init__(self, root: str | Path, kind: str = "smpl", gender: str = "neutral", num_betas: int = 10):
        super().__init__()
        import smplx  # imported here: only this backend needs it

        path = resolve_model_file(root, kind, gender)
        data = load_model_file(path)
        self.kind = kind
        self.name = kind
        self.gender = gender
        self.shape_dim = num_betas
        struct = _Struct(**data)
        common = dict(data_struct=struct, num_betas=num_betas, create_betas=False,
                      create_global_orient=False, create_body_pose=False, create_transl=False)
        # The smplx package's model (its own forward with axis-angle inputs; this class poses it with the
        # project's rotation matrices).
        if kind == "smpl":
            self.smplx_model = smplx.SMPL(model_path=str(path), **common)
            self._hand_idx = (22, 23)
        else:
            self.smplx_model = smplx.SMPLX(model_path=str(path), use_pca=False, create_left_hand_pose=False,
                                      create_right_hand_pose=False, create_jaw_pose=False,
                                      create_leye_pose=False, create_reye_pose=False,
                                      create_expression=False, **common)
            self._hand_idx = (28, 43)  # left_middle1, right_middle1
        for p in self.smplx_model.parameters():
            p.requires_grad_(False)
        self.register_buffer("_faces", torch.as_tensor(np.asarray(data["f"], dtype=np.int64)),
                             persistent=False)
        self.model_file = path

    @property
    def faces(self) -> torch.Tensor:
        return self._faces

    @property
    def num_vertices(self) -> int:
        return int(self.smplx_model.v_template.shape[0])

    def _forward_flat(self, rotmats, shape):
        b = rotmats.shape[0]
        kw = dict(betas=shape, global_orient=rotmats[:, :1], pose2rot=False, return_verts=True)
        if self.kind == "smpl":
            kw["body_pose"] = rotmats[:, 1:]
        else:
            eye = torch.eye(3, device=rotmats.device).expand(b, -1, 3, 3)
            kw.update(body_pose=rotmats[:, 1:22], left_hand_pose=eye.expand(b, 15, 3, 3),
                      right_hand_pose=eye.expand(b, 15, 3, 3), jaw_pose=eye[:, :1], leye_pose=eye[:, :1],
                      reye_pose=eye[:, :1], expression=torch.zeros(b, 10, device=rotmats.device))
        out = self.smplx_model(**kw)
        joints = out.joints
        if self.kind == "smplx":
            joints = torch.cat([joints[:, :22], joints[:, list(self._hand_idx)]], dim=1)
        joints = joints[:, :NUM_JOINTS]
        pelvis = joints[:, :1]
        return out.vertices - pelvis, joints - pelvis

    def smpl_transl_to_pelvis(self, smpl_transl: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """SMPL's own ``transl`` parameter -> the pelvis position this interface takes as ``transl``.

        SMPL places the pelvis at J_0(betas) + transl, and J_0 does not move under the global rotation."""
        j0 = self._rest_pelvis(betas)
        return smpl_transl + j0

    def _rest_pelvis(self, betas: torch.Tensor) -> torch.Tensor:
        m = self.smplx_model
        v = m.v_template + torch.einsum("...l,vcl->...vc", betas.float(), m.shapedirs)
        return torch.einsum("v,...vc->...c", m.J_regressor[0], v)
