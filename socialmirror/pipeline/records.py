"""The typed records the stages hand each other, and how each is stored in the stage cache.

    VideoInput        the input: a video file or folder of frames (and a folder's frame rate)
    Perception        stage ``perceive``: everyone tracked through the video (``Tracks``)
    PairObservation   stage ``pair``: the closest pair's SMPL-24 keypoints, CLIFF boxes, intrinsics
                      (``socialmirror.data.observation``: the one record of what the 3D stages see)
    MotionEstimate    stages ``draft`` and ``estimate`` (``socialmirror.inference``)
    Annotations       stage ``annotate`` (``socialmirror.semantics.annotations``)
    TextFeatures      stage ``encode_text``: the sentence embeddings of every clip
    OutputFiles       stage ``export``: the files written, with what they were when written
and the settings records the stages take (``AnnotatorSettings``, ``CameraSettings``, ``ExportOptions``) and
``Models`` (the loaded bundle and body model, with the checkpoint's identity).

Each stored record has a ``Codec`` (the ``*_CODEC`` constants, ``tracks_codec``): tracks and arrays as
``.npz``, annotations and the output listing as ``.json``, all written atomically.
"""
from __future__ import annotations

import json
import math
import os
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from socialmirror.data.observation import PairObservation
from socialmirror.errors import InputError
from socialmirror.io import atomic_savez, atomic_write_json
from socialmirror.pipeline.cache import Codec, StaleEntry, file_fingerprint


# ------------------------------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class VideoInput:
    path: Path
    fps: float | None = None  # frame rate of a folder of frames (None: 30); a video file has its own

    @classmethod
    def at(cls, path: str | os.PathLike, fps: float | None = None) -> "VideoInput":
        path = Path(path).expanduser()
        if not path.exists():
            raise InputError(f"input not found: {path}")
        return cls(path, fps)

    def fingerprint(self) -> list:
        """What the perception stage's result depends on of the input (its content, cheaply, and the rate)."""
        return [file_fingerprint(self.path), self.fps]


@dataclass(frozen=True)
class CameraSettings:
    """The camera's intrinsics as the user gives them; checked when made (before any work), the principal
    point against the image once its size is known."""

    focal: float | None = None  # pixels; None: the image diagonal (CloseInt)
    intrinsics: tuple[float, float, float, float] | None = None  # fx, fy, cx, cy; wins over focal
    # False: the camera's pitch estimated from the people's feet and heads over the video
    # (geometry.ground), the floor's up for the fit; True: a level camera assumed.
    level: bool = False

    def __post_init__(self):
        if self.focal is not None and not (math.isfinite(self.focal) and self.focal > 0):
            raise InputError(f"focal length must be a positive number of pixels, got {self.focal}")
        if self.intrinsics is not None:
            if len(self.intrinsics) != 4 or not all(math.isfinite(v) for v in self.intrinsics):
                raise InputError(f"intrinsics must be four finite numbers FX FY CX CY, got {self.intrinsics}")
            fx, fy, cx, cy = self.intrinsics
            if not (fx > 0 and fy > 0):
                raise InputError(f"intrinsics: the focal lengths FX FY must be positive, got {fx} {fy}")
            if cx < 0 or cy < 0:
                raise InputError(f"intrinsics: the principal point CX CY must lie in the image, got {cx} {cy}")

    def matrix(self, width: int, height: int) -> np.ndarray:
        from socialmirror.geometry.camera import focal_from_diagonal, intrinsics_matrix
        if self.intrinsics is not None:
            fx, fy, cx, cy = self.intrinsics
            if cx > width or cy > height:
                raise InputError(f"intrinsics: the principal point ({cx}, {cy}) lies outside the "
                                 f"{width}x{height} image")
            return intrinsics_matrix(fx, width, height, fy=fy, cx=cx, cy=cy).numpy()
        return intrinsics_matrix(self.focal or focal_from_diagonal(width, height), width, height).numpy()


