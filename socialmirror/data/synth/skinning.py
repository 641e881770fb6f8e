"""Fast linear blend skinning of the body model on SMPL-24 transforms, plus the surface tests the
synthesizer needs (contact gaps, penetration depth).

Why not call the body model for every frame: anny rebuilds its rest mesh on every call (~10 ms per body),
so skinning 2 x 90 frames costs ~2 s, while the synthesizer must make a sample in well under a second and
only needs a few hundred vertices near the contact joints on most frames. With world-aligned rest frames
every anny bone that the SMPL-24 pose does not drive moves rigidly with its nearest driven ancestor, so
LBS over anny's bones equals LBS over the 24 SMPL joints with the bone weights summed onto their drivers.
The rest mesh is computed once per shape; posing a vertex subset is a small gather. ``check`` in the
tests compares this against ``BodyModel.forward``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from socialmirror.body.anny_model import ANNY_TO_BODY, AnnyBodyModel
from socialmirror.body.base import BodyModel
from socialmirror.body.kinematics import forward_kinematics
from socialmirror.body.skeleton import JOINT_INDEX, NUM_JOINTS

# Radius (metres, for a 1.7 m adult; scaled with body height) of the surface patch that counts as
# "near" a joint for contacts: the palm and back of the hand for a wrist, the shoulder cap for a shoulder.
REGION_RADIUS: dict[str, float] = {
    "pelvis": 0.14, "left_hip": 0.12, "right_hip": 0.12, "left_knee": 0.10, "right_knee": 0.10,
    "left_ankle": 0.10, "right_ankle": 0.10, "left_foot": 0.10, "right_foot": 0.10, "neck": 0.10,
    "left_collar": 0.10, "right_collar": 0.10, "head": 0.13, "left_shoulder": 0.11,
    "right_shoulder": 0.11, "left_elbow": 0.09, "right_elbow": 0.09, "left_wrist": 0.13,
    "right_wrist": 0.13,
    # the middle of the back: not in Table 1's vocabulary, so never annotated, but a place where hands rest
    # (a hug's) and that contact refinement brings them onto
    "spine2": 0.12,
}
REFERENCE_HEIGHT = 1.7


# anny's finger roots are driven by the SMPL ``*_hand`` rotation but pivot about their own heads: they are
# extra skinning transforms 24.. (middle_01 is the hand joint itself).
_EXTRA_BONES = ("index_01_l", "pinky_01_l", "ring_01_l", "index_01_r", "pinky_01_r", "ring_01_r")
_EXTRA_PARENT_JOINT = tuple(JOINT_INDEX["left_hand" if b.endswith("_l") else "right_hand"] for b in _EXTRA_BONES)


def _joint_weights(body: BodyModel) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex (V, K) transform indices (24 SMPL joints + the finger roots) and weights, summed from
    the backend's bone weights."""
    if not isinstance(body, AnnyBodyModel):
        raise NotImplementedError("fast skinning is implemented for the anny backend only")
    anny = body.anny
    parents = list(anny.bone_parents)
    src = body.driver_joints.tolist()
    dst = body.driven_bones.tolist()
    labels = list(anny.bone_labels)
    driver = {d: s for s, d in zip(src, dst)}
    for k, name in enumerate(_EXTRA_BONES):
        driver[labels.index(name)] = NUM_JOINTS + k
    bone_to_joint = []
    for b in range(len(parents)):
        c = b
        while c >= 0 and c not in driver:
            c = parents[c]
        bone_to_joint.append(driver.get(c, 0))
    bone_to_joint = np.array(bone_to_joint)
    idx = anny.vertex_bone_indices.cpu().numpy().astype(np.int64)
    w = anny.vertex_bone_weights.cpu().numpy().astype(np.float64)
    joint_idx = bone_to_joint[idx]
    dense = np.zeros((idx.shape[0], NUM_JOINTS + len(_EXTRA_BONES)))
    np.add.at(dense, (np.repeat(np.arange(idx.shape[0]), idx.shape[1]), joint_idx.ravel()), w.ravel())
    dense /= dense.sum(1, keepdims=True)
    k = int((dense > 1e-6).sum(1).max())
    order = np.argsort(-dense, axis=1)[:, :k]
    return order, np.take_along_axis(dense, order, 1)


