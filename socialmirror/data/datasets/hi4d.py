"""Hi4D (Yin et al., CVPR 2023) in its published layout -> :class:`PaperSample` s.

Layout read (the release's ``dataset_structure`` document)::

    DATASET/pairXX/<action>XX/
        meta.npz                 start, end, num_persons, genders, betas, contact_ids, mono_cam (optional here)
        cameras/rgb_cameras.npz  ids (8,), intrinsics (8, 3, 3), extrinsics (8, 3, 4), dist_coeffs (8, 5)
        smpl/000XXX.npz          one file per frame: betas (2, 10), body_pose (2, 69), global_orient (2, 3),
                                 transl (2, 3), joints_3d (2, 24, 3), verts (2, 6890, 3), contact (2, 6890)

Targets: ``joints_3d`` are SMPL's own 24 joints, in SMPL-24 order, in metres, so they are used as they are
(no mapping). ``verts`` are kept only with ``with_vertices=True`` (6890 x 2 per frame; no faces: those come
from the user's SMPL file). The raw SMPL parameters go to ``PaperSample.smpl`` (``model="smpl"``, genders
from ``meta.npz`` where present).

Cameras: ``extrinsics`` is the world-to-camera [R | t] (``x_cam = R X + t``); the camera's name is its id
(4, 16, ..., 88, the image folder names). The document spells the intrinsics key ``intirnsics``; the files
use ``intrinsics``: both are accepted. ``meta.npz``'s ``mono_cam`` (the camera of the monocular protocol)
goes to ``meta["mono_cam"]`` and is the first camera of the sample when present.

Action: the action folder's name without its trailing pair number (``hug13`` -> ``hug``; ``highfive`` ->
``high-five``). Frames: the ``smpl`` files sorted by frame number; a gap in the numbering is recorded in
``meta["frame_ids"]``. Frame rate: not stated in the release files; ``HI4D_FPS`` (30) is assumed and can
be overridden. Up axis: not stated either; estimated from the bodies (``estimate_up``).
"""
from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from socialmirror.body.skeleton import SMPL24_NAMES
from socialmirror.data.formats.interchange import InterchangeError, TwoPersonSequence
from socialmirror.data.datasets.paper_common import (nonempty_samples, CameraParams, PaperSample, SMPLParams, estimate_up, require_dir,
                                            strip_number)
from socialmirror.errors import InputError

HI4D_FPS = 30.0
"""Assumed: the release does not state the frame rate in its files."""

FRAME_KEYS = ("betas", "body_pose", "global_orient", "transl", "joints_3d")
ACTION_LABELS = {"highfive": "high-five"}
"""Folder stems whose label differs from the stem; every other stem is its own label (hug, handshake,
kiss, dance, fight, pose, backhug, cheers, basketball, talk, sidehug, yoga, piggyback, jump, ...)."""

_PAIR = re.compile(r"^pair\d+", re.IGNORECASE)


def hi4d_action(folder_name: str) -> str:
    """'hug13' -> 'hug', 'highfive22' -> 'high-five'."""
    stem = strip_number(folder_name).lower()
    return ACTION_LABELS.get(stem, stem)


def _is_sequence(path: Path) -> bool:
    return (path / "smpl").is_dir()


def find_hi4d_sequences(root: str | Path) -> list[Path]:
    """The action folders under ``root``: the data set's root (pairXX/ inside), one pair, or one action."""
    root = require_dir(root, "Hi4D")
    if _is_sequence(root):
        return [root]
    found: list[Path] = []
    candidates = [root] if _PAIR.match(root.name) else sorted(p for p in root.iterdir() if p.is_dir())
    for pair in candidates:
        if _is_sequence(pair):
            found.append(pair)
            continue
        if pair.is_dir():
            found.extend(sorted(a for a in pair.iterdir() if a.is_dir() and _is_sequence(a)))
    if not found:
        raise InputError(f"Hi4D: no pairXX/<action>XX/smpl/ folder under {root} (is this the Hi4D root?)")
    return found


def _load_npz(path: Path, where: str, keys=None) -> dict[str, np.ndarray]:
    """The arrays of ``keys`` (all when None) that load without pickle; others are left out (never run
    code from a data file), so a missing required key is reported by the caller, naming it."""
    out: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as z:
            for k in z.files if keys is None else [k for k in keys if k in z.files]:
                try:
                    out[k] = z[k]
                except ValueError:  # an object array: needs pickle
                    continue
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise InputError(f"{where}: {path.name} is not a readable .npz file ({e})") from None
    return out


def read_hi4d_cameras(action_dir: str | Path) -> list[CameraParams]:
    """The 8 calibrated cameras of ``cameras/rgb_cameras.npz`` (empty list when the file is absent)."""
    path = Path(action_dir) / "cameras" / "rgb_cameras.npz"
    if not path.is_file():
        return []
    d = _load_npz(path, f"Hi4D {Path(action_dir).name}")
    k_key = "intrinsics" if "intrinsics" in d else "intirnsics"
    missing = [k for k in ("ids", k_key, "extrinsics") if k not in d]
    if missing:
        raise InputError(f"Hi4D {path}: missing keys {missing} (has {sorted(d)})")
    ids, K, E = d["ids"].reshape(-1), d[k_key], d["extrinsics"]
    if K.shape != (len(ids), 3, 3) or E.shape[0] != len(ids) or E.shape[1:] not in ((3, 4), (4, 4)):
        raise InputError(f"Hi4D {path}: intrinsics {K.shape} / extrinsics {E.shape} do not match {len(ids)} ids")
    dist = d.get("dist_coeffs")
    return [CameraParams(name=str(int(i)) if np.issubdtype(np.asarray(i).dtype, np.number) else str(i),
                         K=K[c], R=E[c, :3, :3], t=E[c, :3, 3], dist=None if dist is None else dist[c])
            for c, i in enumerate(ids)]


