"""``npz:PATH``: one interchange ``.npz`` file or a folder of them (``socialmirror.data.formats.interchange``)."""
from __future__ import annotations

from pathlib import Path

from socialmirror.data.formats.interchange import TwoPersonSequence, read_folder, read_npz


def load_spec(arg: str, split: str | None, seed: int) -> list[TwoPersonSequence]:
    from socialmirror.data.datasets import spec_folder
    path = Path(arg).expanduser()
    return [read_npz(path)] if path.is_file() else read_folder(spec_folder(arg))
