"""Stage ``export``: every file ``reconstruct`` writes into OUTDIR, all atomically.

    result.npz        the README's keys: joints3d, joint_names, pose6d, shape, transl, body_model, fps,
                      image_size, intrinsics, keypoints2d, track_ids, method (+ vertices, faces with meshes)
    annotations.json  the annotations the estimate used (with more than two people: the closest pair's, and
                      annotations_pair_A_B.json for each other pair of track ids A, B)
    render.mp4        the input frames with both meshes overlaid, beside a side view (``render``)
    viewer.html       the self-contained viewer (``viewer``)
    meshes/           one .obj per frame and person (``meshes="obj"``)
    person1.bvh, person2.bvh   each person's motion on the SMPL-24 skeleton (``exports`` with "bvh")
    smpl_params_person1.npz, ...  each person's SMPL / SMPL-X parameters in the smplx package's convention
                                  (``exports`` with "smpl"; an SMPL-family output body)
    scene.glb         both people as skinned, animated meshes and the camera (``exports`` with "glb")
    timings.json      seconds per stage of this run (written every run; not part of the cached outputs)
    manifest.json     this run and every output's size, SHA-256 and the run that wrote it (written every run)

The files are the ``outputs`` entry of the stage cache: a rerun with the same estimate, annotations, video and
options whose files are all still as written skips the meshes and the rendering.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from socialmirror.io import atomic_savez, atomic_write_json, atomic_write_text
from socialmirror.pipeline.cache import StageCache
from socialmirror.pipeline.records import OUTPUTS_CODEC, ExportOptions, OutputFiles, PairObservation, VideoInput

log = logging.getLogger(__name__)


@dataclass
class Reconstruction:
    """What is exported: the pair's observation, the annotations and the 3D estimate of a video."""

    video: VideoInput
    observation: PairObservation
    annotations: object  # socialmirror.semantics.annotations.Annotations
    estimate: object  # socialmirror.inference.estimator.MotionEstimate
    # With more than two people: the other pairs' annotations, ((track id, track id), Annotations) each.
    pair_annotations: tuple = ()


def export(reconstruction: Reconstruction, out_dir: Path, cache: StageCache, options: ExportOptions = ExportOptions(),
           body=None, timings: dict[str, float] | None = None, progress: bool = True,
           run: dict | None = None) -> dict[str, Path]:
    """Write the outputs into ``out_dir`` (meshes with ``body``, the output body model built from
    ``options.body``; default anny; a progress bar for the render with ``progress``); returns name -> path of
    each output (timings.json and manifest.json aside). ``run`` describes this run for manifest.json (its
    ``id``, times, input, config)."""
    out_dir = Path(out_dir)
    est, obs = reconstruction.estimate, reconstruction.observation

    run = run or {"id": new_run_id()}

    def compute() -> OutputFiles:
        return OutputFiles.of(_write(reconstruction, out_dir, options, body, progress), run["id"])
    depends_on = [reconstruction.video.fingerprint(), obs.keypoints2d, obs.intrinsics, obs.image_size, obs.fps,
                  obs.track_ids, est.rotmats, est.pose6d, est.shape, est.transl, est.joints, est.method,
                  reconstruction.annotations, list(reconstruction.pair_annotations), options, str(out_dir.resolve())]
    outputs = cache.fetch("outputs", depends_on, compute, OUTPUTS_CODEC)
    files = outputs.files
    atomic_write_json(out_dir / "timings.json", {k: round(v, 3) for k, v in (timings or {}).items()})
    _remove_earlier_outputs(out_dir, files)
    write_manifest(out_dir, outputs, run)
    return files


def new_run_id() -> str:
    """A run's id: its start time (UTC) and a random suffix."""
    import datetime
    import secrets
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)


