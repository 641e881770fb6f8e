"""3DPW (von Marcard et al., ECCV 2018) in its published layout, with the paper's two-person protocol.

Layout read: ``3DPW/sequenceFiles/{train,validation,test}/<sequence>.pkl`` (``root`` may be the data set's
folder, ``sequenceFiles/``, one split folder, or a single ``.pkl``). Each pickle (Python 2, read with
``encoding="latin1"``) is a dict with, per actor (lists of one entry per person):

========================= ==================================================================
key                       used as
========================= ==================================================================
sequence                  the sequence's name (falls back to the file's stem)
jointPositions            (T, 72) SMPL's 24 joints per frame, metres, world frame -> targets
poses                     (T, 72) SMPL axis-angle (global orient + 23 body joints) -> ``smpl``
betas                     (10,) or more SMPL shape -> ``smpl`` (first 10)
trans                     (T, 3) SMPL translation -> ``smpl``
genders                   'm' / 'f' -> ``smpl.genders``
cam_intrinsics            (3, 3) K
cam_poses                 (T, 4, 4) world-to-camera per frame (the camera is hand-held) -> one moving camera
campose_valid             (P, T) or (T,) 0/1: frames whose camera pose is aligned to the image
img_frame_ids             (T,) image index of each frame -> ``meta["img_frame_ids"]``
========================= ==================================================================

Not read: ``poses_60Hz``/``trans_60Hz`` (unaligned 60 Hz tracks), ``poses2d``, ``v_template_clothed``,
``betas_clothed``, ``texture_maps``. The image-aligned tracks are 30 fps (``THREEDPW_FPS``).

The paper's protocol (``protocol="paper"``): only sequences with exactly two subjects; those whose name
contains ``courtyard`` are training data and those containing ``downtown`` are test data, whatever official
split folder they sit in; other two-person sequences (e.g. ``outdoors_fencing``) are in neither.
``protocol="official"`` keeps the two-subject rule but uses the folder (train / validation / test).

A frame counts as valid when ``campose_valid`` is 1 for both persons (``meta["valid"]``); with
``valid_only=True`` the longest run of valid frames is kept. The world frame's up axis is not documented,
so it is estimated from the bodies.
"""
from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from socialmirror.body.skeleton import SMPL24_NAMES
from socialmirror.data.formats.interchange import InterchangeError, TwoPersonSequence
from socialmirror.data.datasets.paper_common import nonempty_samples, CameraParams, PaperSample, SMPLParams, estimate_up, require_dir
from socialmirror.errors import InputError

THREEDPW_FPS = 30.0
SPLIT_FOLDERS = ("train", "validation", "test")
PAPER_SPLITS = {"train": "courtyard", "test": "downtown"}


class _NumpyCompatUnpickler(pickle.Unpickler):
    """numpy moved ``numpy.core`` to ``numpy._core`` (2.0): map either way so old pickles load."""

    def find_class(self, module, name):
        if module.startswith("numpy.core") or module.startswith("numpy._core"):
            for candidate in (module, module.replace("numpy.core", "numpy._core"),
                              module.replace("numpy._core", "numpy.core")):
                try:
                    return super().find_class(candidate, name)
                except (ImportError, AttributeError):
                    continue
        return super().find_class(module, name)


def load_3dpw_pickle(path: str | Path) -> dict:
    """The raw dict of one sequence file (a pickle: read only files you trust, as with the release)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = _NumpyCompatUnpickler(f, encoding="latin1").load()
    except FileNotFoundError:
        raise InputError(f"3DPW: no such file: {path}") from None
    except Exception as e:  # noqa: BLE001 - any unpickling failure is one user-facing line
        raise InputError(f"3DPW: {path.name} is not a readable sequence pickle ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict):
        raise InputError(f"3DPW: {path.name} holds a {type(data).__name__}, expected the sequence dict")
    return data


def num_subjects(data: dict) -> int:
    return len(data.get("jointPositions", data.get("poses", [])))


def paper_split(name: str) -> str | None:
    """The paper's split of a two-person sequence, from its name: courtyard -> train, downtown -> test."""
    lower = name.lower()
    for split, key in PAPER_SPLITS.items():
        if key in lower:
            return split
    return None


