"""All camera and box maths: intrinsics, world-to-camera, projection, the in-image mask, person boxes and
their overlap, and CLIFF's crop camera. Every other module calls these (one home, as GVHMR's ``hmr_cam.py``).

The camera frame is OpenCV's: x right, y down, z forward, metres. Intrinsics are 3x3 pinhole matrices.
Two array families live here on purpose: torch functions (``project``, the crop camera, ``box_from_points``)
are differentiable and clamp the depth so the networks' gradients stay finite; NumPy ones (``PinholeCamera``,
``world_to_camera``, ``project_points``) serve data and evaluation and give NaN for points behind the camera,
so a point that cannot be seen is never mistaken for one that can. ``in_image`` and the box functions
accept either.

Boxes come in two forms: ``(x0, y0, x1, y1)`` corners (detections, IoU) and CLIFF's square ``(bx, by, b)``
(centre and side, what the networks read).

The crop camera ``(s, tx, ty)`` is what HMR-style networks predict for a person's box (CLIFF, Li et al.
ECCV 2022): a weak-perspective camera in the box's normalised coordinates. Given the full image's
intrinsics and the box (centre ``(bx, by)``, side ``b`` in pixels), it converts exactly to the full-image
translation of the person's root (here the pelvis, see ``socialmirror.body.base``):

    tz = 2 f / (b s),   tx_full = tx + 2 (bx - cx) / (b s),   ty_full = ty + 2 (by - cy) / (b s)

with f the focal length and (cx, cy) the principal point. The inverse is exact as well, so a motion can
travel through the representation and back without loss.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch


# The camera frame turned half about x into the y-up frame that animation tools and formats expect (glTF,
# BVH, Blender): x right, y up, z towards the camera; a glTF camera at the origin, unrotated, is the video's.
CAMERA_TO_Y_UP = np.diag([1.0, -1.0, -1.0])


def focal_from_diagonal(width: int, height: int) -> float:
    """CloseInt's default focal length when none is known: the image diagonal, in pixels
    (a field of view of about 53 degrees across the diagonal)."""
    return float(math.hypot(width, height))


def intrinsics_matrix(focal: float, width: int, height: int, fy: float | None = None,
                      cx: float | None = None, cy: float | None = None) -> torch.Tensor:
    """3x3 pinhole intrinsics with the principal point at the image centre unless given."""
    return torch.tensor([[focal, 0.0, width / 2.0 if cx is None else cx],
                         [0.0, focal if fy is None else fy, height / 2.0 if cy is None else cy],
                         [0.0, 0.0, 1.0]])


def broadcast_intrinsics(K: torch.Tensor, batch_dims: int) -> torch.Tensor:
    """Intrinsics (3, 3) or (B, 3, 3) viewed so they broadcast against tensors with ``batch_dims`` leading
    dimensions whose first is B, e.g. per clip (B, 3, 3) against per person-frame (B, 2, L)."""
    if K.dim() == 2 or K.dim() == batch_dims + 2:
        return K
    if K.dim() != 3:
        raise ValueError(f"intrinsics must be (3, 3), (B, 3, 3) or (..., 3, 3) per item, got {tuple(K.shape)}")
    return K.reshape(K.shape[0], *([1] * (batch_dims - 1)), 3, 3)


def project(points: torch.Tensor, K: torch.Tensor, min_depth: float = 1e-3) -> torch.Tensor:
    """Pinhole projection of camera-frame points (..., 3) to pixels (..., 2). K is (3, 3) or (..., 3, 3)
    broadcastable to the points' leading dimensions. Depths are clamped at ``min_depth`` so points
    behind the camera cannot produce inf/NaN gradients."""
    z = points[..., 2:3].clamp(min=min_depth)
    xy = points[..., :2] / z
    fx, fy = K[..., 0, 0, None], K[..., 1, 1, None]
    cx, cy = K[..., 0, 2, None], K[..., 1, 2, None]
    if K.dim() > 2:  # per-item intrinsics: broadcast over the points dimension
        fx, fy, cx, cy = (v[..., None, :] for v in (fx, fy, cx, cy))
    return torch.cat([xy[..., :1] * fx + cx, xy[..., 1:] * fy + cy], dim=-1)


def crop_cam_to_transl(cam: torch.Tensor, box: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """CLIFF crop camera (..., 3) = (s, tx, ty) + box (..., 3) = (bx, by, b) -> root translation (..., 3)."""
    s, tx, ty = cam.unbind(-1)
    bx, by, b = box.unbind(-1)
    f, cx, cy = K[..., 0, 0], K[..., 0, 2], K[..., 1, 2]
    bs = b * s
    return torch.stack([tx + 2.0 * (bx - cx) / bs, ty + 2.0 * (by - cy) / bs, 2.0 * f / bs], dim=-1)


def transl_to_crop_cam(transl: torch.Tensor, box: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Inverse of ``crop_cam_to_transl``: root translation (..., 3) + box -> (s, tx, ty)."""
    X, Y, Z = transl.unbind(-1)
    bx, by, b = box.unbind(-1)
    f, cx, cy = K[..., 0, 0], K[..., 0, 2], K[..., 1, 2]
    s = 2.0 * f / (b * Z)
    return torch.stack([s, X - (bx - cx) * Z / f, Y - (by - cy) * Z / f], dim=-1)