def write_manifest(out_dir: Path, outputs: OutputFiles, run: dict) -> Path:
    """manifest.json: this run (``run``: id, times, input, config) and every output file with its size, SHA-256
    and the id of the run that wrote it (an earlier one where this run found the files unchanged in its
    cache), so that a folder's files can be traced to the run that made them and checked."""
    import hashlib
    from importlib import metadata
    try:
        version = metadata.version("socialmirror")  # the package's own __init__ sits above this layer
    except metadata.PackageNotFoundError:
        version = "unknown"

    def sha256(path: Path) -> str:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    entries = {}
    for path in sorted({Path(p) for p in outputs.files.values()}):
        paths = sorted(q for q in path.rglob("*") if q.is_file()) if path.is_dir() else [path]
        for q in paths:
            entries[str(q.relative_to(out_dir))] = {"bytes": q.stat().st_size, "sha256": sha256(q),
                                                    "written_by_run": outputs.run or "unknown"}
    return atomic_write_json(out_dir / "manifest.json", {"socialmirror": version, "run": run, "files": entries})


# Every output ``export`` can write, as glob patterns (one file per person or pair: any count of people;
# timings.json is written by every run).
OUTPUT_NAMES = ("result.npz", "annotations.json", "annotations_pair_[0-9]*_[0-9]*.json", "render.mp4", "viewer.html",
                "meshes", "person[0-9]*.bvh", "smpl_params_person[0-9]*.npz", "scene.glb")


def _remove_earlier_outputs(out_dir: Path, files: dict[str, Path]) -> None:
    """Remove the outputs of an earlier run that this run did not write (a rerun with ``--no-render`` must not
    leave the old render.mp4 beside the new result.npz), saying so."""
    import shutil
    written = {Path(p).name for p in files.values()}
    for path in sorted(p for pattern in OUTPUT_NAMES for p in out_dir.glob(pattern)):
        if path.name in written:
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        log.info("removed %s of an earlier run (this run does not write it)", path)


