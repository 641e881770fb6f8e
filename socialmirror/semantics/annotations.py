"""The annotation records and the ``annotations.json`` file.

Schema (version 1)::

    {"version": 1,
     "joints": [the 19 contact joint names of Table 1, in the paper's order],
     "clips": [{"start": first video frame, "end": one past the last,
                "text": [sentence of person 1, sentence of person 2],
                "contacts": [[joint of person 1, joint of person 2, t0, t1], ...],
                "source": "openai" | "offline" | "file",
                "confidence": number in [0, 1],
                "warnings": [str, ...]}]}

``t0`` and ``t1`` are clip-relative and inclusive (``0 <= t0 <= t1 < end - start``, so 0..15 for a 16-frame
clip). Files are written atomically (temporary file in the same folder, then ``os.replace``).

``Annotations.read`` is strict: every field must be present and valid, and errors are one line naming the
file and the offending field (``AnnotationError``). ``load_user_annotations`` reads a file a user wrote by hand
(the ``file:PATH`` annotator source): ``source``, ``confidence`` and ``warnings`` may be omitted there, and the
clips are matched to the video's clips by ``(start, end)``.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from socialmirror.body.skeleton import CONTACT_JOINTS, JOINT_INDEX
from socialmirror.errors import InputError
from socialmirror.io import atomic_write_text


SCHEMA_VERSION = 1
SOURCES: tuple[str, ...] = ("openai", "offline", "file")


class AnnotationError(InputError):
    """An annotations file or record is invalid; the message is one line."""


@dataclass(frozen=True)
class Contact:
    """``joint_a`` of person 1 touches ``joint_b`` of person 2 over clip frames ``t0..t1`` (inclusive)."""

    joint_a: str
    joint_b: str
    t0: int
    t1: int

    def to_list(self) -> list:
        return [self.joint_a, self.joint_b, int(self.t0), int(self.t1)]

    def swapped(self) -> "Contact":
        """The same contact with the two persons exchanged."""
        return Contact(self.joint_b, self.joint_a, self.t0, self.t1)

    @property
    def num_frames(self) -> int:
        return int(self.t1) - int(self.t0) + 1


@dataclass(frozen=True)
class ClipAnnotation:
    """The annotation of one clip ``[start, end)`` of the video."""

    start: int
    end: int
    text: tuple[str, str]
    contacts: tuple[Contact, ...] = ()
    source: str = "offline"
    confidence: float = 1.0
    warnings: tuple[str, ...] = ()

    @property
    def num_frames(self) -> int:
        return int(self.end) - int(self.start)

    def to_dict(self) -> dict:
        return {
            "start": int(self.start),
            "end": int(self.end),
            "text": [str(self.text[0]), str(self.text[1])],
            "contacts": [c.to_list() for c in self.contacts],
            "source": self.source,
            "confidence": float(self.confidence),
            "warnings": [str(w) for w in self.warnings],
        }

    def with_changes(self, **changes) -> "ClipAnnotation":
        from dataclasses import replace
        return replace(self, **changes)

    def validate(self, joints: Sequence[str] = CONTACT_JOINTS, where: str = "clip") -> None:
        """Raise ``AnnotationError`` (one line, prefixed with ``where``) if anything is invalid."""
        _check_clip_dict(self.to_dict(), joints, where, strict=True)


@dataclass
class Annotations:
    """All the clips of one video, in order of ``start``."""

    clips: list[ClipAnnotation] = field(default_factory=list)
    joints: tuple[str, ...] = CONTACT_JOINTS
    version: int = SCHEMA_VERSION

    # ---- dict / JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"version": int(self.version), "joints": list(self.joints),
                "clips": [c.to_dict() for c in self.clips]}

    @classmethod
    def from_dict(cls, data: Any, where: str = "annotations", strict: bool = True) -> "Annotations":
        """Validate ``data`` (the parsed JSON) and build the records; ``AnnotationError`` when invalid."""
        if not isinstance(data, Mapping):
            raise AnnotationError(f"{where}: expected a JSON object at the top level, got {_kind(data)}")
        version = data.get("version", None if strict else SCHEMA_VERSION)
        if version != SCHEMA_VERSION or isinstance(version, bool):
            raise AnnotationError(f"{where}: unsupported version {version!r} (expected {SCHEMA_VERSION})")
        joints = data.get("joints", None if strict else list(CONTACT_JOINTS))
        if not isinstance(joints, list) or not all(isinstance(j, str) for j in joints):
            raise AnnotationError(f"{where}: 'joints' must be a list of joint names")
        if tuple(joints) != CONTACT_JOINTS:
            extra = sorted(set(joints) - set(CONTACT_JOINTS))
            missing = sorted(set(CONTACT_JOINTS) - set(joints))
            detail = (f"unknown {extra}" if extra else "") + ("; " if extra and missing else "") + (
                f"missing {missing}" if missing else "")
            raise AnnotationError(f"{where}: 'joints' must be the 19 contact joints of Table 1 in order"
                                  + (f" ({detail})" if detail else " (order differs)"))
        clips = data.get("clips")
        if not isinstance(clips, list):
            raise AnnotationError(f"{where}: 'clips' must be a list")
        out = []
        for i, raw in enumerate(clips):
            out.append(_check_clip_dict(raw, CONTACT_JOINTS, f"{where}: clips[{i}]", strict=strict))
        for i in range(1, len(out)):
            if (out[i].start, out[i].end) == (out[i - 1].start, out[i - 1].end):
                raise AnnotationError(f"{where}: clips[{i}] repeats the clip [{out[i].start}, {out[i].end})")
        out.sort(key=lambda c: (c.start, c.end))
        return cls(clips=out, joints=CONTACT_JOINTS, version=SCHEMA_VERSION)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def write(self, path: str | os.PathLike) -> Path:
        """Validate, then write atomically (temporary file + ``os.replace``)."""
        self.validate()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, self.to_json() + "\n")
        return path

    @classmethod
    def read(cls, path: str | os.PathLike, strict: bool = True) -> "Annotations":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise AnnotationError(f"{path}: annotations file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise AnnotationError(f"{path}: cannot read annotations file ({exc})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AnnotationError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") \
                from None
        return cls.from_dict(data, where=str(path), strict=strict)

    def validate(self) -> None:
        Annotations.from_dict(self.to_dict(), where="annotations", strict=True)

    # ---- look-ups --------------------------------------------------------------------------------------
    def by_range(self) -> dict[tuple[int, int], ClipAnnotation]:
        return {(c.start, c.end): c for c in self.clips}

    def clip_at(self, frame: int) -> ClipAnnotation | None:
        """The first clip that contains video frame ``frame``."""
        for c in self.clips:
            if c.start <= frame < c.end:
                return c
        return None


def load_user_annotations(path: str | os.PathLike, clips: Iterable[tuple[int, int]] | None = None
                          ) -> tuple[dict[tuple[int, int], ClipAnnotation], list[str]]:
    """Read a user's annotations file (source ``file:PATH``) and match its clips to the video's clips.

    Returns ``(matched, warnings)``: ``matched`` maps ``(start, end)`` of each video clip found in the file to
    its annotation (source set to ``"file"``); ``warnings`` lists file clips that match no video clip and
    video clips the file does not cover. With ``clips=None`` every clip of the file is returned. Invalid files
    raise ``AnnotationError`` with a one-line message.
    """
    ann = Annotations.read(path, strict=False)
    found = {(c.start, c.end): c.with_changes(source="file") for c in ann.clips}
    if clips is None:
        return found, []
    wanted = [(int(s), int(e)) for s, e in clips]
    matched = {k: found[k] for k in wanted if k in found}
    warnings = []
    unused = sorted(set(found) - set(wanted))
    if unused:
        warnings.append(f"{path}: {len(unused)} clip(s) match no clip of the video, e.g. "
                        f"[{unused[0][0]}, {unused[0][1]})")
    missing = [k for k in wanted if k not in found]
    if missing:
        warnings.append(f"{path}: {len(missing)} clip(s) of the video are not in the file, e.g. "
                        f"[{missing[0][0]}, {missing[0][1]})")
    return matched, warnings




# ---- validation helpers ----------------------------------------------------------------------------------
def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


def _check_clip_dict(raw: Any, joints: Sequence[str], where: str, strict: bool) -> ClipAnnotation:
    if not isinstance(raw, Mapping):
        raise AnnotationError(f"{where}: expected an object, got {_kind(raw)}")
    known = {"start", "end", "text", "contacts", "source", "confidence", "warnings"}
    unknown = sorted(set(raw) - known)
    if unknown and strict:
        raise AnnotationError(f"{where}: unknown field(s) {unknown}")
    for key in ("start", "end", "text", "contacts") + (("source", "confidence", "warnings") if strict else ()):
        if key not in raw:
            raise AnnotationError(f"{where}: missing field '{key}'")
    start, end = raw["start"], raw["end"]
    if not _is_int(start) or int(start) < 0:
        raise AnnotationError(f"{where}: 'start' must be a non-negative integer, got {start!r}")
    if not _is_int(end) or int(end) <= int(start):
        raise AnnotationError(f"{where}: 'end' must be an integer greater than start ({int(start)}), got {end!r}")
    start, end = int(start), int(end)
    n = end - start
    text = raw["text"]
    if not (isinstance(text, list) and len(text) == 2 and all(isinstance(s, str) for s in text)):
        raise AnnotationError(f"{where}: 'text' must be a list of two sentences")
    if not all(s.strip() for s in text):
        raise AnnotationError(f"{where}: 'text' sentences must not be empty")
    contacts_raw = raw["contacts"]
    if not isinstance(contacts_raw, list):
        raise AnnotationError(f"{where}: 'contacts' must be a list")
    jset = set(joints)
    contacts = []
    for k, c in enumerate(contacts_raw):
        cw = f"{where}.contacts[{k}]"
        if not (isinstance(c, list) and len(c) == 4):
            raise AnnotationError(f"{cw}: expected [joint of person 1, joint of person 2, t0, t1], got {c!r}")
        a, b, t0, t1 = c
        for name in (a, b):
            if not isinstance(name, str) or name not in jset:
                raise AnnotationError(f"{cw}: unknown joint {name!r} (expected one of the 19 contact joints)")
        for t in (t0, t1):
            if not _is_int(t):
                raise AnnotationError(f"{cw}: time steps must be integers, got {t!r}")
        t0, t1 = int(t0), int(t1)
        if not (0 <= t0 <= t1 < n):
            raise AnnotationError(f"{cw}: time steps must satisfy 0 <= t0 <= t1 < {n} (clip-relative), "
                                  f"got {t0}, {t1}")
        contacts.append(Contact(a, b, t0, t1))
    source = raw.get("source", "file")
    if source not in SOURCES:
        raise AnnotationError(f"{where}: 'source' must be one of {list(SOURCES)}, got {source!r}")
    conf = raw.get("confidence", 1.0)
    if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not math.isfinite(conf) \
            or not 0.0 <= conf <= 1.0:
        raise AnnotationError(f"{where}: 'confidence' must be a number in [0, 1], got {conf!r}")
    warnings = raw.get("warnings", [])
    if not (isinstance(warnings, list) and all(isinstance(w, str) for w in warnings)):
        raise AnnotationError(f"{where}: 'warnings' must be a list of strings")
    return ClipAnnotation(start=start, end=end, text=(text[0], text[1]), contacts=tuple(contacts),
                          source=source, confidence=float(conf), warnings=tuple(warnings))


def contact_rows(annotations: "Annotations | Sequence[ClipAnnotation] | None", num_frames: int) -> np.ndarray:
    """Every annotated contact unrolled to video frames: rows (frame, SMPL-24 joint of person 1, joint of
    person 2, the clip's confidence), (N, 4) float64. Frames past ``num_frames`` are dropped (the one place
    contacts become frames: the guidance's windows and the fit both read these rows)."""
    clips = annotations.clips if isinstance(annotations, Annotations) else list(annotations or [])
    rows = []
    for clip in clips:
        for c in clip.contacts:
            last = min(int(clip.start) + int(c.t1), int(clip.end) - 1, num_frames - 1)
            for frame in range(int(clip.start) + int(c.t0), last + 1):
                rows.append((frame, JOINT_INDEX[c.joint_a], JOINT_INDEX[c.joint_b], float(clip.confidence)))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)
