"""Clips of L frames cut from two-person sequences, and a training dataset that mixes sources.

Where the windows lie (every window for training, non-overlapping ones with an end-aligned tail for
evaluation) is ``socialmirror.windows``; this module cuts a sequence to a window (``clip_sequence``: frames,
contacts re-based to the window) and turns a window and its simulated observation into the tensors the
networks train and are evaluated on (``make_item``, ``evaluation_items``). Padding frames of a sequence
shorter than L repeat its last frame and have ``valid`` False.

``TwoPersonClipDataset`` draws a source by weight, a window uniformly within that source, a random camera
(``CameraSampler``) and a simulated detector observation (``ObservationModel``), and randomly swaps the two
persons (nothing in the data says who is "person 1"). Items are a pure function of (seed, epoch, index), so
runs are reproducible with any number of DataLoader workers or DDP ranks.

The sources come from data specs (``socialmirror.data.datasets``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from socialmirror.body.skeleton import JOINT_INDEX, NUM_JOINTS
from socialmirror.data.datasets import DataSource
from socialmirror.data.formats.interchange import TwoPersonSequence
from socialmirror.data.observation import CameraSampler, Observation, ObservationModel
from socialmirror.windows import CLIP_LENGTH, Window, evaluation_windows, window_starts


# --------------------------------------------------------------------------------------------- clips

def clip_sequence(seq: TwoPersonSequence, window: Window) -> TwoPersonSequence:
    """The window's frames as a sequence of exactly ``window.length`` frames (padding repeats the last frame);
    contacts are cut to the window and re-based to its first frame."""
    idx = window.frames
    contacts = None
    if seq.contacts is not None:
        last = window.length - 1
        contacts = []
        for j1, j2, t0, t1 in seq.contacts:
            a, b = t0 - window.start, t1 - window.start
            if b < 0 or a > last:
                continue
            contacts.append((j1, j2, max(0, a), min(last, b)))
    return replace(seq, joints3d=seq.joints3d[idx],
                   vertices=None if seq.vertices is None else seq.vertices[idx], contacts=contacts,
                   meta={**seq.meta, "window_start": window.start})


def swap_persons(seq: TwoPersonSequence) -> TwoPersonSequence:
    """The same sequence with person 1 and person 2 exchanged (text and contacts follow their persons)."""
    return replace(
        seq, joints3d=seq.joints3d[:, ::-1].copy(),
        vertices=None if seq.vertices is None else seq.vertices[:, ::-1].copy(),
        text=None if seq.text is None else (seq.text[1], seq.text[0]),
        contacts=None if seq.contacts is None else [(j2, j1, t0, t1) for j1, j2, t0, t1 in seq.contacts],
    )


def contact_map(contacts: Sequence[tuple[str, str, int, int]] | None, num_frames: int) -> np.ndarray:
    """(T, 24, 24) bool: [t, i, j] is True when joint i of person 1 touches joint j of person 2 at frame t."""
    out = np.zeros((num_frames, NUM_JOINTS, NUM_JOINTS), dtype=bool)
    for j1, j2, t0, t1 in contacts or ():
        out[max(0, t0):min(num_frames, t1 + 1), JOINT_INDEX[j1], JOINT_INDEX[j2]] = True
    return out


# --------------------------------------------------------------------------------------------- dataset

@dataclass(frozen=True)
class Clip:
    """Which window an item came from: source index, sequence index within it, and the window."""

    source: int
    sequence: int
    window: Window


class TwoPersonClipDataset(Dataset):
    """Training clips with simulated observations, mixing sources by weight.

    Args:
        sources: ``(sequences, weight)`` pairs (or ``DataSource``); a source is drawn with probability
            proportional to its weight, then one of its windows uniformly.
        length: clip length L.
        observation_model, camera_sampler: the simulated detector and cameras (defaults: default configs).
        seed: base seed; item ``i`` of epoch ``e`` uses the generator seeded with (seed, e, i).
        epoch_size: ``len(self)``; default: the number of training windows over all sources.
        stride: training window stride.
        swap_prob: probability of exchanging the two persons.
        world_dropout: probability that a person's MediaPipe 3D is withheld for the whole clip, so networks that
            read it also work where it is absent (an observation without it, a person MediaPipe gave none for).

    An item is a dict of tensors with the persons first: ``keypoints2d`` (2, L, 24, 3), ``boxes`` (2, L, 3),
    ``world_joints`` (2, L, 24, 3) simulated MediaPipe 3D and ``world_confidence`` (2, L, 24) (zeros where not
    given), ``joints_cam`` (2, L, 24, 3) target (0 where ``joint_mask`` is False), ``joint_mask`` (24,) joints the
    ground truth has, ``valid`` (2, L) real (not padded) frames, ``detected`` (2, L), ``occluded``
    (2, L, 24), ``intrinsics`` (3, 3), ``extrinsics`` (4, 4), ``image_size`` (2,) = (w, h), ``contact_map``
    (L, 24, 24) bool; and, always present so batches from mixed sources collate, ``has_contacts``,
    ``has_text``, ``text`` (two strings, "" when absent), ``action`` ("" when absent), plus ``name``/``start``
    and ``source``/``sequence`` (indices of the clip's source and of its sequence within it).
    """

    def __init__(self, sources: Sequence[tuple[list[TwoPersonSequence], float] | DataSource],
                 length: int = CLIP_LENGTH, observation_model: ObservationModel | None = None,
                 camera_sampler: CameraSampler | None = None, seed: int = 0, epoch_size: int | None = None,
                 stride: int = 1, swap_prob: float = 0.5, world_dropout: float = 0.1):
        self.sources = [DataSource(list(s[0]), float(s[1]), s[2] if len(s) > 2 else "") for s in sources]
        if not self.sources:
            raise ValueError("TwoPersonClipDataset needs at least one source")
        for i, s in enumerate(self.sources):
            if not s.sequences:
                raise ValueError(f"source {i} ({s.name or 'unnamed'}) has no sequences")
            if not (s.weight >= 0.0 and np.isfinite(s.weight)):
                raise ValueError(f"source {i} ({s.name or 'unnamed'}) has weight {s.weight}; expected >= 0")
        weights = np.array([s.weight for s in self.sources])
        if weights.sum() <= 0:
            raise ValueError("every source has weight 0")
        self.probabilities = weights / weights.sum()
        self.length = int(length)
        self.stride = int(stride)
        self.observation_model = observation_model or ObservationModel()
        self.camera_sampler = camera_sampler or CameraSampler()
        self.seed = int(seed)
        self.swap_prob = float(swap_prob)
        self.world_dropout = float(world_dropout)
        self.epoch = 0
        # Per source: cumulative window counts over its sequences, to draw a window uniformly.
        self._counts = [np.cumsum([len(window_starts(q.num_frames, self.length, self.stride))
                                   for q in s.sequences]) for s in self.sources]
        self.num_windows = int(sum(c[-1] for c in self._counts))
        self.epoch_size = int(epoch_size) if epoch_size is not None else self.num_windows

    def __len__(self) -> int:
        return self.epoch_size

    def set_epoch(self, epoch: int) -> None:
        """Draw different clips, cameras and noise in each epoch (call it like DistributedSampler's)."""
        self.epoch = int(epoch)

    def draw_clip(self, rng: np.random.Generator) -> Clip:
        src = int(rng.choice(len(self.sources), p=self.probabilities))
        counts = self._counts[src]
        k = int(rng.integers(int(counts[-1])))
        seq_index = int(np.searchsorted(counts, k, side="right"))
        offset = k - (int(counts[seq_index - 1]) if seq_index else 0)
        seq = self.sources[src].sequences[seq_index]
        start = int(window_starts(seq.num_frames, self.length, self.stride)[offset])
        valid = start + np.arange(self.length) < seq.num_frames
        return Clip(src, seq_index, Window(start, self.length, seq.num_frames, valid, valid.copy()))

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        rng = np.random.default_rng((self.seed, self.epoch, int(index)))
        clip = self.draw_clip(rng)
        seq = clip_sequence(self.sources[clip.source].sequences[clip.sequence], clip.window)
        swapped = bool(rng.random() < self.swap_prob)
        if swapped:
            seq = swap_persons(seq)
        camera = self.camera_sampler.place(seq, rng)
        obs = self.observation_model.observe(seq, camera, rng=rng)
        item = make_item(seq, obs, clip.window, swapped=swapped)
        withheld = torch.from_numpy(rng.random(2) < self.world_dropout)
        item["world_confidence"] = torch.where(withheld[:, None, None], 0.0, item["world_confidence"])
        item["world_joints"] = torch.where(withheld[:, None, None, None], 0.0, item["world_joints"])
        # Which sequence the clip came from, so per-sequence data (e.g. body-parameter targets) can join it.
        item.update(source=clip.source, sequence=clip.sequence)
        return item


def make_item(seq: TwoPersonSequence, obs: Observation, window: Window, swapped: bool = False) -> dict[str, Any]:
    """Tensors of one clip (persons first; see ``TwoPersonClipDataset``) from its sequence and observation."""
    length = window.length
    joints = np.nan_to_num(obs.joints_cam.transpose(1, 0, 2, 3), nan=0.0)
    valid = np.broadcast_to(window.valid, (2, length))
    if obs.world_joints is None:
        world = np.zeros((2, length, NUM_JOINTS, 3), np.float32)
        world_conf = np.zeros((2, length, NUM_JOINTS), np.float32)
    else:
        world = obs.world_joints.transpose(1, 0, 2, 3)
        known = np.isfinite(world).all(-1)
        world = np.where(known[..., None], world, 0.0).astype(np.float32)
        conf = obs.world_confidence.transpose(1, 0, 2) if obs.world_confidence is not None else known
        world_conf = np.where(known, conf, 0.0).astype(np.float32)
    return {
        "keypoints2d": torch.from_numpy(np.ascontiguousarray(obs.keypoints2d.transpose(1, 0, 2, 3))),
        "boxes": torch.from_numpy(np.ascontiguousarray(obs.boxes.transpose(1, 0, 2))),
        "world_joints": torch.from_numpy(np.ascontiguousarray(world)),
        "world_confidence": torch.from_numpy(np.ascontiguousarray(world_conf)),
        "joints_cam": torch.from_numpy(np.ascontiguousarray(joints, dtype=np.float32)),
        "joint_mask": torch.from_numpy(obs.joint_mask.copy()),
        "valid": torch.from_numpy(valid.copy()),
        "detected": torch.from_numpy(np.ascontiguousarray(obs.detected.T) & valid),
        "occluded": torch.from_numpy(np.ascontiguousarray(obs.occluded.transpose(1, 0, 2))),
        "intrinsics": torch.from_numpy(obs.intrinsics.copy()),
        "extrinsics": torch.from_numpy(obs.extrinsics.copy()),
        "image_size": torch.tensor(obs.image_size, dtype=torch.float32),
        "contact_map": torch.from_numpy(contact_map(seq.contacts, length)),
        "has_contacts": seq.contacts is not None,
        "has_text": seq.text is not None,
        "text": tuple(seq.text) if seq.text is not None else ("", ""),
        "action": seq.action or "",
        "name": seq.name,
        "start": window.start,
        "swapped": swapped,
    }


def evaluation_items(seq: TwoPersonSequence, obs: Observation, length: int = CLIP_LENGTH
                     ) -> list[tuple[Window, dict[str, Any]]]:
    """Evaluation clips of a whole-sequence observation (one camera, one seed for the whole sequence, as a
    video would be): each window with its item (same keys as the training dataset). Score a window's
    prediction only on ``window.new`` frames so that every frame counts exactly once."""
    if obs.num_frames != seq.num_frames:
        raise ValueError(f"observation has {obs.num_frames} frames but the sequence {seq.num_frames}")
    return [(w, make_item(clip_sequence(seq, w), obs.select_frames(w.frames), w))
            for w in evaluation_windows(seq.num_frames, length)]


__all__ = ["Clip", "TwoPersonClipDataset", "clip_sequence", "contact_map", "evaluation_items", "make_item",
           "swap_persons"]
