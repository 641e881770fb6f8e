"""Observation model: what a 2D pose detector would report for a two-person sequence seen by a camera.

Training the networks needs (2D keypoints, 3D target) pairs, and evaluating on joint-only mocap (CMU,
Bütepage, interchange files) needs 2D input the method can run on. Both come from here: a camera is placed
around the pair, the 3D joints are projected, and the clean projection is degraded the way a real detector
(MediaPipe, ``socialmirror.perception``) degrades it. Everything is driven by one seeded numpy
generator, so an observation is a pure function of (sequence, camera, config, seed).

Layout of the output (the contract downstream models rely on): keypoints in SMPL-24 order, (24, 3) =
(u, v, confidence) per person and frame, with confidence 0 (and u = v = 0, so tensors stay finite) for every
joint the detector does not give. The set of joints that *can* be non-zero is exactly the set the MediaPipe
mapping fills (``socialmirror.body.keypoints.smpl24_mapped_mask``): spine1-3 and the collars never are, so a
model trained on simulated observations sees at training time the same holes it sees at test time. Boxes come
from the keypoints by the rule the run time uses (``socialmirror.body.keypoints.keypoints_to_boxes``).

Camera placement (``CameraSpec``, ``place_camera``): the camera looks at the centre of the pair's joints.
``azimuth`` is measured around the world's up axis from the side view: at azimuth 0 the camera looks
perpendicular to the line from person 0 to person 1 and person 0 appears on the image's left; at +-90 degrees
it looks along that line, one person behind the other. ``height`` is above the floor (estimated from the
feet, or from the head when a data set has no legs), ``tilt`` is the downward pitch in degrees (None: aim at
the target), ``roll`` rotates about the optical axis. With ``fit=True`` the camera backs off until every joint
is inside the image, so a sampled close-up never silently cuts people in half. Focal length defaults to the
image diagonal in pixels (CloseInt's convention, ``focal_from_diagonal``).

Noise model (``ObservationConfig``; amounts relative to the person's box side b in pixels, so the noise is the
same at any distance and resolution, as detector errors are):

* jitter: Gaussian, sigma = ``jitter_sigma`` * b * a per-joint factor (extremities are noisier), plus a per
  person-and-joint constant offset ``bias_sigma`` * b (detectors' landmarks sit systematically off the
  anatomical joint centres);
* outliers: with ``outlier_prob`` a joint jumps by ``outlier_magnitude`` * b in a random direction, with a
  confidence that is not necessarily low (detectors are confidently wrong);
* missed joints (``missed_joint_prob``): confidence 0;
* missed frames: a person disappears for bursts of mean length ``missed_burst_mean`` frames, with a stationary
  rate ``missed_frame_prob`` (a two-state Markov chain), all joints confidence 0;
* left/right swaps (``swap_prob`` per person and frame): the left and right keypoints trade places;
* truncation: joints outside the image or behind the camera get confidence 0;
* occlusion by the other person, from geometry: a joint of person A is occluded when the segment from the
  camera centre to it passes through person B's body, approximated by capsules around B's bones with radii
  by body part (``BODY_CAPSULES``), or by B's mesh when the sequence has vertices (``use_mesh``). An occluded
  joint keeps a position with ``occluded_noise_scale`` times the jitter and a confidence in
  ``occluded_confidence``, or is dropped with ``occluded_drop_prob``. Self-occlusion is not modelled.

MediaPipe's 3D world landmarks (``world_landmarks``) come with the detection: root-relative joints with the
error measured on rendered bodies (``socialmirror.data.world_landmarks``), where the person is detected.
"""
from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from socialmirror.body.keypoints import keypoints_to_boxes, smpl24_mapped_mask
from socialmirror.body.skeleton import JOINT_INDEX, NUM_JOINTS, SMPL24_MIRROR
from socialmirror.data.formats.interchange import TwoPersonSequence
from socialmirror.data.world_landmarks import simulate_world_landmarks
from socialmirror.geometry.camera import PinholeCamera, box_from_points, focal_from_diagonal
from socialmirror.io import atomic_savez

# ----------------------------------------------------------------------------------------------- joints

def to_smpl24_layout(seq: TwoPersonSequence) -> tuple[np.ndarray, np.ndarray]:
    """The sequence's joints as (T, 2, 24, 3) in SMPL-24 order (NaN where absent) and the (24,) presence mask."""
    t = seq.num_frames
    joints = np.full((t, 2, NUM_JOINTS, 3), np.nan, dtype=np.float64)
    present = np.zeros(NUM_JOINTS, dtype=bool)
    for k, name in enumerate(seq.joint_names):
        joints[:, :, JOINT_INDEX[name]] = seq.joints3d[:, :, k]
        present[JOINT_INDEX[name]] = True
    return joints, present


