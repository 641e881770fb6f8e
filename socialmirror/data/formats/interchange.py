"""The interchange format for two-person sequences: a typed record and a folder of ``.npz`` files.

Every data reader (CMU, Bütepage, Hi4D, the synthesizer, ...) produces a :class:`TwoPersonSequence`, and
``socialmirror evaluate --data npz:DIR`` consumes a folder of them, so this module is the one place that
says what a valid sequence is. One ``.npz`` file holds one sequence:

========== ======================== =============================================================
key        value                    notes
========== ======================== =============================================================
joints3d   float (T, 2, J, 3)       metres, both persons in one world frame
joint_names str (J,)                SMPL-24 names (any subset, any order, no repeats)
fps        float scalar             > 0
up         float (3,)               unit vector: the world's up direction
action     str scalar (optional)    e.g. "handshake"
vertices   float (T, 2, V, 3) (opt) metres, same frame as joints3d
faces      int (F, 3) (optional)    indices into V
text       str (2,) (optional)      one sentence per person, in person order
contacts   (K,) records (optional)  fields joint1, joint2 (SMPL-24 names of person 1 and person 2),
                                    t0, t1 (inclusive frame indices, 0 <= t0 <= t1 < T)
source     str scalar (optional)    where the data came from
meta       str scalar (optional)    a JSON object with anything else
========== ======================== =============================================================

Files are loaded with ``allow_pickle=False`` (an interchange file must never run code), which is why
strings are stored as numpy unicode arrays and contacts as a structured array. The file's stem is the
sequence's name. Any other key is an error, so that a misspelt optional key cannot be silently ignored.
"""
from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from socialmirror.body.skeleton import JOINT_INDEX
from socialmirror.data.timing import resample_uniform
from socialmirror.errors import UserError

REQUIRED_KEYS: tuple[str, ...] = ("joints3d", "joint_names", "fps", "up")
OPTIONAL_KEYS: tuple[str, ...] = ("action", "text", "contacts", "vertices", "faces", "source", "meta")

# A person whose joints span more than this (in any frame) is not in metres: the tallest person with
# arms raised spans under 2.6 m, while the same body in centimetres spans ~170 and in millimetres ~1700.
MAX_PERSON_EXTENT_M = 3.0
UP_TOLERANCE = 1e-3

CONTACT_DTYPE = np.dtype([("joint1", "U16"), ("joint2", "U16"), ("t0", "<i8"), ("t1", "<i8")])

Contact = tuple[str, str, int, int]
"""(joint of person 1, joint of person 2, first frame, last frame), frames inclusive."""


class InterchangeError(UserError, ValueError):
    """An interchange file or record that breaks the format; the message names the first problem found."""


# ------------------------------------------------------------------------------------------- the record

