"""Synthetic two-person interactions with the body model (docs/architecture.md, "Data and training").

``InteractionSynthesizer(body, SynthConfig()).sample(rng)`` returns one interchange
``TwoPersonSequence`` with the action label, the annotator-format contacts measured on the final
surfaces, the two Table-1 sentences and the exact body parameters (``meta["body_params"]``).
``socialmirror.data.synth.cli.synth_main`` writes folders of them; ``synthesize_dataset`` is what the
``synth:N`` data spec calls.
"""
from __future__ import annotations

import numpy as np

from socialmirror.data.synth.synthesizer import INTERACTIONS, InteractionSynthesizer, SynthConfig

__all__ = ["INTERACTIONS", "InteractionSynthesizer", "SynthConfig", "synthesize_dataset"]


def synthesize_dataset(n: int, seed: int = 0, types=None, progress: bool = True):
    """``n`` sequences, sample ``i`` drawn from ``default_rng([seed, i])`` (the same as ``socialmirror synth``)."""
    from tqdm.auto import tqdm

    from socialmirror.body import build_body_model
    synth = InteractionSynthesizer(build_body_model("anny"), SynthConfig(types=tuple(types or ())))
    return [synth.sample(np.random.default_rng([seed, i]), name=f"synth_{i:05d}")
            for i in tqdm(range(n), desc="synth", unit="sample", disable=not progress)]