# Body approximated by capsules (joint a, joint b, radius in metres), for occlusion only. The skeleton's bones
# plus three torso columns (centre and both sides) and a head sphere, so that a data set with few joints
# (CMU has no spine2, Bütepage no pelvis) still gets a torso: a capsule is used when both its joints exist.
BODY_CAPSULES: tuple[tuple[str, str, float], ...] = (
    ("pelvis", "neck", 0.11), ("left_hip", "left_shoulder", 0.08), ("right_hip", "right_shoulder", 0.08),
    ("pelvis", "spine1", 0.12), ("spine1", "spine2", 0.12), ("spine2", "spine3", 0.12), ("spine3", "neck", 0.1),
    ("spine3", "left_shoulder", 0.07), ("spine3", "right_shoulder", 0.07),
    ("neck", "left_shoulder", 0.06), ("neck", "right_shoulder", 0.06),
    ("left_hip", "right_hip", 0.1), ("pelvis", "left_hip", 0.1), ("pelvis", "right_hip", 0.1),
    ("neck", "head", 0.06), ("head", "head", 0.1),
    ("left_shoulder", "left_elbow", 0.05), ("right_shoulder", "right_elbow", 0.05),
    ("left_elbow", "left_wrist", 0.04), ("right_elbow", "right_wrist", 0.04),
    ("left_wrist", "left_hand", 0.04), ("right_wrist", "right_hand", 0.04),
    ("left_hip", "left_knee", 0.075), ("right_hip", "right_knee", 0.075),
    ("left_knee", "left_ankle", 0.055), ("right_knee", "right_ankle", 0.055),
    ("left_ankle", "left_foot", 0.045), ("right_ankle", "right_foot", 0.045),
)

# Per-joint jitter factor: extremities and hips (whose detector landmarks are ambiguous) are noisier.
DEFAULT_JOINT_NOISE: dict[str, float] = {
    "left_wrist": 1.5, "right_wrist": 1.5, "left_hand": 1.8, "right_hand": 1.8,
    "left_ankle": 1.3, "right_ankle": 1.3, "left_foot": 1.5, "right_foot": 1.5,
    "left_hip": 1.3, "right_hip": 1.3, "pelvis": 1.2,
}

# ----------------------------------------------------------------------------------------------- camera

PORTRAIT_SIZES: tuple[tuple[int, int], ...] = ((720, 1280), (1080, 1920))
LANDSCAPE_SIZES: tuple[tuple[int, int], ...] = ((1280, 720), (1920, 1080))


@dataclass(frozen=True)
class CameraSpec:
    """Where a camera stands relative to the pair (see the module docstring for the angle conventions).

    Lengths in metres, angles in degrees, ``image_size`` = (width, height) in pixels; ``focal`` in pixels
    (None: the image diagonal).
    """

    height: float = 1.5
    distance: float = 4.0
    azimuth: float = 0.0
    tilt: float | None = None
    pitch_offset: float = 0.0  # degrees added to the aimed pitch (tilt None): the pair sits higher or lower
    roll: float = 0.0
    image_size: tuple[int, int] = (1280, 720)
    focal: float | None = None
    fit: bool = True
    fit_margin: float = 0.03  # fraction of the image kept free at each border when fitting


@dataclass
class Camera(PinholeCamera):
    """A camera placed for a simulated observation (``geometry.camera.PinholeCamera``), with the spec it was
    placed from."""

    spec: CameraSpec | None = None


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    if not n > 1e-9:
        raise ValueError("degenerate direction while placing the camera")
    return v / n


def _rotate_about(v: np.ndarray, axis: np.ndarray, degrees: float) -> np.ndarray:
    """Rodrigues rotation of v about a unit axis."""
    a = math.radians(degrees)
    return v * math.cos(a) + np.cross(axis, v) * math.sin(a) + axis * np.dot(axis, v) * (1 - math.cos(a))


def _floor_height(joints: np.ndarray, up: np.ndarray) -> float:
    """Height of the floor along ``up``: from the lowest foot joint, else from the head (data sets without legs:
    a standing adult's head joint is ~1.55 m above the floor), else from the lowest joint."""
    heights = joints @ up  # (T, 2, 24)
    for names, above_floor in ((("left_foot", "right_foot"), 0.03), (("left_ankle", "right_ankle"), 0.08)):
        h = heights[..., [JOINT_INDEX[n] for n in names]]
        if np.isfinite(h).any():
            return float(np.nanmin(h)) - above_floor
    head = heights[..., JOINT_INDEX["head"]]
    if np.isfinite(head).any():
        return float(np.nanmedian(head)) - 1.55
    return float(np.nanmin(heights))


