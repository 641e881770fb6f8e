"""CHI3D (Fieraru et al., CVPR 2020 / TPAMI 2023) in its published layout -> :class:`PaperSample` s.

Layout read (as IMAR's ``imar_vision_datasets_tools`` reads it)::

    <root>/chi3d/<train|test>/<subject sXX>/
        joints3d_25/<action>.json               {"joints3d_25": (2, T, 25, 3)}  both persons, world, metres
        smplx/<action>.json                     transl (2, T, 3), global_orient (2, T, 1, 3, 3),
                                                body_pose (2, T, 21, 3, 3), betas (2, T, 10), hands, face...
        camera_parameters/<camera>/<action>.json  extrinsics {R (3, 3), T (1, 3)},
                                                intrinsics_wo_distortion {f (2,), c (2,)},
                                                intrinsics_w_distortion {f, c, k (3,), p (2,)}
        videos/<camera>/<action>.mp4            (not read; its presence is recorded)

``root`` may be the folder holding ``chi3d/``, ``chi3d/`` itself, a split folder or one subject folder.
Person 0 is the subject wearing markers, person 1 the one without (IMAR's ``w_markers`` / ``wo_markers``).

Action: the file's stem without its repetition number, camel case split: ``Hug 1`` -> ``hug``,
``HoldingHands 2`` -> ``holding hands`` (CHI3D: grab, handshake, hit, holding hands, hug, kick, posing,
push). Frame rate: 50 fps (the videos' rate). Up axis: estimated from the bodies.

Cameras: IMAR's convention is ``x_cam = (X - T) R^T``, i.e. ``R`` is world-to-camera and ``T`` the camera
centre, so ``t = -R T``. ``K`` comes from ``intrinsics_wo_distortion``; the distortion parameters are kept
in ``extra`` as published (IMAR's own projection swaps the two ``p`` entries). Images are 900 x 900.

Joints (``joints3d_25``: Human3.6M's 17 joints, then two points per foot and per hand; the limb list of
IMAR's ``plot_over_image`` fixes the topology, and IMAR's own evaluation (``H36M_TO_J17`` in
``eval_util.py``, which names 6/5/4 right ankle/knee/hip, 1/2/3 left hip/knee/ankle, 16/15/14 right
wrist/elbow/shoulder, 11/12/13 left shoulder/elbow/wrist, 8 neck, 10 head top) fixes the sides) mapped onto
SMPL-24 names:

==== =================== =========================================================================
H36M name                SMPL-24
==== =================== =========================================================================
0    pelvis              pelvis
1-3  left hip/knee/ank.  left_hip, left_knee, left_ankle
4-6  right hip/knee/ank. right_hip, right_knee, right_ankle
7    spine (mid-torso)   not mapped (between SMPL's spine2 and spine3; no SMPL joint there)
8    thorax              neck (the base of the neck, between the shoulders)
9    neck / nose         head (SMPL's head joint sits at about nose height inside the skull)
10   head top            not mapped (SMPL has no joint at the top of the head)
11-13 left shoulder/elbow/wrist   left_shoulder, left_elbow, left_wrist
14-16 right shoulder/elbow/wrist  right_shoulder, right_elbow, right_wrist
17-24 foot and hand points        not mapped: 17-18 hang off joint 3 (left foot), 19-20 off 6 (right foot),
                                  21-22 off 13 (left hand), 23-24 off 16 (right hand); which of each pair
                                  is the toe / heel or finger is not documented
==== =================== =========================================================================

All 25 raw joints are kept in ``PaperSample.extra["joints3d_25"]`` (T, 2, 25, 3). The SMPL-X parameters
(``PaperSample.smpl``, ``model="smplx"``, rotation matrices converted to axis-angle) rebuild the meshes
with ``build_body_model("smplx:DIR")``.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from socialmirror.data.formats.interchange import InterchangeError, TwoPersonSequence
from socialmirror.data.datasets.paper_common import nonempty_samples, CameraParams, PaperSample, SMPLParams, estimate_up, require_dir
from socialmirror.errors import InputError

CHI3D_FPS = 50.0
CHI3D_IMAGE_SIZE = (900, 900)

H36M25_TO_SMPL: dict[int, str] = {
    0: "pelvis", 1: "left_hip", 2: "left_knee", 3: "left_ankle", 4: "right_hip", 5: "right_knee",
    6: "right_ankle", 8: "neck", 9: "head", 11: "left_shoulder", 12: "left_elbow", 13: "left_wrist",
    14: "right_shoulder", 15: "right_elbow", 16: "right_wrist",
}
CHI3D_JOINT_NAMES: tuple[str, ...] = tuple(H36M25_TO_SMPL.values())
_SOURCE_INDEX = list(H36M25_TO_SMPL)


def chi3d_action(stem: str) -> str:
    """'Hug 1' -> 'hug', 'HoldingHands 2' -> 'holding hands', 'Holding hands 3' -> 'holding hands'."""
    core = re.sub(r"[\s_\-]*\d+$", "", stem).strip()
    core = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", core)
    return re.sub(r"[\s_]+", " ", core).lower()


def _is_subject(path: Path) -> bool:
    return (path / "joints3d_25").is_dir()


def find_chi3d_subjects(root: str | Path) -> list[tuple[Path, str | None]]:
    """(subject folder, split folder name) for every subject under ``root``."""
    root = require_dir(root, "CHI3D")
    if _is_subject(root):
        return [(root, root.parent.name if root.parent.name in ("train", "test") else None)]
    base = root / "chi3d" if (root / "chi3d").is_dir() else root
    splits = [base / s for s in ("train", "test") if (base / s).is_dir()]
    found: list[tuple[Path, str | None]] = []
    for split_dir in splits or [base]:
        split = split_dir.name if split_dir.name in ("train", "test") else None
        found.extend((p, split) for p in sorted(split_dir.iterdir()) if p.is_dir() and _is_subject(p))
    if not found:
        raise InputError(f"CHI3D: no <split>/sXX/joints3d_25/ folder under {root} (is this the CHI3D root?)")
    return found


def _read_json(path: Path, where: str) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{where}: {path.name} is not readable JSON ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"{where}: {path.name} holds a {type(data).__name__}, expected a JSON object")
    return data


def _to_axis_angle(rot: np.ndarray, t: int, joints: int, key: str, where: str) -> np.ndarray:
    """(2, T, J, 3, 3) rotation matrices or (2, T, J*3) axis-angle -> (T, 2, J*3) axis-angle."""
    from socialmirror.geometry.rotations import matrix_to_axis_angle

    rot = np.asarray(rot, dtype=np.float64)
    if rot.shape[-2:] == (3, 3):
        aa = matrix_to_axis_angle(torch.from_numpy(rot.reshape(2, t, joints, 3, 3))).numpy()
    elif rot.size == 2 * t * joints * 3:
        aa = rot.reshape(2, t, joints, 3)
    else:
        raise InputError(f"{where}: smplx {key} has shape {rot.shape}, expected (2, {t}, {joints}, 3, 3)")
    return aa.reshape(2, t, joints * 3).transpose(1, 0, 2)


def _read_smplx(path: Path, t: int, where: str) -> SMPLParams:
    d = _read_json(path, where)
    missing = [k for k in ("transl", "global_orient", "body_pose", "betas") if k not in d]
    if missing:
        raise InputError(f"{where}: {path.name} lacks SMPL-X keys {missing}")
    transl = np.asarray(d["transl"], dtype=np.float64).reshape(2, t, 3).transpose(1, 0, 2)
    betas = np.asarray(d["betas"], dtype=np.float64)
    betas = betas.reshape(2, t, -1).transpose(1, 0, 2) if betas.ndim == 3 else betas.reshape(2, -1)
    return SMPLParams(global_orient=_to_axis_angle(d["global_orient"], t, 1, "global_orient", where),
                      body_pose=_to_axis_angle(d["body_pose"], t, 21, "body_pose", where),
                      betas=betas, transl=transl, model="smplx", genders=("neutral", "neutral"))


def _read_camera(path: Path, where: str) -> CameraParams:
    d = _read_json(path, where)
    try:
        R = np.asarray(d["extrinsics"]["R"], dtype=np.float64).reshape(3, 3)
        T = np.asarray(d["extrinsics"]["T"], dtype=np.float64).reshape(3)
        intr = d.get("intrinsics_wo_distortion") or d["intrinsics_w_distortion"]
        f = np.asarray(intr["f"], dtype=np.float64).reshape(-1)
        c = np.asarray(intr["c"], dtype=np.float64).reshape(-1)
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{where}: camera file {path.parent.name}/{path.name} lacks extrinsics R/T or "
                         f"intrinsics f/c ({e})") from None
    fx, fy = (f[0], f[-1])
    K = np.array([[fx, 0, c[0]], [0, fy, c[1]], [0, 0, 1.0]])
    extra = {"convention": "imar: x_cam = (X - T) R^T"}
    if "intrinsics_w_distortion" in d:
        extra["intrinsics_w_distortion"] = {k: np.asarray(v).tolist() for k, v in d["intrinsics_w_distortion"].items()}
    return CameraParams(name=path.parent.name, K=K, R=R, t=-R @ T, image_size=CHI3D_IMAGE_SIZE, extra=extra)


def read_chi3d_sequence(subject_dir: str | Path, action: str, split: str | None = None) -> PaperSample:
    """One recording (``action`` = the file stem, e.g. ``"Hug 1"``) of one subject folder."""
    subject_dir = require_dir(subject_dir, "CHI3D")
    where = f"CHI3D {subject_dir.name}/{action}"
    j_path = subject_dir / "joints3d_25" / f"{action}.json"
    if not j_path.is_file():
        raise InputError(f"{where}: no joints3d_25/{action}.json")
    d = _read_json(j_path, where)
    if "joints3d_25" not in d:
        raise InputError(f"{where}: {j_path.name} has no 'joints3d_25' key (has {sorted(d)})")
    raw = np.asarray(d["joints3d_25"], dtype=np.float64)
    if raw.ndim != 4 or raw.shape[0] != 2 or raw.shape[2:] != (25, 3):
        raise InputError(f"{where}: joints3d_25 has shape {raw.shape}, expected (2, T, 25, 3)")
    raw = raw.transpose(1, 0, 2, 3)  # (T, 2, 25, 3)
    t = raw.shape[0]
    joints = raw[:, :, _SOURCE_INDEX]
    smpl_path = subject_dir / "smplx" / f"{action}.json"
    smpl = _read_smplx(smpl_path, t, where) if smpl_path.is_file() else None
    cam_root = subject_dir / "camera_parameters"
    cameras = [] if not cam_root.is_dir() else [
        _read_camera(c / f"{action}.json", where) for c in sorted(cam_root.iterdir())
        if (c / f"{action}.json").is_file()]
    videos = sorted(p.parent.name for p in (subject_dir / "videos").glob(f"*/{action}.mp4"))
    meta = {"dataset": "chi3d", "subject": subject_dir.name, "recording": action, "split": split,
            "persons": ["w_markers", "wo_markers"], "videos": videos, "cameras": [c.to_dict() for c in cameras]}
    if smpl is not None:
        meta["smpl"] = smpl.to_meta()
    contact = _contact_frame(subject_dir, action)
    if contact is not None:
        meta["contact_frame"] = contact
    try:
        seq = TwoPersonSequence(joints3d=joints, joint_names=CHI3D_JOINT_NAMES, fps=CHI3D_FPS,
                                up=estimate_up(joints, CHI3D_JOINT_NAMES), action=chi3d_action(action),
                                name=f"chi3d_{subject_dir.name}_{action.replace(' ', '_')}", source=str(j_path),
                                meta=meta)
    except InterchangeError as e:
        raise InputError(f"{where}: {e}") from None
    return PaperSample(sequence=seq, smpl=smpl, cameras=cameras, split=split, dataset="chi3d",
                       extra={"joints3d_25": raw.astype(np.float32)})


def _contact_frame(subject_dir: Path, action: str) -> int | None:
    """The annotated contact frame (``fr_id``) of ``interaction_contact_signature.json``, where present."""
    path = subject_dir / "interaction_contact_signature.json"
    if not path.is_file():
        return None
    try:
        with open(path) as f:
            entry = json.load(f).get(action)
        return int(entry["fr_id"]) if isinstance(entry, dict) and "fr_id" in entry else None
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return None


def iter_chi3d(root: str | Path, split: str | None = None, actions=None) -> Iterator[PaperSample]:
    """Every recording under ``root`` (sorted), optionally one split ("train"/"test") or some actions."""
    for subject_dir, subject_split in find_chi3d_subjects(root):
        if split is not None and subject_split != split:
            continue
        for path in sorted((subject_dir / "joints3d_25").glob("*.json")):
            if actions is not None and chi3d_action(path.stem) not in set(actions):
                continue
            yield read_chi3d_sequence(subject_dir, path.stem, split=subject_split)


def read_chi3d(root: str | Path, **kwargs) -> list[PaperSample]:
    return list(iter_chi3d(root, **kwargs))


def read_samples(root: str | Path, split: str | None = None, **kwargs) -> list[PaperSample]:
    """The release's folders: ``"train"``, ``"test"`` or ``None`` (both)."""
    if split not in (None, "train", "test"):
        raise InputError(f"CHI3D: unknown split {split!r} (expected train or test)")
    return nonempty_samples(read_chi3d(root, split=split, **kwargs), "chi3d", root, split)


def load_spec(arg: str, split: str | None, seed: int) -> list[TwoPersonSequence]:
    """``chi3d[.SPLIT]:DIR``."""
    return [s.sequence for s in read_samples(Path(arg).expanduser(), split)]
