"""F_img: the per-person, per-frame observation feature every network is conditioned on (pipeline step 4).

CloseInt conditions on HMR2.0's image features; no such backbone runs offline, so the observation itself
stands in (docs/architecture.md, step 4; docs/offline-stack.md):

    F_img = [ keypoints normalised to the person's box: ((u - bx) / b, (v - by) / b, conf) x 24   (72)
              CLIFF bbox information: ((bx - cx) / f, (by - cy) / f, b / f)                       (3)
              with ``world_landmarks``: MediaPipe's root-relative 3D, (x, y, z, visibility) x 24   (96) ]

Box-normalised keypoints describe the pose independently of where the person is in the image and how large;
the CLIFF term (Li et al., ECCV 2022) gives back what that normalisation removed (the box's position and
size relative to the focal length), which is what decides global orientation and depth. Missing keypoints
(conf == 0) are all zeros, so a missing joint never looks like a joint at the box centre with confidence.

MediaPipe's metric world landmarks (mapped onto SMPL-24, pelvis-relative, metres, camera-aligned axes; see
``socialmirror.data.world_landmarks``) are the one 3D pose estimate trained on real images that runs offline
here: a bundle built with ``world_landmarks`` reads them, so the per-person pose does not rest on 2D keypoints
and the training motions alone. Missing joints (and people or whole clips without 3D) are all zeros, as for the
keypoints; training drops the 3D of some person-clips so the networks also work without it.

The slot for real image features: ``image_embedding`` (..., E), e.g. a crop embedding from a backbone the
user has weights for, is concatenated after the 75 values; networks are then built with
``img_dim = IMG_FEATURE_DIM + E`` (``observation_feature_dim(E)``).
"""
from __future__ import annotations

import torch
from torch import Tensor

from socialmirror.body.skeleton import NUM_JOINTS
from socialmirror.geometry.camera import broadcast_intrinsics

KEYPOINT_FEATURE_DIM = NUM_JOINTS * 3
BBOX_FEATURE_DIM = 3
IMG_FEATURE_DIM = KEYPOINT_FEATURE_DIM + BBOX_FEATURE_DIM  # 75
WORLD_FEATURE_DIM = NUM_JOINTS * 4  # 96


def observation_feature_dim(image_embedding_dim: int = 0, world_landmarks: bool = False) -> int:
    """Width of F_img: keypoints and box, MediaPipe's 3D if ``world_landmarks``, then an optional image
    embedding of ``image_embedding_dim``."""
    return IMG_FEATURE_DIM + (WORLD_FEATURE_DIM if world_landmarks else 0) + int(image_embedding_dim)


def world_landmark_features(world_joints: Tensor, world_confidence: Tensor | None = None) -> Tensor:
    """world_joints (..., 24, 3) root-relative metres (NaN where unknown), world_confidence (..., 24) (None:
    1 where finite) -> (..., 96): (x, y, z, visibility) per joint, all zeros where a joint is unknown."""
    if world_joints.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"world_joints must be (..., {NUM_JOINTS}, 3), got {tuple(world_joints.shape)}")
    known = torch.isfinite(world_joints).all(-1)
    vis = known.to(world_joints.dtype) if world_confidence is None else torch.nan_to_num(world_confidence.to(
        world_joints.dtype))
    known = known & (vis > 0)
    values = torch.cat([torch.nan_to_num(world_joints), vis[..., None]], -1)
    values = torch.where(known[..., None], values, torch.zeros_like(values))
    return values.reshape(*world_joints.shape[:-2], WORLD_FEATURE_DIM)


def observation_features(keypoints2d: Tensor, boxes: Tensor, K: Tensor,
                         image_embedding: Tensor | None = None, world: Tensor | None = None) -> Tensor:
    """keypoints2d (..., 24, 3) pixels + confidence (0 = missing), boxes (..., 3) CLIFF (bx, by, b) in pixels,
    K (3, 3), (B, 3, 3) or (..., 3, 3) -> F_img (..., 75) (+ 96 with ``world`` (..., 96), the output of
    ``world_landmark_features``; + E with ``image_embedding`` (..., E))."""
    if keypoints2d.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"keypoints2d must be (..., {NUM_JOINTS}, 3), got {tuple(keypoints2d.shape)}")
    batch = keypoints2d.shape[:-2]
    K = broadcast_intrinsics(K.to(keypoints2d.dtype), len(batch))
    bx, by, b = boxes.to(keypoints2d.dtype).unbind(-1)
    # A box of zero size only happens for a never-detected person (all keypoints missing): avoid 0/0.
    side = b.clamp_min(1.0)[..., None]
    conf = keypoints2d[..., 2]
    present = (conf > 0)[..., None]
    uv = (keypoints2d[..., :2] - torch.stack([bx, by], -1)[..., None, :]) / side[..., None]
    keypoints = torch.where(present, torch.cat([uv, conf[..., None]], -1), torch.zeros_like(keypoints2d))
    f, cx, cy = K[..., 0, 0], K[..., 0, 2], K[..., 1, 2]
    bbox = torch.stack([(bx - cx) / f, (by - cy) / f, b / f], -1).expand(*batch, BBOX_FEATURE_DIM)
    parts = [keypoints.reshape(*batch, KEYPOINT_FEATURE_DIM), bbox]
    if world is not None:
        parts.append(world.to(keypoints2d.dtype))
    if image_embedding is not None:
        parts.append(image_embedding.to(keypoints2d.dtype))
    return torch.cat(parts, -1)
