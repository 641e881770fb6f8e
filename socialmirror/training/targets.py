"""Training targets: each clip's ground truth x0 in the motion representation, in the CAMERA frame.

Per sequence, the body parameters in the sequence's world frame (local rotations (T, 2, 24, 3, 3), shape
(2, S), pelvis positions (T, 2, 3)) come from

* the sequence itself when it carries them: ``meta["body_params"] = {"body": NAME, "rotmats", "shape",
  "transl"}`` in the body model's conventions (``socialmirror.body.base``), at the sequence's frame rate.
  Generators that pose a body model (the synthesizer) know them exactly and should store them;
* otherwise inverse kinematics on the sequence's joints (``socialmirror.data.targets.to_anny_targets``'s
  fit), with the known shape held fixed when ``meta["shapes"]`` gives it for this body model. A fit costs
  seconds, so it is cached on disk under ``cache_dir()/targets/`` keyed by a hash of everything it depends
  on (joints, names, body, fit settings, known shapes).

Per clip (``clip_motion_target``), with the camera's extrinsics (R_cam, t_cam) (world -> camera):
    global orientation  R_cam @ R_root,     pelvis  R_cam t + t_cam          (local rotations unchanged)
and the crop camera from the clip's boxes (``MotionRepresentation.from_world``). The joints of the same
parameters are transformed the same way, so x0 and its joints agree exactly.

Boxes. The networks see the detector's boxes, interpolated over frames where a person was missed (the tracker
does the same at run time). A person never detected in a clip has no box; its target box is the box of its
projected ground-truth joints (so x0 stays finite) and ``person_observed`` is False: losses skip that person
and the networks never see that box.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from socialmirror.body.base import BodyModel
from socialmirror.body.motion import MotionParams, MotionRepresentation
from socialmirror.data.clips import TwoPersonClipDataset
from socialmirror.data.formats.interchange import TwoPersonSequence
from socialmirror.geometry.camera import box_from_points, project
from socialmirror.body.ik import IKConfig, fit_joints
from socialmirror.paths import cache_dir

log = logging.getLogger(__name__)

TARGETS_CACHE_VERSION = 1


@dataclass
class SequenceBodyParams:
    """One sequence's body parameters in its world frame (numpy, float32), and their joints."""

    rotmats: np.ndarray  # (T, 2, 24, 3, 3) local rotations, rotation 0 = global orientation
    shape: np.ndarray  # (2, S)
    transl: np.ndarray  # (T, 2, 3) pelvis positions
    joints: np.ndarray  # (T, 2, 24, 3) the body's joints for these parameters
    method: str  # "sequence" (carried by the data) or "ik"
    residual_mm: float = 0.0  # IK: mean distance to the sequence's joints


def targets_cache_dir():
    path = cache_dir() / "targets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _known_shapes(seq: TwoPersonSequence, body: BodyModel) -> np.ndarray | None:
    """The persons' shapes when the data states them for this body model (the synthesizer's meta)."""
    shapes = seq.meta.get("shapes")
    if shapes is None or seq.meta.get("body_model", body.name) != body.name:
        return None
    arr = np.asarray(shapes, dtype=np.float32)
    return arr if arr.shape == (2, body.shape_dim) else None


def _carried_params(seq: TwoPersonSequence, body: BodyModel) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    params = seq.meta.get("body_params")
    if not isinstance(params, dict) or params.get("body") != body.name or "resampled_from_fps" in seq.meta:
        return None
    rot = np.asarray(params["rotmats"], dtype=np.float32)
    shape = np.asarray(params["shape"], dtype=np.float32)
    transl = np.asarray(params["transl"], dtype=np.float32)
    T = seq.num_frames
    if rot.shape != (T, 2, 24, 3, 3) or shape.shape != (2, body.shape_dim) or transl.shape != (T, 2, 3):
        log.warning("%s: meta body_params have unexpected shapes; fitting instead", seq.name or "sequence")
        return None
    return rot, shape, transl


def ik_cache_key(seq: TwoPersonSequence, body: BodyModel, config: IKConfig) -> str:
    """Content hash of everything an IK fit depends on."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(seq.joints3d, dtype=np.float32).tobytes())
    shapes = _known_shapes(seq, body)
    h.update(json.dumps({"v": TARGETS_CACHE_VERSION, "names": list(seq.joint_names), "body": body.name,
                         "ik": vars(config), "shapes": None if shapes is None else shapes.tolist()},
                        sort_keys=True).encode())
    return h.hexdigest()[:32]


def sequence_body_params(seq: TwoPersonSequence, body: BodyModel, ik: IKConfig | None = None,
                         use_cache: bool = True) -> SequenceBodyParams:
    """The sequence's world-frame body parameters: carried by the data, else a (cached) IK fit."""
    carried = _carried_params(seq, body)
    if carried is not None:
        rot, shape, transl = carried
        with torch.no_grad():
            joints = body.joints(torch.from_numpy(rot), torch.from_numpy(shape), torch.from_numpy(transl))
        return SequenceBodyParams(rot, shape, transl, joints.numpy(), "sequence")
    known = _known_shapes(seq, body)
    ik = ik or IKConfig(fit_shape=known is None)
    path = targets_cache_dir() / f"{body.name}-{ik_cache_key(seq, body, ik)}.npz"
    if use_cache and path.is_file():
        try:
            with np.load(path) as z:
                return SequenceBodyParams(z["rotmats"], z["shape"], z["transl"], z["joints"], "ik",
                                          float(z["residual_mm"]))
        except (OSError, ValueError, KeyError):
            log.warning("unreadable target cache %s; fitting again", path)
    init = None if known is None else torch.from_numpy(known)
    fit = fit_joints(body, seq.joints3d, seq.joint_names, ik, init_shape=init)
    params = SequenceBodyParams(fit.rotmats.numpy().astype(np.float32), fit.shape.numpy().astype(np.float32),
                                fit.transl.numpy().astype(np.float32), fit.joints.numpy().astype(np.float32),
                                "ik", fit.residual_mm)
    if use_cache:
        from socialmirror.io import atomic_savez
        atomic_savez(path, rotmats=params.rotmats, shape=params.shape, transl=params.transl,
                     joints=params.joints, residual_mm=np.float32(params.residual_mm))
    return params


