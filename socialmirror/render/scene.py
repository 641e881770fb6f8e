"""Rendered two-person scenes that a pose detector accepts as people: the embedded demo sample.

Bare grey meshes are not people to MediaPipe; clothed ones in a room are (docs/offline-stack.md: anny bodies
with clothing colours, skin, hair, a checker floor, a wall and two lights were detected in 12 of 12 frames).
Each body vertex gets a material from the bone it lies closest to in the rest pose (skin, hair, shirt,
trousers, shoes), each face the material of its first vertex; the floor is a checker board and the wall a
plain plane behind the pair. Shading: ambient plus two directional lights, flat per face.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from socialmirror.body.skeleton import JOINT_INDEX, SMPL24_PARENTS
from socialmirror.render.mesh_renderer import face_normals, rasterize

SKIN_TONES = ((224, 172, 140), (198, 134, 100), (141, 85, 60), (236, 192, 160))
HAIR = ((40, 30, 25), (90, 60, 35), (20, 20, 20), (150, 110, 60))
SHIRTS = ((200, 40, 40), (40, 90, 200), (240, 200, 40), (40, 160, 80), (230, 230, 230), (150, 60, 170))
TROUSERS = ((40, 45, 70), (60, 60, 60), (110, 90, 60), (20, 20, 30))
SHOES = ((30, 30, 30), (240, 240, 240), (90, 50, 30))

_SKIN_BONES = {("neck", "head"), ("left_wrist", "left_hand"), ("right_wrist", "right_hand")}
_SLEEVE_BONES = {("left_elbow", "left_wrist"), ("right_elbow", "right_wrist")}
_LEG_BONES = {("pelvis", "left_hip"), ("pelvis", "right_hip"), ("left_hip", "left_knee"),
              ("right_hip", "right_knee"), ("left_knee", "left_ankle"), ("right_knee", "right_ankle")}
_FOOT_BONES = {("left_ankle", "left_foot"), ("right_ankle", "right_foot")}
SKIN, HAIR_M, SHIRT, TROUSER, SHOE = range(5)


@dataclass
class Outfit:
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    shirt: tuple[int, int, int]
    trousers: tuple[int, int, int]
    shoes: tuple[int, int, int]
    long_sleeves: bool

    @classmethod
    def sample(cls, rng: np.random.Generator, avoid_shirt: tuple | None = None) -> "Outfit":
        shirts = [s for s in SHIRTS if s != avoid_shirt]
        pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
        return cls(pick(SKIN_TONES), pick(HAIR), pick(shirts), pick(TROUSERS), pick(SHOES), bool(rng.random() < 0.5))


def vertex_materials(rest_vertices: np.ndarray, rest_joints: np.ndarray, long_sleeves: bool) -> np.ndarray:
    """(V,) material per vertex from the nearest bone segment of the rest pose (body frame: y up, +z front)."""
    names = {v: k for k, v in JOINT_INDEX.items()}
    segs = [(p, c) for c, p in enumerate(SMPL24_PARENTS) if p >= 0]
    a = rest_joints[[p for p, _ in segs]]
    b = rest_joints[[c for _, c in segs]]
    ab = b - a
    t = np.clip(((rest_vertices[:, None] - a[None]) * ab[None]).sum(-1) / (ab ** 2).sum(-1).clip(1e-9), 0, 1)
    d = np.linalg.norm(rest_vertices[:, None] - (a[None] + t[..., None] * ab[None]), axis=-1)
    nearest = d.argmin(1)
    mat = np.full(len(rest_vertices), SHIRT)
    for k, (p, c) in enumerate(segs):
        pair = (names[p], names[c])
        if pair in _SKIN_BONES or (pair in _SLEEVE_BONES and not long_sleeves):
            mat[nearest == k] = SKIN
        elif pair in _LEG_BONES:
            mat[nearest == k] = TROUSER
        elif pair in _FOOT_BONES:
            mat[nearest == k] = SHOE
    neck = rest_joints[JOINT_INDEX["neck"]]
    mat[(mat == SHIRT) & (rest_vertices[:, 1] > neck[1] + 0.01)] = SKIN  # a round neckline
    head = rest_joints[JOINT_INDEX["head"]]
    hair = (rest_vertices[:, 1] > head[1] + 0.06) | ((rest_vertices[:, 1] > head[1] - 0.02)
                                                      & (rest_vertices[:, 2] < head[2] - 0.04))
    mat[hair & (mat == SKIN)] = HAIR_M
    return mat


def face_colors(materials: np.ndarray, faces: np.ndarray, outfit: Outfit) -> np.ndarray:
    palette = np.array([outfit.skin, outfit.hair, outfit.shirt, outfit.trousers, outfit.shoes], dtype=np.float64)
    return palette[materials[faces[:, 0]]]


def room_geometry(ground_height: float, centre: np.ndarray, back_dir: np.ndarray, size: float = 9.0,
                  tile: float = 0.5, wall_distance: float = 3.0):
    """World-space checker floor and back wall (y up): vertices, faces and per-face colours."""
    verts, faces, colors = [], [], []
    n = int(size / tile)
    x0, z0 = centre[0] - size / 2, centre[2] - size / 2
    for i in range(n):
        for j in range(n):
            base = len(verts)
            xa, za = x0 + i * tile, z0 + j * tile
            verts += [(xa, ground_height, za), (xa + tile, ground_height, za), (xa + tile, ground_height, za + tile),
                      (xa, ground_height, za + tile)]
            faces += [(base, base + 2, base + 1), (base, base + 3, base + 2)]
            c = (185, 175, 160) if (i + j) % 2 == 0 else (120, 110, 100)
            colors += [c, c]
    # The wall: a vertical plane behind the pair, facing the camera.
    back = np.array([back_dir[0], 0.0, back_dir[2]])
    back = back / np.linalg.norm(back)
    side = np.array([-back[2], 0.0, back[0]])
    w0 = centre + back * wall_distance
    base = len(verts)
    for dx, dy in ((-1, 0), (1, 0), (1, 1), (-1, 1)):
        p = w0 + side * dx * size / 2
        verts.append((p[0], ground_height + dy * 3.5, p[2]))
    faces += [(base, base + 1, base + 2), (base, base + 2, base + 3)]
    colors += [(205, 210, 200)] * 2
    return np.array(verts, dtype=np.float64), np.array(faces, dtype=np.int64), np.array(colors, dtype=np.float64)


def render_scene(size: tuple[int, int], K: np.ndarray, meshes: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                 lights=((0.4, -0.8, -0.6), (-0.6, -0.3, -0.4)), light_strength=(0.7, 0.35),
                 ambient: float = 0.3, background=(90, 100, 110)) -> np.ndarray:
    """Render camera-frame triangle meshes ``[(verts (N,3), faces (F,3), face_colors (F,3))]`` to an
    (H, W, 3) uint8 image; directions point toward the lights in the camera frame."""
    H, W = size
    verts, faces, cols, off = [], [], [], 0
    for v, f, c in meshes:
        verts.append(v)
        faces.append(f + off)
        cols.append(c)
        off += len(v)
    verts, faces, cols = np.concatenate(verts), np.concatenate(faces), np.concatenate(cols)
    frags = rasterize(verts, faces, K, (H, W), cull_back=False)
    n = face_normals(verts, faces)
    k = np.full(len(faces), ambient)
    for d, s in zip(lights, light_strength):
        d = np.asarray(d, dtype=np.float64)
        k += s * np.abs(n @ (d / np.linalg.norm(d)))
    shaded = np.clip(cols * k[:, None], 0, 255)
    img = np.empty((H, W, 3), dtype=np.uint8)
    img[:] = background
    mask = frags.tri >= 0
    img[mask] = shaded[frags.tri[mask]].astype(np.uint8)
    return img
