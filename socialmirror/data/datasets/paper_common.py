"""What the paper's data-set loaders (Hi4D, 3DPW, Harmony4D, CHI3D) share.

Every loader turns one published recording into a :class:`PaperSample`:

- ``sequence``: a :class:`~socialmirror.data.formats.interchange.TwoPersonSequence` (the training *target*: both
  persons' joints in metres on SMPL-24 names, in the data set's world frame, with the *action* read from
  the published folder or file name). ``sequence.meta`` holds the cameras as plain JSON
  (``meta["cameras"]``, see :meth:`CameraParams.to_dict`), so a sequence written with ``write_npz`` keeps
  them;
- ``smpl``: the published body-model parameters (:class:`SMPLParams`), so a user with the licensed SMPL /
  SMPL-X files can rebuild the meshes with ``build_body_model("smpl:DIR")`` (see
  ``socialmirror.data.targets``);
- ``cameras``: the real calibrated cameras (:class:`CameraParams`), so observations (2D keypoints) can be
  made by projecting into the cameras the data set was filmed with (:meth:`PaperSample.project`) rather
  than into a sampled one;
- ``split``: the split the paper's protocol puts the recording in (or the published split folder).

The *initial-estimate inputs* the method refines (per-frame HMR-style estimates from the video) are not
part of any of these releases; they come from running the perception stage on the published images.

Camera convention (all loaders): ``x_cam = R @ X_world + t``, pixels ``K @ x_cam`` after division by
depth; OpenCV axes (x right, y down, z forward). Distortion is kept as published (``dist``) and is not
applied by :meth:`CameraParams.project`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from socialmirror.body.skeleton import NUM_JOINTS
from socialmirror.data.formats.interchange import TwoPersonSequence
from socialmirror.errors import InputError
from socialmirror.geometry.camera import project_points, world_to_camera

# ------------------------------------------------------------------------------------------- cameras


@dataclass
class CameraParams:
    """One calibrated camera: ``x_cam = R X + t``; ``R`` (3, 3) and ``t`` (3,) for a fixed camera, or
    (T, 3, 3) and (T, 3) for a moving one (3DPW's hand-held camera, one pose per frame)."""

    name: str
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    dist: np.ndarray | None = None
    image_size: tuple[int, int] | None = None  # (width, height) in pixels, where the data set says
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.K = np.asarray(self.K, dtype=np.float64).reshape(3, 3)
        self.R = np.asarray(self.R, dtype=np.float64)
        self.t = np.asarray(self.t, dtype=np.float64)
        if self.R.shape[-2:] != (3, 3) or self.R.ndim not in (2, 3):
            raise ValueError(f"camera {self.name}: R has shape {self.R.shape}, expected (3, 3) or (T, 3, 3)")
        self.t = self.t.reshape(self.R.shape[:-2] + (3,))
        if self.dist is not None:
            self.dist = np.asarray(self.dist, dtype=np.float64).reshape(-1)

    @property
    def moving(self) -> bool:
        return self.R.ndim == 3

    @property
    def center(self) -> np.ndarray:
        """Camera centre(s) in world coordinates: -R^T t, (3,) or (T, 3)."""
        return -np.einsum("...ji,...j->...i", self.R, self.t)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (T, ..., 3) (T frames when the camera moves) -> camera coordinates."""
        try:
            return world_to_camera(points, self.R, self.t)
        except ValueError as e:
            raise ValueError(f"camera {self.name}: {e}") from None

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points -> pixel coordinates (..., 2) (pinhole, no distortion); depth <= 0 gives NaN."""
        return project_points(self.to_camera(points), self.K, min_depth=1e-9)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height): as published, else twice the principal point (centred principal point)."""
        if self.image_size is not None:
            return self.image_size
        return (max(1, int(round(2 * self.K[0, 2]))), max(1, int(round(2 * self.K[1, 2]))))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``sequence.meta["cameras"]`` holds)."""
        d: dict[str, Any] = {"name": self.name, "K": self.K.tolist(), "R": self.R.tolist(), "t": self.t.tolist()}
        if self.dist is not None:
            d["dist"] = self.dist.tolist()
        if self.image_size is not None:
            d["image_size"] = [int(v) for v in self.image_size]
        if self.extra:
            d["extra"] = self.extra
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CameraParams:
        size = d.get("image_size")
        return cls(name=str(d["name"]), K=np.array(d["K"]), R=np.array(d["R"]), t=np.array(d["t"]),
                   dist=None if d.get("dist") is None else np.array(d["dist"]),
                   image_size=None if size is None else (int(size[0]), int(size[1])), extra=d.get("extra", {}))