def prepare_body_params(sequences: Sequence[TwoPersonSequence], body: BodyModel, rank: int = 0,
                        world_size: int = 1, barrier: Callable[[], None] | None = None,
                        progress: Callable[[int, int], None] | None = None) -> list[SequenceBodyParams]:
    """Body parameters of every sequence. Under DDP each rank fits its share (i % world_size == rank) into the
    disk cache, ``barrier()`` waits for all, then every rank reads all of them from the cache."""
    if world_size > 1:
        for i in range(rank, len(sequences), world_size):
            sequence_body_params(sequences[i], body)
        if barrier is not None:
            barrier()
    out = []
    for i, seq in enumerate(sequences):
        out.append(sequence_body_params(seq, body))
        if progress is not None:
            progress(i + 1, len(sequences))
    return out


# ----------------------------------------------------------------------------------------------- per clip
def to_camera_frame(rotmats: torch.Tensor, transl: torch.Tensor, joints: torch.Tensor, extrinsics: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """World-frame parameters (..., 24, 3, 3), (..., 3), joints (..., 24, 3) -> camera frame, with the
    world -> camera extrinsics (4, 4): only the global orientation and the translation change."""
    R, t = extrinsics[:3, :3], extrinsics[:3, 3]
    rotmats = rotmats.clone()
    rotmats[..., 0, :, :] = R @ rotmats[..., 0, :, :]
    return rotmats, transl @ R.T + t, joints @ R.T + t


def target_boxes(boxes: torch.Tensor, detected: torch.Tensor, joints_cam: torch.Tensor, K: torch.Tensor,
                 box_scale: float = 1.2) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes (2, L, 3) to express x0 in: the observed ones, and for a person never detected in the clip the
    box of its projected joints. Returns (boxes, person_observed (2,))."""
    observed = detected.any(-1)
    if bool(observed.all()):
        return boxes, observed
    projected = box_from_points(project(joints_cam, K), scale=box_scale)  # (2, L, 3)
    return torch.where(observed[:, None, None], boxes, projected), observed


def clip_motion_target(params: SequenceBodyParams, frames: np.ndarray, swapped: bool, item: dict[str, Any],
                       representation: MotionRepresentation) -> dict[str, torch.Tensor]:
    """x0 (2, L, D) of one clip in the camera frame, its joints (2, L, 24, 3), the boxes x0 is expressed in and
    which persons were observed. ``frames``: the clip's frame indices into the sequence; ``swapped``: the
    dataset exchanged the persons."""
    order = [1, 0] if swapped else [0, 1]
    rot = torch.from_numpy(params.rotmats[frames][:, order]).transpose(0, 1)  # (2, L, 24, 3, 3)
    transl = torch.from_numpy(params.transl[frames][:, order]).transpose(0, 1)  # (2, L, 3)
    joints = torch.from_numpy(params.joints[frames][:, order]).transpose(0, 1)  # (2, L, 24, 3)
    shape = torch.from_numpy(params.shape[order])[:, None, :].expand(2, len(frames), -1)
    rot, transl, joints = to_camera_frame(rot, transl, joints, item["extrinsics"].float())
    K = item["intrinsics"].float()
    boxes, observed = target_boxes(item["boxes"].float(), item["detected"], joints, K)
    x0 = representation.from_world(MotionParams(rot, shape, transl), boxes, K)
    return {"x0": x0, "joints_target": joints, "boxes_target": boxes, "person_observed": observed}


class MotionTargetDataset(Dataset):
    """``TwoPersonClipDataset`` items plus their motion targets (``clip_motion_target``'s keys).

    ``params[s][q]`` are the body parameters of sequence q of source s of the clip dataset."""

    def __init__(self, clips: TwoPersonClipDataset, params: list[list[SequenceBodyParams]],
                 representation: MotionRepresentation):
        if [len(p) for p in params] != [len(s.sequences) for s in clips.sources]:
            raise ValueError("body parameters must be given for every sequence of every source")
        self.clips = clips
        self.params = params
        self.representation = representation

    def __len__(self) -> int:
        return len(self.clips)

    def set_epoch(self, epoch: int) -> None:
        self.clips.set_epoch(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.clips[index]
        seq_params = self.params[item["source"]][item["sequence"]]
        num_frames = seq_params.rotmats.shape[0]
        frames = np.minimum(item["start"] + np.arange(self.clips.length), num_frames - 1)
        item.update(clip_motion_target(seq_params, frames, bool(item["swapped"]), item, self.representation))
        return item