def translation_from_keypoints(points: torch.Tensor, uv: torch.Tensor, weights: torch.Tensor, K: torch.Tensor,
                               damping: float = 1e-6) -> torch.Tensor:
    """The translation t (..., 3) that best places a body's points (..., J, 3) (camera-aligned, relative to
    any origin) so that they project onto ``uv`` (..., J, 2), each point weighted by ``weights`` (..., J).

    Multiplying the pinhole equations by the depth makes them linear in t: with x = (u - cx) / fx and
    y = (v - cy) / fy, a point P gives tx - x tz = x Pz - Px and ty - y tz = y Pz - Py. The weighted least
    squares of these (SMPLify's and SPIN's camera-translation initialisation) is solved per item; items
    with fewer than two weighted points get t = 0 (callers check the weights)."""
    fx, fy, cx, cy = K[..., 0, 0, None], K[..., 1, 1, None], K[..., 0, 2, None], K[..., 1, 2, None]
    x, y = (uv[..., 0] - cx) / fx, (uv[..., 1] - cy) / fy
    zero, one = torch.zeros_like(x), torch.ones_like(x)
    rows = torch.stack([torch.stack([one, zero, -x], -1), torch.stack([zero, one, -y], -1)], -2)  # (..., J, 2, 3)
    rhs = torch.stack([x * points[..., 2] - points[..., 0], y * points[..., 2] - points[..., 1]], -1)
    w = weights[..., None, None]
    normal = (rows.transpose(-1, -2) @ (w * rows)).sum(-3)  # (..., 3, 3)
    target = (rows.transpose(-1, -2) @ (w * rhs[..., None])).sum(-3)  # (..., 3, 1)
    enough = (weights > 0).sum(-1) >= 2
    eye = torch.eye(3, dtype=normal.dtype, device=normal.device)
    normal = torch.where(enough[..., None, None], normal + damping * eye, eye)
    return torch.linalg.solve(normal, torch.where(enough[..., None, None], target, 0.0 * target))[..., 0]


def box_from_points(points2d: torch.Tensor, valid: torch.Tensor | None = None, scale: float = 1.2
                    ) -> torch.Tensor:
    """Square CLIFF box (bx, by, b) around 2D points (..., N, 2): centre of the extent, side = the longer
    side times ``scale``. ``valid`` (..., N) masks missing points."""
    if valid is None:
        valid = torch.ones(points2d.shape[:-1], dtype=torch.bool, device=points2d.device)
    big = torch.finfo(points2d.dtype).max
    lo = torch.where(valid[..., None], points2d, torch.full_like(points2d, big)).amin(-2)
    hi = torch.where(valid[..., None], points2d, torch.full_like(points2d, -big)).amax(-2)
    centre = 0.5 * (lo + hi)
    side = (hi - lo).amax(-1) * scale
    return torch.cat([centre, side[..., None].clamp(min=1.0)], dim=-1)


