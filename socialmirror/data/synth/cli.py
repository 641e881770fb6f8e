"""``socialmirror synth``: write a folder of synthetic interactions as interchange ``.npz`` files.

The project CLI wires ``synth_main`` to ``socialmirror synth -n N -o DIR [--seed S] [--types ...]
[--vertices]``. Sample i is drawn from its own generator seeded with (seed, i), so a folder is
reproducible file by file and a run can be extended or parallelised without changing earlier files.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from socialmirror.data.formats.interchange import write_npz
from socialmirror.errors import UserError

log = logging.getLogger(__name__)


def synth_main(n: int, out_dir: str | Path, seed: int = 0, types: Sequence[str] | None = None,
               with_vertices: bool = False, body: str = "anny", progress: bool = True) -> int:
    """Write ``n`` samples to ``out_dir`` (``synth_00000.npz``, ...) and return 0; bad arguments raise
    ``UserError`` before any work. Prints a one-line summary (counts per type, seconds per sample)."""
    import torch

    from socialmirror.body import build_body_model
    from socialmirror.data.synth.synthesizer import INTERACTIONS, InteractionSynthesizer, SynthConfig

    if n < 1:
        raise UserError("-n must be at least 1")
    types = tuple(types or ())
    unknown = [t for t in types if t not in INTERACTIONS]
    if unknown:
        raise UserError(f"unknown interaction types {unknown}; known: {', '.join(INTERACTIONS)}")
    torch.set_num_threads(1)
    synth = InteractionSynthesizer(build_body_model(body), SynthConfig(types=types, with_vertices=with_vertices))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter()
    start = time.perf_counter()
    iterator = range(n)
    if progress:
        from tqdm import tqdm
        iterator = tqdm(iterator, desc="synth", unit="sample")
    for i in iterator:
        rng = np.random.default_rng([seed, i])
        name = f"synth_{i:05d}"
        seq = synth.sample(rng, name=name)
        write_npz(seq, out / f"{name}.npz")
        counts[seq.action or "?"] += 1
    dt = time.perf_counter() - start
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"synth: wrote {n} files to {out} in {dt:.1f} s ({dt / n:.2f} s/sample): {summary}")
    return 0
