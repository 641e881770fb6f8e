"""SocialMirror: two-person 3D motion reconstruction from monocular video.

``socialmirror.reconstruct(video, output_dir, ReconstructConfig(...))`` is the Python API of the
``socialmirror reconstruct`` command, ``socialmirror.annotate(video, annotations_json, ...)`` of
``socialmirror annotate`` (see ``socialmirror.api``; the stages are ``socialmirror.pipeline``).
"""

__version__ = "0.1.0"


def __getattr__(name):
    # Imported lazily so `import socialmirror` stays light (no torch, no MediaPipe) until needed.
    if name in ("reconstruct", "annotate", "ReconstructConfig", "ReconstructionResult"):
        from socialmirror import api
        return getattr(api, name)
    raise AttributeError(f"module 'socialmirror' has no attribute {name!r}")