def place_camera(joints: np.ndarray, up: np.ndarray, spec: CameraSpec = CameraSpec()) -> Camera:
    """Place a camera for the pair ``joints`` (T, 2, 24, 3) world coordinates (NaN allowed) per ``spec``.

    The target is the centre of the joints' bounding box over all frames; the reference direction for the
    azimuth is the horizontal line from person 0's mean position to person 1's.
    """
    joints = np.asarray(joints, dtype=np.float64)
    up = _unit(np.asarray(up, dtype=np.float64))
    finite = np.isfinite(joints).all(-1)
    if not finite.any():
        raise ValueError("cannot place a camera: the sequence has no finite joints")
    pts = joints[finite]
    target = 0.5 * (pts.min(0) + pts.max(0))
    floor = _floor_height(joints, up)

    centres = [np.nanmean(joints[:, p].reshape(-1, 3), axis=0) for p in (0, 1)]
    axis = centres[1] - centres[0]
    axis = axis - np.dot(axis, up) * up
    if not np.linalg.norm(axis) > 1e-6 or not np.isfinite(axis).all():
        # The two persons coincide horizontally: any horizontal direction will do.
        helper = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
        axis = helper - np.dot(helper, up) * up
    axis = _unit(axis)
    forward_h = _rotate_about(np.cross(up, axis), up, spec.azimuth)  # horizontal viewing direction

    width, height = spec.image_size
    focal = float(spec.focal) if spec.focal is not None else focal_from_diagonal(width, height)
    K = np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])

    target_h = target - np.dot(target, up) * up
    distance = float(spec.distance)
    for _ in range(40):
        centre = target_h - distance * forward_h + (floor + spec.height) * up
        if spec.tilt is None:
            forward = _unit(target - centre)
            if spec.pitch_offset:
                forward = _rotate_about(forward, _unit(np.cross(forward, up)), -spec.pitch_offset)
        else:
            a = math.radians(spec.tilt)
            forward = math.cos(a) * forward_h - math.sin(a) * up
        right = _unit(np.cross(forward, up))
        down = np.cross(forward, right)
        if spec.roll:
            right, down = _rotate_about(right, forward, spec.roll), _rotate_about(down, forward, spec.roll)
        R = np.stack([right, down, forward])
        cam = Camera(R=R, t=-R @ centre, K=K, image_size=(int(width), int(height)), spec=spec)
        if not spec.fit:
            break
        uv = cam.project(cam.to_camera(pts))
        mx, my = spec.fit_margin * width, spec.fit_margin * height
        inside = np.isfinite(uv).all(-1) & (uv[:, 0] >= mx) & (uv[:, 0] <= width - mx) \
            & (uv[:, 1] >= my) & (uv[:, 1] <= height - my)
        if inside.all():
            break
        distance *= 1.12
    return replace(cam, spec=replace(spec, distance=distance))


@dataclass(frozen=True)
class CameraSampler:
    """Random cameras for training: uniform draws in these ranges (degrees, metres); one image size drawn from
    ``image_sizes`` (landscape and portrait video); focal = diagonal times a factor from ``focal_scale``."""

    height: tuple[float, float] = (0.8, 2.2)
    distance: tuple[float, float] = (2.5, 7.0)
    azimuth: tuple[float, float] = (-180.0, 180.0)
    tilt_jitter: tuple[float, float] = (-5.0, 5.0)  # added to the aim-at-target pitch
    roll: tuple[float, float] = (-3.0, 3.0)
    image_sizes: tuple[tuple[int, int], ...] = LANDSCAPE_SIZES + PORTRAIT_SIZES
    focal_scale: tuple[float, float] = (1.0, 1.0)
    fit: bool = True

    def sample(self, rng: np.random.Generator) -> CameraSpec:
        """One random spec (a fixed number of draws, so later draws from ``rng`` do not depend on it)."""
        size = self.image_sizes[int(rng.integers(len(self.image_sizes)))]
        scale = float(rng.uniform(*self.focal_scale))
        return CameraSpec(
            height=float(rng.uniform(*self.height)), distance=float(rng.uniform(*self.distance)),
            azimuth=float(rng.uniform(*self.azimuth)), tilt=None,
            pitch_offset=float(rng.uniform(*self.tilt_jitter)), roll=float(rng.uniform(*self.roll)),
            image_size=(int(size[0]), int(size[1])),
            focal=None if scale == 1.0 else scale * focal_from_diagonal(*size), fit=self.fit,
        )

    def place(self, seq: TwoPersonSequence, rng: np.random.Generator) -> Camera:
        """A random camera for ``seq``: a spec drawn and placed aiming at the pair."""
        joints, _ = to_smpl24_layout(seq)
        return place_camera(joints, seq.up, self.sample(rng))


