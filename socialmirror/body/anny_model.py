"""anny (NAVER, Apache-2.0 code, CC0 MakeHuman assets) as a SMPL-24 body model.

anny's ``game_engine`` rig is the SMPL-24 tree plus a ground root and finger bones; each SMPL-24 joint is
the HEAD of one of its bones (table below). Its joints are therefore bone heads, a few centimetres from
SMPL's regressed joint centres: a small, systematic offset that evaluation reports rather than hides.

Axes: anny is z-up and faces -y. The project's body frame (``socialmirror.body.base``) is y-up, facing
+z, +x on the body's left; the fixed rotation ``ANNY_TO_BODY`` (x, y, z) -> (x, z, -y) maps one onto
the other (det +1: anny's +x is the body's left as well). Rotations are conjugated the same way.

Shape: anny's six phenotype values in [0, 1], in anny's order: gender (0 female, 1 male), age, muscle,
weight, height, proportions; 0.5 everywhere is the average adult.

The first construction builds anny's model cache (about a minute, ~1.8 GB RAM peak) in
``socialmirror.paths.anny_cache_dir()``; ``socialmirror setup`` does it once so tests and runs never pay.
"""
from __future__ import annotations

import logging
import warnings

import torch

from socialmirror.body.base import BodyModel, BodyModelError
from socialmirror.body.skeleton import NUM_JOINTS, SMPL24_NAMES
from socialmirror.paths import anny_cache_dir

log = logging.getLogger(__name__)

# SMPL-24 joint -> anny game_engine bone whose head is that joint.
SMPL24_TO_ANNY_BONE: dict[str, str] = {
    "pelvis": "pelvis", "left_hip": "thigh_l", "right_hip": "thigh_r", "spine1": "spine_01",
    "left_knee": "calf_l", "right_knee": "calf_r", "spine2": "spine_02", "left_ankle": "foot_l",
    "right_ankle": "foot_r", "spine3": "spine_03", "left_foot": "ball_l", "right_foot": "ball_r",
    "neck": "neck_01", "left_collar": "clavicle_l", "right_collar": "clavicle_r", "head": "head",
    "left_shoulder": "upperarm_l", "right_shoulder": "upperarm_r", "left_elbow": "lowerarm_l",
    "right_elbow": "lowerarm_r", "left_wrist": "hand_l", "right_wrist": "hand_r",
    "left_hand": "middle_01_l", "right_hand": "middle_01_r",
}
# SMPL's hand rotation bends the whole hand past the knuckles: in anny that is the four fingers' roots.
_HAND_BONES = {"left_hand": ("index_01_l", "middle_01_l", "ring_01_l", "pinky_01_l"),
               "right_hand": ("index_01_r", "middle_01_r", "ring_01_r", "pinky_01_r")}

ANNY_TO_BODY = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
PHENOTYPES = ("gender", "age", "muscle", "weight", "height", "proportions")


def build_anny(cache_dir=None):
    """The raw anny model (float32, plain PyTorch skinning), building its cache on first use."""
    try:
        import anny
        import anny.paths
    except ImportError as exc:  # pragma: no cover - anny is a hard dependency
        raise BodyModelError(f"anny is not installed ({exc}); run `make install`") from exc
    anny.paths.set_anny_cache_path(str(cache_dir or anny_cache_dir()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warp-lang is excluded on purpose; anny warns about it
        model = anny.Anny(rig="game_engine", skinning_method="lbs")
    return model.to(torch.float32).eval()


class AnnyBodyModel(BodyModel):
    name = "anny"
    shape_dim = 6

    def __init__(self, cache_dir=None):
        super().__init__()
        self.anny = build_anny(cache_dir)  # the raw anny model (its bones, skinning weights, blend shapes)
        for p in self.anny.parameters():
            p.requires_grad_(False)
        labels = list(self.anny.bone_labels)
        if tuple(self.anny.phenotype_labels) != PHENOTYPES:
            raise BodyModelError(f"unexpected anny phenotypes {self.anny.phenotype_labels}")
        self._num_bones = len(labels)
        joint_bones = [labels.index(SMPL24_TO_ANNY_BONE[n]) for n in SMPL24_NAMES]
        # Which SMPL-24 rotation drives which anny bone (the hands drive four finger roots each): the rotation
        # of joint driver_joints[k] is applied to anny bone driven_bones[k].
        src, dst = [], []
        for j, name in enumerate(SMPL24_NAMES):
            for bone in _HAND_BONES.get(name, (SMPL24_TO_ANNY_BONE[name],)):
                src.append(j)
                dst.append(labels.index(bone))
        self.register_buffer("_joint_bones", torch.tensor(joint_bones), persistent=False)
        self.register_buffer("driver_joints", torch.tensor(src), persistent=False)
        self.register_buffer("driven_bones", torch.tensor(dst), persistent=False)
        self.register_buffer("_C", ANNY_TO_BODY.clone(), persistent=False)
        self.register_buffer("_faces", self.anny.get_triangular_faces().long(), persistent=False)
        self._pelvis_bone = labels.index("pelvis")

    @property
    def faces(self) -> torch.Tensor:
        return self._faces

    @property
    def num_vertices(self) -> int:
        return int(self.anny.template_vertices.shape[0])

    def default_shape(self, *batch: int) -> torch.Tensor:
        return torch.full((*batch, self.shape_dim), 0.5, device=self.device)

    def _blend_coeffs(self, shape: torch.Tensor) -> torch.Tensor:
        _, phen, local, facial = self.anny.get_tensor_inputs(None, shape, None, None)
        return self.anny._get_phenotype_blendshape_coefficients(phen, local, facial)

    def rest_bone_heads(self, shape: torch.Tensor) -> torch.Tensor:
        """Rest positions (B, bones, 3) of the heads of all of anny's bones (``anny.bone_labels`` order) for
        shapes (B, 6), in anny's axes and origin (``ANNY_TO_BODY`` rotates them into the body frame)."""
        rest = self.anny.get_rest_model(self._blend_coeffs(shape))
        return rest["rest_bone_heads"]

    def rest_joints(self, shape: torch.Tensor | None = None) -> torch.Tensor:
        batch = () if shape is None else shape.shape[:-1]
        shape = self.default_shape(1) if shape is None else shape.reshape(-1, self.shape_dim)
        heads = self.rest_bone_heads(shape.float())
        joints = heads[:, self._joint_bones] - heads[:, self._pelvis_bone: self._pelvis_bone + 1]
        return (joints @ self._C.T).reshape(*batch, NUM_JOINTS, 3)

    def _forward_flat(self, rotmats, shape):
        b = rotmats.shape[0]
        C = self._C
        r_anny = C.T @ rotmats @ C  # the same rotation, written in anny's axes
        delta = torch.eye(4, device=rotmats.device).repeat(b, self._num_bones, 1, 1)
        delta[:, self.driven_bones, :3, :3] = r_anny[:, self.driver_joints]
        out = self.anny(pose_parameters=delta, phenotype_kwargs=shape)
        # The pelvis is the centre of the global rotation, so its posed head is its rest position.
        pelvis = out["bone_poses"][:, self._pelvis_bone: self._pelvis_bone + 1, :3, 3]
        verts = (out["vertices"] - pelvis) @ C.T
        joints = (out["bone_poses"][:, self._joint_bones, :3, 3] - pelvis) @ C.T
        return verts, joints
