"""Synthetic two-person interactions with the body model (design.md, "Data": the synthesizer).

``InteractionSynthesizer(body, SynthConfig()).sample(rng)`` returns one interchange
``TwoPersonSequence`` with the action label, the annotator-format contacts measured on the final
surfaces and the two Table-1 sentences. ``socialmirror.data.synth.cli.synth_main`` writes folders of them.
"""
from socialmirror.data.synth.synthesizer import INTERACTIONS, InteractionSynthesizer, SynthConfig

__all__ = ["INTERACTIONS", "InteractionSynthesizer", "SynthConfig"]
