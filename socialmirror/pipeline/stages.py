"""The stage functions: the one place the pipeline's stages are written, called by ``reconstruct``,
``annotate`` and ``evaluate`` alike.

    perceive      VideoInput -> Perception            MediaPipe (two passes) and tracking, streamed
    people        Perception -> People                who is reconstructed: the closest pair, or up to
                                                      max_people, each with their closest partner
    pair          Perception -> PairObservation       a pair's SMPL-24 keypoints, boxes, intrinsics
    draft         PairObservation -> MotionEstimate   a first 3D estimate without semantics (the `closeint`
                                                      preset): what the offline annotator reads and VLM
                                                      replies are checked against
    annotate      draft -> Annotations                VLM Annotator (Table 1) / offline / user file
    encode_text   Annotations -> TextFeatures         the sentences through the bundle's frozen encoder
    estimate      PairObservation (+ Semantics) -> MotionEstimate   the method: initial estimate -> Geometry
                                                      Optimizer -> guided infiller -> refiner
    scene         {pair: (PairObservation, MotionEstimate)} -> the same records with every person
                                                      (each from the pair with their partner)
    export        (see ``socialmirror.pipeline.export``)

``semantic_inputs`` chains draft -> annotate -> encode_text: the semantic half that ``estimate`` reads.
Every stage goes through the ``StageCache`` with what it depends on; a record from the cache and a computed
one are the same record.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from socialmirror.config import ConfigError, available_cores
from socialmirror.errors import InputError
from socialmirror.pipeline.cache import StageCache
from socialmirror.pipeline.records import (ANNOTATIONS_CODEC, ESTIMATE_CODEC, PAIR_CODEC, TEXT_CODEC,
                                           AnnotatorSettings, CameraSettings, Models, PairObservation,
                                           Perception, Semantics, TextFeatures, VideoInput, tracks_codec)

log = logging.getLogger(__name__)

# The semantics-free pass every annotation is made from; fixed (not the run's method) so the annotations do
# not move when the method is tuned.
DRAFT_METHOD = "closeint"


# ------------------------------------------------------------------------------------------------ models
def load_models(checkpoint: str | Path | None = None, device: str = "cpu") -> Models:
    """The bundle (default: the shipped weights) and the anny body model the networks work in."""
    from socialmirror.body import build_body_model
    from socialmirror.models.bundle import default_bundle_path, load_bundle
    path = Path(checkpoint).expanduser() if checkpoint else default_bundle_path()
    bundle = load_bundle(path, map_location=device)
    return Models(bundle, build_body_model("anny", device=device), path, device)


# ------------------------------------------------------------------------------------------------ stages
def perceive(video: VideoInput, cache: StageCache, max_people: int = 3, progress: bool = True,
             workers: int | None = None, bridge: bool = True, unfuse: bool = True) -> Perception:
    """Everyone detected and tracked through the video. The detections are checkpointed in the cache as they
    are made, so an interrupted run resumes mid-video. ``workers`` frames are detected at once, each by its own
    detector (None: one per CPU core, at most 4); the detections do not depend on it. ``bridge``: a tracked
    person's missed frames are looked at again where they were a frame earlier (``perception.bridge``).
    ``unfuse``: the half of a skeleton fitted across two bodies that is the other person's is let go
    (``perception.fused``)."""
    depends_on = [video.fingerprint(), max_people, bridge, unfuse]

    def compute() -> Perception:
        from socialmirror.perception.bridge import BridgeConfig
        from socialmirror.perception.fused import FusedConfig
        from socialmirror.perception.pipeline import DetectionCheckpoint, detect_and_track
        from socialmirror.perception.pose import MediaPipePoseDetector
        work = cache.work_dir("tracks", depends_on)
        checkpoint = None if work is None else DetectionCheckpoint(work)
        tracks = detect_and_track(video.path, detector=partial(MediaPipePoseDetector, num_poses=max(2, max_people)),
                                  progress=progress, fps=video.fps, checkpoint=checkpoint,
                                  workers=workers or min(4, available_cores()),
                                  bridge=BridgeConfig() if bridge else None,
                                  unfuse=FusedConfig() if unfuse else None)
        if len(tracks.ids) == 0:
            raise InputError(f"no person found in {video.path}")
        return Perception(video, tracks)
    return cache.fetch("tracks", depends_on, compute, tracks_codec(video))


def people(perception: Perception, max_people: int = 2):
    """Who is reconstructed (``perception.tracking.People``): the closest pair, or with ``max_people`` above two
    everyone seen often enough up to that many, each with their closest partner. Logs the choice when more
    people were tracked than are reconstructed."""
    from socialmirror.perception.tracking import people_seen, select_people
    chosen = select_people(perception.tracks, max_people)
    tracked = np.sort(people_seen(perception.tracks))
    if len(tracked) > len(chosen.ids):
        what = (f"the closest pair: ids {chosen.ids[0]} and {chosen.ids[1]} (--max-people {len(tracked)} "
                "reconstructs each of them)" if len(chosen.ids) == 2 else
                f"{len(chosen.ids)}: ids {', '.join(map(str, chosen.ids))}")
        log.warning("%d people tracked (ids %s); reconstructing %s", len(tracked),
                    ", ".join(map(str, tracked.tolist())), what)
    if len(chosen.ids) > 2:
        log.info("reconstructing %d people in the pairs %s", len(chosen.ids),
                 ", ".join(f"({a}, {b})" for a, b in chosen.pairs))
    return chosen


def pair(perception: Perception, cache: StageCache, camera: CameraSettings = CameraSettings(),
         ids: tuple[int, int] | None = None) -> PairObservation:
    """Two people (``ids``; default the closest pair, paper Sec. 1.1) as the 3D stages see them."""
    tracks = perception.tracks

    def compute() -> PairObservation:
        from socialmirror.body.keypoints import keypoints_to_boxes, to_smpl24, to_smpl24_points
        from socialmirror.perception.tracking import FAR_APART, pair_distances, select_closest_pair
        chosen = tuple(ids) if ids is not None else select_closest_pair(tracks)
        notes = []
        distances = pair_distances(tracks)
        apart = distances.get((chosen[0], chosen[1]), distances.get((chosen[1], chosen[0]), (np.inf, 0)))[0]
        if apart > FAR_APART:
            notes.append(f"the two people (ids {chosen[0]} and {chosen[1]}) are {apart:.1f} body heights apart in "
                         f"the image (median): too far apart to interact? The result may not be a pair")
        # Built exactly like the observation model that the networks were trained on.
        smpl24 = to_smpl24(tracks.pair_keypoints(chosen))
        keypoints2d, boxes, detected = keypoints_to_boxes(smpl24)
        if not detected.any(axis=0).all():
            raise InputError("one of the two people is never detected well enough to reconstruct")
        width, height = (int(v) for v in tracks.image_size)
        K = camera.matrix(width, height)
        world = to_smpl24_points(tracks.pair_world(chosen)).astype(np.float32)
        up = world_up(keypoints2d, K, camera.level, world)
        return PairObservation(keypoints2d, boxes, K, (width, height), tracks.fps,
                               np.asarray(chosen, dtype=np.int64), up, notes=tuple(notes), world_joints=world,
                               world_confidence=smpl24[..., 2].astype(np.float32))
    observation = cache.fetch("pair", [tracks.ids, tracks.keypoints, tracks.world, tracks.boxes, tracks.image_size,
                                       tracks.fps, camera, None if ids is None else list(ids)], compute, PAIR_CODEC)
    for note in observation.notes:
        log.warning(note)
    return observation


def world_up(keypoints2d: np.ndarray, K: np.ndarray, level: bool,
             world_joints: np.ndarray) -> tuple[float, float, float]:
    """The world's up in the camera frame: from the camera's pitch estimated from the people's feet and heads
    (``geometry.ground``), around the pitch their bodies show in MediaPipe's 3D (``world_joints``, SMPL-24, NaN
    where not given: then a level camera), or a level camera's (-y) when ``level``."""
    if level:
        return (0.0, -1.0, 0.0)
    from socialmirror.body.keypoints import body_axes, feet_and_heads
    from socialmirror.geometry.ground import estimate_floor, landmark_prior
    prior = landmark_prior(body_axes(world_joints))
    floor = estimate_floor(*feet_and_heads(keypoints2d), K, prior)
    log.info("camera pitch %.1f deg (+- %.1f) from %d person-frames of feet and heads, around %.1f from the "
             "bodies' 3D", np.degrees(floor.pitch), np.degrees(floor.pitch_sigma), floor.samples,
             np.degrees(prior.pitch))
    return tuple(float(v) for v in floor.up)


