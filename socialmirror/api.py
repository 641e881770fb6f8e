"""`socialmirror reconstruct`: video -> both people's 3D motion, as one resumable pipeline.

Stages (design.md), each cached in ``OUTDIR/.cache`` under a key of everything it depends on, so a rerun or
an interrupted run resumes where it stopped and ``force=True`` recomputes:

1. perception   detect and track everyone (MediaPipe, two passes), streamed        -> tracks.npz
2. pair         the closest pair, their SMPL-24 keypoints, boxes and intrinsics  -> pair.npz
3. geometry     a first 3D estimate without semantics (the offline annotator and the VLM reply's
                confidence are computed from it)                                  -> draft.npz
4. annotate     VLM Annotator (Table 1 protocol) / offline / user file           -> annotations.json
5. estimate     initial estimate -> Geometry Optimizer -> Semantic-Guided Motion Infiller -> Temporal
                Motion Refiner                                                   -> estimate.npz
6. outputs      result.npz, annotations.json, render.mp4, viewer.html (and meshes on request)
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from socialmirror.body import build_body_model
from socialmirror.errors import InputError
from socialmirror.io import atomic_savez, atomic_write_json

log = logging.getLogger(__name__)
CACHE_VERSION = 1


@dataclass
class ReconstructConfig:
    annotator: str = "offline"  # offline | openai | file:PATH
    vlm_url: str | None = None
    vlm_model: str | None = None
    body: str = "anny"  # anny | smpl:DIR | smplx:DIR (output meshes; the models work in anny)
    focal: float | None = None  # pixels; default: the image diagonal (CloseInt)
    intrinsics: tuple[float, float, float, float] | None = None  # fx, fy, cx, cy
    checkpoint: str | None = None  # default: the shipped weights
    device: str = "cpu"
    method: str = "socialmirror"  # or a baseline / ablation preset (see socialmirror.inference)
    disable_guidance: tuple[str, ...] = ()  # geometry, contact, penetration, reprojection
    fps: float | None = None  # for a folder of frames (default 30)
    max_people: int = 3  # people the detector looks for per frame (the closest two are reconstructed)
    seed: int = 0
    render: bool = True
    viewer: bool = True
    meshes: str | None = None  # None | "obj": per-frame meshes
    threads: int | None = None
    progress: bool = True


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
    timings: dict[str, float] = field(default_factory=dict)
    reprojection_px: float = float("nan")


class _StageCache:
    """One .npz per stage plus the key it was computed under; a different key recomputes."""

    def __init__(self, root: Path, force: bool):
        self.root = root / ".cache"
        self.force = force

    @staticmethod
    def key(*parts) -> str:
        blob = json.dumps(parts, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:20]

    def load(self, name: str, key: str) -> dict | None:
        path, meta = self.root / f"{name}.npz", self.root / f"{name}.key"
        if self.force or not path.is_file() or not meta.is_file() or meta.read_text().strip() != key:
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed, never fatal
            log.warning("cache entry %s is unreadable; recomputing", path)
            return None

    def save(self, name: str, key: str, **arrays) -> None:
        atomic_savez(self.root / f"{name}.npz", **arrays)
        tmp = self.root / f".{name}.key.tmp"
        tmp.write_text(key)
        os.replace(tmp, self.root / f"{name}.key")


def input_fingerprint(path: Path) -> list:
    """What identifies the input's content cheaply: names, sizes and modification times."""
    if path.is_dir():
        return sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in path.iterdir() if p.is_file())
    st = path.stat()
    return [path.name, st.st_size, int(st.st_mtime)]


def _intrinsics(cfg: ReconstructConfig, width: int, height: int) -> np.ndarray:
    from socialmirror.geometry.camera import focal_from_diagonal, intrinsics_matrix
    if cfg.intrinsics is not None:
        fx, fy, cx, cy = cfg.intrinsics
        return intrinsics_matrix(fx, width, height, fy=fy, cx=cx, cy=cy).numpy()
    focal = cfg.focal if cfg.focal else focal_from_diagonal(width, height)
    if focal <= 0:
        raise InputError(f"focal length must be positive, got {focal}")
    return intrinsics_matrix(focal, width, height).numpy()


def select_pair(tracks) -> tuple[tuple[int, int], str | None]:
    """The two closest people (paper Sec. 1.1); a message when the choice was among more than two."""
    from socialmirror.perception.tracking import select_closest_pair
    pair = select_closest_pair(tracks)
    note = None
    # Count people, not fragments: a track seen in under a tenth of the frames is a stray detection.
    frames_seen = tracks.present.sum(axis=1)
    people = tracks.ids[frames_seen >= max(3, 0.1 * tracks.present.shape[1])]
    if len(people) > 2:
        note = (f"{len(people)} people tracked (ids {', '.join(map(str, people.tolist()))}); "
                f"reconstructing the closest pair: ids {pair[0]} and {pair[1]}")
    return pair, note