def find_3dpw_files(root: str | Path) -> list[tuple[Path, str | None]]:
    """(file, official split folder or None) for every sequence pickle under ``root``."""
    root = Path(root).expanduser()
    if root.is_file():
        return [(root, root.parent.name if root.parent.name in SPLIT_FOLDERS else None)]
    root = require_dir(root, "3DPW")
    base = root / "sequenceFiles" if (root / "sequenceFiles").is_dir() else root
    if (base / "sequenceFiles").is_dir():  # the zip unpacks to sequenceFiles/sequenceFiles/
        base = base / "sequenceFiles"
    found: list[tuple[Path, str | None]] = []
    folders = [base / s for s in SPLIT_FOLDERS if (base / s).is_dir()]
    if folders:
        for folder in folders:
            found.extend((p, folder.name) for p in sorted(folder.glob("*.pkl")))
    else:
        split = base.name if base.name in SPLIT_FOLDERS else None
        found.extend((p, split) for p in sorted(base.glob("*.pkl")))
    if not found:
        raise InputError(f"3DPW: no sequence .pkl files under {root} (expected sequenceFiles/{{train,validation,"
                         f"test}}/*.pkl)")
    return found


def _per_person(data: dict, key: str, where: str) -> list[np.ndarray]:
    if key not in data:
        raise InputError(f"{where}: missing key {key!r} (has {sorted(data)})")
    return [np.asarray(v, dtype=np.float64) for v in data[key]]


def _valid_mask(data: dict, t: int) -> np.ndarray:
    v = data.get("campose_valid")
    if v is None:
        return np.ones(t, dtype=bool)
    v = np.asarray([np.asarray(x).reshape(-1) for x in v] if isinstance(v, (list, tuple)) else v)
    v = v.reshape(-1, v.shape[-1]) if v.ndim > 1 else v.reshape(1, -1)
    if v.shape[-1] != t:
        return np.ones(t, dtype=bool)
    return np.all(v.astype(bool), axis=0)


def _longest_run(mask: np.ndarray) -> slice:
    best, start, best_span = (0, 0), None, 0
    for i, ok in enumerate(np.append(mask, False)):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            if i - start > best_span:
                best, best_span = (start, i), i - start
            start = None
    return slice(*best)


def read_3dpw_sequence(path: str | Path, split: str | None = None, valid_only: bool = False,
                       data: dict | None = None) -> PaperSample:
    """One two-person sequence pickle as a sample; other subject counts raise :class:`InputError`.
    ``data``: the already-loaded pickle (saves reading it twice)."""
    path = Path(path)
    data = load_3dpw_pickle(path) if data is None else data
    name = str(data.get("sequence", path.stem))
    where = f"3DPW {name}"
    n = num_subjects(data)
    if n != 2:
        raise InputError(f"{where}: {n} subject(s); the two-person loader needs exactly 2")
    jp = _per_person(data, "jointPositions", where)
    t = jp[0].shape[0]
    for p, j in enumerate(jp):
        if j.shape != (t, 72):
            raise InputError(f"{where}: jointPositions[{p}] has shape {j.shape}, expected ({t}, 72)")
    joints = np.stack([j.reshape(t, 24, 3) for j in jp], axis=1)  # (T, 2, 24, 3)
    smpl = None
    if "poses" in data and "trans" in data and "betas" in data:
        poses, trans = _per_person(data, "poses", where), _per_person(data, "trans", where)
        betas = [np.asarray(b, dtype=np.float64).reshape(-1)[:10] for b in data["betas"]]
        if all(p.shape == (t, 72) for p in poses) and all(tr.shape == (t, 3) for tr in trans):
            pose = np.stack(poses, 1)
            genders = data.get("genders", data.get("gender"))
            smpl = SMPLParams(global_orient=pose[:, :, :3], body_pose=pose[:, :, 3:], betas=np.stack(betas),
                              transl=np.stack(trans, 1), model="smpl",
                              genders=None if genders is None or len(genders) != 2 else
                              tuple({"m": "male", "f": "female"}.get(str(g), str(g)) for g in genders))
        else:
            raise InputError(f"{where}: poses/trans shapes {[p.shape for p in poses]}/{[x.shape for x in trans]} "
                             f"do not match ({t}, 72)/({t}, 3)")
    cameras: list[CameraParams] = []
    if "cam_poses" in data and "cam_intrinsics" in data:
        poses_c = np.asarray(data["cam_poses"], dtype=np.float64)
        if poses_c.shape != (t, 4, 4):
            raise InputError(f"{where}: cam_poses has shape {poses_c.shape}, expected ({t}, 4, 4)")
        cameras.append(CameraParams(name="phone", K=np.asarray(data["cam_intrinsics"]), R=poses_c[:, :3, :3],
                                    t=poses_c[:, :3, 3], image_size=None))
    valid = _valid_mask(data, t)
    frame_ids = np.asarray(data.get("img_frame_ids", np.arange(t))).reshape(-1)
    keep = _longest_run(valid) if valid_only else slice(0, t)
    if keep.stop - keep.start == 0:
        raise InputError(f"{where}: no frame with a valid camera pose")
    joints = joints[keep]
    if smpl is not None:
        smpl = smpl.select_frames(keep)
    cameras = [CameraParams(c.name, c.K, c.R[keep], c.t[keep], c.dist, c.image_size) for c in cameras]
    meta = {"dataset": "3dpw", "official_split": split, "paper_split": paper_split(name),
            "valid": valid[keep].astype(int).tolist(),
            "img_frame_ids": (frame_ids[keep] if len(frame_ids) == t else frame_ids).astype(int).tolist(),
            "cameras": [c.to_dict() for c in cameras]}
    if smpl is not None:
        meta["smpl"] = smpl.to_meta()
    try:
        seq = TwoPersonSequence(joints3d=joints, joint_names=SMPL24_NAMES, fps=THREEDPW_FPS,
                                up=estimate_up(joints, SMPL24_NAMES), action=_action(name), name=f"3dpw_{name}",
                                source=str(path), meta=meta)
    except InterchangeError as e:
        raise InputError(f"{where}: {e}") from None
    return PaperSample(sequence=seq, smpl=smpl, cameras=cameras, split=paper_split(name) or split, dataset="3dpw")


