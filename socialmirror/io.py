"""Atomic file writes: results are written to a temporary file in the same folder and renamed into place,
so an interrupted run never leaves a truncated result behind."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np


def default_mode() -> int:
    """0666 less the process umask: the mode a plainly created file gets (mkstemp's is 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, write, suffix: str = ".tmp") -> Path:
    """Call ``write(binary_file)`` on a temporary file beside ``path``, fsync it, then rename it into place
    (the usual 0666-less-umask mode). Nothing is left behind if ``write`` fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.fchmod(fd, default_mode())  # mkstemp's 0600 would make results unreadable to others
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_savez(path: str | os.PathLike, **arrays) -> Path:
    return atomic_write(path, lambda f: np.savez_compressed(f, **arrays), ".npz")


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))