@dataclass
class RestBody:
    """One person's rest mesh (pelvis at the origin), rest joints and contact regions."""

    vertices: np.ndarray  # (V, 3)
    joints: np.ndarray  # (24, 3)
    pivots: np.ndarray  # (24 + extra, 3) rest pivot of every skinning transform
    height: float  # top of the head to the sole, metres
    sole: float  # y of the lowest vertex relative to the pelvis (negative)
    regions: dict[str, np.ndarray]  # contact joint name -> vertex indices
    hand_axes: dict[str, tuple[np.ndarray, np.ndarray]] = None  # side -> (finger dir, palm normal), rest
    patches: dict[str, np.ndarray] = None  # joint -> wider vertex set that contact refinement keeps apart
    normals: np.ndarray = None  # (V, 3) rest vertex normals (posed by the vertices' dominant transform)
    dominant: np.ndarray = None  # (V,) each vertex's dominant SMPL-24 joint (``Skinner.dominant``)


class Skinner:
    """Poses rest meshes with SMPL-24 rotations; one instance per body model (weights shared)."""

    def __init__(self, body: BodyModel):
        self.body = body
        self.idx, self.w = _joint_weights(body)
        self.faces = body.faces.cpu().numpy()
        n = self.idx.shape[0]
        from scipy.sparse import csr_matrix
        self.W = csr_matrix((self.w.ravel(), (np.repeat(np.arange(n), self.idx.shape[1]), self.idx.ravel())),
                            shape=(n, NUM_JOINTS + len(_EXTRA_BONES)))
        # each vertex's dominant SMPL-24 joint, the finger roots counted as their hand
        extra_hand = np.array(_EXTRA_PARENT_JOINT)
        first = self.idx[:, 0]
        self.dominant = np.where(first < NUM_JOINTS, first, extra_hand[np.clip(first - NUM_JOINTS, 0, None)])

    def rest(self, shape: np.ndarray) -> RestBody:
        with torch.no_grad():
            s = torch.as_tensor(shape, dtype=torch.float32)[None]
            out = self.body(torch.eye(3).expand(1, NUM_JOINTS, 3, 3), s)
            heads = self.body.rest_bone_heads(s)[0].cpu()
            labels = list(self.body.anny.bone_labels)
            pelvis = heads[labels.index("pelvis")]
            extra = ((heads[[labels.index(b) for b in _EXTRA_BONES]] - pelvis) @ ANNY_TO_BODY.T).double().numpy()
        v = out.vertices[0].double().numpy()
        j = out.joints[0].double().numpy()
        height = float(v[:, 1].max() - v[:, 1].min())
        scale = height / REFERENCE_HEIGHT
        regions = {}
        for name, r in REGION_RADIUS.items():
            d = np.linalg.norm(v - j[JOINT_INDEX[name]], axis=1)
            regions[name] = np.nonzero(d < r * scale)[0]
        patches = {}
        for name, r in REGION_RADIUS.items():
            d = np.linalg.norm(v - j[JOINT_INDEX[name]], axis=1)
            m = d < (1.6 if name.endswith("_wrist") else 1.15) * r * scale
            if name.endswith("_wrist"):  # the whole hand, fingertips included
                side = name.split("_")[0]
                extra_k = [NUM_JOINTS + k for k, b in enumerate(_EXTRA_BONES) if b.endswith("_" + side[0])]
                m |= np.isin(self.idx[:, 0], [JOINT_INDEX[name], JOINT_INDEX[f"{side}_hand"], *extra_k])
            patches[name] = np.nonzero(m)[0]
        return RestBody(v, j, np.concatenate([j, extra]), height, float(v[:, 1].min()), regions,
                        {side: self._hand_axes(v, j, side) for side in ("left", "right")}, patches,
                        vertex_normals(v, self.faces), self.dominant)

    def _hand_axes(self, v: np.ndarray, j: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
        """Rest finger direction (wrist -> knuckles) and palm normal of one hand. The palm is the side
        the fingertips curl toward; the hand's thinnest principal axis is its normal."""
        wr, hd = JOINT_INDEX[f"{side}_wrist"], JOINT_INDEX[f"{side}_hand"]
        extra = [NUM_JOINTS + k for k, b in enumerate(_EXTRA_BONES) if b.endswith("_l" if side == "left" else "_r")]
        m = np.isin(self.idx[:, 0], [wr, hd, *extra])
        pts = v[m]
        fd = j[hd] - j[wr]
        fd /= np.linalg.norm(fd)
        n = np.linalg.svd(pts - pts.mean(0), full_matrices=False)[2][2]
        n = n - (n @ fd) * fd
        n /= np.linalg.norm(n)
        proj = (pts - j[wr]) @ fd
        tips = pts[proj > np.percentile(proj, 95)].mean(0) - j[wr]
        if tips @ n > 0:
            n = -n
        return fd, -n  # the fingertips sit on the -n side: the palm faces -n

    def pose(self, rest: RestBody, glob_rot: np.ndarray, joints: np.ndarray,
             verts: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Vertices (T, n, 3) of ``rest`` posed by global joint rotations (T, 24, 3, 3) and posed joint
        positions (T, 24, 3) (world frame, translation included); ``verts`` selects a subset."""
        # LBS as one sparse product: blend the 3x4 affine transforms per vertex, then apply them
        x = rest.vertices[verts]  # (n, 3)
        rots, pos = extended_transforms(rest, glob_rot, joints)  # (T, B, 3, 3), (T, B, 3)
        T, B = rots.shape[:2]
        off = pos - np.einsum("tbij,bj->tbi", rots, rest.pivots)
        M = np.concatenate([rots.reshape(T, B, 9), off], -1)  # (T, B, 12)
        W = self.W if isinstance(verts, slice) and verts == slice(None) else self.W[verts]
        blend = (W @ M.transpose(1, 0, 2).reshape(B, T * 12)).reshape(-1, T, 12).transpose(1, 0, 2)
        A = blend[..., :9].reshape(T, -1, 3, 3)
        return np.einsum("tnij,nj->tni", A, x) + blend[..., 9:]


def extended_transforms(rest: RestBody, glob_rot: np.ndarray, joints: np.ndarray):
    """Rotations (T, 24+E, 3, 3) and posed pivots (T, 24+E, 3) of every skinning transform."""
    parents = np.array(_EXTRA_PARENT_JOINT)
    wrists = parents - 2  # *_hand -> *_wrist in SMPL-24 order
    off = rest.pivots[NUM_JOINTS:] - rest.joints[wrists]  # (E, 3)
    extra_pos = joints[:, wrists] + np.einsum("teij,ej->tei", glob_rot[:, wrists], off)
    return (np.concatenate([glob_rot, glob_rot[:, parents]], 1), np.concatenate([joints, extra_pos], 1))


def global_transforms(rest: RestBody, rotmats: np.ndarray, transl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward kinematics: local rotations (T, 24, 3, 3) + pelvis translation (T, 3) -> world joints
    (T, 24, 3) and global rotations (T, 24, 3, 3)."""
    j, g = forward_kinematics(torch.as_tensor(rest.joints), torch.as_tensor(rotmats))
    return j.numpy() + transl[:, None, :], g.numpy()


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (V, 3) of one mesh."""
    tri = verts[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    out = np.zeros_like(verts)
    for c in range(3):
        out[:, c] = sum(np.bincount(faces[:, k], n[:, c], minlength=len(verts)) for k in range(3))
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def closest_distance(a: np.ndarray, b: np.ndarray) -> tuple[float, int, int]:
    """Closest vertex-to-vertex distance between point sets a (n, 3) and b (m, 3), with the indices."""
    d, i = cKDTree(b).query(a, k=1)
    k = int(np.argmin(d))
    return float(d[k]), k, int(i[k])


def penetration_depth(verts_a: np.ndarray, normals_a: np.ndarray, verts_b: np.ndarray,
                      normals_b: np.ndarray, reach: float = 0.04) -> float:
    """Approximate maximum depth (metres) of either mesh's vertices inside the other.

    A vertex p of one mesh is inside the other where it lies behind the nearest vertex q of the other
    along q's outward normal: depth = -(p - q).n_q. Only vertices within ``reach`` of the other mesh are
    tested (deeper penetrations always have shallower vertices around them, so a depth above a
    centimetre is still found). Cheap (KD-trees, ~10 ms for two anny meshes), which is why it is used to
    screen every sample; ``socialmirror.metrics.penetration`` is the exact mean-depth metric.
    """
    worst = 0.0
    for p, q, nq in ((verts_a, verts_b, normals_b), (verts_b, verts_a, normals_a)):
        lo, hi = q.min(0) - reach, q.max(0) + reach
        m = np.all((p >= lo) & (p <= hi), axis=1)
        if not m.any():
            continue
        pts = p[m]
        lo2, hi2 = pts.min(0) - reach, pts.max(0) + reach
        mq = np.nonzero(np.all((q >= lo2) & (q <= hi2), axis=1))[0]
        if len(mq) == 0:
            continue
        q, nq = q[mq], nq[mq]
        d, i = cKDTree(q).query(pts, k=1, distance_upper_bound=reach)
        ok = np.isfinite(d) & (i < len(q))
        if not ok.any():
            continue
        depth = -np.einsum("ni,ni->n", pts[ok] - q[i[ok]], nq[i[ok]])
        worst = max(worst, float(depth.max()))
    return max(worst, 0.0)
