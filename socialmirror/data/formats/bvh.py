"""BVH motion files: hierarchy parsing and forward kinematics to world joint positions.

BVH is what real mocap archives (the CMU database among them) ship, and the project needs world joint
positions, not joint angles, from it: the interchange format and every metric speak positions. The reader
therefore parses the skeleton and the channel data, then runs forward kinematics for all frames at once
(numpy, one matrix product per joint over the whole clip) and returns positions.

Conventions, chosen to match the files seen in the wild (cgspeed's CMU conversion, MotionBuilder, Blender):

- Rotation channels are in degrees. A joint's local rotation is the product of its rotation channels in the
  order they are listed, ``R = R_c1 @ R_c2 @ R_c3``: ``Zrotation Xrotation Yrotation`` means
  ``Rz @ Rx @ Ry``. Every joint may have its own order and any number of channels (0 to 6, or more).
- A position channel *replaces* the matching component of the joint's OFFSET (it is the joint's local
  translation), which is what Blender does and what files with six channels on every joint expect (their
  position channels repeat the offsets). For the usual root with a zero OFFSET it is the same as adding.
- ``End Site`` blocks become joints of their own (named ``<parent>_End``) with no channels, because they
  carry real geometry (head top, toe tip, finger tip); ``include_end_sites=False`` drops them.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from socialmirror.data.timing import resample_uniform
from socialmirror.errors import UserError

_CHANNEL_RE = re.compile(r"^([XYZ])(position|rotation)$", re.IGNORECASE)


class BvhError(UserError, ValueError):
    """A BVH file that cannot be read; the message names the file, the line and what was expected."""


@dataclass(frozen=True)
class BvhSkeleton:
    """The HIERARCHY section: joints in file order (a parent always precedes its children).

    ``offsets`` are in the file's own units; ``channels`` lists each joint's channel names as written
    (normalised to ``Xposition``/``Zrotation`` capitalisation); ``channel_start`` is the column of the
    joint's first channel in a MOTION row.
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    channels: tuple[tuple[str, ...], ...]
    channel_start: tuple[int, ...]
    end_site: tuple[bool, ...]

    @property
    def num_channels(self) -> int:
        return sum(len(c) for c in self.channels)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no joint {name!r} in the BVH skeleton") from None