# -------------------------------------------------------------------------------------------- occlusion

def _segment_distances(q: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shortest distance between segments [0, q] and [a, b], broadcast over leading dims (closest points of two
    segments, Ericson's Real-Time Collision Detection 5.1.9)."""
    d1, d2, r = q, b - a, -a
    aa = (d1 * d1).sum(-1)
    ee = (d2 * d2).sum(-1)
    ff = (d2 * r).sum(-1)
    cc = (d1 * r).sum(-1)
    bb = (d1 * d2).sum(-1)
    eps = 1e-12
    aa_safe = np.maximum(aa, eps)
    ee_safe = np.maximum(ee, eps)
    denom = aa * ee - bb * bb
    s = np.where(denom > eps, np.clip((bb * ff - cc * ee) / np.maximum(denom, eps), 0.0, 1.0), 0.0)
    t = np.where(ee > eps, (bb * s + ff) / ee_safe, 0.0)
    s = np.where(t < 0.0, np.clip(-cc / aa_safe, 0.0, 1.0), s)
    s = np.where(t > 1.0, np.clip((bb - cc) / aa_safe, 0.0, 1.0), s)
    t = np.clip(t, 0.0, 1.0)
    diff = d1 * s[..., None] - (a + d2 * t[..., None])
    return np.linalg.norm(diff, axis=-1)


def capsule_occlusion(joints_cam: np.ndarray, occluder_cam: np.ndarray, margin: float = 0.03,
                      radius_scale: float = 1.0) -> np.ndarray:
    """(T, 24) bool: joints (T, 24, 3) whose line of sight from the camera passes through the occluder's body
    (T, 24, 3, NaN where absent) approximated by ``BODY_CAPSULES``. The sight line stops ``margin`` metres
    before the joint, so a joint merely touching the other body (a handshake) is not hidden by it.

    Only joints whose viewing direction falls inside the occluder's (radius-padded) angular bounding box are
    tested exactly, which skips most of the work when the two persons stand apart in the image.
    """
    caps = [(JOINT_INDEX[a], JOINT_INDEX[b], r) for a, b, r in BODY_CAPSULES]
    ia = np.array([c[0] for c in caps])
    ib = np.array([c[1] for c in caps])
    radius = np.array([c[2] for c in caps]) * radius_scale
    out = np.zeros(joints_cam.shape[:2], dtype=bool)
    finite = np.isfinite(joints_cam).all(-1) & (joints_cam[..., 2] > 1e-6)
    occ_ok = np.isfinite(occluder_cam).all(-1) & (occluder_cam[..., 2] > 1e-6)
    if not finite.any() or not occ_ok.any():
        return out

    # Candidates: in front of the camera and inside the occluder's padded angular box.
    with np.errstate(invalid="ignore", divide="ignore"):
        dir_j = joints_cam[..., :2] / joints_cam[..., 2:3]
        dir_o = np.where(occ_ok[..., None], occluder_cam[..., :2] / occluder_cam[..., 2:3], np.nan)
    zmin = np.where(occ_ok, occluder_cam[..., 2], np.inf).min(axis=1)  # (T,) nearest occluder joint
    pad = np.where(np.isfinite(zmin), radius.max() / np.where(np.isfinite(zmin), zmin, 1.0), 0.0)
    any_o = occ_ok.any(1)
    lo = np.where(any_o[:, None], np.nanmin(np.where(any_o[:, None, None], dir_o, 0.0), axis=1), 0.0) - pad[:, None]
    hi = np.where(any_o[:, None], np.nanmax(np.where(any_o[:, None, None], dir_o, 0.0), axis=1), 0.0) + pad[:, None]
    cand = finite & any_o[:, None] & (dir_j >= lo[:, None]).all(-1) & (dir_j <= hi[:, None]).all(-1)
    if not cand.any():
        return out
    tf, jf = np.nonzero(cand)
    p = joints_cam[tf, jf].astype(np.float64)                             # (N, 3)
    A, B = occluder_cam[tf][:, ia].astype(np.float64), occluder_cam[tf][:, ib].astype(np.float64)  # (N, C, 3)
    cap_ok = np.isfinite(A).all(-1) & np.isfinite(B).all(-1)            # (N, C)
    A, B = np.nan_to_num(A), np.nan_to_num(B)
    dist = np.linalg.norm(p, axis=-1, keepdims=True)
    q = p * np.clip(1.0 - margin / np.maximum(dist, 1e-9), 0.0, 1.0)     # (N, 3)
    d = _segment_distances(q[:, None], A, B)                            # (N, C)
    out[tf, jf] = ((d < radius) & cap_ok).any(-1)
    return out


def mesh_occlusion(joints_cam: np.ndarray, occluder_vertices_cam: np.ndarray, margin: float = 0.03,
                   radius: float = 0.03, vertex_stride: int = 3) -> np.ndarray:
    """(T, 24) bool: joints whose sight line passes within ``radius`` of a vertex of the occluder's mesh
    (T, V, 3) before reaching ``margin`` metres short of the joint.

    Body meshes (anny, SMPL) have vertices ~1-2 cm apart, so every ``vertex_stride``-th vertex with a 3 cm
    radius still leaves no gap a sight line could slip through, at a third of the cost. Frames where no
    joint's direction falls inside the mesh's angular bounding box are skipped.
    """
    t_total = joints_cam.shape[0]
    out = np.zeros(joints_cam.shape[:2], dtype=bool)
    verts = np.asarray(occluder_vertices_cam[:, ::max(1, int(vertex_stride))], dtype=np.float32)
    finite = np.isfinite(joints_cam).all(-1) & (joints_cam[..., 2] > 1e-6)
    with np.errstate(invalid="ignore", divide="ignore"):
        dir_j = joints_cam[..., :2] / joints_cam[..., 2:3]
    front = verts[..., 2] > 1e-6
    for t in range(t_total):
        v = verts[t][front[t]]
        if v.shape[0] == 0 or not finite[t].any():
            continue
        dv = v[:, :2] / v[:, 2:3]
        pad = radius / float(v[:, 2].min())
        cand = finite[t] & (dir_j[t] >= dv.min(0) - pad).all(-1) & (dir_j[t] <= dv.max(0) + pad).all(-1)
        if not cand.any():
            continue
        p = joints_cam[t, cand].astype(np.float32)                     # (n, 3)
        dist = np.linalg.norm(p, axis=-1, keepdims=True)
        q = p * np.clip(1.0 - margin / np.maximum(dist, 1e-9), 0.0, 1.0)
        qq = np.maximum((q * q).sum(-1), 1e-12)                         # (n,)
        s = (q @ v.T) / qq[:, None]                                     # (n, V) position along the sight line
        # |v - s q|^2 = |v|^2 - s^2 |q|^2 for the closest point s = v.q / |q|^2
        d2 = (v * v).sum(-1)[None, :] - s * s * qq[:, None]
        out[t, cand] = ((s > 0.0) & (s < 1.0) & (d2 < radius * radius)).any(-1)
    return out


# ------------------------------------------------------------------------------------------ observation

@dataclass(frozen=True)
class ObservationConfig:
    """Detector-like degradation of a clean projection; see the module docstring. Defaults aim at MediaPipe on
    close-interaction video: a few pixels of jitter on a 400-pixel person, rare outliers and swaps, short
    drop-outs, and heavy uncertainty on the joints hidden behind the partner."""

    jitter_sigma: float = 0.01               # x box side
    bias_sigma: float = 0.005                # x box side, constant per person and joint
    joint_noise: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_JOINT_NOISE))
    outlier_prob: float = 0.01
    outlier_magnitude: tuple[float, float] = (0.1, 0.35)  # x box side
    outlier_confidence: tuple[float, float] = (0.3, 0.9)
    missed_joint_prob: float = 0.02
    missed_frame_prob: float = 0.03          # stationary rate of a person's missed frames
    missed_burst_mean: float = 3.0           # mean length of a drop-out in frames (>= 1)
    swap_prob: float = 0.01                  # left/right swap per person and frame
    visible_confidence: tuple[float, float] = (0.7, 1.0)
    occluded_confidence: tuple[float, float] = (0.1, 0.3)
    occluded_noise_scale: float = 3.0
    occluded_drop_prob: float = 0.2
    occlusion: bool = True
    occlusion_margin: float = 0.03           # metres short of the joint where the sight line stops
    capsule_scale: float = 1.0               # scales every capsule radius
    use_mesh: bool = True                    # occlusion against the partner's vertices where the sequence has them
    mesh_vertex_stride: int = 3              # every n-th vertex is tested (see mesh_occlusion)
    min_detected_joints: int = 4             # fewer visible joints than this: the person counts as not detected
    box_scale: float = 1.2                   # CLIFF box = extent x this
    noise: bool = True                       # False: the clean projection (truncation still applies)
    world_landmarks: bool = True             # also MediaPipe-like 3D landmarks (data.world_landmarks)

    def __post_init__(self):
        for name in ("outlier_prob", "missed_joint_prob", "missed_frame_prob", "swap_prob", "occluded_drop_prob"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"ObservationConfig.{name} must be a probability, got {v}")
        if self.missed_burst_mean < 1.0:
            raise ValueError(f"ObservationConfig.missed_burst_mean must be >= 1 frame, got {self.missed_burst_mean}")
        unknown = [n for n in self.joint_noise if n not in JOINT_INDEX]
        if unknown:
            raise ValueError(f"ObservationConfig.joint_noise: not SMPL-24 joint names: {unknown}")

    @classmethod
    def clean(cls) -> ObservationConfig:
        """No noise, no drop-outs, no occlusion: the exact projection of the visible joints."""
        return cls(noise=False, occlusion=False)