def _frame_number(path: Path) -> int:
    digits = re.sub(r"\D", "", path.stem)
    return int(digits) if digits else -1


def read_hi4d_sequence(action_dir: str | Path, fps: float = HI4D_FPS, with_vertices: bool = False,
                       split: str | None = None) -> PaperSample:
    """One ``pairXX/<action>XX`` folder as a sample (joints_3d targets, SMPL parameters, cameras)."""
    action_dir = require_dir(action_dir, "Hi4D")
    where = f"Hi4D {action_dir.parent.name}/{action_dir.name}"
    smpl_dir = action_dir / "smpl"
    if not smpl_dir.is_dir():
        raise InputError(f"{where}: no smpl/ folder (expected pairXX/<action>XX/smpl/000XXX.npz)")
    files = sorted(smpl_dir.glob("*.npz"), key=_frame_number)
    if not files:
        raise InputError(f"{where}: smpl/ holds no .npz frame files")
    frames: dict[str, list[np.ndarray]] = {k: [] for k in FRAME_KEYS + ("verts",)}
    for f in files:
        d = _load_npz(f, where, FRAME_KEYS + (("verts",) if with_vertices else ()))
        missing = [k for k in FRAME_KEYS if k not in d]
        if missing:
            raise InputError(f"{where}: {f.name} lacks keys {missing} (has {sorted(d)})")
        if d["joints_3d"].shape != (2, 24, 3):
            raise InputError(f"{where}: {f.name}: joints_3d has shape {d['joints_3d'].shape}, expected (2, 24, 3)")
        for k in FRAME_KEYS:
            frames[k].append(np.asarray(d[k], dtype=np.float32))
        if with_vertices and "verts" in d:
            frames["verts"].append(np.asarray(d["verts"], dtype=np.float32))
    joints = np.stack(frames["joints_3d"])  # (T, 2, 24, 3)
    meta_file = action_dir / "meta.npz"
    info = _load_npz(meta_file, where) if meta_file.is_file() else {}
    genders = None
    if "genders" in info and np.asarray(info["genders"]).size == 2:
        genders = tuple(_gender(g) for g in np.asarray(info["genders"]).reshape(-1).tolist())
    try:
        smpl = SMPLParams(global_orient=np.stack(frames["global_orient"]), body_pose=np.stack(frames["body_pose"]),
                          betas=np.stack(frames["betas"]), transl=np.stack(frames["transl"]), model="smpl",
                          genders=genders)  # type: ignore[arg-type]
    except ValueError as e:
        raise InputError(f"{where}: {e}") from None
    cameras = read_hi4d_cameras(action_dir)
    meta: dict = {"dataset": "hi4d", "pair": action_dir.parent.name, "folder": action_dir.name,
                  "frame_ids": [_frame_number(f) for f in files], "fps_assumed": fps == HI4D_FPS,
                  "smpl": smpl.to_meta()}
    if "mono_cam" in info:
        mono = str(np.asarray(info["mono_cam"]).reshape(-1)[0])
        mono = str(int(float(mono))) if re.fullmatch(r"[\d.]+", mono) else mono
        meta["mono_cam"] = mono
        cameras.sort(key=lambda c: c.name != mono)
    if "contact_ids" in info:
        meta["contact_frame_ids"] = [int(i) for i in np.asarray(info["contact_ids"]).reshape(-1).tolist()]
    meta["cameras"] = [c.to_dict() for c in cameras]
    vertices = np.stack(frames["verts"]) if with_vertices and len(frames["verts"]) == len(files) else None
    try:
        seq = TwoPersonSequence(joints3d=joints, joint_names=SMPL24_NAMES, fps=fps,
                                up=estimate_up(joints, SMPL24_NAMES), action=hi4d_action(action_dir.name),
                                vertices=vertices, name=f"hi4d_{action_dir.parent.name}_{action_dir.name}",
                                source=str(action_dir), meta=meta)
    except InterchangeError as e:
        raise InputError(f"{where}: {e}") from None
    return PaperSample(sequence=seq, smpl=smpl, cameras=cameras, split=split, dataset="hi4d")


def _gender(g) -> str:
    g = str(g).strip().lower()
    return {"m": "male", "f": "female", "n": "neutral"}.get(g, g)


def iter_hi4d(root: str | Path, pairs=None, actions=None, **kwargs) -> Iterator[PaperSample]:
    """Every sequence under ``root`` (sorted), optionally only some pairs ("pair19" or 19) / actions."""
    want_pairs = None if pairs is None else {p if isinstance(p, str) else f"pair{int(p):02d}" for p in pairs}
    for action_dir in find_hi4d_sequences(root):
        if want_pairs is not None and action_dir.parent.name not in want_pairs:
            continue
        if actions is not None and hi4d_action(action_dir.name) not in set(actions):
            continue
        yield read_hi4d_sequence(action_dir, **kwargs)


def read_hi4d(root: str | Path, **kwargs) -> list[PaperSample]:
    return list(iter_hi4d(root, **kwargs))


def read_samples(root: str | Path, split: str | None = None, **kwargs) -> list[PaperSample]:
    """Every Hi4D sample under ``root``; the release has no split folders (filter with ``pairs=`` / ``actions=``)."""
    if split is not None:
        raise InputError("Hi4D has no published split folders: select pairs with pairs=[...]")
    return nonempty_samples(read_hi4d(root, **kwargs), "hi4d", root, split)


def load_spec(arg: str, split: str | None, seed: int) -> list[TwoPersonSequence]:
    """``hi4d:DIR``."""
    return [s.sequence for s in read_samples(Path(arg).expanduser(), split)]
