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
from typing import Iterator, Sequence

import numpy as np

from socialmirror.data.formats.interchange import write_npz
from socialmirror.errors import UserError

log = logging.getLogger(__name__)


def synth_main(n: int, out_dir: str | Path, seed: int = 0, types: Sequence[str] | None = None,
               with_vertices: bool = False, body: str = "anny", progress: bool = True, jobs: int = 1,
               adult_stature: Sequence[float] | None = None) -> int:
    """Write ``n`` samples to ``out_dir`` (``synth_00000.npz``, ...) and return 0; bad arguments raise
    ``UserError`` before any work. Files already there are kept (each is written atomically, and sample i
    depends only on (seed, i)), so an interrupted run resumes where it stopped. ``jobs`` > 1: that many
    processes, each with its own synthesizer. ``adult_stature``: (women, men, spread), metres, of
    ``SynthConfig.adult_stature`` (None: anny's own height draw). Prints a one-line summary (counts per type, seconds per sample)."""
    from socialmirror.data.synth.synthesizer import INTERACTIONS

    if n < 1:
        raise UserError("-n must be at least 1")
    if jobs < 1:
        raise UserError("--jobs must be at least 1")
    types = tuple(types or ())
    unknown = [t for t in types if t not in INTERACTIONS]
    if unknown:
        raise UserError(f"unknown interaction types {unknown}; known: {', '.join(INTERACTIONS)}")
    population = _adult_stature(adult_stature)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    todo = [i for i in range(n) if not (out / f"{_name(i)}.npz").is_file()]
    if len(todo) < n:
        log.info("synth resumes: %d of the %d files are already in %s", n - len(todo), n, out)
    counts: Counter[str] = Counter()
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n, initial=n - len(todo), desc="synth", unit="sample")
    try:
        for action in _synthesized(todo, seed, out, (body, types, with_vertices, population), jobs):
            counts[action] += 1
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    dt = time.perf_counter() - start
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    per = f" ({dt / len(todo):.2f} s/sample)" if todo else ""
    print(f"synth: wrote {len(todo)} files to {out} in {dt:.1f} s{per}, {n - len(todo)} already there: {summary}")
    return 0


def _adult_stature(values: Sequence[float] | None) -> tuple | None:
    """``--adult-stature`` checked -> SynthConfig.adult_stature (None: anny's own height draw)."""
    if values is None:
        return None
    values = tuple(float(v) for v in values)
    if len(values) != 3 or not 0.5 < values[0] < 2.5 or not 0.5 < values[1] < 2.5 or not 0 < values[2] < 0.5:
        raise UserError("--adult-stature takes WOMEN MEN SPREAD in metres, e.g. 1.63 1.77 0.07")
    return values


def _name(i: int) -> str:
    return f"synth_{i:05d}"


def _synthesized(indices: list[int], seed: int, out: Path, setup: tuple, jobs: int) -> Iterator[str]:
    """Write each sample of ``indices``; yields its action as each is written (in order of completion)."""
    if jobs == 1 or len(indices) < 2:
        _make_synthesizer(*setup)
        for i in indices:
            yield _write_sample(seed, i, out)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    with ProcessPoolExecutor(min(jobs, len(indices)), mp_context=multiprocessing.get_context("spawn"),
                             initializer=_make_synthesizer, initargs=setup) as pool:
        futures = [pool.submit(_write_sample, seed, i, out) for i in indices]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:  # an error or Ctrl-C: no sample is started after this
            for future in futures:
                future.cancel()


_SYNTH: dict = {}  # this process's synthesizer (``_make_synthesizer``)


def _make_synthesizer(body: str, types: tuple, with_vertices: bool, adult_stature: tuple | None) -> None:
    import torch

    from socialmirror.body import build_body_model
    from socialmirror.data.synth.synthesizer import InteractionSynthesizer, SynthConfig
    torch.set_num_threads(1)
    config = SynthConfig(types=types, with_vertices=with_vertices, adult_stature=adult_stature)
    _SYNTH["synth"] = InteractionSynthesizer(build_body_model(body), config)


def _write_sample(seed: int, i: int, out: Path) -> str:
    seq = _SYNTH["synth"].sample(np.random.default_rng([seed, i]), name=_name(i))
    write_npz(seq, out / f"{_name(i)}.npz")
    return seq.action or "?"
