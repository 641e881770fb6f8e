"""Atomic file writes: results are written to a temporary file in the same folder and renamed into place,
so an interrupted run never leaves a truncated result behind."""
from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np


def default_mode() -> int:
    """0666 less the process umask: the mode a plainly created file gets (mkstemp's is 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


# Every temporary file of an output is named ``.NAME.XXXXXXXX.tmp[.EXT]`` (mkstemp's eight random characters):
# what ``remove_stale_temporaries`` recognises after a run that was killed before it could clean up.
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?$")


def temporary_beside(path: Path, suffix: str = ".tmp") -> tuple[int, str]:
    """(fd, name) of a new temporary file beside ``path`` named as ``_TEMPORARY`` says (``suffix`` starts
    with ``.tmp``)."""
    if not suffix.startswith(".tmp"):
        raise ValueError("a temporary file's suffix starts with .tmp")
    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files that a run killed mid-write (SIGKILL, a power cut) left in ``folder`` and
    its subfolders; returns them. Call it only while holding ``output_lock(folder)``: then no other run is
    writing there."""
    stale = [p for p in Path(folder).rglob(".*.tmp*") if _TEMPORARY.match(p.name) and p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def atomic_write(path: str | os.PathLike, write, suffix: str = ".tmp") -> Path:
    """Call ``write(binary_file)`` on a temporary file beside ``path``, fsync it, then rename it into place
    (the usual 0666-less-umask mode). Nothing is left behind if ``write`` fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temporary_beside(path, suffix)
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
    return atomic_write(path, lambda f: np.savez_compressed(f, **arrays), ".tmp.npz")


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
