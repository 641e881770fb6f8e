"""Measuring MediaPipe's 3D error: perception on a rendered video of known poses, compared with the truth.

``calibrate_world_error(video, truth_joints, intrinsics)`` runs the same perception and pair stages as
``reconstruct`` on a video rendered from known bodies (default: the embedded sample, rendered from anny bodies
by ``socialmirror make-sample``), puts the two tracked people in the truth's order by their 2D distance to the
truth's projection, and measures the world landmarks' error (``socialmirror.data.world_landmarks``). The CLI's
``socialmirror calibrate-world`` writes the result where the fit and the observation simulator read it.
"""
from __future__ import annotations

import tempfile

import numpy as np

from socialmirror.data.world_landmarks import WorldErrorModel, measure_world_error
from socialmirror.pipeline.cache import StageCache
from socialmirror.pipeline.records import CameraSettings, VideoInput
from socialmirror.pipeline.stages import pair, perceive


def truth_order(keypoints2d: np.ndarray, truth_uv: np.ndarray) -> list[int]:
    """[0, 1] or [1, 0]: the order of the observed pair (keypoints2d (T, 2, 24, 3)) that puts each person on
    the truth's projection truth_uv (T, 2, 24, 2) (the smaller summed distance over confident keypoints)."""
    conf = keypoints2d[..., 2] > 0.3

    def cost(order):
        d = np.linalg.norm(keypoints2d[:, order, :, :2] - truth_uv, axis=-1)
        return float(np.where(conf[:, order], d, 0.0).sum())
    return min(([0, 1], [1, 0]), key=cost)


def calibrate_world_error(video_path, truth_joints: np.ndarray, intrinsics: np.ndarray,
                          progress: bool = True) -> WorldErrorModel:
    """The error model of MediaPipe's world landmarks on a video of known poses (truth_joints (T, 2, 24, 3) in
    the camera frame given by ``intrinsics``)."""
    K = np.asarray(intrinsics, dtype=np.float64)
    with tempfile.TemporaryDirectory() as work:
        cache = StageCache(work)
        video = VideoInput.at(video_path)
        perception = perceive(video, cache, progress=progress)
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        observation = pair(perception, cache, CameraSettings(intrinsics=(fx, fy, cx, cy)))
    truth = np.asarray(truth_joints, dtype=np.float64)
    uv = truth @ K.T
    uv = uv[..., :2] / uv[..., 2:]
    order = truth_order(observation.keypoints2d, uv)
    world = observation.world_joints[:, order]
    return measure_world_error(world, truth, source=f"{video.path.name}: {truth.shape[0]} frames x 2 people")


__all__ = ["calibrate_world_error", "truth_order"]