@dataclass
class TwoPersonSequence:
    """One two-person sequence: both persons' joints over time in one world frame, in metres.

    The constructor normalises types (``joints3d`` to float32, names to a tuple, contacts to tuples of
    (str, str, int, int)) and then checks everything the file validator checks, so a sequence that exists
    is a valid one and :func:`write_npz` cannot write a bad file.
    """

    joints3d: np.ndarray
    joint_names: tuple[str, ...]
    fps: float
    up: np.ndarray
    action: str | None = None
    vertices: np.ndarray | None = None
    faces: np.ndarray | None = None
    text: tuple[str, str] | None = None
    contacts: list[Contact] | None = None
    name: str = ""
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.joints3d = np.asarray(self.joints3d, dtype=np.float32)
        self.joint_names = tuple(str(n) for n in np.asarray(self.joint_names).reshape(-1).tolist())
        self.fps = float(self.fps)
        self.up = np.asarray(self.up, dtype=np.float64)
        if self.vertices is not None:
            self.vertices = np.asarray(self.vertices, dtype=np.float32)
        if self.faces is not None:
            self.faces = np.asarray(self.faces)
        if self.text is not None:
            self.text = tuple(str(s) for s in self.text)  # type: ignore[assignment]
        if self.contacts is not None:
            self.contacts = [_contact_tuple(c) for c in self.contacts]
        check_arrays(self.to_arrays(), where=self.name or "sequence")

    # -- shape helpers
    @property
    def num_frames(self) -> int:
        return int(self.joints3d.shape[0])

    @property
    def num_joints(self) -> int:
        return int(self.joints3d.shape[2])

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame."""
        return (self.num_frames - 1) / self.fps

    @property
    def times(self) -> np.ndarray:
        """(T,) time of each frame in seconds, from 0."""
        return np.arange(self.num_frames) / self.fps

    def joint(self, name: str) -> np.ndarray:
        """(T, 2, 3) positions of one joint for both persons, by SMPL-24 name."""
        try:
            return self.joints3d[:, :, self.joint_names.index(name)]
        except ValueError:
            raise KeyError(f"{self.name or 'sequence'} has no joint {name!r} (has {list(self.joint_names)})") \
                from None

    # -- conversion to and from the file's arrays
    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays of the ``.npz`` file, key by key (optional keys only where set)."""
        arrays: dict[str, np.ndarray] = {
            "joints3d": self.joints3d,
            "joint_names": np.array(self.joint_names, dtype=str).reshape(len(self.joint_names)),
            "fps": np.array(self.fps, dtype=np.float64),
            "up": self.up,
        }
        if self.action is not None:
            arrays["action"] = np.array(str(self.action))
        if self.text is not None:
            arrays["text"] = np.array(self.text, dtype=str)
        if self.contacts is not None:
            arrays["contacts"] = np.array(self.contacts, dtype=CONTACT_DTYPE).reshape(len(self.contacts))
        if self.vertices is not None:
            arrays["vertices"] = self.vertices
        if self.faces is not None:
            arrays["faces"] = self.faces
        if self.source:
            arrays["source"] = np.array(self.source)
        if self.meta:
            try:
                arrays["meta"] = np.array(json.dumps(self.meta, sort_keys=True))
            except (TypeError, ValueError) as e:
                raise InterchangeError(f"{self.name or 'sequence'}: meta is not JSON-serialisable ({e})") \
                    from None
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], name: str = "") -> TwoPersonSequence:
        """Build a sequence from a file's arrays (checked first, so errors name the key at fault)."""
        check_arrays(arrays, where=name or "arrays")
        meta = json.loads(str(arrays["meta"])) if "meta" in arrays else {}
        contacts = None
        if "contacts" in arrays:
            contacts = [_contact_tuple(c) for c in _contacts_rows(np.asarray(arrays["contacts"]))]
        return cls(
            joints3d=arrays["joints3d"],
            joint_names=tuple(np.asarray(arrays["joint_names"]).astype(str).tolist()),
            fps=float(arrays["fps"]),
            up=arrays["up"],
            action=str(arrays["action"]) if "action" in arrays else None,
            vertices=arrays.get("vertices"),
            faces=arrays.get("faces"),
            text=tuple(np.asarray(arrays["text"]).astype(str).tolist()) if "text" in arrays else None,
            contacts=contacts,
            name=name,
            source=str(arrays["source"]) if "source" in arrays else "",
            meta=meta,
        )


def _contact_tuple(c: Any) -> Contact:
    j1, j2, t0, t1 = (c[0], c[1], c[2], c[3]) if not isinstance(c, Mapping) else \
        (c["joint1"], c["joint2"], c["t0"], c["t1"])
    return (str(j1), str(j2), int(t0), int(t1))


# ---------------------------------------------------------------------------------------------- checks

def _fail(where: str, key: str, message: str) -> InterchangeError:
    return InterchangeError(f"{where}: {key}: {message}")


def _is_string_array(a: np.ndarray) -> bool:
    return a.dtype.kind in ("U", "S")


