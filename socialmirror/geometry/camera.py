"""Cameras: intrinsics, projection, and CLIFF's crop camera.

The camera frame is OpenCV's: x right, y down, z forward, metres. Intrinsics are 3x3 pinhole matrices.

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

import torch


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
