"""Animated glTF 2.0 (.glb): skinned bodies, one animation, the camera; written with the standard library.

Each person is a skinned mesh (``body.anny_model.SkinRig``: anny's vertices at the person's shape, its weights
collapsed onto the 30 bones that the SMPL-24 rotations drive, up to eight influences in two JOINTS/WEIGHTS
sets) on a node tree of those bones. Bind pose: the rest pose, pelvis at the origin, every bone unrotated, so
a bone's inverse bind matrix is the translation by minus its rest head and its node's rest translation is its
offset from its parent. The animation (LINEAR, at the video's frame rate) sets every bone's rotation (its
SMPL-24 joint's local rotation) and the pelvis' translation, per frame.

Axes: glTF is y up with cameras looking down -z, so the camera frame (OpenCV: x right, y down, z forward) is
turned half about x (``geometry.camera.CAMERA_TO_Y_UP``); the video's camera is then the identity node at the origin, with the
video's vertical field of view and aspect ratio. Units: metres.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import numpy as np

from socialmirror.geometry.camera import CAMERA_TO_Y_UP

_FLOAT, _UINT8, _UINT32 = 5126, 5121, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963


@dataclass
class AnimatedPerson:
    """One person for ``format_glb``: a rig (``SkinRig``) and its motion in the camera frame."""

    rig: object  # socialmirror.body.anny_model.SkinRig
    rotmats: np.ndarray  # (T, 24, 3, 3) SMPL-24 local rotations (0: global orientation, camera frame)
    transl: np.ndarray  # (T, 3) pelvis, camera frame, metres
    name: str = "person"


def matrix_to_quaternion(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 4) unit quaternions (x, y, z, w), glTF's order."""
    from scipy.spatial.transform import Rotation
    shape = R.shape[:-2]
    return Rotation.from_matrix(R.reshape(-1, 3, 3)).as_quat().reshape(*shape, 4)


class _Buffer:
    """The binary chunk and the accessors into it."""

    def __init__(self):
        self.data = bytearray()
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def add(self, array: np.ndarray, kind: str, component: int, target: int | None = None,
            bounds: bool = False) -> int:
        array = np.ascontiguousarray(array)
        while len(self.data) % 4:
            self.data.append(0)
        view = {"buffer": 0, "byteOffset": len(self.data), "byteLength": array.nbytes}
        if target is not None:
            view["target"] = target
        self.data.extend(array.tobytes())
        self.views.append(view)
        count = array.shape[0]
        accessor = {"bufferView": len(self.views) - 1, "componentType": component, "count": int(count), "type": kind}
        if bounds:
            flat = array.reshape(count, -1)
            accessor["min"] = flat.min(0).astype(float).tolist()
            accessor["max"] = flat.max(0).astype(float).tolist()
        self.accessors.append(accessor)
        return len(self.accessors) - 1