def cameras_from_meta(seq: TwoPersonSequence) -> list[CameraParams]:
    """The cameras a paper loader stored in ``seq.meta["cameras"]`` (also after a write/read round trip)."""
    return [CameraParams.from_dict(d) for d in seq.meta.get("cameras", [])]


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions (w, x, y, z) -> (..., 3, 3) rotation matrices."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


# ------------------------------------------------------------------------------------ SMPL parameters


@dataclass
class SMPLParams:
    """Published body-model parameters of both persons, frame-major like ``joints3d``.

    ``global_orient`` (T, 2, 3) and ``body_pose`` (T, 2, 3 * J) are axis-angle (J = 23 for SMPL, 21 for
    SMPL-X); ``betas`` (T, 2, B); ``transl`` (T, 2, 3) is the *model's own* translation parameter (the
    pelvis sits at J_0(betas) + transl), not the project's pelvis translation: convert with
    ``SMPLBodyModel.smpl_transl_to_pelvis`` (``socialmirror.data.targets.smpl_targets`` does).
    """

    global_orient: np.ndarray
    body_pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    model: str = "smpl"  # "smpl" | "smplx"
    genders: tuple[str, str] | None = None  # "male" | "female" | "neutral" per person

    def __post_init__(self) -> None:
        self.global_orient = np.asarray(self.global_orient, dtype=np.float32)
        self.body_pose = np.asarray(self.body_pose, dtype=np.float32)
        self.transl = np.asarray(self.transl, dtype=np.float32)
        t = self.global_orient.shape[0]
        betas = np.asarray(self.betas, dtype=np.float32)
        if betas.ndim == 2:  # (2, B): one shape per person for the whole sequence
            betas = np.broadcast_to(betas[None], (t,) + betas.shape).copy()
        self.betas = betas
        if self.model not in ("smpl", "smplx"):
            raise ValueError(f"unknown body model {self.model!r} (expected smpl or smplx)")
        expected = 69 if self.model == "smpl" else 63
        for name, arr, shape in (("global_orient", self.global_orient, (t, 2, 3)),
                                 ("body_pose", self.body_pose, (t, 2, expected)),
                                 ("transl", self.transl, (t, 2, 3))):
            if arr.shape != shape:
                raise ValueError(f"SMPL parameters: {name} has shape {arr.shape}, expected {shape}")
        if self.betas.ndim != 3 or self.betas.shape[:2] != (t, 2):
            raise ValueError(f"SMPL parameters: betas has shape {self.betas.shape}, expected ({t}, 2, B)")

    @property
    def num_frames(self) -> int:
        return int(self.global_orient.shape[0])

    def select_frames(self, index) -> SMPLParams:
        return SMPLParams(self.global_orient[index], self.body_pose[index], self.betas[index],
                          self.transl[index], self.model, self.genders)

    def rotmats(self) -> torch.Tensor:
        """(T, 2, 24, 3, 3) rotations in SMPL-24 order for the project's body models.

        SMPL-X has 21 body joints: SMPL-24's two hand joints (22, 23) get the identity."""
        from socialmirror.geometry.rotations import axis_angle_to_matrix

        t = self.num_frames
        aa = np.concatenate([self.global_orient[:, :, None], self.body_pose.reshape(t, 2, -1, 3)], axis=2)
        if aa.shape[2] < NUM_JOINTS:
            aa = np.concatenate([aa, np.zeros((t, 2, NUM_JOINTS - aa.shape[2], 3), np.float32)], axis=2)
        return axis_angle_to_matrix(torch.from_numpy(np.ascontiguousarray(aa[:, :, :NUM_JOINTS])))

    def to_meta(self) -> dict[str, Any]:
        """A short JSON description (the arrays stay in this object, not in the sequence's meta)."""
        return {"model": self.model, "genders": list(self.genders) if self.genders else None,
                "num_betas": int(self.betas.shape[-1])}


# --------------------------------------------------------------------------------------------- sample