def _contacts_rows(a: np.ndarray) -> list[tuple]:
    """Contacts as rows of 4, from the structured array or from a (K, 4) string array."""
    if a.dtype.names is not None:
        return [tuple(r) for r in a.reshape(-1).tolist()]
    return [tuple(r) for r in a.reshape(-1, 4).tolist()]


def _unit_guess(extent: float) -> str:
    if extent > 500:
        return "millimetres"
    if extent > 100:
        return "centimetres"
    return "not metres (inches or a mocap file's own units?)"


def _check_person_extent(points: np.ndarray, where: str, key: str) -> None:
    """Reject data whose persons are far too big to be in metres (see MAX_PERSON_EXTENT_M)."""
    if points.shape[0] == 0 or points.shape[2] < 2:
        return
    extent = np.linalg.norm(points.max(axis=2) - points.min(axis=2), axis=-1)  # (T, 2)
    t, p = np.unravel_index(int(np.argmax(extent)), extent.shape)
    worst = float(extent[t, p])
    if worst > MAX_PERSON_EXTENT_M:
        raise _fail(where, key, f"person {p} spans {worst:.4g} at frame {t} (more than "
                                f"{MAX_PERSON_EXTENT_M:g} m): looks like {_unit_guess(worst)}; expected metres")


def check_arrays(arrays: Mapping[str, np.ndarray], where: str = "arrays") -> None:
    """Check a file's arrays; raise :class:`InterchangeError` naming the first wrong key.

    The order is fixed (missing keys, unknown keys, then joints3d, joint_names, fps, up, action, text,
    contacts, vertices, faces, source, meta) so that the same file always reports the same problem.
    """
    _check_keys(arrays, where)
    joints = _check_joints3d(np.asarray(arrays["joints3d"]), where)
    num_frames, num_joints = joints.shape[0], joints.shape[2]
    _check_joint_names(np.asarray(arrays["joint_names"]), num_joints, where)
    _check_fps(np.asarray(arrays["fps"]), where)
    _check_up(np.asarray(arrays["up"]), where)
    _check_person_extent(joints, where, "joints3d")
    if "action" in arrays:
        _check_string(arrays, "action", (), "a string", where)
    if "text" in arrays:
        _check_string(arrays, "text", (2,), "2 strings (one per person)", where)
    if "contacts" in arrays:
        _check_contacts(np.asarray(arrays["contacts"]), num_frames, where)
    if "vertices" in arrays:
        _check_vertices(np.asarray(arrays["vertices"]), num_frames, where)
    if "faces" in arrays:
        _check_faces(arrays, where)
    if "source" in arrays:
        _check_string(arrays, "source", (), "a string", where)
    if "meta" in arrays:
        _check_string(arrays, "meta", (), "a JSON string", where)
        try:
            parsed = json.loads(str(np.asarray(arrays["meta"])))
        except json.JSONDecodeError as e:
            raise _fail(where, "meta", f"not valid JSON ({e.msg})") from None
        if not isinstance(parsed, dict):
            raise _fail(where, "meta", f"expected a JSON object, got {type(parsed).__name__}")


def _check_keys(arrays: Mapping[str, np.ndarray], where: str) -> None:
    for key in REQUIRED_KEYS:
        if key not in arrays:
            raise _fail(where, key, "missing (required keys: " + ", ".join(REQUIRED_KEYS) + ")")
    for key in sorted(arrays):
        if key not in REQUIRED_KEYS and key not in OPTIONAL_KEYS:
            raise _fail(where, key, "unknown key (allowed: " + ", ".join(REQUIRED_KEYS + OPTIONAL_KEYS) + ")")


def _check_joints3d(joints: np.ndarray, where: str) -> np.ndarray:
    if joints.dtype.kind != "f":
        raise _fail(where, "joints3d", f"dtype {joints.dtype}, expected float")
    if joints.ndim != 4 or joints.shape[1] != 2 or joints.shape[3] != 3:
        raise _fail(where, "joints3d", f"shape {joints.shape}, expected (T, 2, J, 3)")
    if joints.shape[0] == 0 or joints.shape[2] == 0:
        raise _fail(where, "joints3d", f"shape {joints.shape} is empty")
    if not np.all(np.isfinite(joints)):
        t = int(np.argwhere(~np.isfinite(joints))[0][0])
        raise _fail(where, "joints3d", f"NaN or infinity (first at frame {t})")
    return joints


