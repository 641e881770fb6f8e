"""The Python API: ``reconstruct`` (video -> both people's 3D motion and the output files) and ``annotate``
(video -> the annotations only), configured by one dataclass, ``ReconstructConfig``.

Both run the pipeline's stages (``socialmirror.pipeline``), each cached in ``OUTDIR/.cache`` under a key of
everything it depends on, so a rerun or an interrupted run resumes where it stopped and ``force=True``
recomputes:

    perceive -> pair -> draft -> annotate -> encode_text -> estimate -> export
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from socialmirror import pipeline
from socialmirror.config import ConfigError, check_device, check_seed, check_statures, check_threads, to_dict
from socialmirror.data.observation import stated_statures
from socialmirror.errors import InputError
from socialmirror.inference.methods import MethodConfig, method_config
from socialmirror.io import output_file, output_folder, output_lock, remove_stale_temporaries
from socialmirror.pipeline import AnnotatorSettings, CameraSettings, ExportOptions, StageCache, VideoInput

log = logging.getLogger(__name__)


def _default_method() -> MethodConfig:
    return method_config("socialmirror")


@dataclass
class ReconstructConfig:
    """Everything ``reconstruct`` and ``annotate`` take (``socialmirror reconstruct`` / ``annotate``, and the
    keys of their ``--config`` files and ``--set`` overrides)."""

    annotator: str = "offline"  # offline | openai | file:PATH
    vlm_url: str | None = None
    vlm_model: str | None = None
    vlm_timeout: float = 30.0  # seconds per clip request, retries included; then the offline annotator
    body: str = "anny"  # anny | smpl:DIR | smplx:DIR (output meshes; the models work in anny)
    focal: float | None = None  # pixels; default: the image diagonal (CloseInt)
    intrinsics: tuple[float, float, float, float] | None = None  # fx, fy, cx, cy
    level_camera: bool = False  # True: assume a level camera (default: its pitch estimated from the people)
    checkpoint: str | None = None  # default: the shipped weights
    device: str = "cpu"
    # The method: a preset (socialmirror, closeint, independent, or an ablation; a name is accepted, e.g.
    # method="closeint") and any adjustment of it (method.sampling_steps, method.guidance.geometry, ...).
    method: MethodConfig = field(default_factory=_default_method)
    text_encoder: str | None = None  # None: the one the bundle's text ControlNet was trained on
    fps: float | None = None  # for a folder of frames (default 30)
    # People reconstructed, at most: 2, the closest pair; more, everyone seen in a tenth of the frames up to this
    # many, each with their closest partner (the detector looks for at least three, to choose among them).
    max_people: int = 2
    # The people's standing heights in metres, left to right as reconstructed (0: not known): the fit's bodies
    # get them. One per person: two for the pair, up to max_people with more.
    statures: tuple[float, ...] | None = None
    seed: int = 0
    render: bool = True
    render_view: str = "both"  # both | overlay (the frames with the meshes) | side (the side view)
    viewer: bool = True
    meshes: Literal["obj"] | None = None  # "obj": per-frame meshes
    export: tuple[str, ...] = ()  # files for other tools: bvh, glb, smpl; a list or "bvh,glb,smpl"
    threads: int | None = None
    perception_workers: int | None = None  # frames detected at once (None: one per CPU core, at most 4)
    # A tracked person's missed frames looked at again where they were a frame earlier (perception.bridge).
    bridge_missed: bool = True
    # The half of a skeleton fitted across two bodies that is the other person's, let go (perception.fused).
    unfuse: bool = True
    progress: bool = True

    def __post_init__(self):
        if isinstance(self.method, str):
            self.method = method_config(self.method)
        from socialmirror.semantics.annotator import parse_source
        try:
            parse_source(self.annotator)
        except ValueError as exc:
            raise ConfigError(f"annotator: {exc}") from None
        if self.max_people < 2:
            raise ConfigError(f"max_people: at least 2 (a pair), got {self.max_people}")
        self._check_statures()
        check_seed(self.seed)
        check_threads(self.threads)
        check_threads(self.perception_workers, "perception_workers")
        check_device(self.device)
        self.export = _export_formats(self.export)
        from socialmirror.pipeline.records import RENDER_VIEWS
        if self.render_view not in RENDER_VIEWS:
            raise ConfigError(f"render_view: one of {', '.join(RENDER_VIEWS)}, got {self.render_view!r}")
        if "smpl" in self.export and self.body.split(":")[0] not in ("smpl", "smplx"):
            raise ConfigError("export: smpl writes SMPL / SMPL-X parameters, which needs that body: --body "
                              "smpl:DIR or smplx:DIR with your model files")
        self.camera()  # each settings record checks itself when made: here, before any work
        self.annotator_settings()

    def _check_statures(self) -> None:
        if self.statures is None:
            return
        if not 2 <= len(self.statures) <= self.max_people:
            raise ConfigError(f"statures: one height per person reconstructed, left to right (2 to max_people = "
                              f"{self.max_people}), got {len(self.statures)}")
        check_statures(self.statures)

    def stated_statures(self, track_ids) -> dict[int, float] | None:
        """{track id: stated height, NaN where not known} for the people reconstructed (``track_ids``, left to
        right); None when no height is stated. InputError when the count differs from the people found."""
        heights = stated_statures(self.statures)
        if heights is None:
            return None
        if len(heights) != len(track_ids):
            raise InputError(f"--statures gives {len(heights)} heights but {len(track_ids)} people are "
                             f"reconstructed (track ids {', '.join(map(str, track_ids))}, left to right)")
        return {int(i): float(h) for i, h in zip(track_ids, heights)}

    @property
    def detected_people(self) -> int:
        """People the detector looks for per frame: at least three, so the pair is chosen among them."""
        return max(3, self.max_people)

    def annotator_settings(self) -> AnnotatorSettings:
        return AnnotatorSettings(self.annotator, self.vlm_url, self.vlm_model, self.vlm_timeout)

    def camera(self) -> CameraSettings:
        return CameraSettings(self.focal, self.intrinsics, self.level_camera)

    def export_options(self) -> ExportOptions:
        return ExportOptions(self.body, self.meshes, self.render, self.viewer, self.export, self.render_view)


def _export_formats(value) -> tuple[str, ...]:
    """``--export`` as a tuple of known formats: a comma-separated string or a list."""
    from socialmirror.pipeline.records import EXPORT_FORMATS
    values = [value] if isinstance(value, str) else list(value or ())
    names = tuple(dict.fromkeys(n.strip().lower() for v in values for n in str(v).split(",") if n.strip()))
    unknown = [n for n in names if n not in EXPORT_FORMATS]
    if unknown:
        raise ConfigError(f"export: unknown format {unknown[0]!r} (known: {', '.join(EXPORT_FORMATS)})")
    return names


@dataclass
class ReconstructionResult:
    output_dir: Path
    joints3d: np.ndarray  # (T, 2, 24, 3) camera frame, metres
    pose6d: np.ndarray
    shape: np.ndarray
    transl: np.ndarray
    fps: float
    image_size: tuple[int, int]
    intrinsics: np.ndarray
    keypoints2d: np.ndarray
    track_ids: np.ndarray
    annotations_path: Path
    files: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage (read or computed), 3d/* inside
    reprojection_px: float = float("nan")
    cache: dict[str, str] = field(default_factory=dict)  # stage -> "hit" (read from OUTDIR/.cache) | "computed"


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch
        torch.set_num_threads(threads)


def reconstruct(input_path: str | os.PathLike, output_dir: str | os.PathLike,
                config: ReconstructConfig | None = None, force: bool = False) -> ReconstructionResult:
    """Reconstruct the closest pair of people in a video file or folder of frames into ``output_dir``."""
    cfg = config or ReconstructConfig()
    video = VideoInput.at(input_path, cfg.fps)
    _check_camera(video, cfg.camera())
    out = output_folder(output_dir)
    with output_lock(out):  # one run at a time per folder: two runs would interleave their files
        for path in remove_stale_temporaries(out):
            log.info("removed %s, left by an earlier run that was stopped mid-write", path)
        return _reconstruct_into(video, out, cfg, force)


def _check_camera(video: VideoInput, camera: CameraSettings) -> None:
    """Given intrinsics, the principal point against the image's size, before any work (the reader decodes
    the first frame only)."""
    if camera.intrinsics is not None:
        from socialmirror.perception.video import open_video
        with open_video(video.path, fps=video.fps) as reader:
            camera.matrix(*reader.size)


def _now() -> str:
    import datetime
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _reconstruct_into(video: VideoInput, out: Path, cfg: ReconstructConfig, force: bool) -> ReconstructionResult:
    from socialmirror.pipeline.export import new_run_id
    run = {"id": new_run_id(), "started": _now(), "input": str(video.path.resolve()), "force": force}
    _set_threads(cfg.threads)
    # Models and the output body first: a bad checkpoint or missing SMPL files fail before the video is read.
    models = pipeline.load_models(cfg.checkpoint, cfg.device)
    output_body = models.body
    if cfg.body != "anny":
        from socialmirror.body import build_body_model
        output_body = build_body_model(cfg.body, device=cfg.device)
    cache = StageCache(out / ".cache", force)
    perception = pipeline.perceive(video, cache, cfg.detected_people, progress=cfg.progress,
                                   workers=cfg.perception_workers, bridge=cfg.bridge_missed,
                                   unfuse=cfg.unfuse)
    observation, semantics, est = _reconstruct_people(models, perception, cache, cfg)
    (_, first), others = semantics[0], semantics[1:]
    timings = {**cache.seconds, **{f"3d/{k}": v for k, v in est.timings.items()}}
    files = pipeline.export(pipeline.Reconstruction(video, observation, first.annotations, est,
                                                    tuple((ids, sem.annotations) for ids, sem in others)), out, cache,
                            cfg.export_options(), output_body, timings, progress=cfg.progress,
                            run=dict(run, finished=_now(), config=to_dict(cfg)))
    timings["outputs"] = cache.seconds["outputs"]
    return ReconstructionResult(out, est.joints, est.pose6d, est.shape, est.transl, observation.fps,
                                observation.image_size, observation.intrinsics, observation.keypoints2d,
                                observation.track_ids, files["annotations"], files, timings,
                                pipeline.reprojection_error_px(est, observation), dict(cache.outcomes))


def _reconstruct_people(models, perception, cache: StageCache, cfg: ReconstructConfig):
    """The people of the video (``pipeline.people``), pair by pair (each person with their closest partner),
    joined into one scene: (observation, [(pair ids, semantics)] of every pair, the closest first, estimate)."""
    chosen = pipeline.people(perception, cfg.max_people)
    stated = cfg.stated_statures(chosen.ids)
    parts, semantics = {}, []
    for ids in chosen.pairs:
        observation = pipeline.pair(perception, cache, cfg.camera(), ids)
        if stated is not None:
            observation = replace(observation, statures=np.array([stated[int(i)] for i in observation.track_ids]))
        semantics.append((ids, pipeline.semantic_inputs(models, observation, cache, cfg.annotator_settings(),
                                                        seed=cfg.seed, perception=perception,
                                                        text_encoder=cfg.text_encoder, progress=cfg.progress)))
        parts[ids] = observation, pipeline.estimate(models, observation, cfg.method, cache, seed=cfg.seed,
                                                    semantics=semantics[-1][1], progress=cfg.progress)
    observation, est = pipeline.scene(chosen, parts)
    return observation, semantics, est


def annotate(input_path: str | os.PathLike, output_json: str | os.PathLike, config: ReconstructConfig | None = None,
             force: bool = False):
    """The stages up to the annotations, written to ``output_json`` (its cache lives beside the file)."""
    cfg = config or ReconstructConfig()
    video = VideoInput.at(input_path, cfg.fps)
    _check_camera(video, cfg.camera())
    output_json = output_file(output_json)
    _set_threads(cfg.threads)
    models = pipeline.load_models(cfg.checkpoint, cfg.device)
    cache = StageCache(output_json.parent / f".{output_json.stem}.work" / ".cache", force)
    perception = pipeline.perceive(video, cache, cfg.detected_people, progress=cfg.progress,
                                   workers=cfg.perception_workers, bridge=cfg.bridge_missed,
                                   unfuse=cfg.unfuse)
    observation = pipeline.pair(perception, cache, cfg.camera())
    first = pipeline.draft(models, observation, cache, seed=cfg.seed, progress=cfg.progress)
    annotations = pipeline.annotate(observation, first, cache, cfg.annotator_settings(), seed=cfg.seed,
                                    perception=perception)
    annotations.write(output_json)
    return annotations


def config_from_dict(values: dict) -> ReconstructConfig:
    from socialmirror.config import update
    return update(ReconstructConfig(), values)


__all__ = ["ReconstructConfig", "ReconstructionResult", "reconstruct", "annotate", "config_from_dict"]
