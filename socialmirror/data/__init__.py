"""Two-person motion data, by what it is.

- ``formats/``: file formats (the interchange ``.npz`` folder format, BVH).
- ``datasets/``: one reader per data set and the data-spec registry (``synth:N``, ``cmu:DIR``, ...).
- ``synth/``: the synthesizer of two-person interactions (the training source of the shipped weights).
- ``observation.py``: cameras and the detector-like observation model (what the networks see in training).
- ``clips.py``: sequences cut to windows of L frames (``socialmirror.windows``) and the training clip dataset.
- ``targets.py``: body-model targets (anny parameters) for sequences given as joints or SMPL parameters.
"""