def _action(name: str) -> str:
    """'courtyard_shakeHands_00' -> 'shake hands' (the activity part of the name, words split)."""
    parts = name.split("_")
    core = parts[1] if len(parts) >= 3 else (parts[0] if parts else name)
    out = []
    for ch in core:
        if ch.isupper() and out and out[-1] != " ":
            out.append(" ")
        out.append(ch.lower())
    return "".join(out).strip()


def iter_3dpw(root: str | Path, split: str = "all", protocol: str = "paper",
              valid_only: bool = False) -> Iterator[PaperSample]:
    """Two-person sequences of ``split`` under ``root``.

    ``protocol="paper"``: ``split`` is "train" (courtyard), "test" (downtown) or "all" (both);
    ``protocol="official"``: ``split`` is a folder name (train / validation / test) or "all"."""
    if protocol not in ("paper", "official"):
        raise InputError(f"3DPW: unknown protocol {protocol!r} (expected paper or official)")
    allowed = (("train", "test", "all") if protocol == "paper" else SPLIT_FOLDERS + ("all",))
    if split not in allowed:
        raise InputError(f"3DPW: unknown {protocol} split {split!r} (expected one of {list(allowed)})")
    for path, folder in find_3dpw_files(root):
        data = load_3dpw_pickle(path)
        if num_subjects(data) != 2:
            continue
        name = str(data.get("sequence", path.stem))
        if protocol == "paper":
            s = paper_split(name)
            if s is None or (split != "all" and s != split):
                continue
        elif split != "all" and folder != split:
            continue
        yield read_3dpw_sequence(path, split=folder, valid_only=valid_only, data=data)


def read_3dpw(root: str | Path, split: str = "all", protocol: str = "paper", **kwargs) -> list[PaperSample]:
    return list(iter_3dpw(root, split=split, protocol=protocol, **kwargs))


def read_samples(root: str | Path, split: str | None = None, **kwargs) -> list[PaperSample]:
    """The paper's protocol: ``"train"`` (two-subject courtyard sequences), ``"test"`` (two-subject downtown
    sequences) or ``None`` (both)."""
    return nonempty_samples(read_3dpw(root, split=split or "all", **kwargs), "3dpw", root, split)


def load_spec(arg: str, split: str | None, seed: int) -> list[TwoPersonSequence]:
    """``3dpw:DIR``, ``3dpw.train:DIR``, ``3dpw.test:DIR``."""
    return [s.sequence for s in read_samples(Path(arg).expanduser(), split)]