def _check_joint_names(names: np.ndarray, num_joints: int, where: str) -> None:
    if not _is_string_array(names):
        raise _fail(where, "joint_names", f"dtype {names.dtype}, expected strings")
    if names.shape != (num_joints,):
        raise _fail(where, "joint_names", f"shape {names.shape}, expected ({num_joints},) to match joints3d")
    name_list = names.astype(str).tolist()
    for n in name_list:
        if n not in JOINT_INDEX:
            raise _fail(where, "joint_names", f"unknown joint name {n!r} (expected SMPL-24 names)")
    if len(set(name_list)) != len(name_list):
        dup = next(n for n in name_list if name_list.count(n) > 1)
        raise _fail(where, "joint_names", f"joint {dup!r} appears more than once")


def _check_fps(fps: np.ndarray, where: str) -> None:
    if fps.shape not in ((), (1,)) or fps.dtype.kind not in "fiu":
        raise _fail(where, "fps", f"expected a number, got dtype {fps.dtype} shape {fps.shape}")
    fps_value = float(fps.reshape(()))
    if not (math.isfinite(fps_value) and fps_value > 0):
        raise _fail(where, "fps", f"{fps_value} is not a positive frame rate")


def _check_up(up: np.ndarray, where: str) -> None:
    if up.dtype.kind not in "fiu" or up.shape != (3,):
        raise _fail(where, "up", f"expected a float (3,) vector, got dtype {up.dtype} shape {up.shape}")
    up_norm = float(np.linalg.norm(up.astype(np.float64)))
    if not (math.isfinite(up_norm) and abs(up_norm - 1.0) <= UP_TOLERANCE):
        raise _fail(where, "up", f"length {up_norm:.6g}, expected a unit vector")


def _check_string(arrays: Mapping[str, np.ndarray], key: str, shape: tuple, what: str, where: str) -> None:
    value = np.asarray(arrays[key])
    if not _is_string_array(value) or value.shape != shape:
        raise _fail(where, key, f"expected {what}, got dtype {value.dtype} shape {value.shape}")


def _check_vertices(verts: np.ndarray, num_frames: int, where: str) -> None:
    if verts.dtype.kind != "f":
        raise _fail(where, "vertices", f"dtype {verts.dtype}, expected float")
    if verts.ndim != 4 or verts.shape[:2] != (num_frames, 2) or verts.shape[3] != 3 or verts.shape[2] == 0:
        raise _fail(where, "vertices", f"shape {verts.shape}, expected ({num_frames}, 2, V, 3)")
    if not np.all(np.isfinite(verts)):
        raise _fail(where, "vertices", "NaN or infinity")
    _check_person_extent(verts, where, "vertices")


def _check_faces(arrays: Mapping[str, np.ndarray], where: str) -> None:
    faces = np.asarray(arrays["faces"])
    if faces.dtype.kind not in "iu":
        raise _fail(where, "faces", f"dtype {faces.dtype}, expected integers")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise _fail(where, "faces", f"shape {faces.shape}, expected (F, 3)")
    if "vertices" not in arrays:
        raise _fail(where, "faces", "given without vertices")
    num_vertices = np.asarray(arrays["vertices"]).shape[2]
    if faces.size and (faces.min() < 0 or faces.max() >= num_vertices):
        raise _fail(where, "faces", f"indices outside [0, {num_vertices})")