def scene(chosen, parts: dict) -> tuple[PairObservation, object]:
    """The people of ``chosen`` (``people``) in one observation and one ``MotionEstimate``, persons in the order
    of ``chosen.ids``: each person as reconstructed with their partner. ``parts``: {pair of ids: (observation,
    estimate)} for ``chosen.pairs``. Two people: their pair's own records."""
    from socialmirror.inference.estimator import MotionEstimate
    if len(parts) == 1:
        return next(iter(parts.values()))
    sources = []  # (observation, estimate, person index in that pair) per person
    for i, partner in zip(chosen.ids, chosen.partners):
        key = next(k for k in parts if set(k) == {i, partner})
        obs, est = parts[key]
        sources.append((obs, est, int(np.flatnonzero(np.asarray(obs.track_ids) == i)[0])))
    stack = (lambda arrays, axis=1: None if any(a is None for a in arrays)  # noqa: E731
             else np.stack([np.take(a, k, axis=axis) for a, (_, _, k) in zip(arrays, sources)], axis=axis))
    obs0, est0 = next(iter(parts.values()))
    observation = replace(obs0, keypoints2d=stack([o.keypoints2d for o, _, _ in sources]),
                          boxes=stack([o.boxes for o, _, _ in sources]), track_ids=np.asarray(chosen.ids, np.int64),
                          notes=tuple(n for o, _ in parts.values() for n in o.notes),
                          world_joints=stack([o.world_joints for o, _, _ in sources]),
                          world_confidence=stack([o.world_confidence for o, _, _ in sources]),
                          statures=stack([o.statures for o, _, _ in sources], axis=0))
    fields = {name: stack([getattr(e, name) for _, e, _ in sources], axis=0 if name == "shape" else 1)
              for name in MotionEstimate._ARRAYS}
    timings = {}
    for _, est in parts.values():
        for k, v in est.timings.items():
            timings[k] = timings.get(k, 0.0) + v
    warnings = [f"pair {tuple(int(v) for v in key)}: {w}" for key, (_, est) in parts.items() for w in est.warnings]
    return observation, MotionEstimate(**fields, timings=timings, method=est0.method, warnings=warnings)


