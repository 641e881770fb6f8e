"""Image keypoint formats mapped onto the body's skeleton, and the boxes around a person's keypoints.

The run-time detector (``socialmirror.perception``) and the training simulator of that detector
(``socialmirror.data.observation``) must agree exactly on which SMPL-24 joints a detection gives and on how
a person's box is drawn from its keypoints: a model trained on simulated observations only works on real
ones if both see the same holes and the same boxes. Both take these definitions from here. The module is
pure (numpy, plus the CLIFF box rule of ``socialmirror.geometry.camera``): no detector library is imported.

Keypoint layout
---------------
The project's 2D keypoint set is MediaPipe's 33 pose landmarks in MediaPipe's order (``KEYPOINT_NAMES``);
"left" and "right" are the person's own sides. ``coco17_to_mediapipe33`` converts the common COCO-17
layout into it (landmarks COCO lacks stay NaN, confidence 0).

``to_smpl24`` maps the 33 landmarks onto the SMPL-24 joints where a correspondence exists
(``SMPL24_FROM_MEDIAPIPE`` documents each one). Joints without one (spine1-3, the collars) are NaN with
confidence 0 unless asked to be interpolated along the torso; ``smpl24_mapped_mask`` says which joints are
filled.

Boxes
-----
``keypoints_box`` is the (x0, y0, x1, y1) box around one person's 33 landmarks (tracking, painting people
out); ``keypoints_to_boxes`` gives the CLIFF boxes (centre x, centre y, side) of both persons of a pair from
their SMPL-24 keypoints, exactly as the networks were trained to see them.
"""
from __future__ import annotations

import numpy as np
import torch

from socialmirror.body.skeleton import JOINT_INDEX, SMPL24_NAMES
from socialmirror.geometry.camera import box_from_points, person_boxes

# ------------------------------------------------------------------------------------------------ layouts

KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)
KEYPOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(KEYPOINT_NAMES)}

