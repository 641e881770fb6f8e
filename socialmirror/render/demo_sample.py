"""The embedded demo sample: a short video the project renders itself, with its exact ground truth.

``socialmirror make-sample`` (documented in the README) regenerates it bit for bit from a seed: a
synthesized interaction (``socialmirror.data.synth``) with meshes, two clothed bodies in a room
(``socialmirror.render.scene``), a camera placed by the observation model's ``place_camera``, H.264 video,
and ``sample_gt.npz`` with the camera-frame joints, intrinsics, action, sentences and contacts. The demo
reconstructs the video from its pixels and reports the error against that ground truth.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from socialmirror.io import atomic_savez
from socialmirror.paths import ASSETS_DIR

SAMPLE_DIR = ASSETS_DIR / "demo"
SAMPLE_VIDEO = SAMPLE_DIR / "sample.mp4"
SAMPLE_GT = SAMPLE_DIR / "sample_gt.npz"


def make_sample(out_dir: str | Path = SAMPLE_DIR, seed: int = 3, action: str = "handshake",
                size: tuple[int, int] = (960, 540), progress: bool = True) -> tuple[Path, Path]:
    """Render the sample video and write its ground truth; returns (video path, ground-truth path)."""
    import imageio_ffmpeg
    from tqdm.auto import tqdm

    from socialmirror.body import build_body_model
    from socialmirror.data.observation import CameraSpec, place_camera
    from socialmirror.data.synth import InteractionSynthesizer, SynthConfig
    from socialmirror.render.scene import Outfit, face_colors, render_scene, room_geometry, vertex_materials

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    body = build_body_model("anny")
    synth = InteractionSynthesizer(body, SynthConfig(with_vertices=True, types=(action,), duration=(3.0, 3.0),
                                                     child_prob=0.0))
    seq = synth.sample(rng, action=action, name=f"demo_{action}")
    W, H = size
    cam = place_camera(seq.joints3d, seq.up, CameraSpec(height=1.6, distance=4.2, azimuth=25.0, image_size=(W, H)))
    # Materials from each person's rest pose (their own phenotype).
    shapes = torch.tensor(seq.meta["shapes"], dtype=torch.float32)
    with torch.no_grad():
        rest = body(torch.eye(3).expand(2, 24, 3, 3), shapes)
    faces = np.asarray(seq.faces, dtype=np.int64)
    first = Outfit.sample(rng)
    outfits = [first, Outfit.sample(rng, avoid_shirt=first.shirt)]
    colors = [face_colors(vertex_materials(rest.vertices[p].numpy(), rest.joints[p].numpy(), outfits[p].long_sleeves),
                          faces, outfits[p]) for p in range(2)]
    verts = np.asarray(seq.vertices, dtype=np.float64)
    ground = float(np.nanmin(verts[..., 1]))
    centre = np.nanmean(seq.joints3d[:, :, 0], axis=(0, 1))
    back = centre - cam.centre
    room_v, room_f, room_c = room_geometry(ground, centre, back)
    room_cam = cam.to_camera(room_v)
    keep = (room_cam[room_f][..., 2] > 0.3).all(-1)  # floor tiles behind the camera are not drawn
    room_f, room_c = room_f[keep], room_c[keep]

    video = out_dir / "sample.mp4"
    tmp = video.with_name(".sample.tmp.mp4")
    writer = imageio_ffmpeg.write_frames(str(tmp), (W, H), fps=float(seq.fps), codec="libx264", pix_fmt_in="rgb24",
                                         pix_fmt_out="yuv420p", macro_block_size=1, quality=None,
                                         ffmpeg_log_level="error",
                                         output_params=["-crf", "26", "-preset", "slow", "-movflags", "+faststart"])
    writer.send(None)
    for t in tqdm(range(seq.num_frames), desc="rendering sample", disable=not progress):
        meshes = [(room_cam, room_f, room_c)]
        meshes += [(cam.to_camera(verts[t, p]), faces, colors[p]) for p in range(2)]
        writer.send(np.ascontiguousarray(render_scene((H, W), cam.K, meshes)))
    writer.close()
    tmp.replace(video)
    joints_cam = cam.to_camera(seq.joints3d).astype(np.float32)
    gt = atomic_savez(out_dir / "sample_gt.npz", joints_cam=joints_cam, intrinsics=cam.K.astype(np.float32),
                      image_size=np.array([W, H], dtype=np.int32), fps=np.float32(seq.fps), action=np.array(seq.action),
                      text=np.array(seq.text), contacts=np.array([list(map(str, c)) for c in seq.contacts]),
                      seed=np.int64(seed), shapes=shapes.numpy())
    return video, gt
