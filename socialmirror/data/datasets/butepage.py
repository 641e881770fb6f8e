"""Bütepage et al.'s human-human interaction recordings as two-person sequences on SMPL-24 joints.

Layout (``butepage_hhi/``): ``<action>/pair_P_rec_R_user_U.txt``, one file per person (U = 1, 2) with the
same number of lines and the same per-line time steps, so line k of both files is one frame. A line is
``dt 8 x1 y1 z1 ... x8 y8 z8`` (the data README omits the joint count ``8``; both forms are read): ``dt`` is
the time since the previous frame (irregular, ~0.033 s: the sensor runs at ~30 Hz), coordinates are in
millimetres in one camera frame with y up. ``annotation.txt`` lists ``action-letter pair recording start
stop leader`` per recording (start/stop are 0-based line numbers; pair 0 is not annotated).

Left and right are not labelled in the data; the geometry and the actions settle them. In every recording
joints 2, 4 and 6 lie on one side of the body and 3, 5, 7 on the other, and:

- in every handshake it is hand 6 of both persons that meets the partner's hand, and in every waving
  recording hand 6 is the raised one: 6 is the right hand (people shake and wave with the right hand);
- yet read as a right-handed frame (y up, each person facing the partner), joints 2/4/6 lie on the
  person's *left*. The raw frame is therefore left-handed (OpenNI's x right, y up, z away from the sensor).

The reader negates x (a right-handed frame, as the rest of the project assumes) and maps 2/4/6 to the
right side; after that, the right shoulders are on each person's right when facing the partner and the
handshake joins the right wrists (both checked in the tests). Joint map (file index -> SMPL-24 name):
0 torso -> spine3, 1 head -> head, 2/3 shoulders -> right/left_shoulder, 4/5 elbows -> right/left_elbow,
6/7 hands -> right/left_wrist.

The torso joint sits 0.17 m (median over the data) below the midpoint of the shoulders: SMPL's spine3 sits
~0.16 m below its shoulder midpoint and spine2 ~0.21 m, so the torso maps to spine3 (which is also the
joint the shoulders hang from in SMPL's tree). The sensor's head is the centre of the head, ~0.21 m above
the shoulders (SMPL's head joint: ~0.13 m), and its hands are the palm centres: both carry a systematic
offset against SMPL joints. No licence is stated upstream: internal evaluation only.
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from socialmirror.data.formats.interchange import TwoPersonSequence
from socialmirror.data.timing import interpolate, uniform_times
from socialmirror.errors import UserError

ACTION_FOLDERS: dict[str, str] = {"w": "waving", "s": "shaking", "r": "rocket", "p": "parachute"}
"""annotation.txt's action letters -> the data's action folders."""

ACTIONS: dict[str, str] = {
    "shaking": "handshake",
    "waving": "wave",
    "rocket": "fist_bump_rocket",
    "parachute": "fist_bump_parachute",
}
"""Data's action folder -> the project's action name (the original is kept in ``meta``)."""

NUM_RAW_JOINTS = 8
RAW_TO_SMPL: dict[str, int] = {
    "spine3": 0, "head": 1, "left_shoulder": 3, "right_shoulder": 2,
    "left_elbow": 5, "right_elbow": 4, "left_wrist": 7, "right_wrist": 6,
}
"""SMPL-24 name -> joint index in the file (see the module docstring for why 6 is the right hand)."""

BUTEPAGE_JOINT_NAMES: tuple[str, ...] = tuple(RAW_TO_SMPL)
"""The SMPL-24 names a Bütepage sequence carries, in SMPL order."""

MIRROR = np.array([-1.0, 1.0, 1.0])
"""Applied to raw coordinates: the raw frame is left-handed, negating x makes it right-handed."""

UP = np.array([0.0, 1.0, 0.0])
DEFAULT_FPS = 30.0
_FILE_RE = re.compile(r"^pair_(\d+)_rec_(\d+)_user_([12])\.txt$")


class ButepageError(UserError, ValueError):
    """A Bütepage file that cannot be read (other than a truncated last line, which only warns)."""


@dataclass(frozen=True)
class Segment:
    """One line of ``annotation.txt``: the annotated span of a recording, in raw line numbers."""

    action: str       # the data's folder name: waving, shaking, rocket, parachute
    pair: int
    recording: int
    start: int        # first frame of the interaction (0-based line number, inclusive)
    stop: int         # last frame (inclusive)
    leader: int       # 0 or 1; taken to be the person index (0 = user_1), which upstream does not document


def read_annotations(path: str | Path) -> list[Segment]:
    """Parse ``annotation.txt`` (``letter pair recording start stop leader`` per line)."""
    path = Path(path)
    segments = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 6 or fields[0] not in ACTION_FOLDERS:
            raise ButepageError(f"{path}:{number}: expected 'w|s|r|p pair rec start stop leader', got {line!r}")
        try:
            pair, rec, start, stop, leader = (int(v) for v in fields[1:])
        except ValueError:
            raise ButepageError(f"{path}:{number}: non-integer field in {line!r}") from None
        if not 0 <= start <= stop:
            raise ButepageError(f"{path}:{number}: start {start} / stop {stop} out of order")
        segments.append(Segment(ACTION_FOLDERS[fields[0]], pair, rec, start, stop, leader))
    return segments


def read_user_file(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One person's file: per-frame ``dt`` (T,) in seconds and raw joints (T, 8, 3) in millimetres.

    A last line cut short (a truncated download) is dropped with a warning; a bad line anywhere else is
    an error, since it means the file is not in this format.
    """
    path = Path(path)
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    rows: list[list[float]] = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if len(fields) == 2 + 3 * NUM_RAW_JOINTS and fields[1] == str(NUM_RAW_JOINTS):
            fields = [fields[0]] + fields[2:]
        if len(fields) != 1 + 3 * NUM_RAW_JOINTS:
            if number == len(lines):
                warnings.warn(f"{path}: truncated (last line has {len(line.split())} of "
                              f"{2 + 3 * NUM_RAW_JOINTS} fields); dropped it", stacklevel=2)
                break
            raise ButepageError(f"{path}:{number}: {len(line.split())} fields, expected 'dt 8' and 24 "
                                f"coordinates")
        try:
            rows.append([float(v) for v in fields])
        except ValueError:
            raise ButepageError(f"{path}:{number}: a field is not a number") from None
    if not rows:
        raise ButepageError(f"{path}: no complete frame")
    data = np.asarray(rows)
    if not np.all(np.isfinite(data)):
        raise ButepageError(f"{path}: NaN or infinity in the data")
    return data[:, 0], data[:, 1:].reshape(-1, NUM_RAW_JOINTS, 3)