# The body keypoints that decide whether two detections are one person (face details and fingers left out).
BODY_KEYPOINTS = tuple(KEYPOINT_INDEX[n] for n in (
    "nose", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"))
TORSO_KEYPOINTS = tuple(KEYPOINT_INDEX[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
HIP_KEYPOINTS = tuple(KEYPOINT_INDEX[n] for n in ("left_hip", "right_hip"))
SHOULDER_KEYPOINTS = tuple(KEYPOINT_INDEX[n] for n in ("left_shoulder", "right_shoulder"))
FACE_KEYPOINTS = tuple(range(KEYPOINT_INDEX["mouth_right"] + 1))  # nose, eyes, ears, mouth
# Face, shoulders and elbows: where one upper body is (a skeleton's legs may go astray, these hardly do).
UPPER_BODY_KEYPOINTS = tuple(range(KEYPOINT_INDEX["right_elbow"] + 1))

# Bones of the 33-landmark skeleton (for drawing and for painting a person out of the frame).
KEYPOINT_EDGES: tuple[tuple[int, int], ...] = (
    (11, 12), (11, 23), (12, 24), (23, 24),                      # torso
    (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19),  # left arm and hand
    (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),  # right arm and hand
    (23, 25), (25, 27), (27, 29), (27, 31), (29, 31),            # left leg and foot
    (24, 26), (26, 28), (28, 30), (28, 32), (30, 32),            # right leg and foot
    (0, 7), (0, 8), (7, 8),                                      # head
)

COCO17_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle",
)

# SMPL-24 joint <- weighted MediaPipe landmarks. Approximations (documented choices):
#   pelvis      midpoint of the hips (MediaPipe's world origin is the same point)
#   hips        MediaPipe's hip landmarks sit a little lower/outer than SMPL's hip joint centres
#   feet        SMPL's foot joint lies at the ball of the foot: 1/3 heel + 2/3 toe tip (foot_index)
#   neck        midpoint of the shoulders (SMPL's neck joint is a few cm higher)
#   head        midpoint of the ears (the centre of the skull, as SMPL's head joint)
#   hands       midpoint of the index and pinky knuckles
SMPL24_FROM_MEDIAPIPE: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "pelvis": (("left_hip", "right_hip"), (0.5, 0.5)),
    "left_hip": (("left_hip",), (1.0,)),
    "right_hip": (("right_hip",), (1.0,)),
    "left_knee": (("left_knee",), (1.0,)),
    "right_knee": (("right_knee",), (1.0,)),
    "left_ankle": (("left_ankle",), (1.0,)),
    "right_ankle": (("right_ankle",), (1.0,)),
    "left_foot": (("left_heel", "left_foot_index"), (1 / 3, 2 / 3)),
    "right_foot": (("right_heel", "right_foot_index"), (1 / 3, 2 / 3)),
    "neck": (("left_shoulder", "right_shoulder"), (0.5, 0.5)),
    "head": (("left_ear", "right_ear"), (0.5, 0.5)),
    "left_shoulder": (("left_shoulder",), (1.0,)),
    "right_shoulder": (("right_shoulder",), (1.0,)),
    "left_elbow": (("left_elbow",), (1.0,)),
    "right_elbow": (("right_elbow",), (1.0,)),
    "left_wrist": (("left_wrist",), (1.0,)),
    "right_wrist": (("right_wrist",), (1.0,)),
    "left_hand": (("left_index", "left_pinky"), (0.5, 0.5)),
    "right_hand": (("right_index", "right_pinky"), (0.5, 0.5)),
}
# Joints with no MediaPipe counterpart, optionally interpolated: spine joints along pelvis -> neck at these
# fractions (SMPL's rest pose), collars halfway between the neck and the shoulder.
_SPINE_FRACTIONS = {"spine1": 0.2, "spine2": 0.45, "spine3": 0.7}


# ------------------------------------------------------------------------------------------------ mappings

def to_smpl24(keypoints: np.ndarray, interpolate_torso: bool = False) -> np.ndarray:
    """Map (..., 33, 3) keypoints (x, y, confidence) onto (..., 24, 3) SMPL-24 joints.

    A joint's position is the weighted mean of its source landmarks (``SMPL24_FROM_MEDIAPIPE``), its confidence
    the smallest of theirs. Joints without a counterpart are NaN with confidence 0 unless ``interpolate_torso``
    (then the torso's smallest confidence). For coordinates without confidence, e.g. the (..., 33, 3) world
    landmarks in metres, use ``to_smpl24_points``.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.shape[-2] != NUM_KEYPOINTS or keypoints.shape[-1] != 3:
        raise ValueError(f"expected (..., 33, 3) keypoints (x, y, confidence), got {keypoints.shape}")
    xy = to_smpl24_points(keypoints[..., :2], interpolate_torso=interpolate_torso)
    conf = np.zeros(keypoints.shape[:-2] + (len(SMPL24_NAMES),))
    for j, name in enumerate(SMPL24_NAMES):
        if name in SMPL24_FROM_MEDIAPIPE:
            src = [KEYPOINT_INDEX[s] for s in SMPL24_FROM_MEDIAPIPE[name][0]]
            conf[..., j] = np.nan_to_num(keypoints[..., src, 2]).min(axis=-1)
    if interpolate_torso:
        for j, name in enumerate(SMPL24_NAMES):
            if name in _SPINE_FRACTIONS or name.endswith("_collar"):
                conf[..., j] = np.nan_to_num(keypoints[..., list(TORSO_KEYPOINTS), 2]).min(axis=-1)
    conf[~np.isfinite(xy).all(axis=-1)] = 0.0
    return np.concatenate([xy, conf[..., None]], axis=-1)


def to_smpl24_points(points: np.ndarray, interpolate_torso: bool = False) -> np.ndarray:
    """Map (..., 33, D) coordinates (2D pixels or 3D world landmarks) onto (..., 24, D) SMPL-24 joints."""
    points = np.asarray(points, dtype=np.float64)
    if points.shape[-2] != NUM_KEYPOINTS:
        raise ValueError(f"expected (..., 33, D) points, got {points.shape}")
    out = np.full(points.shape[:-2] + (len(SMPL24_NAMES), points.shape[-1]), np.nan)
    for name, (sources, weights) in SMPL24_FROM_MEDIAPIPE.items():
        idx = [KEYPOINT_INDEX[s] for s in sources]
        out[..., JOINT_INDEX[name], :] = np.tensordot(np.asarray(weights), points[..., idx, :], axes=([0], [-2]))
    if interpolate_torso:
        pelvis, neck = out[..., JOINT_INDEX["pelvis"], :], out[..., JOINT_INDEX["neck"], :]
        for name, f in _SPINE_FRACTIONS.items():
            out[..., JOINT_INDEX[name], :] = pelvis + f * (neck - pelvis)
        for side in ("left", "right"):
            out[..., JOINT_INDEX[f"{side}_collar"], :] = 0.5 * (neck + out[..., JOINT_INDEX[f"{side}_shoulder"], :])
    return out


def smpl24_mapped_mask(interpolate_torso: bool = False) -> np.ndarray:
    """(24,) bool: which SMPL-24 joints ``to_smpl24`` fills (without ``interpolate_torso``: the joints a
    detection gives, the only ones a simulated detection may give)."""
    return np.array([n in SMPL24_FROM_MEDIAPIPE or (interpolate_torso and (n in _SPINE_FRACTIONS or
                                                                            n.endswith("_collar")))
                     for n in SMPL24_NAMES])


def coco17_to_mediapipe33(keypoints: np.ndarray) -> np.ndarray:
    """(..., 17, C) COCO-17 keypoints -> (..., 33, C) in this layout; landmarks COCO lacks are NaN (confidence 0)."""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.shape[-2] != 17:
        raise ValueError(f"expected (..., 17, C) COCO keypoints, got {keypoints.shape}")
    out = np.full(keypoints.shape[:-2] + (NUM_KEYPOINTS, keypoints.shape[-1]), np.nan)
    if keypoints.shape[-1] == 3:
        out[..., 2] = 0.0
    for i, name in enumerate(COCO17_NAMES):
        out[..., KEYPOINT_INDEX[name], :] = keypoints[..., i, :]
    return out


# ------------------------------------------------------------------------------------------------ boxes

def keypoints_box(keypoints: np.ndarray, image_size: tuple[int, int] | None = None,
                  min_confidence: float = 0.0, pad: float = 0.03, head_pad: float = 0.05) -> np.ndarray:
    """Box (x0, y0, x1, y1) around a person's landmarks.

    Landmarks mark joint centres, not the body's outline: the box is padded by ``pad`` of its height on every
    side and its top by ``head_pad`` more (landmarks stop at the eyes/ears). Clipped to ``image_size`` (w, h)
    when given. Landmarks below ``min_confidence`` are left out (all are kept if that leaves fewer than 3).
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    ok = np.isfinite(kp[:, :2]).all(axis=1)
    if kp.shape[1] > 2 and min_confidence > 0:
        strong = ok & (np.nan_to_num(kp[:, 2]) >= min_confidence)
        if strong.sum() >= 3:
            ok = strong
    if not ok.any():
        return np.full(4, np.nan, dtype=np.float32)
    x0, y0, x1, y1 = person_boxes(kp[:, :2], ok)
    h = max(y1 - y0, x1 - x0, 1.0)
    box = np.array([x0 - pad * h, y0 - (pad + head_pad) * h, x1 + pad * h, y1 + pad * h])
    if image_size is not None:
        w_img, h_img = image_size
        box[[0, 2]] = box[[0, 2]].clip(0, w_img)
        box[[1, 3]] = box[[1, 3]].clip(0, h_img)
    return box.astype(np.float32)


def body_scale(keypoints: np.ndarray) -> float:
    """A person's size in pixels from its (33, 3) landmarks: the larger of torso length and 1/3 of the body
    keypoints' extent."""
    kp = np.asarray(keypoints, dtype=np.float64)
    sh = np.nanmean(kp[[11, 12], :2], axis=0)
    hp = np.nanmean(kp[[23, 24], :2], axis=0)
    torso = float(np.linalg.norm(sh - hp)) if np.isfinite(sh).all() and np.isfinite(hp).all() else 0.0
    body = kp[list(BODY_KEYPOINTS), :2]
    body = body[np.isfinite(body).all(axis=1)]
    extent = float(np.ptp(body, axis=0).max()) / 3.0 if len(body) >= 2 else 0.0
    return max(torso, extent, 1.0)


def _fill_boxes(boxes: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Boxes (T, 3) over frames where ``ok`` is False: linear interpolation between detected frames, held at the
    ends; zeros when no frame is detected. (The tracker does the same over gaps at run time.)"""
    out = boxes.copy()
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return np.zeros_like(boxes)
    frames = np.arange(boxes.shape[0])
    for k in range(boxes.shape[1]):
        out[:, k] = np.interp(frames, idx, boxes[idx, k])
    return out


def keypoints_to_boxes(keypoints2d: np.ndarray, min_joints: int = 4, box_scale: float = 1.2
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detection boxes exactly as the models were trained to see them, for simulated AND real detections.

    keypoints2d (T, 2, 24, 3) with confidence (0 = not given) -> (keypoints with undetected person-frames
    zeroed, CLIFF boxes (T, 2, 3) from the given keypoints and interpolated over undetected frames,
    detected (T, 2)). A person-frame counts as detected with at least ``min_joints`` given joints."""
    kp = np.array(keypoints2d, dtype=np.float64, copy=True)
    kp[~np.isfinite(kp).all(-1)] = 0.0
    given = kp[..., 2] > 0.0
    detected = (given.sum(-1) >= min_joints) & given.any(-1)
    kp[~detected] = 0.0
    given &= detected[..., None]
    boxes = np.zeros(kp.shape[:2] + (3,))
    for p in range(kp.shape[1]):
        b = box_from_points(torch.from_numpy(kp[:, p, :, :2]), torch.from_numpy(given[:, p]),
                            scale=box_scale).numpy()
        boxes[:, p] = _fill_boxes(b, detected[:, p])
    return kp, boxes, detected


def body_axes(world_joints: np.ndarray) -> np.ndarray:
    """(N, 3) unit vectors from the ankles' midpoint to the shoulders' midpoint of SMPL-24 3D joints (T, P, 24,
    3) (NaN where not given), one per person-frame that has all four: a standing body's up, in the joints'
    frame (MediaPipe's world landmarks: the camera's axes, y down; ``geometry.ground.landmark_prior``)."""
    j = np.asarray(world_joints, dtype=np.float64)
    mid = (lambda a, b: (j[..., JOINT_INDEX[a], :] + j[..., JOINT_INDEX[b], :]) / 2)  # noqa: E731
    axes = (mid("left_shoulder", "right_shoulder") - mid("left_ankle", "right_ankle")).reshape(-1, 3)
    length = np.linalg.norm(axes, axis=-1)
    keep = np.isfinite(axes).all(-1) & (length > 1e-6)
    return axes[keep] / length[keep, None]


def feet_and_heads(keypoints2d: np.ndarray, min_confidence: float = 0.5):
    """The image points between the feet and of the heads (T, P, 2) of SMPL-24 keypoints (T, P, 24, 3), and
    where both feet and the head are seen with ``min_confidence`` (T, P): what a floor needs of a standing
    person (``geometry.ground``)."""
    kp = np.asarray(keypoints2d, dtype=np.float64)
    feet, head = [JOINT_INDEX["left_foot"], JOINT_INDEX["right_foot"]], JOINT_INDEX["head"]
    seen = (kp[..., feet, 2] >= min_confidence).all(-1) & (kp[..., head, 2] >= min_confidence)
    return kp[..., feet, :2].mean(-2), kp[..., head, :2], seen