def _check_contacts(contacts: np.ndarray, num_frames: int, where: str) -> None:
    if contacts.dtype.names is not None:
        if set(contacts.dtype.names) != set(CONTACT_DTYPE.names) or contacts.ndim != 1:
            raise _fail(where, "contacts", f"expected (K,) records with fields {CONTACT_DTYPE.names}, got "
                                           f"{contacts.dtype.names} shape {contacts.shape}")
        rows = [(r["joint1"], r["joint2"], r["t0"], r["t1"]) for r in contacts]
    elif _is_string_array(contacts) and contacts.ndim == 2 and contacts.shape[1] == 4:
        rows = _contacts_rows(contacts)
    elif contacts.size == 0 and contacts.ndim in (1, 2):
        rows = []
    else:
        raise _fail(where, "contacts", f"expected (K,) records or (K, 4) strings, got dtype {contacts.dtype} "
                                       f"shape {contacts.shape}")
    for k, (j1, j2, t0, t1) in enumerate(rows):
        for joint in (str(j1), str(j2)):
            if joint not in JOINT_INDEX:
                raise _fail(where, "contacts", f"contact {k}: unknown joint name {joint!r}")
        try:
            t0, t1 = int(t0), int(t1)
        except (TypeError, ValueError):
            raise _fail(where, "contacts", f"contact {k}: frames {t0!r}, {t1!r} are not integers") from None
        if t0 > t1:
            raise _fail(where, "contacts", f"contact {k}: t0 {t0} > t1 {t1}")
        if t0 < 0 or t1 >= num_frames:
            raise _fail(where, "contacts", f"contact {k}: frames {t0}..{t1} outside 0..{num_frames - 1}")


# ---------------------------------------------------------------------------------------------- files

def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, without pickles; unreadable keys raise naming the key."""
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise InterchangeError(f"{path}: not a readable .npz file ({e})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise InterchangeError(f"{path}: a single .npy array, not an .npz archive")
    arrays: dict[str, np.ndarray] = {}
    with npz:
        for key in npz.files:
            try:
                arrays[key] = npz[key]
            except ValueError as e:  # object arrays need pickle, which is refused
                raise InterchangeError(f"{path}: {key}: cannot be read without pickle ({e}); store strings "
                                       f"as numpy unicode arrays") from None
    return arrays


def validate_npz(path: str | Path) -> None:
    """Raise :class:`InterchangeError` naming the first wrong key, shape, dtype or unit of one file."""
    path = Path(path)
    check_arrays(_load_arrays(path), where=str(path))


def read_npz(path: str | Path) -> TwoPersonSequence:
    """Read (and validate) one interchange file; the file's stem becomes the sequence's name."""
    path = Path(path)
    arrays = _load_arrays(path)
    check_arrays(arrays, where=str(path))
    return TwoPersonSequence.from_arrays(arrays, name=path.stem)


def _npz_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    # Hidden files are temporaries of a write in progress (io.atomic_write), never sequences.
    return sorted(p for p in folder.iterdir() if p.suffix == ".npz" and not p.name.startswith(".") and p.is_file())


def iter_folder(folder: str | Path) -> Iterator[TwoPersonSequence]:
    """Sequences of a folder one at a time, sorted by file name (for folders too big for memory)."""
    for path in _npz_files(Path(folder)):
        yield read_npz(path)


def read_folder(folder: str | Path) -> list[TwoPersonSequence]:
    """All sequences of a folder of interchange files, sorted by file name; an empty folder raises."""
    folder = Path(folder)
    files = _npz_files(folder)
    if not files:
        raise FileNotFoundError(f"no .npz files in {folder}")
    return [read_npz(p) for p in files]


def write_npz(seq: TwoPersonSequence, path: str | Path, compress: bool = True) -> Path:
    """Write one sequence atomically: a temporary file in the same folder, then ``os.replace``.

    A reader (or an ``evaluate`` run on the folder) therefore never sees a half-written file, and a crash
    leaves the old file intact. The arrays are checked before anything is written.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays = seq.to_arrays()
    check_arrays(arrays, where=seq.name or str(path))
    from socialmirror.io import atomic_write
    return atomic_write(path, lambda f: (np.savez_compressed if compress else np.savez)(f, **arrays), ".tmp.npz")