@dataclass(frozen=True)
class AnnotatorSettings:
    source: str = "offline"  # offline | openai | file:PATH
    vlm_url: str | None = None
    vlm_model: str | None = None
    vlm_timeout: float = 30.0  # seconds for the whole request of one clip (attempts, waits, reading)

    def __post_init__(self):
        if not (math.isfinite(self.vlm_timeout) and self.vlm_timeout > 0):
            raise InputError(f"--vlm-timeout must be a positive number of seconds, got {self.vlm_timeout}")
        if self.vlm_url is not None:
            parts = urllib.parse.urlsplit(self.vlm_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise InputError(f"--vlm-url must be an http(s) URL such as http://127.0.0.1:8000/v1, "
                                 f"got {self.vlm_url!r}")

    def fingerprint(self) -> list:
        """The settings, and for ``file:PATH`` the file's identity (editing the file re-annotates)."""
        user_file = None
        if self.source.startswith("file:"):
            path = Path(self.source[5:]).expanduser()
            user_file = file_fingerprint(path) if path.is_file() else None
        # A longer deadline may turn a clip's fallback into the VLM's answer: it is part of the key.
        return [self.source, self.vlm_url, self.vlm_model, user_file,
                self.vlm_timeout if self.source == "openai" else None]


@dataclass(frozen=True)
class ExportOptions:
    body: str = "anny"  # output body model spec (recorded in result.npz)
    meshes: str | None = None  # None | "obj": per-frame meshes
    render: bool = True
    viewer: bool = True
    exports: tuple[str, ...] = ()  # EXPORT_FORMATS: files for other tools (bvh, glb, smpl)
    render_view: str = "both"  # RENDER_VIEWS: what render.mp4 shows


# What render.mp4 shows: the camera view (the frames with the meshes overlaid) beside the side view, or either.
RENDER_VIEWS = ("both", "overlay", "side")

# The formats of ``--export``, each written by ``pipeline.export``.
EXPORT_FORMATS = ("bvh", "glb", "smpl")


@dataclass
class Models:
    """The trained networks and the body model they work in (anny), with the checkpoint's identity."""

    bundle: Any  # socialmirror.models.bundle.ModelBundle
    body: Any  # the networks' own body model
    checkpoint: Path
    device: str = "cpu"
    _encoders: dict = field(default_factory=dict, repr=False)  # spec -> loaded sentence encoder

    def fingerprint(self) -> list:
        return [str(self.checkpoint), file_fingerprint(self.checkpoint), self.device]

    @property
    def text_encoder(self) -> str:
        """The sentence encoder the bundle's text ControlNet was trained on."""
        return self.bundle.config.text_encoder

    def sentence_encoder(self, spec: str | None = None):
        """The sentence encoder ``spec`` (default: the bundle's), loaded once per ``Models`` (an evaluation
        encodes the sentences of many sequences)."""
        spec = spec or self.text_encoder
        if spec not in self._encoders:
            from socialmirror.semantics.text_encoder import get_text_encoder
            try:
                self._encoders[spec] = get_text_encoder(spec)
            except ValueError as exc:
                raise InputError(str(exc)) from None
        return self._encoders[spec]


# ------------------------------------------------------------------------------------------------ records
@dataclass
class Perception:
    video: VideoInput
    tracks: Any  # socialmirror.perception.tracking.Tracks


@dataclass
class TextFeatures:
    encoder: str  # the get_text_encoder spec that produced them
    embeddings: np.ndarray  # (num_clips, 2, E) float32, the two sentences of every clip in order

    def save(self, path: Path) -> Path:
        return atomic_savez(path, encoder=np.asarray(self.encoder), embeddings=self.embeddings)

    @classmethod
    def load(cls, path: Path) -> "TextFeatures":
        with np.load(path, allow_pickle=False) as z:
            return cls(str(z["encoder"]), z["embeddings"])


@dataclass
class Semantics:
    """What the semantic methods read besides the observation: the annotations and their sentences' features."""

    annotations: Any  # socialmirror.semantics.annotations.Annotations
    text: TextFeatures


@dataclass
class OutputFiles:
    """The files ``export`` wrote (name -> path) and what each was then, so a changed or deleted file is
    noticed: size and modification time of a file, the listing of a folder."""

    files: dict[str, Path] = field(default_factory=dict)
    stats: dict[str, list] = field(default_factory=dict)
    run: str = ""  # the id of the run that wrote them (manifest.json)

    @classmethod
    def of(cls, files: dict[str, Path], run: str = "") -> "OutputFiles":
        return cls(dict(files), {name: _stat(path) for name, path in files.items()}, run)

    def save(self, path: Path) -> Path:
        return atomic_write_json(path, {"files": {k: str(v) for k, v in self.files.items()}, "stats": self.stats,
                                        "run": self.run})

    @classmethod
    def load(cls, path: Path) -> "OutputFiles":
        data = json.loads(Path(path).read_text())
        out = cls({k: Path(v) for k, v in data["files"].items()}, data["stats"], data.get("run", ""))
        for name, file in out.files.items():
            if not file.exists() or _stat(file) != out.stats.get(name):
                raise StaleEntry(f"{file} changed since it was written")
        return out


def _stat(path: Path) -> list:
    path = Path(path)
    if path.is_dir():
        return sorted([p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in path.iterdir())
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


# ------------------------------------------------------------------------------------------------ codecs
def tracks_codec(video: VideoInput) -> Codec[Perception]:
    """The perception record's codec: the tracks file (the record carries the video it was read from)."""
    def read(path: Path) -> Perception:
        from socialmirror.perception.tracking import Tracks
        return Perception(video, Tracks.load(path))
    return Codec(".npz", lambda record, path: record.tracks.save(path), read)


def _read_estimate(path: Path):
    from socialmirror.inference.estimator import MotionEstimate
    with np.load(path, allow_pickle=False) as z:
        return MotionEstimate.from_arrays({k: z[k] for k in z.files})


def _read_annotations(path: Path):
    from socialmirror.semantics.annotations import Annotations
    return Annotations.read(path)


ESTIMATE_CODEC: Codec = Codec(".npz", lambda est, path: atomic_savez(path, **est.to_arrays()), _read_estimate)
ANNOTATIONS_CODEC: Codec = Codec(".json", lambda ann, path: ann.write(path), _read_annotations)
PAIR_CODEC: Codec[PairObservation] = Codec(".npz", PairObservation.save, PairObservation.load)
TEXT_CODEC: Codec[TextFeatures] = Codec(".npz", TextFeatures.save, TextFeatures.load)
OUTPUTS_CODEC: Codec[OutputFiles] = Codec(".json", OutputFiles.save, OutputFiles.load)

