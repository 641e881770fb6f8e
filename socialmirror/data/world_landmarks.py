"""MediaPipe's metric "world" landmarks: their measured error, and a simulator of them for training and
evaluation on joint-only data.

MediaPipe gives, per person and frame, 33 root-relative 3D landmarks in metres (hip-centred, camera-aligned
axes), mapped onto SMPL-24 by ``socialmirror.body.keypoints.to_smpl24_points``. They are evidence, not truth:
the fit to the evidence (``socialmirror.inference.fit``) weighs them by their error, and the simulate protocol
of ``evaluate`` needs them with the same error to be honest about what they add.

The error model (``WorldErrorModel``) is measured, not assumed: ``measure_world_error`` compares the
landmarks MediaPipe gave on rendered anny bodies of known pose with the truth. Per joint it keeps

* ``bias``: the rms over people of the person's mean offset (a landmark that sits systematically off for
  that body and viewpoint), and
* ``jitter``: the rms of what remains frame to frame,

both after removing the global rotation (a per-frame Kabsch fit on the joints: MediaPipe's axes are only
roughly the camera's) and the size (``stature``, below), in metres. ``rotation_deg`` is the median of that
global rotation. Per bone of the fit (``socialmirror.body.bones.EVIDENCE_BONES``) it keeps the rms chord
between unit directions in the torso frame. ``stature`` is the landmarks' mean stature along the skeleton
(``landmark_stature``): MediaPipe gives everybody about one size (on the embedded sample 1.52 and 1.49 m
for people of 1.69 and 1.41 m; on the validation split's rendered people of 0.97-1.81 m no correlation with
the truth), so the simulated landmarks have that size too, whatever the person's (landmarks of the true
size tell a network what real ones never tell, and it learns to read the size from them). ``socialmirror calibrate-world`` runs the measurement on a rendered sample and writes
the JSON that ``default_world_error()`` reads (shipped: ``socialmirror/assets/world_landmark_error.json``).

``simulate_world_landmarks`` draws landmarks from the truth with that error: root-relative joints scaled to
MediaPipe's stature, rotated by a random global rotation of the measured size, plus a per-person constant
offset (bias) and per-frame noise (jitter) per joint; joints MediaPipe does not give are NaN.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from socialmirror.body.bones import EVIDENCE_BONES, bone_directions, bone_key
from socialmirror.body.keypoints import smpl24_mapped_mask
from socialmirror.body.skeleton import NUM_JOINTS, SMPL24_NAMES, stature
from socialmirror.io import atomic_write_json
from socialmirror.paths import ASSETS_DIR

WORLD_ERROR_PATH = ASSETS_DIR / "world_landmark_error.json"


@dataclass(frozen=True)
class WorldErrorModel:
    bias: tuple[float, ...]  # (24,) metres per joint (0 where MediaPipe gives nothing)
    jitter: tuple[float, ...]  # (24,) metres per joint
    rotation_deg: float  # median global rotation between MediaPipe's axes and the camera's
    bone_chord: dict[str, float]  # "from-to" -> rms chord of the unit bone direction in the torso frame
    source: str = ""  # what it was measured on
    stature: float = 0.0  # metres, MediaPipe's mean stature along the skeleton (0: not measured, true size kept)

    def save(self, path: str | Path = WORLD_ERROR_PATH) -> Path:
        return atomic_write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | Path = WORLD_ERROR_PATH) -> "WorldErrorModel":
        raw = json.loads(Path(path).read_text())
        return cls(tuple(raw["bias"]), tuple(raw["jitter"]), float(raw["rotation_deg"]), dict(raw["bone_chord"]),
                   str(raw.get("source", "")), float(raw.get("stature", 0.0)))


@lru_cache(maxsize=1)
def default_world_error() -> WorldErrorModel:
    """The shipped measurement (``socialmirror calibrate-world`` rewrites it)."""
    return WorldErrorModel.load(WORLD_ERROR_PATH)


def _kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotation R minimising ||R src - dst|| for centred (N, 3) point sets."""
    u, _, vt = np.linalg.svd(src.T @ dst)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def landmark_stature(rel: np.ndarray) -> np.ndarray:
    """(..., 24, 3) -> (...) stature along the skeleton over the joints MediaPipe gives (no spine joint: the
    spine is measured head-neck-pelvis), the same measure for landmarks and for the truth they are compared to."""
    return stature(rel, SMPL24_NAMES, present=smpl24_mapped_mask())