def write_folder(seqs: Iterable[TwoPersonSequence], folder: str | Path, compress: bool = True) -> list[Path]:
    """Write sequences as ``<folder>/<name>.npz``; names must be set, unique and usable as file names."""
    folder = Path(folder)
    seqs = list(seqs)
    names = [s.name for s in seqs]
    for n in names:
        if not n or n in (".", "..") or "/" in n or os.sep in n or "\0" in n:
            raise InterchangeError(f"sequence name {n!r} cannot be used as a file name")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InterchangeError(f"duplicate sequence names: {duplicates}")
    return [write_npz(s, folder / f"{s.name}.npz", compress=compress) for s in seqs]


# --------------------------------------------------------------------------------------------- helpers

def resample(seq: TwoPersonSequence, fps: float) -> TwoPersonSequence:
    """The sequence at another frame rate, by linear interpolation in time (joints and vertices).

    The new frames cover the same time span (first frame kept, never past the last). Contact frame
    ranges are mapped to the nearest new frames, so a contact keeps its time span.
    """
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps}")
    joints = resample_uniform(seq.joints3d, seq.fps, fps)
    vertices = None if seq.vertices is None else resample_uniform(seq.vertices, seq.fps, fps)
    contacts = None
    if seq.contacts is not None:
        last = joints.shape[0] - 1
        contacts = [(j1, j2, min(last, round(t0 * fps / seq.fps)), min(last, round(t1 * fps / seq.fps)))
                    for j1, j2, t0, t1 in seq.contacts]
    return replace(seq, joints3d=joints, vertices=vertices, contacts=contacts, fps=fps,
                   meta={**seq.meta, "resampled_from_fps": seq.meta.get("resampled_from_fps", seq.fps)})


def select_joints(seq: TwoPersonSequence, names: Sequence[str]) -> TwoPersonSequence:
    """The sequence restricted to ``names``, in that order; names the sequence lacks raise KeyError."""
    missing = [n for n in names if n not in seq.joint_names]
    if missing:
        raise KeyError(f"{seq.name or 'sequence'} lacks joints {missing} (has {list(seq.joint_names)})")
    index = [seq.joint_names.index(n) for n in names]
    return replace(seq, joints3d=seq.joints3d[:, :, index], joint_names=tuple(names), meta=dict(seq.meta))


def joint_distance(seq: TwoPersonSequence, joint_a: str, joint_b: str) -> np.ndarray:
    """(T,) distance in metres between person 1's ``joint_a`` and person 2's ``joint_b``.

    The basic check of an interaction: e.g. ``joint_distance(seq, "right_wrist", "right_wrist")`` should
    dip where a handshake happens.
    """
    return np.linalg.norm(seq.joint(joint_a)[:, 0] - seq.joint(joint_b)[:, 1], axis=-1)


def left_side_fraction(seq: TwoPersonSequence, left: str = "left_shoulder",
                       right: str = "right_shoulder") -> np.ndarray:
    """(2,) fraction of frames in which each person's ``left`` joint is on that person's left side.

    A left/right check for face-to-face interactions: each person is taken to face the partner
    (horizontal direction between the two ``left``/``right`` midpoints), and in a right-handed world a
    person's left is ``up x forward``. Values near 1 mean the labels and the frame's handedness agree;
    near 0 mean the labels are swapped or the frame is mirrored.
    """
    up = seq.up / np.linalg.norm(seq.up)
    lj, rj = seq.joint(left), seq.joint(right)  # (T, 2, 3)
    centre = 0.5 * (lj + rj)
    forward = centre[:, ::-1] - centre  # toward the partner
    forward = forward - np.einsum("tpi,i->tp", forward, up)[..., None] * up
    side = np.einsum("tpi,tpi->tp", np.cross(up, forward), lj - rj)
    return np.mean(side > 0, axis=0)