def _observed(observation: PairObservation) -> list:
    """What the 3D stages read of the observation (their cache keys)."""
    return [observation.keypoints2d, observation.boxes, observation.intrinsics, observation.image_size,
            observation.world_joints, observation.world_confidence, observation.up, observation.statures]


def _estimator(models: Models, method, seed: int):
    from socialmirror.inference.estimator import TwoPersonMotionEstimator
    from socialmirror.inference.methods import method_config
    config = method_config(method)
    clip_len = models.bundle.config.clip_len
    if config.stride > clip_len:
        raise ConfigError(f"method.stride: {config.stride} exceeds the clip length the bundle was trained on "
                          f"({clip_len}), which would leave frames out")
    return TwoPersonMotionEstimator(models.bundle, models.body, method=config, device=models.device, seed=seed)


def draft(models: Models, observation: PairObservation, cache: StageCache, seed: int = 0,
          progress: bool = True):
    """A first 3D estimate without semantics (the `closeint` preset)."""
    estimator = _estimator(models, DRAFT_METHOD, seed)

    def compute():
        # The draft reads the 2D evidence only (the offline annotator was measured on such drafts).
        return estimator.estimate(replace(observation, world_joints=None, world_confidence=None),
                                  progress=progress)
    return cache.fetch("draft", [_observed(observation), models.fingerprint(), estimator.config, seed], compute,
                       ESTIMATE_CODEC)


def annotate(observation: PairObservation, draft_estimate, cache: StageCache,
             settings: AnnotatorSettings = AnnotatorSettings(), seed: int = 0, perception: Perception | None = None):
    """Per clip, two sentences and the contacts: from the VLM (it sees the crops around the pair, so it needs
    ``perception``), the offline annotator (from the draft) or the user's file."""
    crops = None
    if settings.source == "openai":
        if perception is None:
            raise InputError("the openai annotator needs the video (it is shown the crops around the pair)")
        crops = [perception.video.fingerprint(), perception.tracks.boxes, observation.track_ids]

    def compute():
        from socialmirror.semantics.annotator import annotate_clips, vlm_client
        frames = client = None
        if crops is not None:
            frames = _ClipCrops(perception, observation.track_ids)
            client = vlm_client(settings.vlm_url, settings.vlm_model, timeout=settings.vlm_timeout)
        with frames if frames is not None else contextlib.nullcontext():
            return annotate_clips(settings.source, num_frames=observation.num_frames, frames=frames,
                                  joints3d=draft_estimate.joints, keypoints2d=observation.keypoints2d,
                                  up=observation.up, client=client, seed=seed)
    return cache.fetch("annotations", [draft_estimate.joints, observation.num_frames, observation.keypoints2d,
                                       observation.up, settings.fingerprint(), seed, crops], compute,
                       ANNOTATIONS_CODEC)


def encode_text(models: Models, annotations, cache: StageCache, encoder: str | None = None) -> TextFeatures:
    """Both sentences of every clip through the frozen sentence encoder (default: the one the bundle's text
    ControlNet was trained on)."""
    spec = encoder or models.text_encoder
    sentences = [s for clip in annotations.clips for s in clip.text]

    def compute() -> TextFeatures:
        embeddings = models.sentence_encoder(spec).encode(sentences).numpy().astype(np.float32)
        return TextFeatures(spec, embeddings.reshape(len(annotations.clips), 2, embeddings.shape[-1]))
    text = cache.fetch("text", [spec, sentences], compute, TEXT_CODEC)
    expected = models.bundle.config.infiller.text_input_dim
    if models.bundle.infiller.controlnet is not None and text.embeddings.shape[-1] != expected:
        raise ConfigError(f"text_encoder: {spec!r} gives {text.embeddings.shape[-1]}-d embeddings; the bundle's "
                          f"text ControlNet was trained on {expected}-d ones ({models.text_encoder!r})")
    return text