@dataclass
class PaperSample:
    """One recording of a paper data set, ready for training or evaluation (see the module docstring)."""

    sequence: TwoPersonSequence
    smpl: SMPLParams | None = None
    cameras: list[CameraParams] = field(default_factory=list)
    split: str | None = None
    dataset: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # data-set specific arrays (e.g. raw joints)

    @property
    def name(self) -> str:
        return self.sequence.name

    @property
    def action(self) -> str | None:
        return self.sequence.action

    def camera(self, name: str | int) -> CameraParams:
        if isinstance(name, int):
            return self.cameras[name]
        for cam in self.cameras:
            if cam.name == str(name):
                return cam
        raise KeyError(f"{self.name}: no camera {name!r} (has {[c.name for c in self.cameras]})")

    def project(self, camera: str | int = 0) -> np.ndarray:
        """(T, 2, J, 2) pixel positions of both persons' joints in one of the real cameras."""
        return self.camera(camera).project(self.sequence.joints3d)

    def observe(self, camera: str | int = 0, seed: int = 0, config=None):
        """A simulated detector observation (``socialmirror.data.observation``) through one of the real
        cameras: the training/evaluation input the method sees for this recording.

        A moving camera (3DPW) is handled by moving the sequence into the camera's frame first (frame by
        frame), then observing it with a fixed identity camera: same pixels, same occlusions."""
        from dataclasses import replace

        from socialmirror.data.observation import Camera, observe

        cam = self.camera(camera)
        seq = self.sequence
        if cam.moving:
            joints = cam.to_camera(seq.joints3d)
            verts = None if seq.vertices is None else cam.to_camera(seq.vertices)
            seq = replace(seq, joints3d=joints.astype(np.float32), vertices=verts,
                          up=cam.R[0] @ seq.up, meta=dict(seq.meta))
            R, t = np.eye(3), np.zeros(3)
        else:
            R, t = cam.R, cam.t
        return observe(seq, Camera(R=R, t=t, K=cam.K, image_size=cam.size), seed=seed, config=config)


# ------------------------------------------------------------------------------------------- helpers

_UPPER = ("neck", "head", "left_shoulder", "right_shoulder", "spine3", "left_collar", "right_collar")
_LOWER = ("pelvis", "left_hip", "right_hip")
_AXES = np.concatenate([np.eye(3), -np.eye(3)])


def estimate_up(joints: np.ndarray, joint_names, snap_degrees: float = 25.0) -> np.ndarray:
    """The world's up direction from the bodies themselves: the mean hips-to-shoulders direction over
    every frame and person, snapped to the nearest +-x/y/z axis when within ``snap_degrees`` of it.

    Used for data sets whose release does not state the world frame's up axis (or states it per capture):
    people stand upright most of the time, so the mean trunk direction is the up axis to a few degrees."""
    names = list(joint_names)
    up_idx = [names.index(n) for n in _UPPER if n in names]
    low_idx = [names.index(n) for n in _LOWER if n in names]
    if not up_idx or not low_idx:
        return np.array([0.0, 1.0, 0.0])
    j = np.asarray(joints, dtype=np.float64)
    v = (j[..., up_idx, :].mean(-2) - j[..., low_idx, :].mean(-2)).reshape(-1, 3)
    v = v[np.all(np.isfinite(v), axis=-1)]
    mean = v.sum(0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-9:
        return np.array([0.0, 1.0, 0.0])
    mean = mean / norm
    cos = _AXES @ mean
    k = int(np.argmax(cos))
    if cos[k] >= np.cos(np.radians(snap_degrees)):
        return _AXES[k].copy()
    return mean


def require_dir(path: str | Path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{what}: no such folder: {path}")
    if not path.is_dir():
        raise InputError(f"{what}: {path} is a file, expected a folder")
    return path


def strip_number(name: str) -> str:
    """'hug13' -> 'hug', 'Hug 1' -> 'Hug', '01_hugging' -> 'hugging'."""
    name = re.sub(r"^\d+[_\- ]*", "", name)
    return re.sub(r"[_\- ]*\d+$", "", name).strip()


__all__ = ["CameraParams", "SMPLParams", "PaperSample", "cameras_from_meta", "estimate_up",
           "quaternion_to_matrix", "require_dir", "strip_number"]


def nonempty_samples(samples: list[PaperSample], dataset: str, root: str | Path, split: str | None
                     ) -> list[PaperSample]:
    """``samples``, or an ``InputError`` saying that ``root`` holds no two-person sequence."""
    if not samples:
        raise InputError(f"{dataset}: no two-person sequence under {root}" + (f" in split {split}" if split else ""))
    return samples