def _random_rotation(rng: np.random.Generator, degrees: float) -> np.ndarray:
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = np.radians(degrees) * rng.normal()
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def measure_world_error(world: np.ndarray, truth: np.ndarray, source: str = "") -> WorldErrorModel:
    """The error model from MediaPipe's landmarks ``world`` (T, P, 24, 3) (NaN where not given) against the true
    camera-frame joints ``truth`` (T, P, 24, 3) of the same people in the same order."""
    world, truth = np.asarray(world, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    mapped = smpl24_mapped_mask()
    rel_w = world - world[..., :1, :]
    rel_t = truth - truth[..., :1, :]
    frames = np.isfinite(rel_w[..., mapped, :]).all((-1, -2)) & np.isfinite(rel_t[..., mapped, :]).all((-1, -2))
    if not frames.any():
        raise ValueError("no frame where both the landmarks and the truth are complete")
    residual = np.full(rel_w.shape, np.nan)
    angles = []
    size_w, size_t = landmark_stature(rel_w), landmark_stature(rel_t)  # (T, P)
    for t, p in zip(*np.nonzero(frames)):
        target = rel_t[t, p] * (size_w[t, p] / size_t[t, p])  # the truth at the landmarks' size
        r = _kabsch(rel_w[t, p, mapped], target[mapped])
        residual[t, p] = rel_w[t, p] @ r.T - target
        angles.append(np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1))))
    with warnings.catch_warnings():  # the joints MediaPipe never gives are all-NaN: 0 below
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(residual, axis=0)  # (P, 24, 3) each person's constant offset
        bias = np.sqrt(np.nanmean((mean ** 2).sum(-1), axis=0))
        jitter = np.sqrt(np.nanmean(((residual - mean[None]) ** 2).sum(-1).reshape(-1, NUM_JOINTS), axis=0) / 3.0)
    bias = np.where(mapped, np.nan_to_num(bias / np.sqrt(3.0)), 0.0)  # per axis
    jitter = np.where(mapped, np.nan_to_num(jitter), 0.0)
    dirs = lambda x: bone_directions(torch.as_tensor(np.nan_to_num(x), dtype=torch.float32)).numpy()  # noqa: E731
    chord = ((dirs(world) - dirs(truth)) ** 2).sum(-1)[frames]  # (N, B)
    bone_chord = {bone_key(a, b): float(np.sqrt(chord[:, k].mean())) for k, (a, b) in enumerate(EVIDENCE_BONES)}
    return WorldErrorModel(tuple(float(v) for v in bias), tuple(float(v) for v in jitter),
                           float(np.median(angles)), bone_chord, source, float(size_w[frames].mean()))


def simulate_world_landmarks(joints_cam: np.ndarray, rng: np.random.Generator,
                             model: WorldErrorModel | None = None) -> np.ndarray:
    """Landmarks (T, 2, 24, 3) as MediaPipe would give them for true camera-frame joints ``joints_cam``
    (T, 2, 24, 3): root-relative, at MediaPipe's size (each person's mean stature scaled to ``model.stature``),
    with the measured error; NaN where MediaPipe gives no joint or the truth has none."""
    model = model or default_world_error()
    t, p = joints_cam.shape[:2]
    rel = joints_cam - joints_cam[..., :1, :]
    if model.stature > 0:
        with warnings.catch_warnings():  # a person absent from the truth (NaN) keeps NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            size = np.nanmean(landmark_stature(rel), axis=0)  # (P,)
        rel = rel * (model.stature / np.where(size > 0, size, model.stature))[None, :, None, None]
    bias = rng.normal(size=(1, p, NUM_JOINTS, 3)) * np.asarray(model.bias)[None, None, :, None]
    jitter = rng.normal(size=(t, p, NUM_JOINTS, 3)) * np.asarray(model.jitter)[None, None, :, None]
    rotation = np.stack([_random_rotation(rng, model.rotation_deg) for _ in range(p)])  # one per person
    out = np.einsum("pij,tpkj->tpki", rotation, rel) + bias + jitter
    out = out - out[..., :1, :]  # hip-centred, as MediaPipe's are (its pelvis is the origin by definition)
    out[..., ~smpl24_mapped_mask(), :] = np.nan
    return out.astype(np.float32)


__all__ = ["WORLD_ERROR_PATH", "WorldErrorModel", "default_world_error", "landmark_stature", "measure_world_error",
           "simulate_world_landmarks"]
