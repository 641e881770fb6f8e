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
from dataclasses import dataclass

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


@dataclass
class SkinRig:
    """A body as the skinned rig that animation formats (glTF) hold: K bones in tree order (a parent before
    its children), the SMPL-24 joint whose local rotation each bone takes, rest heads (K, 3) and rest vertices
    (V, 3) in the body frame with the pelvis at the origin, weights (V, K) summing to 1, faces (F, 3)."""

    names: tuple[str, ...]
    parents: tuple[int, ...]
    rotation_of: tuple[int, ...]
    heads: torch.Tensor
    weights: torch.Tensor
    rest_vertices: torch.Tensor
    faces: torch.Tensor


class AnnyBodyModel(BodyModel):
    name = "anny"
    shape_dim = 6
    shape_range = (0.0, 1.0)

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
        owners = self._driven_owners()
        # Each vertex's weights moved onto the driven bones (V, K), exact (``skin_rig``): skinning with these
        # is a product over K = 30 bones instead of all 53 of anny's, the same vertices.
        self.register_buffer("_driven_weights", self._collapse(owners), persistent=False)

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

    def _driven_owners(self) -> list[int]:
        """For each of anny's bones, the slot (in ``driven_bones``) of itself or its nearest driven ancestor;
        -1 above the pelvis."""
        parents = [int(p) for p in self.anny.bone_parents]
        slot = {bone: k for k, bone in enumerate(self.driven_bones.tolist())}

        def owner(bone: int) -> int:
            while bone >= 0 and bone not in slot:
                bone = parents[bone]
            return slot.get(bone, -1)
        return [owner(bone) for bone in range(len(parents))]

    def _collapse(self, owners: list[int]) -> torch.Tensor:
        """anny's skinning weights (V, bones) summed onto the driven bones that move them (V, K)."""
        weights = self.anny.dense_vertex_bone_weights
        weights = weights[0] if weights.dim() == 3 else weights  # (V, bones)
        collapsed = torch.zeros(weights.shape[0], len(self.driven_bones), device=weights.device)
        for bone, slot in enumerate(owners):
            if slot >= 0:
                collapsed[:, slot] += weights[:, bone]
        return collapsed

    def skin_rig(self, shape: torch.Tensor) -> "SkinRig":
        """anny as a plain linear-blend-skinned rig for one shape (6,): the 30 bones the SMPL-24 rotations
        drive (22 body joints, four finger roots per hand), their tree, their rest heads and the vertices'
        weights collapsed onto them. Exact: a bone no rotation drives keeps its rest pose relative to its
        parent, so it moves with its nearest driven ancestor (measured: 0.0005 mm from anny's own skinning)."""
        parents = [int(p) for p in self.anny.bone_parents]
        driven = self.driven_bones.tolist()
        owners = self._driven_owners()
        shape = shape.reshape(1, self.shape_dim).float()
        heads = self.rest_bone_heads(shape)[0]
        heads = (heads - heads[self._pelvis_bone]) @ self._C.T
        rest = self(torch.eye(3, device=shape.device).expand(1, NUM_JOINTS, 3, 3), shape).vertices[0]
        return SkinRig(names=tuple(self.anny.bone_labels[b] for b in driven),
                       parents=tuple(owners[parents[b]] if parents[b] >= 0 else -1 for b in driven),
                       rotation_of=tuple(self.driver_joints.tolist()), heads=heads[driven],
                       weights=self._driven_weights.clone(), rest_vertices=rest, faces=self.faces)

    def _forward_flat(self, rotmats, shape):
        b = rotmats.shape[0]
        C = self._C
        r_anny = C.T @ rotmats @ C  # the same rotation, written in anny's axes
        delta = torch.eye(4, device=rotmats.device).repeat(b, self._num_bones, 1, 1)
        delta[:, self.driven_bones, :3, :3] = r_anny[:, self.driver_joints]
        rest = self.anny.get_rest_model(self._blend_coeffs(shape))
        transforms, bone_poses = self.anny.get_bone_transforms(delta, rest["rest_bone_poses"])
        # Linear blend skinning over the driven bones only (``_driven_weights``), as one matrix product of the
        # weights with the bones' flattened 3x4 transforms (4x faster than anny's einsum on one CPU thread).
        K, V = len(self.driven_bones), self._driven_weights.shape[0]
        blend = (self._driven_weights @ transforms[:, self.driven_bones, :3, :].reshape(b, K, 12)).view(b, V, 3, 4)
        vertices = (blend[..., :3] @ rest["rest_vertices"][..., None])[..., 0] + blend[..., 3]
        # The pelvis is the centre of the global rotation, so its posed head is its rest position.
        pelvis = bone_poses[:, self._pelvis_bone: self._pelvis_bone + 1, :3, 3]
        verts = (vertices - pelvis) @ C.T
        joints = (bone_poses[:, self._joint_bones, :3, 3] - pelvis) @ C.T
        return verts, joints