def stated_statures(heights) -> np.ndarray | None:
    """Stated standing heights as ``PairObservation.statures``: NaN for a 0 (not known); None when none is."""
    if heights is None or not any(heights):
        return None
    return np.array([h if h > 0 else np.nan for h in heights], dtype=np.float64)


@dataclass
class PairObservation:
    """What the 3D stages see of a pair: for a video, the closest pair's detections (``socialmirror.pipeline``);
    simulated, an ``Observation`` (below), which is this record with the ground truth beside it. Both are built
    by the same rules (keypoint layout, boxes), so the networks see at run time what they were trained on."""

    keypoints2d: np.ndarray  # (T, 2, 24, 3) u, v, confidence (0 and u = v = 0 where not given)
    boxes: np.ndarray  # (T, 2, 3) CLIFF boxes (bx, by, side)
    intrinsics: np.ndarray  # (3, 3)
    image_size: tuple[int, int]  # (width, height)
    fps: float
    track_ids: np.ndarray  # (2,) the pair's track ids (simulated: 0, 1)
    # The world's up in the camera frame (video: -y; None: unknown, so the fit has no floor term).
    up: tuple[float, float, float] | None = (0.0, -1.0, 0.0)
    notes: tuple[str, ...] = ()  # what the user should know about the choice of the pair
    # MediaPipe's root-relative metric 3D mapped onto SMPL-24 (T, 2, 24, 3), NaN where unknown, and its
    # per-joint visibility (T, 2, 24): the 3D evidence of the fit (None where there is none).
    world_joints: np.ndarray | None = None
    world_confidence: np.ndarray | None = None
    # Each person's standing height (m) as the user states it, NaN where not known (None: neither known).
    statures: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return int(self.keypoints2d.shape[0])

    def save(self, path: str | os.PathLike) -> Path:
        return atomic_savez(path, keypoints2d=self.keypoints2d, boxes=self.boxes, intrinsics=self.intrinsics,
                            image_size=np.asarray(self.image_size, dtype=np.int64), fps=np.float64(self.fps),
                            track_ids=np.asarray(self.track_ids, dtype=np.int64),
                            up=np.asarray(self.up if self.up is not None else [np.nan] * 3, dtype=np.float64),
                            notes=np.asarray(self.notes, dtype=str),
                            **({} if self.world_joints is None else
                               {"world_joints": self.world_joints, "world_confidence": self.world_confidence}),
                            **({} if self.statures is None else {"statures": self.statures}))

    @classmethod
    def load(cls, path: str | os.PathLike) -> PairObservation:
        with np.load(path, allow_pickle=False) as z:
            world = (z["world_joints"], z["world_confidence"]) if "world_joints" in z.files else (None, None)
            up = tuple(float(v) for v in z["up"]) if np.isfinite(z["up"]).all() else None
            statures = z["statures"] if "statures" in z.files else None
            return PairObservation(z["keypoints2d"], z["boxes"], z["intrinsics"],
                                   tuple(int(v) for v in z["image_size"]), float(z["fps"]), z["track_ids"], up,
                                   tuple(str(n) for n in z["notes"]), *world, statures)