@dataclass
class BvhMotion:
    """World joint positions of a BVH clip, in the units asked for (``scale`` times the file's units).

    ``positions`` is (T, J, 3) float64 in the file's world axes (no axis is swapped: a y-up file stays
    y-up). ``offsets`` (J, 3) are scaled like the positions. ``parents[j]`` is -1 for the root.
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    positions: np.ndarray
    fps: float
    end_site: tuple[bool, ...] = field(default=())

    @property
    def num_frames(self) -> int:
        return int(self.positions.shape[0])

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no joint {name!r} in the BVH skeleton") from None

    def joint(self, name: str) -> np.ndarray:
        """(T, 3) positions of one joint, by name."""
        return self.positions[:, self.index(name)]


# ----------------------------------------------------------------------------------------------- parsing

def _normalise_channel(token: str, where: str) -> str:
    m = _CHANNEL_RE.match(token)
    if not m:
        raise BvhError(f"{where}: unknown channel {token!r} (expected X/Y/Z position or rotation)")
    return m.group(1).upper() + m.group(2).lower()


def _parse_floats(tokens: list[str], where: str) -> list[float]:
    try:
        return [float(t) for t in tokens]
    except ValueError:
        raise BvhError(f"{where}: expected numbers, got {' '.join(tokens)!r}") from None


def parse_bvh(text: str, source: str = "<bvh>") -> tuple[BvhSkeleton, np.ndarray, float]:
    """Parse BVH text into its skeleton, the (T, C) channel matrix and the frame time in seconds."""
    lines = text.splitlines()
    hierarchy = _Hierarchy()
    motion_line: int | None = None
    for i, line in enumerate(lines):
        tokens = line.split()
        if not tokens or tokens[0].upper() == "HIERARCHY":
            continue
        if tokens[0].upper() == "MOTION":
            motion_line = i + 1
            break
        hierarchy.read(tokens, f"{source}:{i + 1}")
    if not hierarchy.names:
        raise BvhError(f"{source}: no ROOT found (not a BVH file?)")
    if hierarchy.stack or hierarchy.pending is not None:
        raise BvhError(f"{source}: HIERARCHY ends with unclosed '{{' blocks")
    if motion_line is None:
        raise BvhError(f"{source}: no MOTION section")
    channels = hierarchy.channels
    frames, frame_time = _parse_motion(lines, motion_line, sum(len(c) for c in channels), source)
    starts = tuple(int(s) for s in np.cumsum([0] + [len(c) for c in channels])[:-1])
    skeleton = BvhSkeleton(
        names=tuple(hierarchy.names), parents=tuple(hierarchy.parents),
        offsets=np.asarray(hierarchy.offsets, dtype=np.float64), channels=tuple(channels), channel_start=starts,
        end_site=tuple(hierarchy.end_site),
    )
    return skeleton, frames, frame_time


class _Hierarchy:
    """The HIERARCHY section read line by line: the joints in file order with their parents, offsets,
    channels and End Site flags; ``stack`` holds the node of each open ``{`` block (innermost last),
    ``pending`` a node declared whose ``{`` has not been seen yet."""

    def __init__(self):
        self.names: list[str] = []
        self.parents: list[int] = []
        self.offsets: list[list[float]] = []
        self.channels: list[tuple[str, ...]] = []
        self.end_site: list[bool] = []
        self.stack: list[int] = []
        self.pending: int | None = None

    def read(self, tokens: list[str], where: str) -> None:
        key = tokens[0].upper()
        is_end = key == "END" and len(tokens) > 1 and tokens[1].upper() == "SITE"
        if key in ("ROOT", "JOINT") or is_end:
            self._declare(tokens, key, is_end, where)
        elif key == "{":
            if self.pending is None or len(tokens) > 1:
                raise BvhError(f"{where}: '{{' must follow a ROOT, JOINT or End Site line, alone")
            self.stack.append(self.pending)
            self.pending = None
        elif key == "}":
            if not self.stack or self.pending is not None:
                raise BvhError(f"{where}: unbalanced '}}'")
            self.stack.pop()
        elif key in ("OFFSET", "CHANNELS"):
            if not self.stack or self.pending is not None:
                raise BvhError(f"{where}: {tokens[0]} outside of a joint's {{ }} block")
            if key == "OFFSET":
                if len(tokens) != 4:
                    raise BvhError(f"{where}: OFFSET needs 3 numbers, got {len(tokens) - 1}")
                self.offsets[self.stack[-1]] = _parse_floats(tokens[1:], where)
            else:
                self._channels(tokens, where)
        else:
            raise BvhError(f"{where}: unexpected {tokens[0]!r} in HIERARCHY")

    def _declare(self, tokens: list[str], key: str, is_end: bool, where: str) -> None:
        """A ROOT, JOINT or End Site line: a new node under the innermost open block."""
        names = self.names
        if self.pending is not None:
            raise BvhError(f"{where}: expected '{{' after {names[self.pending]!r}")
        if key == "ROOT" and (self.stack or names):
            raise BvhError(f"{where}: only one top-level ROOT is supported")
        if key != "ROOT" and not self.stack:
            raise BvhError(f"{where}: {tokens[0]} outside of any joint block")
        parent = self.stack[-1] if self.stack else -1
        if parent >= 0 and self.end_site[parent]:
            raise BvhError(f"{where}: an End Site cannot have children")
        if is_end:
            name, k = f"{names[parent]}_End", 2
            while name in names:  # a joint with several End Sites (rare but legal)
                name, k = f"{names[parent]}_End{k}", k + 1
        else:
            if len(tokens) < 2:
                raise BvhError(f"{where}: {tokens[0]} without a name")
            name = " ".join(tokens[1:])
            if name in names:
                raise BvhError(f"{where}: duplicate joint name {name!r}")
        names.append(name)
        self.parents.append(parent)
        self.offsets.append([0.0, 0.0, 0.0])
        self.channels.append(())
        self.end_site.append(is_end)
        self.pending = len(names) - 1

    def _channels(self, tokens: list[str], where: str) -> None:
        current = self.stack[-1]
        if self.end_site[current]:
            raise BvhError(f"{where}: an End Site cannot have CHANNELS")
        try:
            n = int(tokens[1])
        except (IndexError, ValueError):
            raise BvhError(f"{where}: CHANNELS needs a count") from None
        if len(tokens) - 2 != n:
            raise BvhError(f"{where}: CHANNELS says {n} channels but lists {len(tokens) - 2}")
        chans = tuple(_normalise_channel(t, where) for t in tokens[2:])
        if len(set(chans)) != len(chans):
            raise BvhError(f"{where}: repeated channel in {' '.join(tokens[2:])!r}")
        self.channels[current] = chans


def _parse_motion(lines: list[str], start: int, num_channels: int, source: str) -> tuple[np.ndarray, float]:
    """Read ``Frames:``, ``Frame Time:`` and the numbers after them (one row per frame)."""
    header: dict[str, str] = {}
    i = start
    while i < len(lines) and len(header) < 2:
        line = lines[i].strip()
        i += 1
        if not line:
            continue
        key, sep, value = line.partition(":")
        key = " ".join(key.split()).lower()
        if not sep or key not in ("frames", "frame time"):
            raise BvhError(f"{source}:{i}: expected 'Frames:' and 'Frame Time:', got {line!r}")
        header[key] = value.strip()
    try:
        num_frames = int(header["frames"])
        frame_time = float(header["frame time"])
    except (KeyError, ValueError):
        raise BvhError(f"{source}: MOTION needs 'Frames: N' and 'Frame Time: seconds'") from None
    if num_frames < 0 or not math.isfinite(frame_time) or frame_time <= 0:
        raise BvhError(f"{source}: bad MOTION header (Frames: {num_frames}, Frame Time: {frame_time})")
    body = " ".join(lines[i:]).split()
    try:
        values = np.array(body, dtype=np.float64)
    except ValueError:
        raise BvhError(f"{source}: MOTION data holds something that is not a number") from None
    expected = num_frames * num_channels
    if values.size != expected:
        raise BvhError(
            f"{source}: MOTION has {values.size} numbers, expected {num_frames} frames x "
            f"{num_channels} channels = {expected} (truncated file or wrong channel count?)")
    if not np.all(np.isfinite(values)):
        raise BvhError(f"{source}: MOTION data contains NaN or infinity")
    return values.reshape(num_frames, num_channels), frame_time


# ------------------------------------------------------------------------------------ forward kinematics

def axis_rotation(axis: str, degrees: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices about ``axis`` ('X', 'Y' or 'Z') by ``degrees`` (right-handed)."""
    a = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    c, s = np.cos(a), np.sin(a)
    one, zero = np.ones_like(a), np.zeros_like(a)
    if axis == "X":
        rows = ((one, zero, zero), (zero, c, -s), (zero, s, c))
    elif axis == "Y":
        rows = ((c, zero, s), (zero, one, zero), (-s, zero, c))
    elif axis == "Z":
        rows = ((c, -s, zero), (s, c, zero), (zero, zero, one))
    else:
        raise ValueError(f"axis must be X, Y or Z, got {axis!r}")
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def forward_kinematics(skeleton: BvhSkeleton, frames: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """World positions (T, J, 3) of every joint for a (T, C) channel matrix, times ``scale``.

    Loops over joints (tens) and is vectorised over frames (thousands), so a whole clip costs J small
    batched matrix products.
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != skeleton.num_channels:
        raise ValueError(f"frames must be (T, {skeleton.num_channels}), got {frames.shape}")
    num_frames, num_joints = frames.shape[0], len(skeleton.names)
    positions = np.zeros((num_frames, num_joints, 3))
    rotations = np.zeros((num_frames, num_joints, 3, 3))
    for j in range(num_joints):
        translation = np.broadcast_to(skeleton.offsets[j], (num_frames, 3)).copy()
        rotation = np.broadcast_to(np.eye(3), (num_frames, 3, 3)).copy()
        for k, channel in enumerate(skeleton.channels[j]):
            values = frames[:, skeleton.channel_start[j] + k]
            axis = "XYZ".index(channel[0])
            if channel.endswith("position"):
                translation[:, axis] = values
            else:
                rotation = rotation @ axis_rotation(channel[0], values)
        parent = skeleton.parents[j]
        if parent < 0:
            positions[:, j] = translation
            rotations[:, j] = rotation
        else:
            positions[:, j] = positions[:, parent] + np.einsum("tij,tj->ti", rotations[:, parent], translation)
            rotations[:, j] = rotations[:, parent] @ rotation
    return positions * scale


# -------------------------------------------------------------------------------------------- the writer

# Every joint's rotation channels, in the reader's convention: ``Zrotation Xrotation Yrotation`` is
# ``Rz @ Rx @ Ry`` (scipy's intrinsic "ZXY"), the order MotionBuilder and the CMU files use.
_WRITE_ORDER = "ZXY"


def format_bvh(names, parents, offsets: np.ndarray, root_positions: np.ndarray, rotations: np.ndarray,
               fps: float, end_sites: dict[int, np.ndarray] | None = None, decimals: int = 6) -> str:
    """BVH text of a motion on a joint tree (the inverse of ``read_bvh``'s forward kinematics).

    names (J,), parents (J,) with -1 for the root (a parent before its children); offsets (J, 3) each joint
    from its parent in the rest pose (the root's is written as zero: its position channels carry it);
    root_positions (T, 3); rotations (T, J, 3, 3) each joint's rotation relative to its parent (the root's:
    its global orientation); end_sites {joint: (3,) offset} of the leaves' ``End Site`` blocks (default: a
    zero offset). Units are the offsets' and positions'. The root has six channels, every other joint three,
    ``Zrotation Xrotation Yrotation``."""
    from scipy.spatial.transform import Rotation

    parents = [int(p) for p in parents]
    J = len(names)
    if parents[0] != -1 or any(not (0 <= parents[j] < j) for j in range(1, J)):
        raise ValueError("joint 0 must be the root and every parent must come before its children")
    offsets = np.asarray(offsets, dtype=np.float64)
    rotations = np.asarray(rotations, dtype=np.float64)
    T = rotations.shape[0]
    children = {j: [k for k in range(J) if parents[k] == j] for j in range(J)}
    end_sites = end_sites or {}
    number = (lambda v: f"{float(v):.{decimals}f}")  # noqa: E731
    lines, order = ["HIERARCHY"], []

    def emit(j: int, depth: int) -> None:
        pad = "\t" * depth
        order.append(j)
        offset = np.zeros(3) if parents[j] < 0 else offsets[j]
        lines.append(f"{pad}{'ROOT' if parents[j] < 0 else 'JOINT'} {names[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}\tOFFSET {' '.join(number(v) for v in offset)}")
        rot = " ".join(f"{axis}rotation" for axis in _WRITE_ORDER)
        lines.append(f"{pad}\tCHANNELS 6 Xposition Yposition Zposition {rot}" if parents[j] < 0
                     else f"{pad}\tCHANNELS 3 {rot}")
        for k in children[j]:
            emit(k, depth + 1)
        if not children[j]:
            site = np.asarray(end_sites.get(j, np.zeros(3)), dtype=np.float64)
            lines.extend([f"{pad}\tEnd Site", f"{pad}\t{{",
                          f"{pad}\t\tOFFSET {' '.join(number(v) for v in site)}", f"{pad}\t}}"])
        lines.append(f"{pad}}}")
    emit(0, 0)
    angles = Rotation.from_matrix(rotations[:, order].reshape(-1, 3, 3)).as_euler(_WRITE_ORDER, degrees=True)
    columns = np.concatenate([np.asarray(root_positions, dtype=np.float64).reshape(T, 3),
                              angles.reshape(T, J * 3)], axis=1)
    lines += ["MOTION", f"Frames: {T}", f"Frame Time: {1.0 / float(fps):.8f}"]
    lines += [" ".join(number(v) for v in row) for row in columns]
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------------------- the reader

def frame_rate(frame_time: float) -> float:
    """Frames per second for a BVH ``Frame Time``, snapped to a whole number when it is one.

    Files print the frame time with few digits (CMU: ``.0083333``), so 1/frame_time is 120.0005 rather
    than 120; left alone, that error would grow into a frame of drift over a long resampled clip.
    """
    fps = 1.0 / frame_time
    nearest = round(fps)
    return float(nearest) if nearest > 0 and abs(fps - nearest) < 1e-4 * fps else fps


def read_bvh(path: str | Path, scale: float = 1.0, drop_first_frame: bool = False,
             fps: float | None = None, include_end_sites: bool = True) -> BvhMotion:
    """Read a BVH file into world joint positions.

    Args:
        path: the ``.bvh`` file.
        scale: metres (or whatever unit is wanted) per file unit; positions and offsets are multiplied by it.
        drop_first_frame: drop frame 0, for converters that prepend a T-pose (cgspeed's CMU BVHs do).
        fps: resample the positions to this rate (linear interpolation); None keeps the file's rate.
        include_end_sites: keep the ``<parent>_End`` joints.
    """
    path = Path(path)
    skeleton, frames, frame_time = parse_bvh(path.read_text(), source=str(path))
    if drop_first_frame:
        if frames.shape[0] < 2:
            raise BvhError(f"{path}: cannot drop the first frame of a {frames.shape[0]}-frame clip")
        frames = frames[1:]
    positions = forward_kinematics(skeleton, frames, scale=scale)
    file_fps = frame_rate(frame_time)
    out_fps = file_fps
    if fps is not None:
        positions = resample_uniform(positions, file_fps, fps)
        out_fps = float(fps)
    keep = [j for j in range(len(skeleton.names)) if include_end_sites or not skeleton.end_site[j]]
    remap = {old: new for new, old in enumerate(keep)}
    return BvhMotion(
        names=tuple(skeleton.names[j] for j in keep),
        parents=tuple(remap[skeleton.parents[j]] if skeleton.parents[j] >= 0 else -1 for j in keep),
        offsets=skeleton.offsets[keep] * scale,
        positions=positions[:, keep],
        fps=out_fps,
        end_site=tuple(skeleton.end_site[j] for j in keep),
    )
