"""The ST-GCN motion embedding uses the SMPL-24 skeleton graph; the Linear ablation has the same interface."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from socialmirror.body import skeleton
from socialmirror.models.stgcn import (
    LinearMotionEmbedding,
    STGCNConfig,
    STGCNMotionEmbedding,
    graph_partitions,
)

L = 9


def _neighbours(joint: int) -> set[int]:
    adj = skeleton.adjacency(self_loops=True)
    return set(np.nonzero(adj[joint])[0].tolist())


@pytest.mark.parametrize("partition", ["uniform", "spatial"])
def test_partitions_sum_to_the_normalised_adjacency(partition):
    parts = graph_partitions(partition)
    adj = skeleton.adjacency(self_loops=True)
    d = 1 / np.sqrt(adj.sum(1))
    assert np.allclose(parts.sum(0), d[:, None] * adj * d[None, :], atol=1e-6)
    assert parts.shape[0] == (1 if partition == "uniform" else 3)
    if partition == "spatial":
        self_part, inward, outward = parts
        assert np.allclose(self_part, np.diag(np.diag(self_part)))
        for child, parent in enumerate(skeleton.SMPL24_PARENTS):
            if parent >= 0:  # the child gathers its parent inward, the parent gathers the child outward
                assert inward[parent, child] > 0 and outward[parent, child] == 0
                assert outward[child, parent] > 0 and inward[child, parent] == 0


def _first_layer_change(model, joint, frame=4):
    joints = torch.randn(2, L, 24, 3)
    changed = joints.clone()
    changed[:, frame, joint] += torch.tensor([0.3, -0.2, 0.5])
    with torch.no_grad():
        a = model.joint_features(joints, num_layers=1)
        b = model.joint_features(changed, num_layers=1)
    diff = (a - b).abs()  # (2, L, 24, C)
    return diff.amax(dim=(0, 1, 3)), diff.amax(dim=(0, 2, 3))


@pytest.mark.parametrize("partition", ["uniform", "spatial"])
@pytest.mark.parametrize("joint", [0, skeleton.JOINT_INDEX["left_elbow"], skeleton.JOINT_INDEX["neck"]])
def test_first_layer_is_local_on_the_skeleton_graph(partition, joint):
    model = STGCNMotionEmbedding(STGCNConfig(dim=32, channels=(8, 8), temporal_kernel=3, partition=partition))
    per_joint, per_frame = _first_layer_change(model, joint)
    changed = set(torch.nonzero(per_joint > 1e-7).flatten().tolist())
    assert changed == _neighbours(joint)
    # the temporal convolution (kernel 3) spreads the change to the adjacent frames only
    assert set(torch.nonzero(per_frame > 1e-7).flatten().tolist()) == {3, 4, 5}


def test_disconnected_graph_variant_differs():
    config = STGCNConfig(dim=32, channels=(8, 8), temporal_kernel=3)
    torch.manual_seed(1)
    graph = STGCNMotionEmbedding(config)
    torch.manual_seed(1)
    alone = STGCNMotionEmbedding(STGCNConfig(dim=32, channels=(8, 8), temporal_kernel=3, graph="disconnected"))
    joints = torch.randn(2, L, 24, 3)
    assert not torch.allclose(graph(joints), alone(joints))
    joint = skeleton.JOINT_INDEX["left_elbow"]
    per_joint, _ = _first_layer_change(alone, joint)
    assert set(torch.nonzero(per_joint > 1e-7).flatten().tolist()) == {joint}


@pytest.mark.parametrize("make", [lambda: STGCNMotionEmbedding(STGCNConfig(dim=32, channels=(8, 16))),
                                  lambda: LinearMotionEmbedding(32)])
def test_embeddings_share_an_interface(make):
    model = make()
    assert model.dim == 32 and model.num_joints == 24
    assert model(torch.randn(3, L, 24, 3)).shape == (3, L, 32)  # one person
    pair = torch.randn(3, 2, L, 24, 3)
    out = model(pair)
    assert out.shape == (3, 2, L, 32)
    # persons are embedded independently (and identically)
    assert torch.allclose(out[:, 1], model(pair[:, 1]), atol=1e-6)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
