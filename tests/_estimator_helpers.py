"""A tiny random-initialised model bundle and synthetic two-person observations for the estimator tests."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from socialmirror.body.motion import MotionRepresentation
from socialmirror.geometry.camera import box_from_points, intrinsics_matrix, project, transl_to_crop_cam
from socialmirror.geometry.rotations import axis_angle_to_matrix
from socialmirror.models.bundle import ModelBundle, ModelBundleConfig
from socialmirror.models.geometry_optimizer import GeometryOptimizer, GeometryOptimizerConfig
from socialmirror.models.infiller import InfillerConfig
from socialmirror.models.initial_estimator import InitialEstimatorConfig
from socialmirror.models.refiner import RefinerConfig
from socialmirror.models.stgcn import STGCNConfig
from socialmirror.windows import CLIP_LENGTH

IMAGE_SIZE = (1000, 1000)
K = intrinsics_matrix(1000.0, *IMAGE_SIZE)


@dataclass
class Scene:
    keypoints2d: np.ndarray  # (T, 2, 24, 3)
    boxes: np.ndarray  # (T, 2, 3)
    K: np.ndarray  # (3, 3)
    joints: np.ndarray  # (T, 2, 24, 3) ground truth
    x: torch.Tensor  # (T, 2, D) ground-truth motion


def make_scene(body, num_frames: int, offset_b=(0.7, 0.0, 0.0), yaw_b: float = -math.pi / 2,
               yaw_a: float = math.pi / 2, seed: int = 0) -> Scene:
    """Two people ~4 m in front of the camera, person b at `offset_b` from a, each turned by its yaw, their
    limbs swinging slowly; the observation is the exact projection with confidence 1."""
    g = torch.Generator().manual_seed(seed)
    phase = torch.linspace(0, 2 * math.pi, num_frames)[:, None, None, None]
    amplitude = torch.randn(1, 2, 24, 3, generator=g) * 0.15
    aa = amplitude * torch.sin(phase + torch.rand(1, 2, 24, 3, generator=g) * 6.0)
    aa[:, :, 0] = 0.0
    rot = axis_angle_to_matrix(aa)
    upright = axis_angle_to_matrix(torch.tensor([math.pi, 0.0, 0.0]))
    yaw = axis_angle_to_matrix(torch.tensor([[0.0, yaw_a, 0.0], [0.0, yaw_b, 0.0]]))
    rot[:, :, 0] = upright @ yaw
    transl = torch.tensor([0.0, 0.0, 4.0]) + torch.stack([torch.zeros(3), torch.tensor(offset_b)])
    transl = transl.expand(num_frames, 2, 3).clone()
    transl[..., 0] += torch.linspace(-0.1, 0.1, num_frames)[:, None]
    shape = body.default_shape(num_frames, 2)
    joints = body.joints(rot, body.default_shape(2), transl)
    uv = project(joints, K)
    keypoints = torch.cat([uv, torch.ones(*uv.shape[:-1], 1)], -1)
    boxes = box_from_points(uv)
    rep = MotionRepresentation(body.shape_dim)
    x = rep.pack(rot, shape, transl_to_crop_cam(transl, boxes, K))
    return Scene(keypoints.numpy(), boxes.numpy(), K.numpy(), joints.numpy(), x)


def tiny_bundle(body, statistics_from: torch.Tensor, seed: int = 0, with_linear: bool = True,
                clip_len: int = CLIP_LENGTH) -> ModelBundle:
    """A small random bundle whose normalisation and initial-estimator statistics come from motions x (N, D),
    with its zero-initialised heads and ControlNet layers randomised a little so that every stage acts."""
    torch.manual_seed(seed)
    small = dict(dim=32, depth=1, heads=2)
    config = ModelBundleConfig(
        shape_dim=body.shape_dim,
        clip_len=clip_len,
        initial=InitialEstimatorConfig(**small),
        geometry=GeometryOptimizerConfig(**small, stgcn=STGCNConfig(dim=32, channels=(16,))),
        infiller=InfillerConfig(**small),
        refiner=RefinerConfig(**small),
    )
    bundle = ModelBundle(config)
    x = statistics_from.reshape(-1, statistics_from.shape[-1])
    std = x.std(0).clamp_min(0.05)
    bundle.set_statistics(x.mean(0), std, torch.full_like(std, 0.3))
    bundle.initial.set_output_statistics(x)
    with torch.no_grad():
        for layer in (bundle.geometry.head, bundle.refiner.head, bundle.infiller.controlnet.text_in,
                      *bundle.infiller.controlnet.zero_out):
            layer.weight.normal_(0.0, 0.01)
    if with_linear:  # the Linear-embedding ablation's optimizer, which ModelBundle has no slot for (yet)
        bundle.geometry_linear = GeometryOptimizer(replace(bundle.config.geometry, embedding="linear"))
    return bundle.eval()
