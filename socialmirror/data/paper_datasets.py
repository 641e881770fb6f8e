"""One entry point to the paper's data sets: ``load_paper_samples("hi4d", DIR, split=...)``.

Kinds: ``hi4d``, ``3dpw``, ``harmony4d``, ``chi3d`` (each loader's module documents the published layout it
reads and what is assumed). ``split``:

- hi4d: ``None`` only (the release has no split folders; filter with ``pairs=`` / ``actions=``);
- 3dpw: the paper's protocol, ``"train"`` (two-subject courtyard sequences), ``"test"`` (two-subject
  downtown sequences) or ``None`` (both);
- harmony4d, chi3d: the release's folders, ``"train"``, ``"test"`` or ``None`` (both).

``paper_sequences`` gives the bare :class:`TwoPersonSequence` s (targets + actions, cameras in ``meta``), the
form the clip dataset and ``write_folder`` take.
"""
from __future__ import annotations

from pathlib import Path

from socialmirror.data.interchange import TwoPersonSequence
from socialmirror.data.paper_common import PaperSample
from socialmirror.errors import InputError

PAPER_DATASETS = ("hi4d", "3dpw", "harmony4d", "chi3d")


def load_paper_samples(kind: str, root: str | Path, split: str | None = None, **kwargs) -> list[PaperSample]:
    """Every sample of one paper data set under ``root`` (see the module docstring for ``split``)."""
    kind = kind.lower()
    if kind == "hi4d":
        from socialmirror.data.hi4d import read_hi4d
        if split is not None:
            raise InputError("Hi4D has no published split folders: select pairs with pairs=[...]")
        samples = read_hi4d(root, **kwargs)
    elif kind == "3dpw":
        from socialmirror.data.threedpw import read_3dpw
        samples = read_3dpw(root, split=split or "all", **kwargs)
    elif kind == "harmony4d":
        from socialmirror.data.harmony4d import read_harmony4d
        samples = read_harmony4d(root, split=split, **kwargs)
    elif kind == "chi3d":
        from socialmirror.data.chi3d import read_chi3d
        if split not in (None, "train", "test"):
            raise InputError(f"CHI3D: unknown split {split!r} (expected train or test)")
        samples = read_chi3d(root, split=split, **kwargs)
    else:
        raise InputError(f"unknown paper data set {kind!r} (expected one of {list(PAPER_DATASETS)})")
    if not samples:
        raise InputError(f"{kind}: no two-person sequence under {root}" + (f" in split {split}" if split else ""))
    return samples


def paper_sequences(kind: str, root: str | Path, split: str | None = None, **kwargs) -> list[TwoPersonSequence]:
    return [s.sequence for s in load_paper_samples(kind, root, split=split, **kwargs)]