def semantic_inputs(models: Models, observation: PairObservation, cache: StageCache,
                    annotator: AnnotatorSettings = AnnotatorSettings(), seed: int = 0,
                    perception: Perception | None = None, text_encoder: str | None = None,
                    progress: bool = True) -> Semantics:
    """The semantic half: draft -> annotate -> encode_text."""
    first = draft(models, observation, cache, seed=seed, progress=progress)
    annotations = annotate(observation, first, cache, annotator, seed=seed, perception=perception)
    return Semantics(annotations, encode_text(models, annotations, cache, encoder=text_encoder))


def estimate(models: Models, observation: PairObservation, method, cache: StageCache, seed: int = 0,
             semantics: Semantics | Callable[[], Semantics] | None = None, progress: bool = True):
    """The method's 3D estimate. ``semantics`` (or a function that makes them, called only when the method
    reads them) give the text and contacts."""
    estimator = _estimator(models, method, seed)
    reads = estimator.uses_text or estimator.uses_contacts
    if reads and callable(semantics):
        semantics = semantics()
    annotations = semantics.annotations if reads and semantics is not None else None
    text = semantics.text.embeddings if reads and semantics is not None else None

    def compute():
        return estimator.estimate(observation, annotations=annotations, text_embeddings=text, progress=progress)
    depends_on = [_observed(observation), models.fingerprint(), estimator.config, seed, annotations,
                  text if estimator.uses_text else None]
    return cache.fetch("estimate", depends_on, compute, ESTIMATE_CODEC)


def reprojection_error_px(estimate_, observation: PairObservation, min_confidence: float = 0.3) -> float:
    """Mean distance in pixels between the estimate's projected joints and the confident detected keypoints."""
    import torch

    from socialmirror.geometry.camera import project
    proj = project(torch.as_tensor(estimate_.joints), torch.as_tensor(observation.intrinsics)).numpy()
    kp = observation.keypoints2d
    confident = kp[..., 2] > min_confidence
    if not confident.any():
        return float("nan")
    return float(np.linalg.norm(proj - kp[..., :2], axis=-1)[confident].mean())


class _ClipCrops:
    """``frames(start, end)`` for the VLM: the crop around the pair in each frame of the clip, decoded in one
    pass over the video. The annotator asks for the clips in order, so the reader stays open between clips
    (reopening it for every clip decoded the video from frame 0 each time: the annotation time grew with the
    square of the length), and the last clip's crops are kept for a clip that overlaps it (the end-aligned
    last one). A clip before those reopens the video. A context manager: the reader is closed on exit."""

    def __init__(self, perception: Perception, track_ids, side: int = 512):
        from socialmirror.perception.tracking import pair_crop_boxes
        self.video = perception.video
        self.boxes = pair_crop_boxes(perception.tracks, [int(i) for i in track_ids])
        self.side = side
        self.kept: dict[int, np.ndarray] = {}
        self._reader = self._frames = None
        self._next = 0  # the index of the reader's next frame

    def __call__(self, start: int, end: int) -> list[np.ndarray]:
        if start < self._next and any(i not in self.kept for i in range(start, min(end, self._next))):
            self._open()
        crops = {i: self.kept[i] for i in range(start, min(end, self._next)) if i in self.kept}
        while self._next < end:
            index, frame = self._read()
            if index is None:
                break
            if index >= start:
                crops[index] = self._crop(index, frame)
        self.kept = crops
        return [crops[i] for i in sorted(crops)]

    def _crop(self, index: int, frame: np.ndarray) -> np.ndarray:
        from socialmirror.perception.tracking import crop_frame
        return crop_frame(frame, self.boxes[index], self.side)

    def _open(self) -> None:
        from socialmirror.perception.video import open_video
        self.close()
        self._reader = open_video(self.video.path, fps=self.video.fps)
        self._frames = iter(self._reader.__enter__())
        self._next, self.kept = 0, {}

    def _read(self) -> tuple[int | None, np.ndarray | None]:
        if self._frames is None:
            self._open()
        try:
            index, frame = next(self._frames)
        except StopIteration:
            return None, None
        self._next = index + 1
        return index, frame

    def close(self) -> None:
        if self._reader is not None:
            self._reader.__exit__(None, None, None)
        self._reader = self._frames = None

    def __enter__(self) -> "_ClipCrops":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["DRAFT_METHOD", "annotate", "draft", "encode_text", "estimate", "load_models", "pair", "perceive",
           "reprojection_error_px", "semantic_inputs"]
