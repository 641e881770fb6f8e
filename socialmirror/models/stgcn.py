"""Motion embeddings of 3D joints for the Geometry Optimizer: an ST-GCN over the SMPL-24 skeleton and the
Linear ablation of the supplementary's Table 2.

Both take joints (..., L, 24, 3) (any leading dims, e.g. (B, L) for one person or (B, 2) for a pair) and
return one token per frame, (..., L, dim).

ST-GCN (Yan et al. 2018) layer: a spatial graph convolution over the skeleton graph,
    Y = sum_k (W_k X) (A_k * M_k),
where the A_k partition the normalised adjacency D^-1/2 (A + I) D^-1/2 of `skeleton.adjacency()` and M_k is
a learned edge-importance mask (initialised to 1, multiplying A_k entrywise so absent edges stay absent),
then a temporal convolution over frames per joint (same padding), with a residual connection. Partitions:
  "uniform":  one matrix, the normalised adjacency itself;
  "spatial":  ST-GCN's spatial configuration: self / inward (the neighbour closer to the root) / outward
              (the neighbours farther from it). ST-GCN measures closeness to the skeleton's centre of
              gravity; on SMPL's tree we use the hop distance to the pelvis (the root), which splits each
              bone into its parent and child side the same way.
`graph="disconnected"` replaces the skeleton by the empty graph (self loops only): the ablation showing that
what the STGCN adds is the graph.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from socialmirror.body import skeleton

Partition = Literal["uniform", "spatial"]
Graph = Literal["skeleton", "disconnected"]


@dataclass
class STGCNConfig:
    dim: int = 128  # output token width
    channels: tuple[int, ...] = (32, 32, 32)  # hidden channels of each ST-GCN layer
    temporal_kernel: int = 5  # odd; frames seen by each layer's temporal convolution
    partition: Partition = "spatial"
    graph: Graph = "skeleton"
    edge_importance: bool = True
    dropout: float = 0.0
    in_channels: int = 3

    def __post_init__(self):
        if self.temporal_kernel % 2 != 1:
            raise ValueError("temporal_kernel must be odd (same padding)")
        self.channels = tuple(self.channels)


def _hop_distance_to_root() -> np.ndarray:
    depth = np.zeros(skeleton.NUM_JOINTS, dtype=np.int64)
    for joint, parent in enumerate(skeleton.SMPL24_PARENTS):
        if parent >= 0:  # SMPL lists every parent before its children
            depth[joint] = depth[parent] + 1
    return depth


def graph_partitions(partition: Partition = "spatial", graph: Graph = "skeleton") -> np.ndarray:
    """(K, 24, 24) float32 matrices A_k with A[k, v, w] the weight with which joint w aggregates joint v.

    They sum to the normalised adjacency D^-1/2 (A + I) D^-1/2 of the graph."""
    if graph == "skeleton":
        adj = skeleton.adjacency(self_loops=True)
    elif graph == "disconnected":
        adj = np.eye(skeleton.NUM_JOINTS, dtype=np.float32)
    else:
        raise ValueError(f"unknown graph {graph!r}")
    deg = adj.sum(axis=1)
    inv_sqrt = 1.0 / np.sqrt(deg)
    norm = (inv_sqrt[:, None] * adj * inv_sqrt[None, :]).astype(np.float32)
    if partition == "uniform":
        return norm[None]
    if partition != "spatial":
        raise ValueError(f"unknown partition {partition!r}")
    depth = _hop_distance_to_root()
    source_depth, target_depth = depth[:, None], depth[None, :]  # v: source (rows), w: target (columns)
    self_part = np.diag(np.diag(norm))  # bones join different depths, so only self loops are left
    inward = np.where(source_depth < target_depth, norm, 0.0)  # w gathers from its parent
    outward = np.where(source_depth > target_depth, norm, 0.0)  # w gathers from its children
    return np.stack([self_part, inward, outward]).astype(np.float32)


class SpatialGraphConv(nn.Module):
    """Y[n, t, w, :] = sum_k sum_v (A_k * M_k)[v, w] (X[n, t, v, :] W_k); X is (N, L, V, C_in).

    Tensors stay channels-last throughout the ST-GCN: the per-joint linear maps and the LayerNorms then work
    on the last dimension and no layout copies are needed (they dominated the run time in NCTV layout)."""

    def __init__(self, in_channels: int, out_channels: int, partitions: Tensor, edge_importance: bool = True):
        super().__init__()
        self.num_partitions = partitions.shape[0]
        self.out_channels = out_channels
        self.register_buffer("partitions", partitions.clone())
        self.importance = nn.Parameter(torch.ones_like(partitions)) if edge_importance else None
        self.linear = nn.Linear(in_channels, out_channels * self.num_partitions)

    def adjacency(self) -> Tensor:
        """(K, V, W) effective partition matrices."""
        return self.partitions * self.importance if self.importance is not None else self.partitions

    def forward(self, x: Tensor) -> Tensor:
        n, length, joints, _ = x.shape
        k = self.num_partitions
        # (N*L, V*K, C): for each frame, the K transformed copies of every joint, joint-major
        y = self.linear(x).view(n * length, joints * k, self.out_channels)
        # (W, V*K) with [w, v*K + k] = A[k, v, w]: one matmul aggregates every partition at once
        a = self.adjacency().permute(2, 1, 0).reshape(joints, joints * k)
        return torch.matmul(a, y).view(n, length, joints, self.out_channels)


class TemporalConv(nn.Module):
    """Convolution over frames per joint (kernel odd, same zero padding) on channels-last (N, L, V, C): the
    kernel's shifted frames are concatenated on the channels and mixed by one Linear."""

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.kernel = kernel
        self.linear = nn.Linear(channels * kernel, channels)

    def forward(self, x: Tensor) -> Tensor:
        length, pad = x.shape[1], self.kernel // 2
        padded = F.pad(x, (0, 0, 0, 0, pad, pad))
        return self.linear(torch.cat([padded[:, i:i + length] for i in range(self.kernel)], dim=-1))


