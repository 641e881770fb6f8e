"""The software renderer and render.mp4: camera view overlay, side view on the ground, the video file."""
from __future__ import annotations

import os

import imageio.v3 as iio
import numpy as np
import pytest

from socialmirror.render.mesh_renderer import (PERSON_COLORS, SideCamera, draw_meshes, estimate_up, rasterize,
                                               render_side_view)
from socialmirror.render.video import mp4_is_complete, render_frame, write_render_video


def icosphere(subdiv: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Unit icosphere, faces counter-clockwise seen from outside."""
    t = (1 + 5 ** 0.5) / 2
    v = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t),
         (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    f = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2),
         (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11),
         (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    verts = [np.array(p, float) / np.linalg.norm(p) for p in v]
    faces = f
    for _ in range(subdiv):
        cache, new = {}, []

        def mid(a, b):
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = verts[a] + verts[b]
                verts.append(m / np.linalg.norm(m))
                cache[key] = len(verts) - 1
            return cache[key]
        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new
    return np.array(verts), np.array(faces, dtype=np.int64)


def two_capsules(T: int = 1):
    """Two upright ellipsoid 'bodies' (1.7 m tall) side by side 3.5 m in front of the camera, feet at
    y = 0.9 (camera frame, y down), moving a little over T frames."""
    v, f = icosphere(3)
    body = v * np.array([0.25, 0.85, 0.2])
    out = []
    for t in range(T):
        a = body + np.array([-0.5 + 0.01 * t, 0.05, 3.5])
        b = body + np.array([0.5, 0.05, 3.5 - 0.01 * t])
        out.append([a, b])
    return np.array(out), f


def intrinsics(W=320, H=180):
    f = float(np.hypot(W, H))
    return np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])


def _has_color(img, rgb, tol=60, min_pixels=50):
    """Pixels whose hue matches ``rgb`` (shading scales the colour, so compare normalised colours)."""
    img = img.reshape(-1, 3).astype(float)
    bright = img.sum(1) > 60
    n = img[bright] / img[bright].sum(1, keepdims=True)
    c = np.asarray(rgb, float) / sum(rgb)
    return int((np.abs(n - c).max(1) < tol / 765).sum()) >= min_pixels


def test_icosphere_is_outward_ccw():
    v, f = icosphere(1)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    assert np.einsum("ij,ij->i", a, np.cross(b, c)).min() > 0


def test_rasterize_depth_and_coverage():
    v, f = icosphere(2)
    K = intrinsics(200, 200)
    frags = rasterize(v + np.array([0, 0, 5.0]), f, K, (200, 200))
    # A unit sphere at 5 m: radius on screen ~ f / sqrt(25 - 1) pixels.
    r = K[0, 0] / np.sqrt(24)
    mask = frags.tri >= 0
    assert abs(mask.sum() - np.pi * r * r) / (np.pi * r * r) < 0.05
    assert abs(frags.depth[100, 100] - 4.0) < 0.02  # the nearest point of the sphere
    assert np.isinf(frags.depth[0, 0])


def test_rasterize_is_the_per_pixel_nearest_triangle():
    # The reference, pixel by pixel: each pixel centre's nearest triangle among those that contain it, with
    # depth from the perspective-correct barycentric interpolation of 1/z, back faces (clockwise on screen
    # here, see rasterize) and triangles behind the near plane left out.
    rng = np.random.default_rng(3)
    W, H = 40, 30
    K = np.array([[30.0, 0, 20.0], [0, 30.0, 15.0], [0, 0, 1.0]])
    verts = np.c_[rng.uniform(-1.5, 1.5, (36, 2)), rng.uniform(1.0, 3.0, 36)]
    verts[0, 2] = 0.005  # a triangle through the near plane
    faces = rng.permutation(36).reshape(12, 3)
    faces[0, 0] = 0
    uv = verts[:, :2] / verts[:, 2:] * 30.0 + [20.0, 15.0]
    tri, depth = np.full((H, W), -1), np.full((H, W), np.inf)
    for t, (a, b, c) in enumerate(faces):
        (ax, ay), (bx, by), (cx, cy) = uv[a], uv[b], uv[c]
        area = (bx - ax) * (cy - ay) - (cx - ax) * (by - ay)
        if verts[[a, b, c], 2].min() <= 1e-2 or area >= 0:
            continue
        for y in range(H):
            for x in range(W):
                w0 = ((bx - x) * (cy - y) - (cx - x) * (by - y)) / area
                w1 = ((cx - x) * (ay - y) - (ax - x) * (cy - y)) / area
                if min(w0, w1, 1 - w0 - w1) < 0:
                    continue
                z = 1.0 / (w0 / verts[a, 2] + w1 / verts[b, 2] + (1 - w0 - w1) / verts[c, 2])
                if z < depth[y, x]:
                    tri[y, x], depth[y, x] = t, z
    frags = rasterize(verts, faces, K, (H, W))
    assert (tri >= 0).sum() > 100  # the scene covers a good part of the image
    np.testing.assert_array_equal(frags.tri, tri)
    np.testing.assert_allclose(frags.depth[tri >= 0], depth[tri >= 0], rtol=1e-6)


def test_nearer_mesh_wins():
    v, f = icosphere(2)
    K = intrinsics(200, 200)
    img = np.zeros((200, 200, 3), np.uint8)
    far, near = v + np.array([0, 0, 6.0]), 0.5 * v + np.array([0, 0, 4.0])
    for order in ([far, near], [near, far]):
        cols = [(255, 0, 0), (0, 0, 255)] if order[0] is far else [(0, 0, 255), (255, 0, 0)]
        out = draw_meshes(img, order, f, K, colors=cols)
        assert out[100, 100, 2] > out[100, 100, 0]  # blue (the near one) in the middle
        assert out[100, 100 + 42, 0] > out[100, 100 + 42, 2]  # red (far, larger) around it


def test_render_frame_camera_view_and_side_view():
    verts, f = two_capsules()
    K = intrinsics()
    frame = np.full((180, 320, 3), 30, np.uint8)
    out = render_frame(frame, verts[0], f, K, alpha=1.0)
    assert out.shape == (180, 640, 3) and out.dtype == np.uint8
    cam, side = out[:, :320], out[:, 320:]
    assert (cam != 30).any(axis=2).mean() > 0.05  # meshes drawn over the frame
    for c in PERSON_COLORS[:2]:
        assert _has_color(cam, c), c
        assert _has_color(side, c), c
    # Overlay aligned: person 0 (blue) on the left half of the camera view, person 1 on the right.
    assert _has_color(cam[:, :160], PERSON_COLORS[0]) and not _has_color(cam[:, :160], PERSON_COLORS[1])
    assert _has_color(cam[:, 160:], PERSON_COLORS[1]) and not _has_color(cam[:, 160:], PERSON_COLORS[0])
    # The side view has a ground (below the bodies' feet) and sky (above their heads).
    assert side[-5:].std() > 10  # a checker
    assert side[:5].mean() > 150


def test_side_view_upright():
    verts, f = two_capsules()
    cam = SideCamera.fit(verts, (180, 320))
    assert np.allclose(cam.up, [0, -1, 0], atol=0.05)
    assert abs(cam.ground - (-0.9)) < 0.05  # lowest points at y = 0.9 (camera frame) -> height -0.9
    img = render_side_view(list(verts[0]), f, cam)
    im = img.astype(float)
    n = im / np.maximum(im.sum(2, keepdims=True), 1)
    for c in PERSON_COLORS[:2]:
        body = (np.abs(n - np.asarray(c) / sum(c)).max(2) < 0.08) & (im.sum(2) > 60)
        ys, xs = np.nonzero(body)
        assert len(ys) > 100
        assert np.ptp(ys) > 2 * np.ptp(xs)  # taller than wide: upright
        assert ys.min() > 0 and ys.max() < 179  # fits in the image


def test_estimate_up_tilted_camera():
    verts, _ = two_capsules()
    a = np.radians(15)
    R = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    up = estimate_up(verts @ R.T)
    assert np.allclose(up, R @ np.array([0, -1.0, 0]), atol=0.02)


def test_skeleton_overlay():
    verts, f = two_capsules()
    joints = np.zeros((2, 24, 3))
    joints[:, :, 1] = np.linspace(-0.8, 0.8, 24)[None]
    joints[0, :, 0], joints[1, :, 0], joints[..., 2] = -0.5, 0.5, 3.5
    frame = np.zeros((180, 320, 3), np.uint8)
    out = render_frame(frame, verts[0], f, intrinsics(), joints=joints, draw_mesh=False, side_view=False)
    assert out.shape == (180, 320, 3) and (out > 0).any(axis=2).sum() > 100


def test_write_render_video(tmp_path):
    import imageio_ffmpeg

    T = 7
    verts, f = two_capsules(T)
    frames = [np.full((181, 321, 3), 10 * t, np.uint8) for t in range(T)]  # odd sizes: padded to even
    path = write_render_video(tmp_path / "render.mp4", frames, verts, f, intrinsics(321, 181), fps=12.5,
                              progress=False)
    assert path == tmp_path / "render.mp4" and path.stat().st_size > 1000
    assert os.listdir(tmp_path) == ["render.mp4"]  # the temporary file was renamed, nothing left over
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    assert meta["fps"] == pytest.approx(12.5)
    assert tuple(meta["size"]) == (642, 182)
    assert "h264" in meta["codec"] and "yuv420p" in meta["pix_fmt"]
    assert sum(1 for _ in reader) == T


def test_frames_drawn_by_two_threads_are_the_frames_drawn_by_one(tmp_path):
    T = 9
    verts, f = two_capsules(T)
    frames = [np.full((180, 320, 3), 10 * t, np.uint8) for t in range(T)]
    videos = [write_render_video(tmp_path / f"render{w}.mp4", frames, verts, f, intrinsics(), fps=10,
                                 progress=False, workers=w) for w in (1, 2)]
    one, two = (iio.imread(v) for v in videos)
    assert one.shape[0] == T and np.array_equal(one, two)


def test_write_render_video_failure_leaves_nothing(tmp_path):
    verts, f = two_capsules(4)
    frames = [np.zeros((180, 320, 3), np.uint8)] * 2  # fewer frames than meshes
    with pytest.raises(ValueError, match="ended after 2"):
        write_render_video(tmp_path / "render.mp4", frames, verts, f, intrinsics(), fps=10, progress=False)
    assert os.listdir(tmp_path) == []


def test_render_anny_pair(tmp_path):
    torch = pytest.importorskip("torch")
    from socialmirror.body import build_body_model

    model = build_body_model("anny")
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0]))  # body frame (y up, facing +z) -> camera, facing it
    out = model(_rest_facing_camera(torch, flip),
                transl=torch.tensor([[-0.4, 0.1, 3.0], [0.4, 0.1, 3.0]]))
    K = intrinsics(640, 360)
    img = render_frame(np.zeros((360, 640, 3), np.uint8), out.vertices, out.faces, K, alpha=1.0,
                       joints=out.joints)
    assert img.shape == (360, 1280, 3)
    for c in PERSON_COLORS[:2]:
        assert _has_color(img[:, :640], c) and _has_color(img[:, 640:], c)


def _rest_facing_camera(torch, flip):
    rot = torch.eye(3).expand(2, 24, 3, 3).clone()
    rot[:, 0] = flip  # global orientation only: the rest A-pose, upright in the camera frame
    return rot


def test_missing_person_frame_is_skipped(tmp_path):
    """A person not reconstructed in a frame (NaN vertices) is left out of that frame, not a crash."""
    import imageio_ffmpeg

    verts, f = two_capsules(3)
    verts[1, 1] = np.nan
    frames = [np.zeros((180, 320, 3), np.uint8)] * 3
    out = render_frame(frames[0], verts[1], f, intrinsics(), side_camera=SideCamera.fit(verts, (180, 320)),
                       alpha=1.0)
    assert _has_color(out, PERSON_COLORS[0]) and not _has_color(out, PERSON_COLORS[1])
    pairs = list(enumerate(frames))  # (index, frame) as the perception readers yield
    path = write_render_video(tmp_path / "r.mp4", pairs, verts, f, intrinsics(), fps=5, progress=False)
    assert imageio_ffmpeg.count_frames_and_secs(str(path))[0] == 3


def test_overlay_matches_project():
    """The rasterised silhouette is the one ``geometry.camera.project`` gives (same pixel convention)."""
    import cv2
    torch = pytest.importorskip("torch")
    from socialmirror.geometry.camera import project

    verts, f = two_capsules()
    K = intrinsics()
    frags = rasterize(np.concatenate(verts[0]), np.concatenate([f, f + len(verts[0, 0])]), K, (180, 320),
                      cull_back=False)
    uv = project(torch.as_tensor(np.concatenate(verts[0])), torch.as_tensor(K)).numpy()
    ref = np.zeros((180, 320), np.uint8)
    tris = uv[np.concatenate([f, f + len(verts[0, 0])])]
    # cv2 draws pixel centres at integer coordinates too; 4 bits of sub-pixel precision.
    for tri in np.round(tris * 16).astype(np.int32):
        cv2.fillConvexPoly(ref, tri, 1, lineType=cv2.LINE_8, shift=4)
    mask = frags.tri >= 0
    iou = (mask & (ref > 0)).sum() / (mask | (ref > 0)).sum()
    assert iou > 0.95  # cv2 also fills the pixels the edges touch: a one-pixel rim more
    ys, xs = np.nonzero(mask)
    ry, rx = np.nonzero(ref)
    assert abs(xs.mean() - rx.mean()) < 0.3 and abs(ys.mean() - ry.mean()) < 0.3  # no offset


_SIZE_LIMITED_RENDER = """
import resource, sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from test_render import intrinsics, two_capsules
from socialmirror.errors import OutputError, exit_code
from socialmirror.render.video import write_render_video
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # ulimit -f: ffmpeg, a child, inherits it
verts, f = two_capsules(6)
frames = [np.random.default_rng(t).integers(0, 255, (180, 320, 3), dtype=np.uint8) for t in range(6)]
try:
    write_render_video(sys.argv[1], frames, verts, f, intrinsics(), fps=10, progress=False)
except OutputError as exc:
    print("OutputError", exit_code(exc))
except OSError as exc:
    print("OSError", exit_code(exc))
else:
    print("written")
"""


def test_a_render_that_cannot_be_written_whole_is_an_error_and_keeps_the_earlier_one(tmp_path):
    """Issue 15 case 1: with a file size limit (a full disk) ffmpeg leaves a truncated video; it must not
    replace a good render.mp4, and the failure is a user-level error (exit 2), not a silent success."""
    import subprocess
    import sys
    good = tmp_path / "render.mp4"
    verts, f = two_capsules(3)
    write_render_video(good, [np.zeros((180, 320, 3), np.uint8)] * 3, verts, f, intrinsics(), fps=10,
                       progress=False)
    before = good.read_bytes()
    out = subprocess.run([sys.executable, "-c", _SIZE_LIMITED_RENDER, str(good), os.path.dirname(__file__)],
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split()[:2] in (["OutputError", "2"], ["OSError", "2"]), out.stdout + out.stderr
    assert good.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["render.mp4"]  # no temporary file left behind


def test_mp4_is_complete_sees_a_truncated_video(tmp_path):
    verts, f = two_capsules(3)
    path = write_render_video(tmp_path / "render.mp4", [np.zeros((180, 320, 3), np.uint8)] * 3, verts, f,
                              intrinsics(), fps=10, progress=False)
    assert mp4_is_complete(path)
    data = path.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) - 100])
    assert not mp4_is_complete(tmp_path / "cut.mp4")


def test_render_video_reads_meshes_frame_by_frame(tmp_path):
    """The render of meshes skinned two frames at a time (body.meshes.MeshFrames) is the render of the whole
    array, byte for byte."""
    from socialmirror.body.meshes import MeshFrames

    T = 5
    verts, f = two_capsules(T)
    frames = [np.full((180, 320, 3), 20 * t, np.uint8) for t in range(T)]
    calls = []

    def skin(index):
        calls.append(len(index))
        return verts[index]
    a = write_render_video(tmp_path / "a.mp4", frames, verts, f, intrinsics(), fps=10, progress=False)
    b = write_render_video(tmp_path / "b.mp4", frames, MeshFrames(skin, T, chunk=2), f, intrinsics(), fps=10,
                           progress=False)
    assert a.read_bytes() == b.read_bytes() and max(calls) <= 2


def test_render_views_overlay_side_or_both(tmp_path):
    """Issue 13 item 3: render.mp4 shows the overlay beside the side view, or either alone."""
    import imageio_ffmpeg
    verts, f = two_capsules(3)
    frame = np.full((180, 320, 3), 30, np.uint8)
    both = render_frame(frame, verts[0], f, intrinsics())
    overlay = render_frame(frame, verts[0], f, intrinsics(), side_view=False)
    side = render_frame(frame, verts[0], f, intrinsics(), camera_view=False)
    assert both.shape == (180, 640, 3) and overlay.shape == side.shape == (180, 320, 3)
    assert np.array_equal(both[:, :320], overlay) and np.array_equal(both[:, 320:], side)
    with pytest.raises(ValueError, match="camera view, the side view or both"):
        render_frame(frame, verts[0], f, intrinsics(), camera_view=False, side_view=False)
    path = write_render_video(tmp_path / "side.mp4", [frame] * 3, verts, f, intrinsics(), fps=10, progress=False,
                              camera_view=False)
    meta = next(imageio_ffmpeg.read_frames(str(path)))
    assert tuple(meta["size"]) == (320, 180)


def test_render_view_is_checked_when_the_config_is_made():
    from socialmirror.api import ReconstructConfig
    from socialmirror.config import ConfigError
    assert ReconstructConfig(render_view="side").export_options().render_view == "side"
    with pytest.raises(ConfigError, match="render_view: one of both, overlay, side"):
        ReconstructConfig(render_view="top")
