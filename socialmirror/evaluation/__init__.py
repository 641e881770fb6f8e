"""Evaluation protocols (`socialmirror evaluate`) and speed benchmarks (`socialmirror bench`)."""