def _top_influences(weights: np.ndarray, count: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(V, K) weights -> the ``count`` largest per vertex: joints (V, count) uint8 and weights (V, count)
    float32 renormalised to sum 1 (anny has at most six non-zero ones: exact)."""
    order = np.argsort(-weights, axis=1)[:, :count]
    chosen = np.take_along_axis(weights, order, axis=1)
    chosen = chosen / chosen.sum(1, keepdims=True)
    order = np.where(chosen > 0, order, 0)
    return order.astype(np.uint8), chosen.astype(np.float32)


def format_glb(people: list[AnimatedPerson], fps: float, intrinsics: np.ndarray | None = None,
               image_size: tuple[int, int] | None = None) -> bytes:
    """The .glb bytes of the people's skinned, animated bodies and the video's camera (see module doc)."""
    buffer = _Buffer()
    nodes: list[dict] = []
    meshes, skins, channels, samplers = [], [], [], []
    scene_nodes: list[int] = []
    T = int(people[0].rotmats.shape[0])
    times = buffer.add((np.arange(T) / float(fps)).astype(np.float32)[:, None], "SCALAR", _FLOAT, bounds=True)
    for person in people:
        rig = person.rig
        heads = rig.heads.detach().cpu().numpy().astype(np.float64)
        parents = list(rig.parents)
        K = len(parents)
        first = len(nodes)
        for k in range(K):
            offset = heads[k] - (heads[parents[k]] if parents[k] >= 0 else 0.0)
            nodes.append({"name": f"{person.name}_{rig.names[k]}", "translation": offset.tolist()})
        for k in range(K):
            kids = [first + c for c in range(K) if parents[c] == k]
            if kids:
                nodes[first + k]["children"] = kids
        # Motion: every bone's local rotation; the pelvis also moves and carries the turn into glTF's axes.
        local = np.asarray(person.rotmats, dtype=np.float64)[:, list(rig.rotation_of)]  # (T, K, 3, 3)
        local[:, 0] = CAMERA_TO_Y_UP @ local[:, 0]
        quats = matrix_to_quaternion(local).astype(np.float32)
        for k in range(K):
            out = buffer.add(quats[:, k], "VEC4", _FLOAT)
            samplers.append({"input": times, "output": out, "interpolation": "LINEAR"})
            channels.append({"sampler": len(samplers) - 1, "target": {"node": first + k, "path": "rotation"}})
        root = (np.asarray(person.transl, dtype=np.float64) @ CAMERA_TO_Y_UP.T).astype(np.float32)
        out = buffer.add(root, "VEC3", _FLOAT)
        samplers.append({"input": times, "output": out, "interpolation": "LINEAR"})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": first, "path": "translation"}})
        nodes[first]["translation"] = root[0].astype(float).tolist()
        # The skinned mesh in the bind pose.
        positions = rig.rest_vertices.detach().cpu().numpy().astype(np.float32)
        joints, weights = _top_influences(rig.weights.detach().cpu().numpy().astype(np.float64))
        attributes = {"POSITION": buffer.add(positions, "VEC3", _FLOAT, _ARRAY_BUFFER, bounds=True),
                      "JOINTS_0": buffer.add(joints[:, :4], "VEC4", _UINT8, _ARRAY_BUFFER),
                      "WEIGHTS_0": buffer.add(weights[:, :4], "VEC4", _FLOAT, _ARRAY_BUFFER),
                      "JOINTS_1": buffer.add(joints[:, 4:], "VEC4", _UINT8, _ARRAY_BUFFER),
                      "WEIGHTS_1": buffer.add(weights[:, 4:], "VEC4", _FLOAT, _ARRAY_BUFFER)}
        faces = rig.faces.detach().cpu().numpy().astype(np.uint32).reshape(-1)
        indices = buffer.add(faces, "SCALAR", _UINT32, _ELEMENT_ARRAY_BUFFER)
        meshes.append({"name": person.name, "primitives": [{"attributes": attributes, "indices": indices}]})
        inverse_bind = np.tile(np.eye(4, dtype=np.float32), (K, 1, 1))
        inverse_bind[:, :3, 3] = -heads
        ibm = buffer.add(inverse_bind.transpose(0, 2, 1).reshape(K, 16), "MAT4", _FLOAT)  # column-major
        # Each skeleton under a node of its own: importers that make one armature per skeleton root (Blender
        # takes the joints' deepest common ancestor's parent) then give each person their own.
        nodes.append({"name": person.name, "children": [first]})
        skins.append({"name": person.name, "joints": list(range(first, first + K)), "skeleton": len(nodes) - 1,
                      "inverseBindMatrices": ibm})
        nodes.append({"name": f"{person.name}_mesh", "mesh": len(meshes) - 1, "skin": len(skins) - 1})
        scene_nodes += [len(nodes) - 2, len(nodes) - 1]
    doc = {"asset": {"version": "2.0", "generator": "socialmirror"}, "scene": 0,
           "scenes": [{"nodes": scene_nodes}], "nodes": nodes, "meshes": meshes, "skins": skins,
           "animations": [{"name": "motion", "channels": channels, "samplers": samplers}]}
    if intrinsics is not None and image_size is not None:
        width, height = image_size
        fy = float(intrinsics[1][1])
        doc["cameras"] = [{"type": "perspective", "perspective": {
            "yfov": float(2.0 * np.arctan(0.5 * height / fy)), "aspectRatio": float(width) / float(height),
            "znear": 0.05, "zfar": 1000.0}}]
        nodes.append({"name": "video_camera", "camera": 0})
        doc["scenes"][0]["nodes"].append(len(nodes) - 1)
    doc["accessors"], doc["bufferViews"] = buffer.accessors, buffer.views
    doc["buffers"] = [{"byteLength": len(buffer.data)}]
    return _glb(doc, bytes(buffer.data))


def _glb(doc: dict, binary: bytes) -> bytes:
    """The GLB container: a 12-byte header, the JSON chunk (space-padded) and the BIN chunk (zero-padded)."""
    text = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    total = 12 + 8 + len(text) + 8 + len(binary)
    return (struct.pack("<III", 0x46546C67, 2, total) + struct.pack("<II", len(text), 0x4E4F534A) + text
            + struct.pack("<II", len(binary), 0x004E4942) + binary)


__all__ = ["AnimatedPerson", "format_glb", "matrix_to_quaternion"]