def _write(reconstruction: Reconstruction, out: Path, options: ExportOptions, body,
           progress: bool = True) -> dict[str, Path]:
    from socialmirror.body.skeleton import SMPL24_NAMES
    est, obs, video = reconstruction.estimate, reconstruction.observation, reconstruction.video
    if body is None:
        from socialmirror.body import build_body_model
        body = build_body_model(options.body)
    files: dict[str, Path] = {}
    arrays = dict(joints3d=est.joints.astype(np.float32), joint_names=np.array(SMPL24_NAMES),
                  pose6d=est.pose6d.astype(np.float32), shape=est.shape.astype(np.float32),
                  transl=est.transl.astype(np.float32), body_model=np.array(options.body), fps=np.float32(obs.fps),
                  image_size=np.array(obs.image_size, dtype=np.int32), intrinsics=obs.intrinsics.astype(np.float32),
                  keypoints2d=obs.keypoints2d.astype(np.float32), track_ids=obs.track_ids.astype(np.int64),
                  method=np.array(est.method))
    fitted = _output_body_motion(est, body) if options.meshes or options.render or options.viewer \
        or "smpl" in options.exports else None
    meshes = _output_meshes(fitted, body, est.num_frames) if options.meshes or options.render or options.viewer \
        else None
    faces = body.faces.cpu().numpy()
    if options.meshes:
        arrays.update(vertices=np.asarray(meshes, dtype=np.float32), faces=faces.astype(np.int32))
    files["result"] = atomic_savez(out / "result.npz", **arrays)
    files["annotations"] = reconstruction.annotations.write(out / "annotations.json")
    for (a, b), pair_annotations in reconstruction.pair_annotations:
        files[f"annotations_{a}_{b}"] = pair_annotations.write(out / f"annotations_pair_{a}_{b}.json")
    if options.meshes == "obj":
        files["meshes"] = _write_objs(out / "meshes", meshes, faces)
    if options.render:
        from socialmirror.perception.video import open_video
        from socialmirror.render.video import write_render_video
        with open_video(video.path, fps=video.fps) as reader:
            files["render"] = write_render_video(out / "render.mp4", iter(reader), meshes, faces, obs.intrinsics,
                                                 obs.fps, joints=est.joints, progress=progress,
                                                 camera_view=options.render_view != "side",
                                                 side_view=options.render_view != "overlay")
    if "bvh" in options.exports:
        files.update(_write_bvh(out, est, body, obs.fps))
    if "smpl" in options.exports:
        files.update(_write_smpl_params(out, fitted, body, obs))
    if "glb" in options.exports:
        files["glb"] = _write_glb(out / "scene.glb", est, body, obs)
    if options.viewer:
        from socialmirror.render.viewer import write_viewer_html
        step = viewer_stride(est.num_frames)
        if step > 1:
            log.info("viewer.html shows every %d%s frame of the %d (a page of every frame would pass %d MB and "
                     "open slowly); render.mp4 and result.npz keep them all", step, _ordinal(step), est.num_frames,
                     VIEWER_MAX_FRAMES * VIEWER_BYTES_PER_FRAME // 1_000_000)
        files["viewer"] = write_viewer_html(out / "viewer.html", meshes.every(step), faces, obs.fps / step,
                                            joints=est.joints[::step], title=f"SocialMirror: {video.path.name}")
    return files


# viewer.html holds about 50 kB a frame for two moving anny bodies (measured: 79 MB at 1547 frames): past
# VIEWER_MAX_FRAMES frames it shows every k-th frame, so the page stays near 60 MB and opens in a browser.
VIEWER_MAX_FRAMES = 1200
VIEWER_BYTES_PER_FRAME = 50_000


def viewer_stride(num_frames: int, max_frames: int = VIEWER_MAX_FRAMES) -> int:
    """Every how many frames the viewer shows one: 1 up to ``max_frames`` frames, then the least step that
    keeps it within."""
    return max(1, -(-int(num_frames) // int(max_frames)))


def _ordinal(n: int) -> str:
    return "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _output_body_motion(est, body):
    """(rotmats (T, P, 24, 3, 3), shape (P, S), pelvis transl (T, P, 3)) of both people with the output body,
    torch: the estimate's own for anny (the models' body); another body (SMPL, SMPL-X) is fitted to the
    estimate's joints over the whole sequence."""
    import torch
    if body.name == "anny":
        return tuple(torch.as_tensor(a) for a in (est.rotmats, est.shape, est.transl))
    from socialmirror.body.ik import fit_joints
    from socialmirror.body.skeleton import SMPL24_NAMES
    fit = fit_joints(body, est.joints, SMPL24_NAMES)
    return tuple(a.detach() for a in (fit.rotmats, fit.shape, fit.transl))


def _output_meshes(fitted, body, num_frames: int):
    """Both people's meshes with the output body (``body.meshes.MeshFrames``: skinned a chunk of frames at a
    time as the outputs read them, so a long video's meshes are never in memory whole)."""
    import torch

    from socialmirror.body.meshes import MeshFrames
    rotmats, shape, transl = fitted

    def skin(frames: np.ndarray) -> np.ndarray:
        index = torch.as_tensor(frames, dtype=torch.long)
        with torch.no_grad():
            rot = rotmats[index]
            return body(rot, shape[None].expand(rot.shape[0], -1, -1), transl[index]).vertices.cpu().numpy()
    return MeshFrames(skin, num_frames)


def smpl_parameters(fitted, body, person: int) -> dict[str, np.ndarray]:
    """One person's parameters as the ``smplx`` package takes them (``smplx.create(...)(**params)`` after
    ``torch.as_tensor``): ``global_orient`` (T, 3) and ``body_pose`` (T, 69 for SMPL, 63 for SMPL-X)
    axis-angle, ``betas`` (1, B) (smplx repeats a batch of one), ``transl`` (T, 3) smplx's own (the pelvis
    at J_0(betas) + transl). The camera frame is the parameters' world (OpenCV axes)."""
    import torch
    from scipy.spatial.transform import Rotation
    rotmats, shape, transl = fitted
    R = rotmats[:, person].detach().cpu().numpy().astype(np.float64)
    T = R.shape[0]
    axis_angle = Rotation.from_matrix(R.reshape(-1, 3, 3)).as_rotvec().reshape(T, -1, 3)
    body_joints = 23 if body.kind == "smpl" else 21  # SMPL-X: the hands have their own poses
    betas = shape[person][None].detach().float()
    with torch.no_grad():
        smpl_transl = transl[:, person].float() - body.smpl_transl_to_pelvis(torch.zeros(1, 3), betas)
    return {"global_orient": axis_angle[:, 0].astype(np.float32),
            "body_pose": axis_angle[:, 1:1 + body_joints].reshape(T, -1).astype(np.float32),
            "betas": betas.cpu().numpy().astype(np.float32), "transl": smpl_transl.cpu().numpy().astype(np.float32)}


def _models_body(body):
    """The body the estimate lives in (anny: the networks' own): ``body`` itself, or anny where the output
    body is another (its shape parameters are not the estimate's)."""
    if body.name == "anny":
        return body
    from socialmirror.body import build_body_model
    return build_body_model("anny")


def _write_glb(path: Path, est, body, obs) -> Path:
    """scene.glb: both people as skinned anny meshes at their shapes, one animation at the video's rate, the
    video's camera (``data.formats.gltf``)."""
    import torch

    from socialmirror.data.formats.gltf import AnimatedPerson, format_glb
    from socialmirror.io import atomic_write_bytes
    body = _models_body(body)
    with torch.no_grad():
        people = [AnimatedPerson(body.skin_rig(torch.as_tensor(est.shape[p])), est.rotmats[:, p], est.transl[:, p],
                                 f"person{p + 1}") for p in range(est.shape.shape[0])]
    return atomic_write_bytes(path, format_glb(people, obs.fps, obs.intrinsics, obs.image_size))


def _write_smpl_params(out: Path, fitted, body, obs) -> dict[str, Path]:
    """smpl_params_person1.npz, smpl_params_person2.npz: ``smpl_parameters`` with the model type, gender,
    frame rate and the camera (intrinsics; the parameters are in its frame: identity rotation, zero
    translation)."""
    files = {}
    for p in range(fitted[1].shape[0]):
        params = smpl_parameters(fitted, body, p)
        extra = dict(model_type=np.array(body.kind), gender=np.array(body.gender), fps=np.float32(obs.fps),
                     camera_intrinsics=obs.intrinsics.astype(np.float32), camera_rotation=np.eye(3, dtype=np.float32),
                     camera_translation=np.zeros(3, np.float32), image_size=np.array(obs.image_size, np.int32))
        files[f"smpl_person{p + 1}"] = atomic_savez(out / f"smpl_params_person{p + 1}.npz", **params, **extra)
    return files


def _write_bvh(out: Path, est, body, fps: float) -> dict[str, Path]:
    """person1.bvh and person2.bvh: each person's motion on the SMPL-24 skeleton with that person's bone
    lengths (the models' anny body at the estimated shape), in metres, y up (``geometry.camera.CAMERA_TO_Y_UP``),
    so that the
    two files loaded together keep the pair's placement. Forward kinematics of a file gives the joints of
    result.npz turned by ``CAMERA_TO_Y_UP``."""
    import torch

    from socialmirror.body.skeleton import SMPL24_NAMES, SMPL24_PARENTS
    from socialmirror.data.formats.bvh import format_bvh
    from socialmirror.geometry.camera import CAMERA_TO_Y_UP
    body = _models_body(body)
    with torch.no_grad():
        rest = body.rest_joints(torch.as_tensor(est.shape, dtype=torch.float32)).cpu().numpy().astype(np.float64)
    parents = np.array(SMPL24_PARENTS)
    files = {}
    for p in range(est.shape.shape[0]):
        offsets = rest[p] - rest[p][np.maximum(parents, 0)]
        rotations = est.rotmats[:, p].astype(np.float64).copy()
        rotations[:, 0] = CAMERA_TO_Y_UP @ rotations[:, 0]
        # A nominal tip beyond each leaf (head top, toes, finger tips): half its bone again.
        tips = {j: 0.5 * offsets[j] for j in range(len(parents)) if j not in parents}
        text = format_bvh(SMPL24_NAMES, SMPL24_PARENTS, offsets, est.transl[:, p] @ CAMERA_TO_Y_UP.T, rotations,
                          fps, end_sites=tips)
        files[f"bvh_person{p + 1}"] = atomic_write_text(out / f"person{p + 1}.bvh", text)
    return files


def _write_objs(folder: Path, meshes, faces: np.ndarray) -> Path:
    face_lines = "\n".join(f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces)
    for start, block in meshes.chunks():
        for k, frame in enumerate(block):
            for p, verts in enumerate(frame):
                v = "\n".join(f"v {x:.5f} {y:.5f} {z:.5f}" for x, y, z in verts)
                atomic_write_text(folder / f"frame{start + k:05d}_person{p + 1}.obj", v + "\n" + face_lines + "\n")
    return folder


__all__ = ["Reconstruction", "export"]
