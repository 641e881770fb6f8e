"""Clips: sequences cut to windows (padding, contacts), the mixing dataset, data specs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from socialmirror.body.skeleton import JOINT_INDEX, SMPL24_NAMES
from socialmirror.data.clips import TwoPersonClipDataset, clip_sequence, contact_map, evaluation_items, swap_persons
from socialmirror.data.datasets import DataSource, DataSpecError, load_data_spec, parse_data_spec, split_data_spec
from socialmirror.data.formats.interchange import TwoPersonSequence, write_npz
from socialmirror.data.observation import ObservationConfig, ObservationModel
from socialmirror.windows import evaluation_windows

from _pair_helpers import STANDING


def walking_pair(frames: int, names=SMPL24_NAMES, contacts=None, text=None, action=None, name="walk",
                 fps: float = 30.0) -> TwoPersonSequence:
    idx = [JOINT_INDEX[n] for n in names]
    t = np.arange(frames)[:, None, None] / fps
    a = STANDING[idx][None] + np.array([-0.6, 0.0, 0.0]) + 0.3 * t * np.array([1.0, 0.0, 0.0])
    b = STANDING[idx][None] + np.array([0.6, 0.0, 0.0]) + 0.05 * np.sin(3 * t) * np.array([0.0, 0.0, 1.0])
    return TwoPersonSequence(joints3d=np.stack([a, b], axis=1), joint_names=tuple(names), fps=fps,
                             up=np.array([0.0, 1.0, 0.0]), contacts=contacts, text=text, action=action, name=name)


def test_short_sequence_is_padded_with_a_mask():
    (w,) = evaluation_windows(10, 16)
    assert w.valid.tolist() == [True] * 10 + [False] * 6
    assert w.frames.tolist() == list(range(10)) + [9] * 6
    seq = walking_pair(10, contacts=[("right_wrist", "left_wrist", 8, 9)])
    clip = clip_sequence(seq, w)
    assert clip.num_frames == 16
    assert np.array_equal(clip.joints3d[10:], np.repeat(seq.joints3d[9:10], 6, axis=0))
    ds = TwoPersonClipDataset([([seq], 1.0)], seed=0)
    item = ds[0]
    assert item["valid"].shape == (2, 16)
    assert item["valid"][:, :10].all() and not item["valid"][:, 10:].any()
    assert not item["detected"][:, 10:].any()


def test_clip_contacts_are_cut_and_rebased():
    seq = walking_pair(40, contacts=[("right_wrist", "left_wrist", 10, 20), ("head", "head", 30, 35)])
    clip = clip_sequence(seq, evaluation_windows(40, 16)[1])  # frames 16..31
    assert clip.contacts == [("right_wrist", "left_wrist", 0, 4), ("head", "head", 14, 15)]


def test_dataset_items_have_the_documented_shapes():
    seqs = [walking_pair(40, text=("a walks.", "b waits."), action="walk"), walking_pair(25, name="b")]
    ds = TwoPersonClipDataset([(seqs, 1.0)], length=16, seed=0)
    assert len(ds) == 25 + 10
    item = ds[3]
    shapes = {"keypoints2d": (2, 16, 24, 3), "boxes": (2, 16, 3), "joints_cam": (2, 16, 24, 3), "joint_mask": (24,),
              "valid": (2, 16), "detected": (2, 16), "occluded": (2, 16, 24), "intrinsics": (3, 3),
              "extrinsics": (4, 4), "image_size": (2,), "contact_map": (16, 24, 24)}
    for key, shape in shapes.items():
        assert tuple(item[key].shape) == shape, key
    assert item["keypoints2d"].dtype == torch.float32 and item["joints_cam"].dtype == torch.float32
    assert torch.isfinite(item["joints_cam"]).all() and torch.isfinite(item["keypoints2d"]).all()
    assert (item["joints_cam"][..., 2] > 0).all()                    # in front of the camera
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert tuple(batch["keypoints2d"].shape) == (4, 2, 16, 24, 3)
    assert len(batch["text"]) == 2 and len(batch["action"]) == 4


def test_dataset_items_carry_mediapipe_3d_and_withhold_some():
    seqs = [walking_pair(40)]
    item = TwoPersonClipDataset([(seqs, 1.0)], length=16, seed=0, world_dropout=0.0)[3]
    assert tuple(item["world_joints"].shape) == (2, 16, 24, 3) and tuple(item["world_confidence"].shape) == (2, 16, 24)
    seen = item["world_confidence"] > 0
    assert seen.any() and torch.isfinite(item["world_joints"]).all()
    # Root-relative: the pelvis is at the origin where seen, and the evidence is near the truth's pose.
    pelvis = item["joints_cam"][:, :, :1]
    rel = item["joints_cam"] - pelvis
    err = (item["world_joints"] - rel).norm(dim=-1)[seen]
    assert err.median() < 0.15
    withheld = TwoPersonClipDataset([(seqs, 1.0)], length=16, seed=0, world_dropout=1.0)[3]
    assert not withheld["world_confidence"].any() and not withheld["world_joints"].any()
    assert torch.equal(withheld["keypoints2d"], item["keypoints2d"])


def test_dataset_is_deterministic_and_epochs_differ():
    seqs = [walking_pair(60)]
    a = TwoPersonClipDataset([(seqs, 1.0)], seed=5)
    b = TwoPersonClipDataset([(seqs, 1.0)], seed=5)
    assert torch.equal(a[7]["keypoints2d"], b[7]["keypoints2d"])
    b.set_epoch(1)
    assert not torch.equal(a[7]["keypoints2d"], b[7]["keypoints2d"])


def test_person_swap_swaps_contacts_and_text():
    seq = walking_pair(16, contacts=[("right_hand", "left_shoulder", 2, 5)], text=("one", "two"))
    plain = TwoPersonClipDataset([([seq], 1.0)], swap_prob=0.0, seed=1)[0]
    swapped = TwoPersonClipDataset([([seq], 1.0)], swap_prob=1.0, seed=1)[0]
    rh, ls = JOINT_INDEX["right_hand"], JOINT_INDEX["left_shoulder"]
    assert plain["contact_map"][2:6, rh, ls].all() and plain["contact_map"].sum() == 4
    assert swapped["contact_map"][2:6, ls, rh].all() and swapped["contact_map"].sum() == 4
    assert swapped["swapped"] and not plain["swapped"]
    assert swapped["text"] == ("two", "one") and plain["text"] == ("one", "two")
    s = swap_persons(seq)
    assert np.array_equal(s.joints3d[:, 0], seq.joints3d[:, 1])
    assert np.array_equal(contact_map(s.contacts, 16), contact_map(seq.contacts, 16).transpose(0, 2, 1))
    # The targets follow the persons: the swapped item's person 0 is the sequence's person 1.
    for item in (plain, swapped):
        cam = item["extrinsics"].double().numpy()
        first = seq.joints3d[:, 1 if item["swapped"] else 0] @ cam[:3, :3].T + cam[:3, 3]
        assert np.allclose(item["joints_cam"][0].numpy(), first, atol=1e-4)


def test_sources_mix_by_weight():
    a = [walking_pair(30, name="a")]
    b = [walking_pair(30, name="b")]
    ds = TwoPersonClipDataset([DataSource(a, 3.0, "a"), DataSource(b, 1.0, "b")], epoch_size=400, seed=0,
                              observation_model=ObservationModel(ObservationConfig(occlusion=False)))
    names = [ds.draw_clip(np.random.default_rng((0, 0, i))).source for i in range(400)]
    assert 0.68 < np.mean(np.array(names) == 0) < 0.82
    with pytest.raises(ValueError, match="no sequences"):
        TwoPersonClipDataset([([], 1.0)])
    with pytest.raises(ValueError, match="weight 0"):
        TwoPersonClipDataset([(a, 0.0)])


def test_joint_subset_sources_give_items():
    names = ("spine3", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
             "right_wrist")
    ds = TwoPersonClipDataset([([walking_pair(20, names=names)], 1.0)], seed=0)
    item = ds[0]
    assert item["joint_mask"].sum() == 8
    assert (item["joints_cam"][:, :, ~item["joint_mask"]] == 0).all()
    assert (item["keypoints2d"][:, :, ~item["joint_mask"], 2] == 0).all()


def test_data_specs(tmp_path):
    assert split_data_spec("cmu:/a/b@2.5, npz:/c") == [("cmu:/a/b", 2.5), ("npz:/c", 1.0)]
    for bad, match in (("nope", "KIND:ARG"), ("foo:bar", "unknown kind"), ("npz:/does/not/exist", "no such"),
                       ("synth:x", "number"), ("npz:/x@heavy", "not a number")):
        with pytest.raises(DataSpecError, match=match):
            parse_data_spec(bad)
    write_npz(walking_pair(40, name="one"), tmp_path / "one.npz")
    write_npz(walking_pair(20, name="two", fps=60.0), tmp_path / "two.npz")
    sources = parse_data_spec([f"npz:{tmp_path}@2", f"npz:{tmp_path / 'one.npz'}"])
    assert [s.weight for s in sources] == [2.0, 1.0]
    assert len(sources[0].sequences) == 2 and all(q.fps == 30.0 for q in sources[0].sequences)
    assert len(TwoPersonClipDataset(sources)[0]["keypoints2d"]) == 2


def test_synth_spec_is_lazy_and_clear():
    try:
        seqs = load_data_spec("synth:2")
    except DataSpecError as e:
        assert "synth" in str(e)
    else:
        assert len(seqs) == 2 and all(isinstance(q, TwoPersonSequence) for q in seqs)


@pytest.mark.shared_data
def test_cmu_gives_items(shared_data):
    sources = parse_data_spec(f"cmu:{shared_data / 'cmu_18_19'}")
    ds = TwoPersonClipDataset(sources, seed=0)
    assert len(ds) == sources[0].sequences[0].num_frames - 15
    item = ds[0]
    assert item["joint_mask"].sum() == 21
    assert tuple(item["keypoints2d"].shape) == (2, 16, 24, 3)
    assert item["detected"].float().mean() > 0.5


def test_evaluation_items_cut_one_observation():
    seq = walking_pair(37, contacts=[("head", "head", 30, 36)])
    obs = ObservationModel().observe(seq, seed=4)
    items = evaluation_items(seq, obs)
    assert [w.start for w, _ in items] == [0, 16, 21]
    for w, item in items:
        assert torch.equal(item["keypoints2d"], torch.from_numpy(obs.keypoints2d[w.frames].transpose(1, 0, 2, 3)))
    assert items[-1][1]["contact_map"][9:16, JOINT_INDEX["head"], JOINT_INDEX["head"]].all()
    (w, short), = evaluation_items(walking_pair(5), ObservationModel().observe(walking_pair(5)))
    assert short["valid"][:, :5].all() and not short["valid"][:, 5:].any()