def raw_to_smpl(raw_mm: np.ndarray) -> np.ndarray:
    """Raw joints (..., 8, 3) in millimetres -> (..., 8, 3) metres, right-handed, BUTEPAGE_JOINT_NAMES order."""
    index = [RAW_TO_SMPL[n] for n in BUTEPAGE_JOINT_NAMES]
    return raw_mm[..., index, :] * MIRROR / 1000.0


def frame_times(dt: np.ndarray) -> np.ndarray:
    """Time of each frame from the per-frame ``dt`` (time since the previous frame), the first at 0."""
    if np.any(dt[1:] <= 0):
        raise ButepageError("time steps must be positive")
    return np.concatenate([[0.0], np.cumsum(dt[1:])])


def recording_paths(folder: str | Path, action: str, pair: int, recording: int) -> tuple[Path, Path]:
    folder = Path(folder) / action
    return (folder / f"pair_{pair}_rec_{recording}_user_1.txt", folder / f"pair_{pair}_rec_{recording}_user_2.txt")


def read_recording(folder: str | Path, action: str, pair: int, recording: int, fps: float = DEFAULT_FPS,
                   segment: Segment | None = None, crop: bool = False) -> TwoPersonSequence:
    """One recording (user_1 = person 1, user_2 = person 2) on a uniform ``fps`` time base.

    Args:
        folder: the ``butepage_hhi`` folder.
        action: the data's action folder (waving, shaking, rocket, parachute).
        pair, recording: which recording.
        fps: the uniform rate to resample to (linear interpolation on the recorded time stamps).
        segment: its annotation, stored in ``meta["segment"]`` (frames converted to the new time base).
        crop: keep only the annotated span (needs ``segment``).
    """
    if action not in ACTIONS:
        raise ButepageError(f"unknown action {action!r} (expected one of {sorted(ACTIONS)})")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps}")
    paths = recording_paths(folder, action, pair, recording)
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"no such file: {p}")
    (dt1, raw1), (dt2, raw2) = (read_user_file(p) for p in paths)
    frames = min(len(dt1), len(dt2))
    if len(dt1) != len(dt2):
        warnings.warn(f"{paths[0].parent.name}/pair_{pair}_rec_{recording}: users have {len(dt1)} and "
                      f"{len(dt2)} frames; keeping the {frames} both have", stacklevel=2)
    if not np.allclose(dt1[:frames], dt2[:frames], atol=1e-6):
        raise ButepageError(f"{paths[0]} and {paths[1]}: time steps differ, the files are not one recording")
    times = frame_times(dt1[:frames])
    joints = np.stack([raw_to_smpl(raw1[:frames]), raw_to_smpl(raw2[:frames])], axis=1)  # (T, 2, 8, 3)

    start, stop = 0, frames - 1
    meta: dict = {
        "action_original": action, "pair": pair, "recording": recording,
        "files": [f"{action}/{p.name}" for p in paths], "raw_frames": frames,
        "raw_mean_fps": float((frames - 1) / times[-1]) if frames > 1 else None,
        "joint_map": {n: f"raw {RAW_TO_SMPL[n]}" for n in BUTEPAGE_JOINT_NAMES},
    }
    if segment is not None:
        if (segment.action, segment.pair, segment.recording) != (action, pair, recording):
            raise ValueError(f"segment {segment} is not for {action} pair {pair} recording {recording}")
        if segment.stop >= frames:
            warnings.warn(f"{action}/pair_{pair}_rec_{recording}: annotation stops at frame {segment.stop} "
                          f"but the recording has {frames}; clipped", stacklevel=2)
        seg_start, seg_stop = min(segment.start, frames - 1), min(segment.stop, frames - 1)
        if crop:
            start, stop = seg_start, seg_stop
        offset = times[start]
        meta["segment"] = {
            "start": int(round((times[seg_start] - offset) * fps)),
            "stop": int(round((times[seg_stop] - offset) * fps)),
            "start_s": float(times[seg_start] - offset), "stop_s": float(times[seg_stop] - offset),
            "raw_start": segment.start, "raw_stop": segment.stop, "leader": segment.leader,
            "cropped": crop,
        }
    elif crop:
        raise ValueError("crop=True needs the recording's segment")

    span = times[start:stop + 1] - times[start]
    new_times = uniform_times(span[-1], fps)
    resampled = interpolate(joints[start:stop + 1], span, new_times)
    if "segment" in meta:  # frames of the new time base never run past its end
        meta["segment"]["stop"] = min(meta["segment"]["stop"], len(new_times) - 1)
    name = f"butepage_{action}_pair_{pair}_rec_{recording}" + ("_segment" if crop else "")
    return TwoPersonSequence(
        joints3d=resampled, joint_names=BUTEPAGE_JOINT_NAMES, fps=fps, up=UP, action=ACTIONS[action],
        name=name, source="Buetepage et al. human-human interaction recordings (no licence: internal "
                          "evaluation only)", meta=meta,
    )


