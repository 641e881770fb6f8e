"""The ``--observe render`` protocol of ``socialmirror evaluate``: each ground-truth sequence rendered to a video
and reconstructed from its pixels by the whole pipeline, as a user's video would be.

Per sequence (``RenderedCase``):

1. **Bodies.** anny bodies that move like the ground truth: the exact parameters a sequence carries
   (``meta["body_params"]``: the synthesizer's), otherwise an IK fit of the body to the joints it has
   (``socialmirror.training.targets.sequence_body_params``: ``body.ik.fit_joints``, cached on disk under
   ``cache_dir()/targets``). A data set with few joints (Bütepage: 8 upper-body joints) is fitted on what
   there is, with the average shape held fixed; the joints it lacks (legs, pelvis) stay near the rest pose.
   A fit whose residual exceeds ``RenderSettings.max_fit_residual_mm`` skips the sequence with a message.
2. **Camera.** The simulate protocol's camera: ``CameraSampler`` with the same seeded generator (so both
   protocols look at a sequence from the same place), placed on the bodies' 24 joints; its image is scaled so
   its long side is ``RenderSettings.long_side`` pixels (same field of view; the focal length stays the image
   diagonal, which is what ``reconstruct`` assumes without ``--focal``).
3. **Appearance**, seeded per sequence: each person's skin, hair, shirt, trousers, shoes and sleeves
   (``render.scene.Outfit``, two different shirts), the floor's and wall's colours, the background, two
   directional lights (directions and strengths) and the ambient light.
4. **Video**: the clothed bodies in the room (``render.scene.render_scene``), H.264 at 30 fps, cached under
   ``RenderCache`` (a folder per key of the bodies, camera, appearance and settings; default
   ``cache_dir()/eval_renders``).
5. **Reconstruction** exactly as ``reconstruct``: ``perceive`` (MediaPipe, both passes, tracking) -> ``pair``
   (the closest pair, default intrinsics) -> ``semantic_inputs`` -> ``estimate`` per method, one in-memory
   ``StageCache`` per sequence so the methods share everything before ``estimate``.
6. **Matching**: the pair's two people are matched to the ground-truth people by image overlap (the mean
   over frames of the IoU between the tight box of the detected keypoints and the box of the rendered body's
   projected joints; Hungarian assignment), and the predictions are put in the ground truth's order. A frame
   where the pipeline missed a person is scored on what the pipeline output there (its interpolation).
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from socialmirror.data.formats.interchange import TwoPersonSequence
from socialmirror.errors import SocialMirrorError
from socialmirror.geometry.camera import PinholeCamera, box_iou, focal_from_diagonal, person_boxes

log = logging.getLogger(__name__)

# Bump when what a cached video shows changes in a way its key does not capture (the renderer, the room).
RENDER_PROTOCOL_VERSION = 1
MIN_DETECTED_JOINTS = 4  # the run time's rule for a detected person-frame (body.keypoints.keypoints_to_boxes)


@dataclass
class RenderSettings:
    """How ``--observe render`` draws the videos (``evaluate --set render.KEY=VALUE``)."""

    long_side: int = 640  # pixels; the sampled camera's image (720p/1080p, landscape or portrait) scaled to this
    crf: int = 18  # H.264 quality of the cached videos (lower is better)
    max_people: int = 3  # people the detector looks for per frame, as `reconstruct`'s default
    max_fit_residual_mm: float = 80.0  # an IK fit worse than this skips the sequence
    sparse_joints: int = 12  # fewer ground-truth joints than this: the IK keeps the average shape
    # The focal length the pipeline assumes, as a multiple of the rendering camera's (the image diagonal, what
    # `reconstruct` assumes): e.g. 1.3 measures the placement when a user's camera is 30% off the assumption.
    assumed_focal_scale: float = 1.0
    level_camera: bool = False  # as `reconstruct --level-camera`: the pipeline assumes a level camera
    bridge_missed: bool = True  # as `reconstruct --set bridge_missed=false` when False
    unfuse: bool = True  # as `reconstruct --set unfuse=false` when False
    # Each matched person's standing height given to the fit, as a user states it with `reconstruct
    # --statures`: the ground truth's bodies' (what knowing the people's heights is worth).
    stated_statures: bool = False

    def __post_init__(self):
        from socialmirror.config import ConfigError
        if self.long_side < 64:
            raise ConfigError(f"render.long_side: at least 64 pixels, got {self.long_side}")
        if not 0 <= self.crf <= 51:
            raise ConfigError(f"render.crf: 0..51, got {self.crf}")
        if self.max_people < 2:
            raise ConfigError(f"render.max_people: at least 2, got {self.max_people}")
        if not self.assumed_focal_scale > 0:
            raise ConfigError(f"render.assumed_focal_scale: positive, got {self.assumed_focal_scale}")


class SkippedSequence(SocialMirrorError):
    """The sequence cannot be evaluated under this protocol (one-line reason)."""


# ------------------------------------------------------------------------------------------- sequences
def clip_sequence(seq: TwoPersonSequence, max_frames: int | None, model_fps: float = 30.0) -> TwoPersonSequence:
    """The middle ``max_frames / model_fps`` seconds of ``seq`` (at its own rate; everything per frame, the
    carried body parameters and the contacts included); the sequence itself when it is not longer."""
    if not max_frames:
        return seq
    n = max(2, int(round(max_frames * seq.fps / model_fps)))
    T = seq.num_frames
    if T <= n:
        return seq
    s = (T - n) // 2
    e = s + n
    meta = dict(seq.meta)
    params = meta.get("body_params")
    if isinstance(params, dict):
        params = dict(params)
        for key in ("rotmats", "transl"):
            arr = np.asarray(params[key])
            if arr.shape[:1] == (T,):
                params[key] = arr[s:e].tolist()  # meta stays JSON
        meta["body_params"] = params
    meta["clip"] = [int(s), int(e), int(T)]
    contacts = None
    if seq.contacts is not None:
        contacts = [(a, b, max(t0, s) - s, min(t1, e - 1) - s) for a, b, t0, t1 in seq.contacts
                    if t1 >= s and t0 < e]
    return replace(seq, joints3d=seq.joints3d[s:e], vertices=None if seq.vertices is None else seq.vertices[s:e],
                   contacts=contacts, meta=meta)


def body_parameters(seq30: TwoPersonSequence, body, settings: RenderSettings):
    """World-frame body parameters of the (30 fps) sequence: carried, else IK-fitted; raises
    ``SkippedSequence`` when no usable fit exists."""
    from socialmirror.body.ik import IKConfig
    from socialmirror.training.targets import sequence_body_params
    ik = None
    if len(seq30.joint_names) < settings.sparse_joints and seq30.meta.get("shapes") is None:
        ik = IKConfig(fit_shape=False)  # too few joints to tell a body's proportions: the average body
    try:
        params = sequence_body_params(seq30, body, ik)
    except (ValueError, RuntimeError) as exc:
        raise SkippedSequence(f"no body could be fitted to its {len(seq30.joint_names)} joints ({exc})") from None
    if params.method == "ik" and not params.residual_mm <= settings.max_fit_residual_mm:
        raise SkippedSequence(f"the IK fit to its {len(seq30.joint_names)} joints is off by "
                              f"{params.residual_mm:.0f} mm on average (limit {settings.max_fit_residual_mm:.0f})")
    return params


# -------------------------------------------------------------------------------------------- appearance
def sample_appearance(rng: np.random.Generator) -> dict:
    """Random clothing, skin, room colours and lighting (JSON-able), a fixed number of draws."""
    from socialmirror.render.scene import Outfit
    first = Outfit.sample(rng)
    outfits = [first, Outfit.sample(rng, avoid_shirt=first.shirt)]

    def direction(elev_lo, elev_hi):
        az, el = rng.uniform(-70, 70), rng.uniform(elev_lo, elev_hi)  # degrees, from the camera's axis
        a, e = math.radians(az), math.radians(el)
        # Toward the light, camera frame (x right, y down, z forward): in front of the scene, above it.
        return [round(math.sin(a) * math.cos(e), 4), round(-math.sin(e), 4), round(-math.cos(a) * math.cos(e), 4)]

    def tinted(lo, hi, tint=30):  # a grey level with a mild colour cast: walls and floors of real rooms
        level = rng.uniform(lo, hi)
        return [int(np.clip(level + d, 0, 255)) for d in rng.uniform(-tint, tint, size=3)]

    floor_light = tinted(130, 225)
    floor_dark = [int(c * rng.uniform(0.45, 0.75)) for c in floor_light]
    return {
        "outfits": [asdict(o) for o in outfits],
        "floor": [floor_light, floor_dark], "wall": tinted(110, 235), "background": tinted(50, 190),
        "lights": [direction(20, 70), direction(5, 50)],
        "light_strength": [round(float(rng.uniform(0.5, 0.85)), 3), round(float(rng.uniform(0.15, 0.45)), 3)],
        "ambient": round(float(rng.uniform(0.2, 0.4)), 3),
    }


def _up_rotation(up: np.ndarray) -> np.ndarray:
    """A rotation A with A @ up = +y (the room is built y-up)."""
    u = np.asarray(up, dtype=np.float64)
    u = u / np.linalg.norm(u)
    y = np.array([0.0, 1.0, 0.0])
    v, c = np.cross(u, y), float(u @ y)
    if np.linalg.norm(v) < 1e-9:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


# ------------------------------------------------------------------------------------------------ camera
@dataclass
class RenderCamera(PinholeCamera):
    """The rendering camera (``geometry.camera.PinholeCamera``) at the rendered size, with the sampler's image
    size before scaling."""

    sampled_size: tuple[int, int] = (0, 0)

    def record(self) -> dict:
        return {"R": self.R.round(6).tolist(), "t": self.t.round(6).tolist(), "K": self.K.round(4).tolist(),
                "image_size": list(self.image_size), "sampled_image_size": list(self.sampled_size)}


def scaled_camera(camera, long_side: int) -> RenderCamera:
    """``camera`` (a placed ``data.observation.Camera``) with its image scaled to ``long_side`` (even sizes);
    the focal length keeps its ratio to the image diagonal."""
    W, H = camera.image_size
    s = long_side / max(W, H)
    w, h = 2 * max(1, int(round(W * s / 2))), 2 * max(1, int(round(H * s / 2)))
    f = float(camera.K[0, 0]) / focal_from_diagonal(W, H) * focal_from_diagonal(w, h)
    K = np.array([[f, 0.0, w / 2.0], [0.0, f, h / 2.0], [0.0, 0.0, 1.0]])
    return RenderCamera(np.asarray(camera.R, dtype=np.float64), np.asarray(camera.t, dtype=np.float64), K, (w, h),
                        (int(W), int(H)))


# ------------------------------------------------------------------------------------------------- video
def render_video(path: Path, vertices_world: np.ndarray, faces: np.ndarray, rest_vertices: np.ndarray,
                 rest_joints: np.ndarray, up: np.ndarray, camera: RenderCamera, appearance: dict, fps: float,
                 crf: int = 18) -> Path:
    """Render the two bodies (T, 2, V, 3) world frame in a room to an H.264 video at ``path`` (atomically)."""
    import imageio_ffmpeg

    from socialmirror.render.mesh_renderer import rasterize
    from socialmirror.render.scene import Outfit, face_colors, room_geometry, vertex_materials
    outfits = [Outfit(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in o.items()})
               for o in appearance["outfits"]]
    colors = [face_colors(vertex_materials(rest_vertices[p], rest_joints[p], outfits[p].long_sleeves), faces,
                          outfits[p]) for p in range(2)]
    # The room, built y-up, then turned into the world's frame.
    A = _up_rotation(up)
    v_up = vertices_world @ A.T
    ground = float(np.nanmin(v_up[..., 1]))
    centre = np.nanmean(v_up, axis=(0, 1, 2))
    cam_centre = (-camera.R.T @ camera.t) @ A.T
    room_v, room_f, room_c = room_geometry(ground, centre, centre - cam_centre)
    light, dark = (np.asarray(c, dtype=np.float64) for c in appearance["floor"])
    is_light = room_c[:, 0] > 150  # room_geometry's light tiles (185, 175, 160); dark (120, 110, 100)
    room_c[:-2] = np.where(is_light[:-2, None], light, dark)
    room_c[-2:] = np.asarray(appearance["wall"], dtype=np.float64)
    room_cam = camera.to_camera(room_v @ A)  # back to the world frame, then the camera's
    keep = (room_cam[room_f][..., 2] > 0.3).all(-1)  # floor tiles behind the camera are not drawn
    room_f, room_c = room_f[keep], room_c[keep]

    W, H = camera.image_size
    lights = (appearance["lights"], appearance["light_strength"], appearance["ambient"])
    # The room does not move: drawn once, then each frame's bodies are z-buffered against its depth (what
    # render_scene gives for the whole scene, at a fraction of the cost: the floor's big tiles are the slow part).
    room = rasterize(room_cam, room_f, camera.K, (H, W), cull_back=False)
    background = np.empty((H, W, 3), dtype=np.uint8)
    background[:] = appearance["background"]
    shown = room.tri >= 0
    background[shown] = _shade(room_cam, room_f, room_c, *lights)[room.tri[shown]]
    body_faces = np.concatenate([faces, faces + vertices_world.shape[2]])
    body_colors = np.concatenate(colors)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.mp4")
    writer = imageio_ffmpeg.write_frames(str(tmp), (W, H), fps=float(fps), codec="libx264", pix_fmt_in="rgb24",
                                         pix_fmt_out="yuv420p", macro_block_size=1, quality=None,
                                         ffmpeg_log_level="error", output_params=["-crf", str(int(crf))])
    writer.send(None)
    try:
        for t in range(vertices_world.shape[0]):
            verts = camera.to_camera(vertices_world[t].reshape(-1, 3))
            frags = rasterize(verts, body_faces, camera.K, (H, W), cull_back=True, background_depth=room.depth)
            frame = background.copy()
            mask = frags.tri >= 0
            frame[mask] = _shade(verts, body_faces, body_colors, *lights)[frags.tri[mask]]
            writer.send(np.ascontiguousarray(frame))
    finally:
        writer.close()
    tmp.replace(path)
    return path


def _shade(verts: np.ndarray, faces: np.ndarray, colors: np.ndarray, lights, strengths, ambient: float) -> np.ndarray:
    """Per-face uint8 colours: ambient plus two-sided directional lights, flat (``render_scene``'s shading)."""
    from socialmirror.render.mesh_renderer import face_normals
    n = face_normals(verts, faces)
    k = np.full(len(faces), float(ambient))
    for d, s in zip(lights, strengths):
        d = np.asarray(d, dtype=np.float64)
        k += float(s) * np.abs(n @ (d / np.linalg.norm(d)))
    return np.clip(colors * k[:, None], 0, 255).astype(np.uint8)


class RenderCache:
    """Rendered evaluation videos, one folder per key: ``ROOT/KEY/video.mp4`` and ``ROOT/KEY/render.json``
    (the protocol record of that video), the JSON written last so a folder with it is complete."""

    def __init__(self, root: str | Path | None = None):
        if root is None:
            from socialmirror.paths import cache_dir
            root = cache_dir() / "eval_renders"
        self.root = Path(root).expanduser()
        self.hits = 0
        self.renders = 0

    def entry(self, key: str) -> Path:
        return self.root / key

    def lookup(self, key: str) -> dict | None:
        folder = self.entry(key)
        try:
            record = json.loads((folder / "render.json").read_text())
        except (OSError, ValueError):
            return None
        if not (folder / "video.mp4").is_file() or record.get("key") != key:
            return None
        return record

    def store(self, key: str, record: dict) -> None:
        from socialmirror.io import atomic_write_json
        atomic_write_json(self.entry(key) / "render.json", {**record, "key": key})


# ------------------------------------------------------------------------------------------------ matching
@dataclass
class Matching:
    order: list[int]  # predicted person order[i] is ground-truth person i
    iou: np.ndarray  # (2, 2) mean IoU over frames, ground truth x prediction
    frame_iou: np.ndarray  # (T, 2) per frame IoU of each ground-truth person with its matched prediction
    detected: np.ndarray  # (T, 2) the matched prediction was detected in the frame (ground-truth order)


def match_people(pred_keypoints: np.ndarray, gt_uv: np.ndarray, gt_valid: np.ndarray) -> Matching:
    """Match the pipeline's two people to the ground truth's by image overlap.

    pred_keypoints (T, 2, 24, 3) the pair's keypoints (u, v, confidence; 0 = not given); gt_uv (T, 2, J, 2)
    the ground-truth people's projected joints, gt_valid (T, 2, J) those in the image. Cost: the mean over
    frames of the IoU between the tight boxes (0 in a frame where either is missing); Hungarian assignment.
    """
    from scipy.optimize import linear_sum_assignment
    given = pred_keypoints[..., 2] > 0
    detected = given.sum(-1) >= MIN_DETECTED_JOINTS  # (T, 2)
    pred_boxes = person_boxes(pred_keypoints[..., :2], given & detected[..., None])
    gt_boxes = person_boxes(gt_uv, gt_valid)
    iou_t = box_iou(gt_boxes[:, :, None], pred_boxes[:, None, :])  # (T, gt, pred)
    iou = iou_t.mean(0)
    rows, cols = linear_sum_assignment(-iou)
    order = [int(c) for _, c in sorted(zip(rows, cols))]
    frame_iou = np.stack([iou_t[:, i, order[i]] for i in range(2)], 1)
    return Matching(order, iou, frame_iou, detected[:, order])


# ------------------------------------------------------------------------------------------------ one case
@dataclass
class RenderedCase:
    """One sequence rendered and reconstructed up to the semantic inputs: what every method's ``estimate``
    reads, the matching to the ground truth, and the protocol record."""

    observation: object  # pipeline.PairObservation
    perception: object  # pipeline.Perception
    cache: object  # pipeline.StageCache (in memory, shared by the methods)
    matching: Matching
    gt_vertices_cam: np.ndarray | None  # (T30, 2, V, 3) the rendered bodies, camera frame, when exact
    camera: RenderCamera
    record: dict = field(default_factory=dict)


def prepare_case(seq30: TwoPersonSequence, body, camera_rng: np.random.Generator, appearance_rng: np.random.Generator,
                 settings: RenderSettings, cache: RenderCache, fps: float = 30.0,
                 with_vertices: bool = True, perception_workers: int | None = None) -> RenderedCase:
    """Render ``seq30`` (already at ``fps``) or find its video, then run perceive -> pair on it.
    ``with_vertices``: also the ground truth's camera-frame meshes where they are exact (carried parameters).
    ``perception_workers``: as ``pipeline.perceive``'s (None: one per core)."""
    from socialmirror.body.skeleton import SMPL24_NAMES
    from socialmirror.data.observation import CameraSampler

    times = {}
    t0 = time.perf_counter()
    params = body_parameters(seq30, body, settings)
    body_joints = np.asarray(params.joints, dtype=np.float64)  # (T, 2, 24, 3) world
    times["bodies"] = time.perf_counter() - t0
    # The camera: the simulate protocol's draw, placed on the full bodies (the joints every data set renders).
    placed_on = replace(seq30, joints3d=body_joints.astype(np.float32), joint_names=SMPL24_NAMES, vertices=None,
                        meta={})
    camera = scaled_camera(CameraSampler().place(placed_on, camera_rng), settings.long_side)
    appearance = sample_appearance(appearance_rng)
    video, key, verts = _rendered_video(seq30, body, params, camera, appearance, settings, cache, fps, times)
    t0 = time.perf_counter()
    assumed = camera.K[0, 0] * settings.assumed_focal_scale if settings.assumed_focal_scale != 1.0 else None
    perception, observation, stages = _perceive_rendered(video, seq30, settings, assumed, perception_workers)
    times["perceive+pair"] = time.perf_counter() - t0
    if assumed is None and not np.allclose(observation.intrinsics, camera.K, atol=1e-3):
        log.warning("%s: the pipeline's default intrinsics differ from the rendering camera's", seq30.name)
    uv = camera.project(camera.to_camera(body_joints))
    in_image = camera.in_image(uv)
    matching = match_people(observation.keypoints2d, uv, in_image)
    statures = true_statures(body, params.shape)
    if settings.stated_statures:
        observation = replace(observation, statures=statures[np.argsort(matching.order)])
    gt_verts = None
    if with_vertices and params.method == "sequence":  # the ground truth's own bodies: VPE is exact
        verts = _body_vertices(body, params) if verts is None else verts
        gt_verts = camera.to_camera(verts).astype(np.float32)
    record = {
        "sequence": seq30.name, "frames": int(seq30.num_frames), "video": str(video), "render_key": key,
        "bodies": params.method, "ik_residual_mm": round(float(params.residual_mm), 1),
        "camera": camera.record(), "appearance": appearance,
        "tracks": int(len(perception.tracks.ids)), "pair_track_ids": [int(i) for i in observation.track_ids],
        "order": matching.order, "mean_iou": round(float(np.trace(matching.iou[:, matching.order])) / 2, 3),
        "detection_rate": round(float(matching.detected.mean()), 4),
        "correct_detection_rate": round(float((matching.frame_iou >= 0.5).mean()), 4),
        "standing_heights": [round(float(h), 3) for h in statures],
        "gt_in_view_rate": round(float((in_image.sum(-1) >= MIN_DETECTED_JOINTS).mean()), 4),
        "seconds": {k: round(v, 2) for k, v in times.items()},
    }
    return RenderedCase(observation, perception, stages, matching, gt_verts, camera, record)


def true_statures(body, shape) -> np.ndarray:
    """(2,) the ground truth's bodies' standing heights (metres), ground-truth order."""
    import torch
    with torch.no_grad():
        return body.standing_height(torch.as_tensor(np.asarray(shape, dtype=np.float32))).numpy().astype(np.float64)


def _body_vertices(body, params) -> np.ndarray:
    """The bodies' meshes (T, 2, V, 3), world frame, 32 frames at a time."""
    import torch
    rot, shape, transl = (torch.from_numpy(np.asarray(a, dtype=np.float32))
                          for a in (params.rotmats, params.shape, params.transl))
    with torch.no_grad():
        return torch.cat([body(rot[s:s + 32], shape[None], transl[s:s + 32]).vertices
                          for s in range(0, rot.shape[0], 32)]).numpy()


def _rendered_video(seq30, body, params, camera: RenderCamera, appearance: dict, settings: RenderSettings,
                    cache: RenderCache, fps: float, times: dict) -> tuple[Path, str, np.ndarray | None]:
    """The video of the bodies under this camera and appearance: from the cache, else rendered and stored.
    Returns its path, its cache key and the meshes where they were built for it (else None)."""
    import torch

    from socialmirror.pipeline.cache import digest
    key = digest(RENDER_PROTOCOL_VERSION, body.name, params.rotmats, params.shape, params.transl, seq30.up,
                 camera.R, camera.t, camera.K, list(camera.image_size), appearance, fps, settings.crf)
    video = cache.entry(key) / "video.mp4"
    if cache.lookup(key) is not None:
        cache.hits += 1
        times["render"] = 0.0
        return video, key, None
    t0 = time.perf_counter()
    verts = _body_vertices(body, params)
    times["bodies"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.no_grad():
        rest = body(torch.eye(3).expand(2, 24, 3, 3), torch.from_numpy(np.asarray(params.shape, dtype=np.float32)))
    render_video(video, verts, body.faces.cpu().numpy(), rest.vertices.numpy(), rest.joints.numpy(), seq30.up,
                 camera, appearance, fps, settings.crf)
    cache.store(key, {"sequence": seq30.name, "frames": int(seq30.num_frames), "fps": fps, "bodies": params.method,
                      "ik_residual_mm": round(float(params.residual_mm), 1), "camera": camera.record(),
                      "appearance": appearance, "settings": asdict(settings), "version": RENDER_PROTOCOL_VERSION})
    cache.renders += 1
    times["render"] = time.perf_counter() - t0
    return video, key, verts


def _perceive_rendered(video: Path, seq30, settings: RenderSettings, focal: float | None = None,
                       workers: int | None = None):
    """perceive -> pair on the rendered video, as ``reconstruct`` runs them (``focal``: as ``--focal``;
    None: the image diagonal); a pipeline that finds nobody (or one person), or a video that decodes to another
    length, skips the sequence."""
    from socialmirror import pipeline
    from socialmirror.errors import InputError
    stages = pipeline.StageCache(None)
    try:
        perception = pipeline.perceive(pipeline.VideoInput.at(video), stages, settings.max_people, progress=False,
                                       workers=workers, bridge=settings.bridge_missed, unfuse=settings.unfuse)
        observation = pipeline.pair(perception, stages,
                                    pipeline.CameraSettings(focal=focal, level=settings.level_camera))
    except InputError as exc:  # the pipeline's own one-line errors (nobody / one person found) and the like
        raise SkippedSequence(f"the pipeline failed on the rendered video {video}: {exc}") from None
    if observation.num_frames != seq30.num_frames:
        raise SkippedSequence(f"the rendered video {video} decoded to {observation.num_frames} frames, "
                              f"not {seq30.num_frames}")
    return perception, observation, stages


# ------------------------------------------------------------------------------------------- in parallel
_WORKER: dict = {}


def worker_init(threads: int = 1) -> None:
    """A process of ``evaluate --jobs N``: one torch thread and its own anny body model."""
    import torch

    from socialmirror.body import build_body_model
    torch.set_num_threads(max(1, threads))
    _WORKER["body"] = build_body_model("anny")


def worker_prepare(seq30, camera_rng, appearance_rng, settings, cache_root, fps):
    """``prepare_case`` in a worker process (without the meshes, which the main process makes when needed);
    returns (case, renders, hits) or the SkippedSequence as a value."""
    cache = RenderCache(cache_root)
    try:
        # One perception thread: the other workers have the other cores.
        case = prepare_case(seq30, _WORKER["body"], camera_rng, appearance_rng, settings, cache, fps,
                            with_vertices=False, perception_workers=1)
    except SkippedSequence as exc:
        return exc, cache.renders, cache.hits
    return case, cache.renders, cache.hits


def exact_vertices(seq30: TwoPersonSequence, body, camera: RenderCamera, settings: RenderSettings):
    """The ground truth's camera-frame meshes (T, 2, V, 3) where the sequence carries its body parameters
    (None otherwise)."""
    import torch
    params = body_parameters(seq30, body, settings)
    if params.method != "sequence":
        return None
    rot, shape, transl = (torch.from_numpy(np.asarray(a, dtype=np.float32))
                          for a in (params.rotmats, params.shape, params.transl))
    with torch.no_grad():
        verts = torch.cat([body(rot[s:s + 32], shape[None], transl[s:s + 32]).vertices
                           for s in range(0, rot.shape[0], 32)]).numpy()
    return camera.to_camera(verts).astype(np.float32)


def protocol_record(settings: RenderSettings, cache: RenderCache, seed: int) -> dict:
    return {
        "observations": "rendered: anny bodies (the data's parameters, else IK-fitted to its joints) with per-"
                        "sequence random clothing, skin, room colours and lights, seen by the simulate protocol's "
                        "CameraSampler camera (scaled to the long side below), H.264 at 30 fps; reconstructed by "
                        "the whole pipeline as `reconstruct` (MediaPipe + second pass, tracking, closest pair, "
                        "default intrinsics, draft, offline annotation, text, estimate)",
        "matching": "predicted people matched to the ground truth by the mean IoU over frames of the detected "
                    "keypoints' box and the rendered body's projected joints' box (Hungarian)",
        "undetected_frames": "scored on what the pipeline output there",
        "renderer": {"module": "socialmirror.render.scene.render_scene (flat shading, two lights)",
                     "version": RENDER_PROTOCOL_VERSION, **asdict(settings)},
        "camera_seed": "numpy default_rng(seed * 100003 + index), as the simulate protocol",
        "appearance_seed": "numpy default_rng([seed, index, crc32(sequence name)])", "seed": seed,
        "render_cache": str(cache.root), "videos_rendered": cache.renders, "videos_from_cache": cache.hits,
    }


__all__ = ["RENDER_PROTOCOL_VERSION", "Matching", "RenderCache", "RenderSettings", "RenderedCase",
           "SkippedSequence", "body_parameters", "clip_sequence", "exact_vertices", "match_people",
           "prepare_case", "protocol_record", "render_video", "sample_appearance", "scaled_camera", "true_statures",
           "worker_init", "worker_prepare"]