def pair_observation(tracks, pair) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SMPL-24 keypoints (T, 2, 24, 3), boxes (T, 2, 3) and detected (T, 2) of the pair, built exactly like the
    observation model that the networks were trained on."""
    from socialmirror.data.observation import keypoints_to_boxes
    from socialmirror.perception.pose import to_smpl24
    kp = to_smpl24(tracks.pair_keypoints(pair))
    return keypoints_to_boxes(kp)


@dataclass
class _Front:
    """What the first two stages give every later stage."""
    src: Path
    out: Path
    cache: "_StageCache"
    tracks: object
    pair: tuple[int, int]
    keypoints2d: np.ndarray
    boxes: np.ndarray
    K: np.ndarray
    image_size: tuple[int, int]
    key: list


def _front(input_path, output_dir, cfg: ReconstructConfig, force: bool, timings: dict) -> _Front:
    """Stages 1-2: perception (cached) and the closest pair's observation."""
    src = Path(input_path).expanduser()
    if not src.exists():
        raise InputError(f"input not found: {src}")
    out = Path(output_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cache = _StageCache(out, force)
    from socialmirror.perception.tracking import Tracks
    t0 = time.perf_counter()
    k_perception = cache.key(CACHE_VERSION, "perception", input_fingerprint(src), cfg.fps, cfg.max_people)
    tracks_path, key_path = cache.root / "tracks.npz", cache.root / "tracks.key"
    if not force and key_path.is_file() and tracks_path.is_file() and key_path.read_text().strip() == k_perception:
        tracks = Tracks.load(tracks_path)
    else:
        from socialmirror.perception.pipeline import detect_and_track
        from socialmirror.perception.pose import MediaPipePoseDetector
        with MediaPipePoseDetector(num_poses=max(2, cfg.max_people)) as detector:
            tracks = detect_and_track(src, detector=detector, progress=cfg.progress, fps=cfg.fps)
        if len(tracks.ids) == 0:
            raise InputError(f"no person found in {src}")
        tracks.save(tracks_path)
        key_path.write_text(k_perception)
    timings["perception"] = time.perf_counter() - t0
    pair, note = select_pair(tracks)
    if note:
        log.warning(note)
    keypoints2d, boxes, detected = pair_observation(tracks, pair)
    width, height = (int(v) for v in tracks.image_size)
    if not detected.any(axis=0).all():
        raise InputError("one of the two people is never detected well enough to reconstruct")
    return _Front(src, out, cache, tracks, tuple(int(p) for p in pair), keypoints2d, boxes,
                  _intrinsics(cfg, width, height), (width, height), [k_perception, [int(p) for p in pair]])


def reconstruct(input_path: str | os.PathLike, output_dir: str | os.PathLike,
                config: ReconstructConfig | None = None, force: bool = False) -> ReconstructionResult:
    """Reconstruct the closest pair of people in a video file or folder of frames into ``output_dir``."""
    cfg = config or ReconstructConfig()
    timings: dict[str, float] = {}
    # Models and the output body first: a bad checkpoint or missing SMPL files fail before the video is read.
    models = _Models.load(cfg)
    output_body = models.body if cfg.body == "anny" else build_body_model(cfg.body, device=cfg.device)
    f = _front(input_path, output_dir, cfg, force, timings)
    draft = _draft(models, f, cfg, timings)
    annotations = _annotations(models, f, cfg, draft, timings)
    est = _estimate(models, f, cfg, annotations, timings)
    t0 = time.perf_counter()
    files = write_outputs(f.out, f.src, cfg, output_body, est, annotations, f.keypoints2d, f.K, f.image_size,
                          f.tracks.fps, np.asarray(f.pair), timings)
    timings["outputs"] = time.perf_counter() - t0
    from socialmirror.geometry.camera import project
    proj = project(torch.as_tensor(est.joints), torch.as_tensor(f.K)).numpy()
    conf = f.keypoints2d[..., 2] > 0.3
    reproj = float(np.linalg.norm(proj - f.keypoints2d[..., :2], axis=-1)[conf].mean()) if conf.any() else float("nan")
    return ReconstructionResult(f.out, est.joints, est.pose6d, est.shape, est.transl, f.tracks.fps, f.image_size,
                                f.K, f.keypoints2d, np.asarray(f.pair), f.out / "annotations.json", files, timings,
                                reproj)


def annotate(input_path: str | os.PathLike, output_json: str | os.PathLike, config: ReconstructConfig | None = None,
             force: bool = False):
    """Stages 1-4 only: the annotations file of a video (its cache lives beside the file)."""
    cfg = config or ReconstructConfig()
    timings: dict[str, float] = {}
    output_json = Path(output_json).expanduser()
    models = _Models.load(cfg)
    f = _front(input_path, output_json.parent / f".{output_json.stem}.work", cfg, force, timings)
    draft = _draft(models, f, cfg, timings)
    annotations = _annotations(models, f, cfg, draft, timings)
    annotations.write(output_json)
    return annotations


def _estimate_cached(cache: _StageCache, name: str, key: str, run):
    from socialmirror.inference.estimator import MotionEstimate
    hit = cache.load(name, key)
    if hit is not None:
        return MotionEstimate.from_arrays(hit)
    est = run()
    cache.save(name, key, **est.to_arrays())
    return est


@dataclass
class _Models:
    bundle: object
    body: object
    key: list

    def keyed(self, f: _Front) -> list:
        return [*self.key, f.key]

    @classmethod
    def load(cls, cfg: ReconstructConfig) -> "_Models":
        from socialmirror.body import build_body_model
        from socialmirror.models.bundle import default_bundle_path, load_bundle
        checkpoint = Path(cfg.checkpoint).expanduser() if cfg.checkpoint else default_bundle_path()
        bundle = load_bundle(checkpoint, map_location=cfg.device)
        body = build_body_model("anny", device=cfg.device)  # the networks' own body model
        ckpt_id = [str(checkpoint), checkpoint.stat().st_size, int(checkpoint.stat().st_mtime)]
        return cls(bundle, body, [CACHE_VERSION, ckpt_id, cfg.seed, cfg.focal, cfg.intrinsics])


def _draft(models: _Models, f: _Front, cfg: ReconstructConfig, timings: dict):
    """A first 3D estimate without semantics: what the offline annotator reads and VLM replies are checked on."""
    from socialmirror.inference.estimator import TwoPersonMotionEstimator
    t0 = time.perf_counter()
    draft = _estimate_cached(f.cache, "draft", f.cache.key(*models.keyed(f), "draft"), lambda: TwoPersonMotionEstimator(
        models.bundle, models.body, method="closeint", device=cfg.device, seed=cfg.seed).estimate(
        f.keypoints2d, f.boxes, f.K, f.image_size, progress=cfg.progress))
    timings["draft_3d"] = time.perf_counter() - t0
    return draft


def _annotations(models: _Models, f: _Front, cfg: ReconstructConfig, draft, timings: dict):
    from socialmirror.semantics.annotations import Annotations
    from socialmirror.semantics.annotator import annotate_clips
    t0 = time.perf_counter()
    ann_path, key_path = f.cache.root / "annotations.json", f.cache.root / "annotations.key"
    ann_key = f.cache.key(*models.keyed(f), "annotate", cfg.annotator, cfg.vlm_url, cfg.vlm_model)
    if not f.cache.force and ann_path.is_file() and key_path.is_file() and key_path.read_text().strip() == ann_key:
        annotations = Annotations.read(ann_path)
    else:
        frames = _clip_crops(f.src, f.tracks, f.pair, cfg.fps) if cfg.annotator == "openai" else None
        annotations = annotate_clips(cfg.annotator, num_frames=f.keypoints2d.shape[0], frames=frames,
                                     joints3d=draft.joints, up=(0.0, -1.0, 0.0), vlm_url=cfg.vlm_url,
                                     vlm_model=cfg.vlm_model, seed=cfg.seed)
        annotations.write(ann_path)
        key_path.write_text(ann_key)
    timings["annotate"] = time.perf_counter() - t0
    return annotations


def _estimate(models: _Models, f: _Front, cfg: ReconstructConfig, annotations, timings: dict):
    """Text features, then the full method: initial -> geometry -> infiller (guided) -> refiner."""
    from socialmirror.inference.estimator import TwoPersonMotionEstimator
    from socialmirror.semantics.text_encoder import get_text_encoder
    ann_hash = hashlib.sha256(json.dumps(annotations.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
    key = f.cache.key(*models.keyed(f), cfg.method, cfg.disable_guidance, ann_hash)

    def run():
        t0 = time.perf_counter()
        sentences = [s for clip in annotations.clips for s in clip.text]
        text = get_text_encoder("minilm").encode(sentences).reshape(len(annotations.clips), 2, -1)
        timings["text"] = time.perf_counter() - t0
        return TwoPersonMotionEstimator(models.bundle, models.body, method=cfg.method, device=cfg.device,
                                        seed=cfg.seed, disable_guidance=cfg.disable_guidance).estimate(
            f.keypoints2d, f.boxes, f.K, f.image_size, annotations=annotations, text_embeddings=text,
            progress=cfg.progress)
    t0 = time.perf_counter()
    est = _estimate_cached(f.cache, "estimate", key, run)
    timings["estimate_3d"] = time.perf_counter() - t0 - timings.get("text", 0.0)
    timings.update({f"3d/{k}": v for k, v in (getattr(est, "timings", None) or {}).items()})
    return est


def _clip_crops(src: Path, tracks, pair, fps):
    """``frames(start, end)`` for the VLM: the crop around the pair in each frame of the clip (streamed)."""
    from socialmirror.perception.tracking import crop_frame, pair_crop_boxes
    from socialmirror.perception.video import open_video
    boxes = pair_crop_boxes(tracks, pair)

    def frames(start: int, end: int):
        out = []
        with open_video(src, fps=fps) as reader:
            for i, frame in reader:
                if i >= end:
                    break
                if i >= start:
                    out.append(crop_frame(frame, boxes[i], 512))
        return out
    return frames


def write_outputs(out: Path, src: Path, cfg: ReconstructConfig, body, est, annotations, keypoints2d, K,
                  image_size, fps: float, track_ids: np.ndarray, timings: dict) -> dict[str, Path]:
    """result.npz (design.md's keys), annotations.json, render.mp4, viewer.html; all written atomically."""
    from socialmirror.body.skeleton import SMPL24_NAMES
    files: dict[str, Path] = {}
    with torch.no_grad():
        shape = torch.as_tensor(est.shape)
        if body.name == "anny":
            verts = body(torch.as_tensor(est.rotmats), shape[None].expand(est.rotmats.shape[0], -1, -1),
                         torch.as_tensor(est.transl)).vertices.numpy()
        else:  # the models work in anny; other bodies are fitted to the estimate's joints
            from socialmirror.geometry.ik import fit_joints
            fit = fit_joints(body, est.joints, SMPL24_NAMES)
            verts = body(fit.rotmats, fit.shape[None].expand(fit.rotmats.shape[0], -1, -1), fit.transl).vertices.numpy()
    faces = body.faces.cpu().numpy()
    arrays = dict(joints3d=est.joints.astype(np.float32), joint_names=np.array(SMPL24_NAMES),
                  pose6d=est.pose6d.astype(np.float32), shape=est.shape.astype(np.float32),
                  transl=est.transl.astype(np.float32), body_model=np.array(cfg.body), fps=np.float32(fps),
                  image_size=np.array(image_size, dtype=np.int32), intrinsics=K.astype(np.float32),
                  keypoints2d=keypoints2d.astype(np.float32), track_ids=track_ids.astype(np.int64),
                  method=np.array(cfg.method))
    if cfg.meshes:
        arrays.update(vertices=verts.astype(np.float32), faces=faces.astype(np.int32))
    files["result"] = atomic_savez(out / "result.npz", **arrays)
    annotations.write(out / "annotations.json")
    files["annotations"] = out / "annotations.json"
    atomic_write_json(out / "timings.json", {k: round(v, 3) for k, v in timings.items()})
    if cfg.meshes == "obj":
        files["meshes"] = _write_objs(out / "meshes", verts, faces)
    if cfg.render:
        from socialmirror.perception.video import open_video
        from socialmirror.render.video import write_render_video
        with open_video(src, fps=cfg.fps) as reader:
            files["render"] = write_render_video(out / "render.mp4", iter(reader), verts, faces, K, fps,
                                                 joints=est.joints)
    if cfg.viewer:
        from socialmirror.render.viewer import write_viewer_html
        files["viewer"] = write_viewer_html(out / "viewer.html", verts, faces, fps, joints=est.joints,
                                            title=f"SocialMirror: {src.name}")
    return files


def _write_objs(folder: Path, verts: np.ndarray, faces: np.ndarray) -> Path:
    from socialmirror.io import atomic_write_text
    face_lines = "\n".join(f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces)
    for t in range(verts.shape[0]):
        for p in range(verts.shape[1]):
            v = "\n".join(f"v {x:.5f} {y:.5f} {z:.5f}" for x, y, z in verts[t, p])
            atomic_write_text(folder / f"frame{t:05d}_person{p + 1}.obj", v + "\n" + face_lines + "\n")
    return folder


def config_from_dict(values: dict) -> ReconstructConfig:
    from socialmirror.config import update
    return update(ReconstructConfig(), values)


__all__ = ["ReconstructConfig", "ReconstructionResult", "reconstruct", "annotate", "config_from_dict"]
