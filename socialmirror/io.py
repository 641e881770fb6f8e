"""Atomic file writes: results are written to a temporary file in the same folder and renamed into place,
so an interrupted run never leaves a truncated result behind."""
from __future__ import annotations

import contextlib
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


def output_folder(path: str | os.PathLike) -> Path:
    """``path`` as an output folder, created (with its parents) before any work, so that a path naming a file
    or a place that cannot be written to is a one-line user error, not a failure after minutes of work."""
    from socialmirror.errors import InputError
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise InputError(f"output folder {folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder {folder}: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"cannot write to the output folder {folder}")
    return folder


def output_file(path: str | os.PathLike) -> Path:
    """``path`` as an output file: not a folder, its folder created and writable (checked before any work)."""
    from socialmirror.errors import InputError
    file = Path(path).expanduser()
    if file.is_dir():
        raise InputError(f"{file} is a folder; give the path of the file to write")
    output_folder(file.parent)
    return file


@contextlib.contextmanager
def output_lock(folder: Path):
    """Hold ``folder`` for one run: a second run into the same folder at the same time is a one-line user
    error instead of two runs interleaving their files. The lock is the kernel's (``flock``), so a run that
    dies releases it."""
    import fcntl

    from socialmirror.errors import InputError
    with open(Path(folder) / ".socialmirror.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"another socialmirror run is writing into {folder}; wait for it to finish or "
                             f"choose another output folder") from None
        try:
            yield folder
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