def list_recordings(folder: str | Path) -> list[tuple[str, int, int]]:
    """(action, pair, recording) of every recording with both users' files, sorted."""
    folder = Path(folder)
    found: dict[tuple[str, int, int], set[str]] = {}
    for action in ACTIONS:
        sub = folder / action
        if not sub.is_dir():
            continue
        for p in sub.iterdir():
            m = _FILE_RE.match(p.name)
            if m:
                found.setdefault((action, int(m.group(1)), int(m.group(2))), set()).add(m.group(3))
    return sorted(k for k, users in found.items() if users == {"1", "2"})


def read_butepage(folder: str | Path, fps: float = DEFAULT_FPS, segments: bool = False,
                  actions: tuple[str, ...] | None = None) -> list[TwoPersonSequence]:
    """Every recording of the data set (or of ``actions``, the data's folder names), sorted.

    With ``segments=True`` each annotated recording is cropped to its annotated span and recordings
    without an annotation (pair 0) are left out; otherwise whole recordings are returned and the
    annotation, where there is one, is in ``meta["segment"]``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    annotation_file = folder / "annotation.txt"
    annotations = {(s.action, s.pair, s.recording): s for s in read_annotations(annotation_file)} \
        if annotation_file.is_file() else {}
    unknown = sorted(set(actions or ()) - set(ACTIONS))
    if unknown:
        raise ButepageError(f"unknown actions {unknown} (expected some of {sorted(ACTIONS)})")
    sequences = []
    for key in list_recordings(folder):
        if actions is not None and key[0] not in actions:
            continue
        segment = annotations.get(key)
        if segments and segment is None:
            continue
        sequences.append(read_recording(folder, *key, fps=fps, segment=segment, crop=segments))
    if not sequences:
        raise FileNotFoundError(f"no Buetepage recordings in {folder}")
    return sequences


def load_spec(arg: str, split: str | None, seed: int) -> list[TwoPersonSequence]:
    """``butepage:DIR``: every recording of the data set."""
    from socialmirror.data.datasets import spec_folder
    return read_butepage(spec_folder(arg))
