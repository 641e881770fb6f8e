"""The one stage cache: every stage's record, stored under a key of everything the stage depends on.

``StageCache.fetch(stage, depends_on, compute, codec)`` returns the stage's record: the stored one when the
key of ``depends_on`` matches the key it was stored under, otherwise ``compute()``'s result, which it stores.
The key is a content digest (``digest``) of the stage name, ``CACHE_VERSION`` and ``depends_on``: the upstream
records themselves (their arrays' bytes), the settings and the model's identity. So a stage is recomputed
exactly when something it reads changed, whichever upstream stage or option changed it.

On disk (``StageCache(OUTDIR / ".cache")``) each stage has one entry, ``STAGE<suffix>`` (the codec's file)
beside ``STAGE.key``; a different key replaces the entry. The key file is removed before the entry is written
and written (atomically) after it, so an interrupted write can never pair a new entry with an old key. An entry
that cannot be read (damaged, or an output file that changed since) is recomputed, never fatal. Without a
folder (``StageCache(None)``) records are kept in memory for the cache's lifetime: ``evaluate`` shares one
draft and one set of annotations between the methods of a sequence that way. ``force=True`` recomputes (and
stores) every stage.

``outcomes`` is the cache's own record of this run: stage -> ``"hit"`` or ``"computed"``, in fetch order;
``seconds`` what each stage took (reading the entry, or computing and storing it).
"""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generic, TypeVar

import numpy as np

from socialmirror.errors import SocialMirrorError
from socialmirror.io import atomic_write_text

log = logging.getLogger(__name__)

# Bump when a stage's computation changes in a way its inputs do not show, so old entries are recomputed.
CACHE_VERSION = 7

R = TypeVar("R")


class StaleEntry(SocialMirrorError):
    """Raised by a codec's ``read`` when a stored entry no longer describes the world (e.g. an output file
    changed since it was written): the stage is recomputed."""


@dataclass(frozen=True)
class Codec(Generic[R]):
    """How one stage's record is stored: ``write(record, path)`` and ``read(path) -> record``."""

    suffix: str
    write: Callable[[R, Path], Any]
    read: Callable[[Path], R]


def _feed(h, value: Any) -> None:
    """Feed a canonical, type-tagged serialisation of ``value`` into the hash ``h``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        h.update(f"{type(value).__name__}:{value!r};".encode())
    elif isinstance(value, enum.Enum):
        h.update(f"enum:{type(value).__name__}.{value.name};".encode())
    elif isinstance(value, os.PathLike):
        h.update(f"path:{os.fspath(value)};".encode())
    elif isinstance(value, np.ndarray | np.generic):
        arr = np.ascontiguousarray(value)
        if arr.dtype.kind in "OUS":  # strings: their text, not the object pointers
            _feed(h, arr.astype(str).tolist())
            return
        h.update(f"array:{arr.dtype.str}:{arr.shape};".encode())
        h.update(arr.tobytes())
    elif isinstance(value, dict):
        h.update(f"dict:{len(value)};".encode())
        for k in sorted(value, key=str):
            _feed(h, str(k))
            _feed(h, value[k])
    elif isinstance(value, (list, tuple)):
        h.update(f"seq:{len(value)};".encode())
        for v in value:
            _feed(h, v)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        h.update(f"dataclass:{type(value).__name__};".encode())
        for f in dataclasses.fields(value):
            _feed(h, f.name)
            _feed(h, getattr(value, f.name))
    else:
        raise TypeError(f"cannot key a stage on a {type(value).__name__}; give its identifying content")


def digest(*parts: Any) -> str:
    """A stable hex digest of nested values: numbers, strings, paths, numpy arrays (dtype, shape and bytes),
    lists, dicts and dataclasses (field by field)."""
    h = hashlib.sha256()
    _feed(h, list(parts))
    return h.hexdigest()[:24]


def file_fingerprint(path: Path) -> list:
    """What identifies a file's or a folder's content cheaply: names, sizes and modification times."""
    path = Path(path)
    if path.is_dir():
        return sorted([p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in path.iterdir() if p.is_file())
    st = path.stat()
    return [path.name, st.st_size, st.st_mtime_ns]


class StageCache:
    def __init__(self, root: str | os.PathLike | None, force: bool = False):
        self.root = None if root is None else Path(root)
        self.force = bool(force)
        self.outcomes: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        self._memory: dict[tuple[str, str], Any] = {}

    def key(self, stage: str, depends_on: Any) -> str:
        return digest(CACHE_VERSION, stage, depends_on)

    def work_dir(self, stage: str, depends_on: Any) -> Path | None:
        """A folder for the partial work of a long stage under ``depends_on``'s key (perception saves its
        detections there in chunks, so an interrupted run resumes mid-video); None for a cache without a
        folder. Work under another key is removed, so is all of it with ``force``; the stage's ``fetch``
        removes the folder once the record is stored."""
        if self.root is None:
            return None
        import shutil
        base = self.root / f"{stage}.work"
        folder = base / self.key(stage, depends_on)[:24]
        if base.is_dir():
            for other in base.iterdir():
                if self.force or other != folder:
                    shutil.rmtree(other, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def fetch(self, stage: str, depends_on: Any, compute: Callable[[], R], codec: Codec[R]) -> R:
        """The record of ``stage`` for ``depends_on``: stored, or computed now (and stored)."""
        start = time.perf_counter()
        key = self.key(stage, depends_on)
        record = None if self.force else self._load(stage, key, codec)
        outcome = "hit"
        if record is None:
            record = compute()
            self._store(stage, key, record, codec)
            outcome = "computed"
            if self.root is not None:  # the stage's partial work (work_dir) is no longer needed
                import shutil
                shutil.rmtree(self.root / f"{stage}.work", ignore_errors=True)
        self.outcomes[stage] = outcome
        self.seconds[stage] = time.perf_counter() - start
        return record

    # -- storage ------------------------------------------------------------------------------------------
    def _paths(self, stage: str, codec: Codec) -> tuple[Path, Path]:
        return self.root / f"{stage}{codec.suffix}", self.root / f"{stage}.key"

    def _load(self, stage: str, key: str, codec: Codec):
        if self.root is None:
            return self._memory.get((stage, key))
        entry, key_file = self._paths(stage, codec)
        try:
            if not entry.is_file() or key_file.read_text().strip() != key:
                return None
        except OSError:  # no key file: never stored, or its write was interrupted
            return None
        try:
            return codec.read(entry)
        except StaleEntry as exc:
            log.info("cache entry %s is out of date (%s); recomputing", entry, exc)
        except Exception as exc:  # noqa: BLE001 - a damaged entry is recomputed, never fatal
            log.warning("cache entry %s is unreadable (%s); recomputing", entry, str(exc).splitlines()[0] if
                        str(exc) else type(exc).__name__)
        return None

    def _store(self, stage: str, key: str, record, codec: Codec) -> None:
        if self.root is None:
            self._memory[(stage, key)] = record
            return
        entry, key_file = self._paths(stage, codec)
        key_file.unlink(missing_ok=True)
        codec.write(record, entry)
        atomic_write_text(key_file, key + "\n")


__all__ = ["CACHE_VERSION", "Codec", "StageCache", "StaleEntry", "digest", "file_fingerprint"]