@dataclass(kw_only=True)
class Observation(PairObservation):
    """A simulated ``PairObservation`` of a sequence (what the detector "saw"), with the ground truth in the
    same camera frame.

    joints_cam (T, 2, 24, 3) metres (NaN where the sequence lacks a joint); joint_mask (24,) which joints the
    ground truth has; detected (T, 2) whether the person is detected in the frame (boxes are interpolated over
    the frames where not, zeros when never); occluded (T, 2, 24) geometric occlusion by the other person;
    in_image (T, 2, 24) in front of the camera and inside the image; world_joints: MediaPipe-like landmarks
    with the measured error (``socialmirror.data.world_landmarks``), world_confidence the keypoints' confidence.
    """

    extrinsics: np.ndarray
    joints_cam: np.ndarray
    joint_mask: np.ndarray
    detected: np.ndarray
    occluded: np.ndarray
    in_image: np.ndarray
    camera: Camera

    def select_frames(self, frames: np.ndarray | Sequence[int]) -> Observation:
        """The observation of the given frames (indices may repeat, e.g. a padded evaluation window)."""
        idx = np.asarray(frames, dtype=np.int64)
        world = {} if self.world_joints is None else dict(world_joints=self.world_joints[idx],
                                                          world_confidence=self.world_confidence[idx])
        return replace(self, keypoints2d=self.keypoints2d[idx], boxes=self.boxes[idx],
                       joints_cam=self.joints_cam[idx], detected=self.detected[idx], occluded=self.occluded[idx],
                       in_image=self.in_image[idx], **world)


