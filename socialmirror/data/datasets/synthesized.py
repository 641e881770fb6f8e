"""``synth:N``: N interactions drawn by the synthesizer (``socialmirror.data.synth``), seeded."""
from __future__ import annotations

from socialmirror.data.formats.interchange import TwoPersonSequence


def load_spec(arg: str, split: str | None, seed: int) -> list[TwoPersonSequence]:
    from socialmirror.errors import InputError
    try:
        n = int(arg)
    except ValueError:
        raise InputError("synth takes a number of sequences, e.g. synth:1000") from None
    if n < 1:
        raise InputError("synth needs at least one sequence")
    from socialmirror.data.synth import synthesize_dataset
    return list(synthesize_dataset(n, seed=seed))
