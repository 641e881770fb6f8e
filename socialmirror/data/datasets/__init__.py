"""Data sets and data specs: a spec prefix names the module that reads it.

A data spec (the CLI's ``--data``) is ``KIND:ARG`` with an optional ``@WEIGHT``; several are separated by
commas, e.g. ``synth:2000,cmu:../shared/data/cmu_18_19@0.5``. The paper's data sets take a split after a dot
(``3dpw.train:DIR``). Each kind is one module of this package with a function
``load_spec(arg: str, split: str | None, seed: int) -> list[TwoPersonSequence]`` that raises
``InputError`` with a one-line reason; adding a data set is one module and one line in :data:`READERS`.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from socialmirror.data.formats.interchange import TwoPersonSequence, resample
from socialmirror.errors import UserError

# spec prefix -> module of this package that reads it
READERS: dict[str, str] = {
    "synth": "synthesized",
    "npz": "npz",
    "cmu": "cmu",
    "butepage": "butepage",
    "hi4d": "hi4d",
    "3dpw": "threedpw",
    "chi3d": "chi3d",
    "harmony4d": "harmony4d",
}
KINDS = tuple(READERS)
# The data sets of the paper's tables (SMPL ground truth with cameras; none of them ships with the project).
PAPER_DATASETS = ("hi4d", "3dpw", "harmony4d", "chi3d")


class DataSpecError(UserError, ValueError):
    """A ``--data`` spec that cannot be parsed or loaded; the message names the spec at fault."""


class DataSource(NamedTuple):
    """Sequences drawn together with one weight (unpacks as ``(sequences, weight)``); ``name`` is the spec."""

    sequences: list[TwoPersonSequence]
    weight: float = 1.0
    name: str = ""


def load_data_spec(spec: str, fps: float | None = 30.0, seed: int = 0) -> list[TwoPersonSequence]:
    """The sequences of one ``KIND[.SPLIT]:ARG`` spec (no weight), resampled to ``fps`` (None keeps each rate)."""
    from socialmirror.errors import InputError
    kind, sep, arg = spec.strip().partition(":")
    if not sep or not arg:
        raise DataSpecError(f"data spec {spec!r}: expected KIND:ARG with KIND one of {list(KINDS)}")
    base, _, split = kind.partition(".")
    if base not in READERS:
        raise DataSpecError(f"data spec {spec!r}: unknown kind {kind!r} (expected one of {list(KINDS)})")
    reader = importlib.import_module(f"{__name__}.{READERS[base]}")
    try:
        seqs = reader.load_spec(arg, split or None, seed)
    except InputError as e:  # the reader's one-line reason, named by the spec at fault
        raise DataSpecError(f"data spec {spec!r}: {e}") from None
    if not seqs:
        raise DataSpecError(f"data spec {spec!r}: no sequences")
    if fps is not None:
        seqs = [q if abs(q.fps - fps) < 1e-6 else resample(q, fps) for q in seqs]
    return seqs


def load_paper_samples(kind: str, root: str | Path, split: str | None = None, **kwargs) -> list:
    """Every ``PaperSample`` (SMPL parameters, cameras, the sequence) of one of the paper's data sets
    (``hi4d``, ``3dpw``, ``harmony4d``, ``chi3d``; each module documents its ``split`` values)."""
    from socialmirror.errors import InputError
    kind = kind.lower()
    if kind not in PAPER_DATASETS:
        raise InputError(f"unknown paper data set {kind!r} (expected one of {list(PAPER_DATASETS)})")
    return importlib.import_module(f"{__name__}.{READERS[kind]}").read_samples(root, split=split, **kwargs)


def split_data_spec(spec: str) -> list[tuple[str, float]]:
    """``"a:X@2,b:Y"`` -> ``[("a:X", 2.0), ("b:Y", 1.0)]``."""
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        body, at, weight = part.rpartition("@") if "@" in part else (part, "", "")
        if at:
            try:
                w = float(weight)
            except ValueError:
                raise DataSpecError(f"data spec {part!r}: weight {weight!r} is not a number") from None
            if not (w >= 0 and np.isfinite(w)):
                raise DataSpecError(f"data spec {part!r}: weight must be >= 0")
        else:
            body, w = part, 1.0
        out.append((body, w))
    if not out:
        raise DataSpecError(f"empty data spec {spec!r}")
    return out


def parse_data_spec(spec: str | Sequence[str], fps: float | None = 30.0, seed: int = 0) -> list[DataSource]:
    """Data sources for ``TwoPersonClipDataset`` from one or several specs (``KIND:ARG[@WEIGHT]``, comma-
    separated or a list). Clips are cut at one frame rate (default 30 fps) so L frames span the same time."""
    parts = [spec] if isinstance(spec, str) else list(spec)
    sources = []
    for k, (body, weight) in enumerate(p for s in parts for p in split_data_spec(s)):
        sources.append(DataSource(load_data_spec(body, fps=fps, seed=seed + k), weight, body))
    return sources


def sequences_from_spec(spec: str | Sequence[str], fps: float | None = 30.0, seed: int = 0
                        ) -> list[TwoPersonSequence]:
    """Every sequence of the specs, weights ignored (evaluation)."""
    return [q for s in parse_data_spec(spec, fps=fps, seed=seed) for q in s.sequences]


__all__ = ["DataSource", "DataSpecError", "KINDS", "PAPER_DATASETS", "READERS", "load_data_spec", "load_paper_samples", "parse_data_spec",
           "sequences_from_spec", "split_data_spec"]


def spec_folder(arg: str) -> Path:
    """The folder a spec names (``InputError`` when there is none)."""
    from socialmirror.errors import InputError
    folder = Path(arg).expanduser()
    if not folder.is_dir():
        raise InputError(f"no such folder {folder}")
    return folder