def _missed_frames(rng: np.random.Generator, t: int, rate: float, burst: float) -> np.ndarray:
    """(t,) bool drop-outs from a two-state Markov chain with stationary rate ``rate`` and mean run ``burst``."""
    if rate <= 0.0:
        return np.zeros(t, dtype=bool)
    if rate >= 1.0:
        return np.ones(t, dtype=bool)
    p_exit = 1.0 / burst
    p_enter = min(1.0, rate * p_exit / (1.0 - rate))
    u = rng.random(t)
    out = np.zeros(t, dtype=bool)
    state = bool(rng.random() < rate)  # start in the stationary distribution
    for i in range(t):
        out[i] = state
        state = (u[i] >= p_exit) if state else (u[i] < p_enter)
    return out


class ObservationModel:
    """Seeded simulator of a 2D pose detector looking at a two-person sequence; see the module docstring."""

    def __init__(self, config: ObservationConfig | None = None):
        self.config = config or ObservationConfig()
        self.detector_mask = smpl24_mapped_mask()  # the joints a detection gives
        self._noise_scale = np.ones(NUM_JOINTS)
        for name, s in self.config.joint_noise.items():
            self._noise_scale[JOINT_INDEX[name]] = float(s)

    def observe(self, seq: TwoPersonSequence, camera: Camera | CameraSpec | None = None,
                rng: np.random.Generator | None = None, seed: int | None = None) -> Observation:
        """Observe ``seq`` through ``camera`` (a placed ``Camera``, a ``CameraSpec`` to place, or None for the
        default ``CameraSpec()``). Randomness comes from ``rng``, else from ``seed`` (default 0), so the same
        inputs always give the same observation."""
        cfg = self.config
        if rng is None:
            rng = np.random.default_rng(0 if seed is None else seed)
        joints_w, present = to_smpl24_layout(seq)
        if camera is None or isinstance(camera, CameraSpec):
            camera = place_camera(joints_w, seq.up, camera or CameraSpec())
        t_total = seq.num_frames
        width, height = camera.image_size

        joints_cam = camera.to_camera(joints_w)                          # (T, 2, 24, 3)
        uv = camera.project(joints_cam)                                  # NaN for absent / behind camera
        in_image = camera.in_image(uv)
        available = in_image & self.detector_mask & present              # (T, 2, 24)

        # Person size in the image sets every noise amount (clean box of the joints the detector could give).
        side = np.ones((t_total, 2))
        for p in (0, 1):
            cols = present & self.detector_mask
            pts = np.nan_to_num(uv[:, p][:, cols])
            ok = np.isfinite(uv[:, p][:, cols]).all(-1)
            if ok.any():
                side[:, p] = box_from_points(torch.from_numpy(pts), torch.from_numpy(ok),
                                             scale=1.0).numpy()[:, 2]

        occluded = np.zeros((t_total, 2, NUM_JOINTS), dtype=bool)
        if cfg.occlusion:
            occluded = self._occlusion(seq, camera, joints_cam)

        kp = np.zeros((t_total, 2, NUM_JOINTS, 3))
        kp[..., :2] = np.nan_to_num(uv)
        conf = np.where(available, 1.0, 0.0)
        if cfg.noise:
            kp, conf = self._degrade(rng, kp, conf, available, occluded, side)
        kp[..., 2] = conf
        kp[conf <= 0.0] = 0.0

        kp, boxes, detected = keypoints_to_boxes(
            kp, min(cfg.min_detected_joints, int((self.detector_mask & present).sum())), cfg.box_scale)
        world = world_conf = None
        if cfg.world_landmarks:
            world, world_conf = self._world_landmarks(joints_cam, kp, detected, present)

        return Observation(
            keypoints2d=kp.astype(np.float32), boxes=boxes.astype(np.float32),
            intrinsics=camera.K.astype(np.float32), image_size=(int(width), int(height)), fps=seq.fps,
            track_ids=np.arange(2), up=tuple(camera.R @ np.asarray(seq.up, dtype=np.float64)),
            extrinsics=camera.extrinsics.astype(np.float32), joints_cam=joints_cam.astype(np.float32),
            joint_mask=present, detected=detected, occluded=occluded & present, in_image=in_image, camera=camera,
            world_joints=world, world_confidence=world_conf,
        )

    # -- pieces
    def _world_landmarks(self, joints_cam: np.ndarray, kp: np.ndarray, detected: np.ndarray, present: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
        """MediaPipe-like 3D landmarks of the detected people, with the measured error. Their noise is seeded
        from the simulated keypoints, so the keypoint draws (and anything a caller draws after them) are the
        same with or without the landmarks."""
        seed = np.frombuffer(hashlib.sha256(np.ascontiguousarray(kp).tobytes()).digest()[:8], dtype=np.uint64)
        world = simulate_world_landmarks(joints_cam, np.random.default_rng(seed))
        world[..., ~present, :] = np.nan
        world[~detected] = np.nan  # MediaPipe gives no 3D for a person it does not find
        return world.astype(np.float32), kp[..., 2].astype(np.float32)

    def _occlusion(self, seq: TwoPersonSequence, camera: Camera, joints_cam: np.ndarray) -> np.ndarray:
        cfg = self.config
        occluded = np.zeros(joints_cam.shape[:3], dtype=bool)
        verts_cam = None
        if cfg.use_mesh and seq.vertices is not None:
            verts_cam = camera.to_camera(seq.vertices)                   # (T, 2, V, 3)
        for p in (0, 1):
            other = 1 - p
            if verts_cam is not None:
                occluded[:, p] = mesh_occlusion(joints_cam[:, p], verts_cam[:, other], margin=cfg.occlusion_margin,
                                                vertex_stride=cfg.mesh_vertex_stride)
            else:
                occluded[:, p] = capsule_occlusion(joints_cam[:, p], joints_cam[:, other],
                                                   margin=cfg.occlusion_margin, radius_scale=cfg.capsule_scale)
        return occluded

    def _degrade(self, rng: np.random.Generator, kp: np.ndarray, conf: np.ndarray, available: np.ndarray,
                 occluded: np.ndarray, side: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.config
        t_total = kp.shape[0]
        shape = (t_total, 2, NUM_JOINTS)
        b = side[..., None]                                              # (T, 2, 1)
        occ = occluded & available

        # Confidence first, then positions: the same draws in the same order for any input (determinism).
        conf = np.where(available, rng.uniform(*cfg.visible_confidence, size=shape), 0.0)
        conf = np.where(occ, rng.uniform(*cfg.occluded_confidence, size=shape), conf)

        sigma = cfg.jitter_sigma * b * self._noise_scale * np.where(occ, cfg.occluded_noise_scale, 1.0)
        noise = rng.normal(size=shape + (2,)) * sigma[..., None]
        bias = rng.normal(size=(1, 2, NUM_JOINTS, 2)) * cfg.bias_sigma * b[..., None]
        kp = kp.copy()
        kp[..., :2] += noise + bias

        outlier = (rng.random(shape) < cfg.outlier_prob) & available
        angle = rng.uniform(0.0, 2 * math.pi, size=shape)
        jump = rng.uniform(*cfg.outlier_magnitude, size=shape) * b
        kp[..., 0] += np.where(outlier, jump * np.cos(angle), 0.0)
        kp[..., 1] += np.where(outlier, jump * np.sin(angle), 0.0)
        conf = np.where(outlier, rng.uniform(*cfg.outlier_confidence, size=shape), conf)

        swap = rng.random((t_total, 2)) < cfg.swap_prob
        mirror = np.asarray(SMPL24_MIRROR)
        kp = np.where(swap[..., None, None], kp[:, :, mirror], kp)
        conf = np.where(swap[..., None], conf[:, :, mirror], conf)

        dropped = rng.random(shape) < cfg.missed_joint_prob
        dropped |= occ & (rng.random(shape) < cfg.occluded_drop_prob)
        conf = np.where(dropped, 0.0, conf)
        for p in (0, 1):
            missed = _missed_frames(rng, t_total, cfg.missed_frame_prob, cfg.missed_burst_mean)
            conf[missed, p] = 0.0
        return kp, conf


def observe(seq: TwoPersonSequence, camera: Camera | CameraSpec | None = None, seed: int = 0,
            config: ObservationConfig | None = None) -> Observation:
    """One-call form of ``ObservationModel(config).observe(seq, camera, seed=seed)``."""
    return ObservationModel(config).observe(seq, camera, seed=seed)


def occlusion_rate(obs: Observation) -> float:
    """Fraction of the (frame, person, joint) entries the ground truth has that are occluded by the partner."""
    mask = np.broadcast_to(obs.joint_mask, obs.occluded.shape)
    return float(obs.occluded[mask].mean()) if mask.any() else 0.0


__all__: Sequence[str] = (
    "BODY_CAPSULES", "Camera", "CameraSampler", "CameraSpec", "Observation", "ObservationConfig",
    "ObservationModel", "capsule_occlusion", "mesh_occlusion", "observe",
    "occlusion_rate", "place_camera", "stated_statures", "to_smpl24_layout",
)