# ----------------------------------------------------------------------------------- NumPy: data, evaluation
def world_to_camera(points: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """World points -> camera frame, ``x_cam = R x_world + t``. A fixed camera: R (3, 3), t (3,), points
    (..., 3). A moving one: R (T, 3, 3), t (T, 3), points (T, ..., 3) (frame t seen by pose t)."""
    points = np.asarray(points, dtype=np.float64)
    R, t = np.asarray(R, dtype=np.float64), np.asarray(t, dtype=np.float64)
    if R.ndim == 2:
        return points @ R.T + t
    if points.shape[0] != R.shape[0]:
        raise ValueError(f"{R.shape[0]} camera poses but {points.shape[0]} frames of points")
    flat = points.reshape(points.shape[0], -1, 3)
    return (np.einsum("tij,tnj->tni", R, flat) + t[:, None]).reshape(points.shape)


def project_points(points_cam: np.ndarray, K: np.ndarray, min_depth: float = 1e-6) -> np.ndarray:
    """Pinhole projection of camera-frame points (..., 3) -> pixels (..., 2); NaN at or behind the camera
    (depth <= ``min_depth``)."""
    p = np.asarray(points_cam, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    z = np.where(p[..., 2] > min_depth, p[..., 2], np.nan)
    u = K[0, 0] * p[..., 0] / z + K[0, 1] * p[..., 1] / z + K[0, 2]  # K[0, 1]: skew (0 for most cameras)
    return np.stack([u, K[1, 1] * p[..., 1] / z + K[1, 2]], -1)


def in_image(uv, image_size: tuple[int, int]):
    """(..., 2) pixels (NumPy or torch) -> (...) bool: inside the (width, height) image. NaN is outside."""
    width, height = image_size
    return (uv[..., 0] >= 0) & (uv[..., 0] < width) & (uv[..., 1] >= 0) & (uv[..., 1] < height)


@dataclass
class PinholeCamera:
    """A placed pinhole camera: world -> camera ``x_cam = R x_world + t`` (OpenCV axes), intrinsics ``K``,
    ``image_size`` (width, height) in pixels."""

    R: np.ndarray           # (3, 3)
    t: np.ndarray           # (3,)
    K: np.ndarray           # (3, 3)
    image_size: tuple[int, int]

    @property
    def extrinsics(self) -> np.ndarray:
        """(4, 4) world -> camera."""
        e = np.eye(4)
        e[:3, :3], e[:3, 3] = self.R, self.t
        return e

    @property
    def centre(self) -> np.ndarray:
        """Camera centre in world coordinates."""
        return -np.asarray(self.R).T @ self.t

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) -> camera frame (..., 3)."""
        return world_to_camera(points, self.R, self.t)

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """Camera-frame points (..., 3) -> pixels (..., 2); NaN at or behind the camera."""
        return project_points(points_cam, self.K)

    def in_image(self, uv: np.ndarray) -> np.ndarray:
        return in_image(uv, self.image_size)


def person_boxes(uv: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(..., N, 2) points with (..., N) validity -> tight corner boxes (..., 4) x0, y0, x1, y1 (NaN where
    no point is valid)."""
    v = np.isfinite(uv).all(-1) if valid is None else valid & np.isfinite(uv).all(-1)
    pts = np.where(v[..., None], uv, np.nan)
    with warnings.catch_warnings():  # all-NaN slices (nobody there) give NaN boxes, as meant
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanmin(pts, axis=-2), np.nanmax(pts, axis=-2)
    return np.concatenate([lo, hi], -1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of corner boxes (..., 4), broadcast; 0 where either is missing (NaN) or empty. A float for two
    single boxes."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ix = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    iy = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    area = lambda x: np.clip(x[..., 2] - x[..., 0], 0, None) * np.clip(x[..., 3] - x[..., 1], 0, None)  # noqa: E731
    union = area(a) + area(b) - inter
    with np.errstate(all="ignore"):
        iou = np.nan_to_num(np.where(union > 0, inter / union, 0.0), nan=0.0)
    return float(iou) if iou.ndim == 0 else iou
