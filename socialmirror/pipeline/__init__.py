"""The pipeline: the one place the stages meet.

    video ─► perceive ─► pair ─► draft ─► annotate ─► encode_text ─► estimate ─► export
             Perception  PairObservation  MotionEstimate  Annotations  TextFeatures  MotionEstimate  files

* ``stages``   the stage functions (and ``semantic_inputs``, the semantic half draft -> annotate ->
               encode_text), called by ``reconstruct`` and ``annotate`` (``socialmirror.api``) and by
               ``evaluate`` (which feeds ``pair``'s record from simulated observations instead of a video)
* ``export``   the ``export`` stage: every output file
* ``records``  the typed records the stages hand each other (and store), the settings they take
* ``cache``    ``StageCache``: every stage's record under a key of everything it depends on

The pipeline may use every lower layer (inference, models, perception, semantics, render, body, geometry,
data); nothing below it imports it, and it never imports the API or the command line.
"""
from socialmirror.pipeline.cache import CACHE_VERSION, StageCache
from socialmirror.pipeline.export import Reconstruction, export
from socialmirror.pipeline.records import (AnnotatorSettings, CameraSettings, ExportOptions, Models, OutputFiles,
                                           PairObservation, Perception, Semantics, TextFeatures, VideoInput)
from socialmirror.pipeline.stages import (annotate, draft, encode_text, estimate, load_models, pair, people, perceive,
                                          reprojection_error_px, scene, semantic_inputs)

__all__ = ["CACHE_VERSION", "AnnotatorSettings", "CameraSettings", "ExportOptions", "Models", "OutputFiles",
           "PairObservation", "Perception", "Reconstruction", "Semantics", "StageCache", "TextFeatures",
           "VideoInput", "annotate", "draft", "encode_text", "estimate", "export", "load_models", "pair",
           "people", "perceive", "reprojection_error_px", "scene", "semantic_inputs"]
