"""Harmony4D (Khirodkar et al., NeurIPS 2024) -> :class:`PaperSample` s.

Harmony4D publishes no schema document; the layout below is what its download (Hugging Face
``Jyun-Ting/Harmony4D``) unpacks to according to third-party preparation guides and readers, and it is
the EgoHumans layout of the same group. What is confirmed and what is assumed:

Confirmed by several independent readers::

    <root>/<train|test>/<NN_activity>/<NNN_activity>/      one take, e.g. train/01_hugging/001_hugging
        processed_data/smpl/<frame:05d>.npy                a pickled dict per frame (numbering from 00001):
            {<person>: {"betas" (10,), "body_pose" (69,), "global_orient" (3,), "transl" (3,),
                        "joints" (45, 3), "vertices" (6890, 3), "epoch_loss"}}
            with persons named after their Aria glasses ("aria01", "aria02")
        processed_data/poses3d/<frame:05d>.npy             {<person>: (17, 4) COCO-17 + confidence} (not read)
        exo/<camXX>/images/<frame:05d>.jpg                 the exocentric cameras (about 20)
        colmap/workplace/{cameras.txt, images.txt}         COLMAP calibration of the exo cameras

Assumed (stated in no release file):

- ``joints[:24]`` are SMPL's 24 joints in SMPL order (``joints`` is smplx's SMPL output: 24 joints, then
  21 extra keypoints), in metres in the SMPL world frame; the interchange check rejects other units.
- 20 fps (``HARMONY4D_FPS``: the exo videos' rate as one reader measured it); override with ``fps=``.
- The world frame's up axis is estimated from the bodies (z-up is reported).
- The COLMAP cameras are in COLMAP's own frame, which Harmony4D aligns to the SMPL world with a per-take
  similarity transform that is not read here; they are therefore kept in ``meta["colmap_cameras"]``
  (name, model, size, params, R, t) and ``PaperSample.cameras`` stays empty.

Persons: the two dict keys, sorted (aria01 first). A frame lacking either person is dropped and the kept
frame numbers are in ``meta["frame_ids"]``. Action: the activity folder's name without its number
(``01_hugging`` -> ``hugging``). Split: the release's folder (train / test).
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from socialmirror.body.skeleton import SMPL24_NAMES
from socialmirror.data.formats.interchange import InterchangeError, TwoPersonSequence
from socialmirror.data.datasets.paper_common import (nonempty_samples, PaperSample, SMPLParams, estimate_up, quaternion_to_matrix,
                                            require_dir, strip_number)
from socialmirror.errors import InputError

HARMONY4D_FPS = 20.0
"""Assumed (see the module docstring)."""

PERSON_KEYS = ("betas", "body_pose", "global_orient", "transl", "joints")
SPLITS = ("train", "test")


def _is_take(path: Path) -> bool:
    return (path / "processed_data" / "smpl").is_dir()


def harmony4d_action(name: str) -> str:
    """'01_hugging' / '001_hugging' -> 'hugging', '03_grappling2' -> 'grappling'."""
    return strip_number(re.sub(r"\d+$", "", name)).replace("_", " ").lower()


def find_harmony4d_takes(root: str | Path) -> list[tuple[Path, str | None]]:
    """(take folder, split) for every take under ``root`` (the release root, a split, an activity, a take)."""
    root = require_dir(root, "Harmony4D")
    if _is_take(root):
        split = root.parent.parent.name
        return [(root, split if split in SPLITS else None)]
    found: list[tuple[Path, str | None]] = []

    def walk(folder: Path, depth: int, split: str | None) -> None:
        for child in sorted(p for p in folder.iterdir() if p.is_dir()):
            s = child.name if child.name in SPLITS and split is None else split
            if _is_take(child):
                found.append((child, s))
            elif depth > 0 and child.name not in ("exo", "ego", "processed_data", "colmap"):
                walk(child, depth - 1, s)

    walk(root, 2, root.name if root.name in SPLITS else (root.parent.name if root.parent.name in SPLITS else None))
    if not found:
        raise InputError(f"Harmony4D: no <split>/<activity>/<take>/processed_data/smpl/ folder under {root}")
    return found


def _load_frame(path: Path, where: str) -> dict:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = np.load(path, allow_pickle=True)  # the release stores each frame as a pickled dict
        obj = obj.item() if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == () else obj
    except Exception as e:  # noqa: BLE001 - any failure to read a frame is one user-facing line
        raise InputError(f"{where}: {path.name} is not a readable frame file ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{where}: {path.name} holds {type(obj).__name__}, expected a dict of persons")
    return obj


def read_colmap_cameras(take_dir: str | Path) -> list[dict]:
    """The exo cameras of ``colmap/workplace/{cameras,images}.txt`` in COLMAP's frame (empty if absent).

    One entry per registered image whose name starts with a camera folder (``cam01/...``), first image
    per camera: name, model, width, height, params (COLMAP's order), R and t (``x_cam = R X + t``)."""
    work = Path(take_dir) / "colmap" / "workplace"
    cams_txt, imgs_txt = work / "cameras.txt", work / "images.txt"
    if not (cams_txt.is_file() and imgs_txt.is_file()):
        return []
    models: dict[int, dict] = {}
    for line in cams_txt.read_text().splitlines():
        f = line.split()
        if not f or line.startswith("#") or len(f) < 5:
            continue
        models[int(f[0])] = {"model": f[1], "width": int(f[2]), "height": int(f[3]),
                             "params": [float(v) for v in f[4:]]}
    out: dict[str, dict] = {}
    lines = [ln for ln in imgs_txt.read_text().splitlines() if not ln.startswith("#")]
    for line in lines:
        f = line.split()
        if len(f) < 10:
            continue
        try:
            q = np.array([float(v) for v in f[1:5]])
            t = [float(v) for v in f[5:8]]
            cam_id = int(f[8])
        except ValueError:
            continue  # a 2D-points line
        name = f[9].split("/")[0]
        if name in out or cam_id not in models:
            continue
        out[name] = {"name": name, **models[cam_id], "R": quaternion_to_matrix(q).tolist(), "t": t,
                     "frame": "colmap"}
    return [out[k] for k in sorted(out)]


def read_harmony4d_take(take_dir: str | Path, fps: float = HARMONY4D_FPS, split: str | None = None,
                        with_vertices: bool = False) -> PaperSample:
    """One take folder as a sample (SMPL joints as targets, SMPL parameters, COLMAP cameras in meta)."""
    take_dir = require_dir(take_dir, "Harmony4D")
    where = f"Harmony4D {take_dir.parent.name}/{take_dir.name}"
    smpl_dir = take_dir / "processed_data" / "smpl"
    if not smpl_dir.is_dir():
        raise InputError(f"{where}: no processed_data/smpl/ folder")
    files = sorted(smpl_dir.glob("*.npy"), key=lambda p: int(re.sub(r"\D", "", p.stem) or -1))
    if not files:
        raise InputError(f"{where}: processed_data/smpl/ holds no .npy frame files")
    persons: tuple[str, str] | None = None
    rows: list[tuple[int, list[dict]]] = []
    dropped: list[int] = []
    for path in files:
        frame = _load_frame(path, where)
        if persons is None:
            names = sorted(str(k) for k in frame)
            if len(names) != 2:
                raise InputError(f"{where}: {path.name} has {len(names)} person(s) {names}; expected 2")
            persons = (names[0], names[1])
        fid = int(re.sub(r"\D", "", path.stem) or -1)
        if not all(p in frame and isinstance(frame[p], dict) for p in persons):
            dropped.append(fid)
            continue
        for p in persons:
            missing = [k for k in PERSON_KEYS if k not in frame[p]]
            if missing:
                raise InputError(f"{where}: {path.name}: person {p} lacks keys {missing} (has {sorted(frame[p])})")
            if np.asarray(frame[p]["joints"]).shape[0] < 24:
                raise InputError(f"{where}: {path.name}: person {p} has {np.asarray(frame[p]['joints']).shape} "
                                 f"joints, expected at least 24 (SMPL's)")
        rows.append((fid, [frame[p] for p in persons]))
    if not rows:
        raise InputError(f"{where}: no frame has both persons")

    def stack(key: str, shape) -> np.ndarray:
        return np.stack([[np.asarray(pp[key], dtype=np.float32).reshape(shape) for pp in ps] for _, ps in rows])

    joints = np.stack([[np.asarray(pp["joints"], dtype=np.float32)[:24] for pp in ps] for _, ps in rows])
    smpl = SMPLParams(global_orient=stack("global_orient", 3), body_pose=stack("body_pose", 69),
                      betas=stack("betas", -1)[..., :10], transl=stack("transl", 3), model="smpl")
    vertices = None
    if with_vertices and all("vertices" in pp for _, ps in rows for pp in ps):
        vertices = stack("vertices", (-1, 3))
    assert persons is not None
    meta = {"dataset": "harmony4d", "take": take_dir.name, "activity": take_dir.parent.name, "split": split,
            "persons": list(persons), "frame_ids": [fid for fid, _ in rows], "dropped_frame_ids": dropped,
            "fps_assumed": fps == HARMONY4D_FPS, "smpl": smpl.to_meta(),
            "exo_cameras": sorted(p.name for p in (take_dir / "exo").glob("cam*") if p.is_dir()),
            "colmap_cameras": read_colmap_cameras(take_dir)}
    try:
        seq = TwoPersonSequence(joints3d=joints, joint_names=SMPL24_NAMES, fps=fps,
                                up=estimate_up(joints, SMPL24_NAMES),
                                action=harmony4d_action(take_dir.parent.name if take_dir.parent.name[:1].isdigit()
                                                        else take_dir.name),
                                vertices=vertices, name=f"harmony4d_{split or 'all'}_{take_dir.name}",
                                source=str(take_dir), meta=meta)
    except InterchangeError as e:
        raise InputError(f"{where}: {e}") from None
    return PaperSample(sequence=seq, smpl=smpl, cameras=[], split=split, dataset="harmony4d")


def iter_harmony4d(root: str | Path, split: str | None = None, actions=None, **kwargs) -> Iterator[PaperSample]:
    """Every take under ``root`` (sorted), optionally one split ("train"/"test") or some actions."""
    if split is not None and split not in SPLITS:
        raise InputError(f"Harmony4D: unknown split {split!r} (expected train or test)")
    for take, take_split in find_harmony4d_takes(root):
        if split is not None and take_split != split:
            continue
        if actions is not None and harmony4d_action(take.parent.name) not in set(actions):
            continue
        yield read_harmony4d_take(take, split=take_split, **kwargs)


def read_harmony4d(root: str | Path, **kwargs) -> list[PaperSample]:
    return list(iter_harmony4d(root, **kwargs))


def read_samples(root: str | Path, split: str | None = None, **kwargs) -> list[PaperSample]:
    """The release's folders: ``"train"``, ``"test"`` or ``None`` (both)."""
    return nonempty_samples(read_harmony4d(root, split=split, **kwargs), "harmony4d", root, split)


def load_spec(arg: str, split: str | None, seed: int) -> list[TwoPersonSequence]:
    """``harmony4d[.SPLIT]:DIR``."""
    return [s.sequence for s in read_samples(Path(arg).expanduser(), split)]