class STGCNLayer(nn.Module):
    """Spatial graph conv -> LayerNorm -> ReLU -> temporal conv -> LayerNorm, + residual, ReLU.

    The norms are over the channels of each (frame, joint): unlike BatchNorm they mix neither samples nor
    joints, so training and evaluation behave alike and a layer's output at a joint depends only on its graph
    neighbourhood. The residual is per joint (a Linear when the width changes), keeping that locality."""

    def __init__(self, in_channels: int, out_channels: int, partitions: Tensor, temporal_kernel: int,
                 edge_importance: bool = True, dropout: float = 0.0):
        super().__init__()
        self.gcn = SpatialGraphConv(in_channels, out_channels, partitions, edge_importance)
        self.norm1 = nn.LayerNorm(out_channels)
        self.tcn = TemporalConv(out_channels, temporal_kernel)
        self.norm2 = nn.LayerNorm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.residual = (nn.Identity() if in_channels == out_channels
                         else nn.Linear(in_channels, out_channels))

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, L, V, C_in) -> (N, L, V, C_out)."""
        y = torch.relu(self.norm1(self.gcn(x)))
        y = self.norm2(self.tcn(self.dropout(y)))
        return torch.relu(y + self.residual(x))


class STGCNMotionEmbedding(nn.Module):
    """Joints (..., L, 24, 3) -> ST-GCN layers -> flatten the joints of each frame -> Linear -> (..., L, dim)."""

    def __init__(self, config: STGCNConfig | None = None):
        super().__init__()
        self.config = config = config or STGCNConfig()
        self.dim = config.dim
        self.num_joints = skeleton.NUM_JOINTS
        partitions = torch.from_numpy(graph_partitions(config.partition, config.graph))
        widths = (config.in_channels, *config.channels)
        self.layers = nn.ModuleList([
            STGCNLayer(c_in, c_out, partitions, config.temporal_kernel, config.edge_importance, config.dropout)
            for c_in, c_out in zip(widths[:-1], widths[1:])
        ])
        self.to_token = nn.Linear(widths[-1] * self.num_joints, config.dim)

    def joint_features(self, joints: Tensor, num_layers: int | None = None) -> Tensor:
        """Per-joint features after the first `num_layers` layers (all by default): (..., L, 24, C)."""
        lead, tail = joints.shape[:-3], joints.shape[-3:]
        x = joints.reshape(-1, *tail)  # (N, L, V, 3)
        for layer in self.layers[:num_layers]:
            x = layer(x)
        return x.reshape(*lead, *x.shape[1:])

    def forward(self, joints: Tensor) -> Tensor:
        features = self.joint_features(joints)
        return self.to_token(features.flatten(-2))


class LinearMotionEmbedding(nn.Module):
    """The ablation of Table 2: the 24 x 3 joint coordinates of a frame through one Linear layer (72 -> dim)."""

    def __init__(self, dim: int, num_joints: int = skeleton.NUM_JOINTS, in_channels: int = 3):
        super().__init__()
        self.dim = dim
        self.num_joints = num_joints
        self.linear = nn.Linear(num_joints * in_channels, dim)

    def forward(self, joints: Tensor) -> Tensor:
        return self.linear(joints.flatten(-2))
