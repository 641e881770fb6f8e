"""A software mesh rasteriser (no OpenGL): what ``render.mp4`` and the render protocol's videos are drawn with.

Triangles are rasterised exactly at pixel centres (OpenCV's convention: pixel (u, v) has its centre at the
integer coordinates (u, v), which is what ``socialmirror.geometry.camera.project`` returns) with a z-buffer:
each triangle tests the pixel centres of its bounding box against its edges, and each pixel keeps the
smallest 64-bit key ``quantised depth << 20 | triangle id`` (the nearest triangle; at equal depth the first).
The per-triangle and per-pixel loops (rasterising, decoding the keys, painting) are compiled with numba
(``cache=True``: compiled once per machine, ``socialmirror setup`` does it) and release the GIL, so the threads
that draw a video's frames run on both cores; the NumPy version they replace drew the same pixels about four
to six times slower (README, "Speed").
Shading is flat Lambert (one colour per triangle) from a light near the camera, with back faces culled
(the body meshes are closed and wound counter-clockwise seen from outside; pass ``cull_back=False`` for
others).

Two views:
- the camera view, the meshes in the camera frame (OpenCV: x right, y down, z forward, metres) drawn over
  the input frame with the 3x3 intrinsics K (``render_camera_view``);
- a side view from a virtual camera looking horizontally from the side at the pair standing on a checker
  ground plane (``SideCamera.fit`` places it from the whole sequence, ``render_side_view`` draws a frame).
  The ground plane is perpendicular to the up direction (given, or estimated from the bodies' long axes;
  OpenCV's -y by default) at the height of the lowest vertices.

Images are RGB uint8 (H, W, 3).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numba
import numpy as np

from socialmirror.body.skeleton import SMPL24_PARENTS

# Body colours (RGB), one per person, and the darker ones of their skeletons.
PERSON_COLORS: tuple[tuple[int, int, int], ...] = ((70, 135, 235), (240, 140, 50), (90, 190, 110), (200, 90, 200))
SKELETON_COLORS: tuple[tuple[int, int, int], ...] = ((20, 60, 170), (170, 70, 10), (30, 120, 50), (120, 30, 120))

_ID_BITS = 20  # up to ~1M triangles per image
_DEPTH_LEVELS = (1 << 40) - 1
_BACKGROUND_KEY = np.iinfo(np.int64).max


def person_color(i: int) -> tuple[int, int, int]:
    return PERSON_COLORS[i % len(PERSON_COLORS)]


def as_numpy(x, dtype=np.float64) -> np.ndarray:
    """A numpy array of ``dtype`` from an array, a nested sequence or a torch tensor (on any device): what every
    drawing function accepts."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


@dataclass
class Fragments:
    """The z-buffer of one rasterisation: per pixel, the winning triangle (-1: none) and its depth."""
    tri: np.ndarray  # (H, W) int64, index into the concatenated triangles, -1 where empty
    depth: np.ndarray  # (H, W) float64 camera depth (z), inf where empty


def rasterize(verts_cam: np.ndarray, faces: np.ndarray, K: np.ndarray, size: tuple[int, int],
              cull_back: bool = True, near: float = 1e-2,
              background_depth: np.ndarray | None = None) -> Fragments:
    """Z-buffer rasterisation of one triangle soup.

    verts_cam (N, 3) camera-frame points (z forward); faces (F, 3) indices into them; K (3, 3); size (H, W).
    ``background_depth`` (H, W) optional depths already in the buffer (e.g. a ground plane): a triangle only
    wins a pixel where it is nearer. Triangles with a vertex nearer than ``near`` are dropped.
    """
    H, W = size
    verts_cam = np.asarray(verts_cam, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if len(faces) >= (1 << _ID_BITS) - 1:
        raise ValueError(f"at most {(1 << _ID_BITS) - 2} triangles per image, got {len(faces)}")
    z = verts_cam[:, 2]
    zc = np.maximum(z, near)
    px = verts_cam[:, 0] / zc * K[0, 0] + K[0, 2]
    py = verts_cam[:, 1] / zc * K[1, 1] + K[1, 2]

    zbuf = np.full(H * W, _BACKGROUND_KEY, dtype=np.int64)
    zmin, zscale = _zbuffer_keys(px, py, z, faces, near, cull_back, H, W, zbuf)

    tri = np.full(H * W, -1, dtype=np.int64)
    depth = np.full(H * W, np.inf)
    background = np.zeros(0) if background_depth is None else \
        np.ascontiguousarray(background_depth, dtype=np.float64).reshape(-1)
    _decode_keys(zbuf, zmin, zscale, background, tri, depth)
    return Fragments(tri=tri.reshape(H, W), depth=depth.reshape(H, W))


@numba.njit(cache=True, nogil=True)
def _decode_keys(zbuf, zmin, zscale, background, tri, depth):
    """Each covered pixel's triangle and depth from its key, where it is nearer than ``background`` (when not
    empty): the background, one layer, tested against the pixel's nearest triangle is what testing it against
    every triangle would give."""
    for i in range(zbuf.size):
        key = zbuf[i]
        if key == _BACKGROUND_KEY:
            continue
        nearest = (key >> _ID_BITS) / zscale + zmin
        if background.size and not nearest <= background[i]:
            continue
        tri[i] = key & ((1 << _ID_BITS) - 1)
        depth[i] = nearest


@numba.njit(cache=True, nogil=True)
def _triangle_boxes(px, py, z, faces, near, cull_back, H, W):
    """Which triangles are drawn (all vertices beyond ``near``, an area, facing the camera with ``cull_back``,
    a box that meets the image), their pixel boxes (xmin, xmax, ymin, ymax) and the drawn ones' depth range."""
    n = len(faces)
    drawn = np.zeros(n, np.bool_)
    box = np.zeros((n, 4), np.int64)
    zmin, zmax = np.inf, -np.inf
    for t in range(n):
        a, b, c = faces[t, 0], faces[t, 1], faces[t, 2]
        if not (z[a] > near and z[b] > near and z[c] > near):
            continue
        # Twice the signed screen area; with y down, a triangle wound counter-clockwise in 3D seen from the
        # camera is clockwise on screen, i.e. negative area here.
        area = (px[b] - px[a]) * (py[c] - py[a]) - (px[c] - px[a]) * (py[b] - py[a])
        if not abs(area) > 1e-12 or (cull_back and not area < 0):
            continue
        x0 = max(np.ceil(min(min(px[a], px[b]), px[c])), 0.0)
        x1 = min(np.floor(max(max(px[a], px[b]), px[c])), W - 1.0)
        y0 = max(np.ceil(min(min(py[a], py[b]), py[c])), 0.0)
        y1 = min(np.floor(max(max(py[a], py[b]), py[c])), H - 1.0)
        if not (x1 >= x0 and y1 >= y0):
            continue
        drawn[t] = True
        box[t, 0], box[t, 1], box[t, 2], box[t, 3] = int(x0), int(x1), int(y0), int(y1)
        zmin = min(zmin, z[a], z[b], z[c])
        zmax = max(zmax, z[a], z[b], z[c])
    return drawn, box, zmin, zmax


@numba.njit(cache=True, nogil=True)
def _zbuffer_keys(px, py, z, faces, near, cull_back, H, W, zbuf):
    """Rasterise the triangles into the key buffer ``zbuf`` (H * W int64): every pixel centre of each drawn
    triangle's box (``_triangle_boxes``) tested against its edges (barycentric coordinates from the edge
    functions over the doubled area), the nearest triangle kept per pixel as the smallest key ``quantised
    depth << _ID_BITS | triangle``. Returns (zmin, zscale), the depth quantisation. Compiled, and the GIL
    released, so the threads that draw a video's frames run at once."""
    drawn, box, zmin, zmax = _triangle_boxes(px, py, z, faces, near, cull_back, H, W)
    if not drawn.any():
        return 0.0, _DEPTH_LEVELS / 1.0
    zscale = _DEPTH_LEVELS / max(zmax - zmin, 1e-9)
    eps = -1e-9
    for t in range(len(faces)):
        if not drawn[t]:
            continue
        a, b, c = faces[t, 0], faces[t, 1], faces[t, 2]
        ax, ay, bx, by, cx, cy = px[a], py[a], px[b], py[b], px[c], py[c]
        inv = 1.0 / ((bx - ax) * (cy - ay) - (cx - ax) * (by - ay))
        # Perspective-correct depth: 1/z is affine in screen space.
        iz0, iz1, iz2 = 1.0 / z[a], 1.0 / z[b], 1.0 / z[c]
        for y in range(box[t, 2], box[t, 3] + 1):
            fy = float(y)
            for x in range(box[t, 0], box[t, 1] + 1):
                fx = float(x)
                w0 = ((bx - fx) * (cy - fy) - (cx - fx) * (by - fy)) * inv
                w1 = ((cx - fx) * (ay - fy) - (ax - fx) * (cy - fy)) * inv
                if w0 >= eps and w1 >= eps and w0 + w1 <= 1.0 - eps:
                    depth = 1.0 / (iz2 + w0 * (iz0 - iz2) + w1 * (iz1 - iz2))
                    q = min(max((depth - zmin) * zscale, 0.0), float(_DEPTH_LEVELS))
                    key = (np.int64(q) << _ID_BITS) | t
                    pix = y * W + x
                    if key < zbuf[pix]:
                        zbuf[pix] = key
    return zmin, zscale


def compile_kernels() -> None:
    """Compile the rasteriser's kernels now (numba caches them; the first drawing otherwise pays ~2 s)."""
    verts = np.array([[0.0, 0.0, 2.0], [1.0, 0.0, 2.0], [0.0, 1.0, 2.0]])
    draw_meshes(np.zeros((8, 8, 3), np.uint8), [verts], np.array([[0, 2, 1]]), np.diag([10.0, 10.0, 1.0]),
                alpha=0.5, background_depth=np.full((8, 8), 9.0))


def face_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit normals (F, 3) of triangles ``faces`` (F, 3) over ``verts`` (V, 3), by the right-hand rule."""
    return _face_normals(np.asarray(verts, dtype=np.float64), np.asarray(faces, dtype=np.int64))


@numba.njit(cache=True, nogil=True)
def _face_normals(verts, faces):
    out = np.empty((len(faces), 3))
    for t in range(len(faces)):
        a, b, c = verts[faces[t, 0]], verts[faces[t, 1]], verts[faces[t, 2]]
        u0, u1, u2 = b[0] - a[0], b[1] - a[1], b[2] - a[2]
        v0, v1, v2 = c[0] - a[0], c[1] - a[1], c[2] - a[2]
        n0, n1, n2 = u1 * v2 - u2 * v1, u2 * v0 - u0 * v2, u0 * v1 - u1 * v0
        length = max(np.sqrt(n0 * n0 + n1 * n1 + n2 * n2), 1e-12)
        out[t, 0], out[t, 1], out[t, 2] = n0 / length, n1 / length, n2 / length
    return out


def shade_faces(verts_cam: np.ndarray, faces: np.ndarray, color, light_dir=(0.3, -0.5, -1.0),
                ambient: float = 0.35) -> np.ndarray:
    """Flat Lambert colour (F, 3) float of each face (``color``: (3,) or per face (F, 3)) lit from ``light_dir``
    (towards the light, camera frame; default: from the camera, slightly above and to the right)."""
    n = face_normals(verts_cam, faces)
    light = np.asarray(light_dir, dtype=np.float64)
    light = light / np.linalg.norm(light)
    lam = np.abs(n @ light)  # two-sided, for the rare inward faces
    k = ambient + (1.0 - ambient) * lam
    color = np.asarray(color, dtype=np.float64)
    return k[:, None] * (color[None, :] if color.ndim == 1 else color)  # one colour, or one per face


def _stack_meshes(meshes, faces):
    verts, tris, owner = [], [], []
    offset = 0
    for i, v in enumerate(meshes):
        verts.append(v)
        tris.append(faces + offset)
        owner.append(np.full(len(faces), i))
        offset += len(v)
    return np.concatenate(verts), np.concatenate(tris), np.concatenate(owner)


def draw_meshes(image: np.ndarray, meshes, faces, K, colors=None, alpha: float = 1.0, cull_back: bool = True,
                light_dir=(0.3, -0.5, -1.0), background_depth: np.ndarray | None = None) -> np.ndarray:
    """Draw meshes (list of (V, 3) camera-frame vertices sharing ``faces``) over ``image`` (H, W, 3) uint8
    with intrinsics K, z-buffered against each other (and ``background_depth``). Returns a new image."""
    image = np.asarray(image)
    H, W = image.shape[:2]
    faces = as_numpy(faces, np.int64)
    meshes = [as_numpy(m) for m in meshes]
    K = as_numpy(K)
    if not meshes:
        return image.copy()
    colors = colors or [person_color(i) for i in range(len(meshes))]
    # A person missing in this frame (non-finite vertices) is not drawn; the others keep their colours.
    shown = [i for i, m in enumerate(meshes) if np.isfinite(m).all()]
    meshes, colors = [meshes[i] for i in shown], [colors[i] for i in shown]
    if not meshes:
        return image.copy()
    verts, tris, _ = _stack_meshes(meshes, faces)
    frags = rasterize(verts, tris, K, (H, W), cull_back=cull_back, background_depth=background_depth)
    face_rgb = np.concatenate([shade_faces(m, faces, colors[i], light_dir) for i, m in enumerate(meshes)])
    out = image.copy()
    _paint(out, frags.tri, np.ascontiguousarray(face_rgb, dtype=np.float64), float(alpha))
    return out


@numba.njit(cache=True, nogil=True)
def _paint(out, tri, face_rgb, alpha):
    """Each pixel of ``out`` (H, W, 3) that a triangle covers (``tri`` >= 0) in its face colour, blended with
    weight ``alpha`` over the pixel (in float32), rounded to the nearest level."""
    H, W = tri.shape
    for y in range(H):
        for x in range(W):
            t = tri[y, x]
            if t < 0:
                continue
            for c in range(3):
                if alpha < 1.0:
                    under = np.float32(1.0 - alpha) * np.float32(out[y, x, c])
                    v = np.float32(alpha * face_rgb[t, c] + under) + np.float32(0.5)
                    out[y, x, c] = np.uint8(min(max(v, np.float32(0.0)), np.float32(255.0)))
                else:
                    out[y, x, c] = np.uint8(min(max(face_rgb[t, c] + 0.5, 0.0), 255.0))


def draw_skeleton(image: np.ndarray, joints_cam, K, colors=None, radius: int = 3, thickness: int = 2,
                  parents=SMPL24_PARENTS) -> np.ndarray:
    """Bones and joints of each person (list of (24, 3) camera-frame joints), projected with K."""
    out = np.ascontiguousarray(image.copy())
    K = as_numpy(K)
    colors = colors or list(SKELETON_COLORS)
    for i, j in enumerate(joints_cam):
        j = as_numpy(j)
        if not np.isfinite(j).all() or (j[:, 2] <= 1e-2).any():
            continue
        uv = np.stack([j[:, 0] / j[:, 2] * K[0, 0] + K[0, 2], j[:, 1] / j[:, 2] * K[1, 1] + K[1, 2]], 1)
        if not np.isfinite(uv).all() or np.abs(uv).max() > 1e5:
            continue
        pts = np.round(uv).astype(np.int32)
        col = tuple(int(c) for c in colors[i % len(colors)])
        for c, p in enumerate(parents):
            if p >= 0:
                cv2.line(out, tuple(pts[p]), tuple(pts[c]), col, thickness, cv2.LINE_AA)
        for p in pts:
            cv2.circle(out, tuple(p), radius, (255, 255, 255), -1, cv2.LINE_AA)
            cv2.circle(out, tuple(p), radius, col, 1, cv2.LINE_AA)
    return out


def render_camera_view(frame: np.ndarray, meshes, faces, K, alpha: float = 0.85, joints=None,
                       draw_mesh: bool = True) -> np.ndarray:
    """The input frame with the meshes (and optionally skeletons) overlaid through intrinsics K."""
    out = draw_meshes(frame, meshes, faces, K, alpha=alpha) if draw_mesh else np.array(frame, copy=True)
    if joints is not None:
        out = draw_skeleton(out, joints, K)
    return out


# --------------------------------------------------------------------------------------------------
# Side view

def estimate_up(vertices, default=(0.0, -1.0, 0.0), max_angle_deg: float = 35.0) -> np.ndarray:
    """The world's up direction in the camera frame, from the bodies' long axes.

    vertices (..., V, 3) (any leading dimensions: frames, people). Each body's principal axis (largest
    spread) is taken, signed towards ``default``, and averaged; people who stand or walk point it upwards.
    Where the estimate is more than ``max_angle_deg`` from ``default`` (people lying, bending, hugging on
    the floor) the default (OpenCV's -y: a level camera) is kept.
    """
    default = np.asarray(default, dtype=np.float64)
    default = default / np.linalg.norm(default)
    v = vertices if isinstance(vertices, np.ndarray) else as_numpy(vertices)
    v = v.reshape(-1, v.shape[-2], 3)
    bodies = np.flatnonzero(np.isfinite(v).all(axis=(1, 2)))
    if len(bodies) > 64:
        bodies = bodies[np.linspace(0, len(bodies) - 1, 64).round().astype(int)]
    axes = []
    for body in v[bodies]:  # only the bodies looked at are copied (a video's meshes are large)
        sub = body[:: max(1, len(body) // 2000)].astype(np.float64)
        c = sub - sub.mean(0)
        _, s, vt = np.linalg.svd(c, full_matrices=False)
        if s[0] < 1.3 * s[1]:  # no clear long axis
            continue
        a = vt[0]
        axes.append(a if a @ default >= 0 else -a)
    if not axes:
        return default
    up = np.mean(axes, 0)
    up /= np.linalg.norm(up)
    if np.degrees(np.arccos(np.clip(up @ default, -1, 1))) > max_angle_deg:
        return default
    return up


def fill_missing_frames(v: np.ndarray) -> np.ndarray:
    """(T, P, V, 3) with the person-frames that have non-finite vertices replaced by that person's
    nearest complete frame (for placing cameras and ground planes, never for drawing)."""
    ok = np.isfinite(v).all(axis=(2, 3))  # (T, P)
    if ok.all():
        return v
    if not ok.any():
        raise ValueError("no frame has finite vertices")
    v = v.copy()
    for p in range(v.shape[1]):
        good = np.nonzero(ok[:, p])[0]
        if len(good) == 0:  # this person is never seen: use another one's
            q = int(np.nonzero(ok.any(0))[0][0])
            v[:, p] = v[:, q]
            good_q = np.nonzero(ok[:, q])[0]
            for t in np.nonzero(~ok[:, q])[0]:
                v[t, p] = v[good_q[np.abs(good_q - t).argmin()], q]
            continue
        for t in np.nonzero(~ok[:, p])[0]:
            v[t, p] = v[good[np.abs(good - t).argmin()], p]
    return v


def _horizontal(x: np.ndarray, up: np.ndarray) -> np.ndarray | None:
    """``x`` projected on the ground plane and normalised; None where it is (nearly) vertical."""
    x = x - (x @ up) * up
    n = np.linalg.norm(x)
    return x / n if n > 1e-6 else None


def _side_direction(centres: np.ndarray, up: np.ndarray, yaw_deg: float, elevation_deg: float) -> np.ndarray:
    """Unit vector from the pair towards the side camera: horizontal and perpendicular to the line joining
    the two people (both stay visible), on the original camera's side, turned ``yaw_deg`` about up, raised
    ``elevation_deg``. centres (T, P, 3) per-frame body centres."""
    cam_fwd = _horizontal(np.array([0.0, 0.0, 1.0]), up)
    if cam_fwd is None:
        cam_fwd = _horizontal(np.array([1.0, 0.0, 0.0]), up)
    toward_cam = -cam_fwd
    axis = _horizontal((centres[:, 1] - centres[:, 0]).mean(0), up) if centres.shape[1] >= 2 else None
    if axis is None:
        view_from = toward_cam
    else:
        view_from = np.cross(up, axis)
        view_from /= np.linalg.norm(view_from)
        if view_from @ toward_cam < 0:
            view_from = -view_from
    yaw = np.radians(yaw_deg)
    # Rodrigues rotation of view_from about up.
    view_from = (view_from * np.cos(yaw) + np.cross(up, view_from) * np.sin(yaw)
                 + up * (up @ view_from) * (1 - np.cos(yaw)))
    elev = np.radians(elevation_deg)
    return view_from * np.cos(elev) + up * np.sin(elev)


def _distance_to_fit(v: np.ndarray, target: np.ndarray, direction: np.ndarray, up: np.ndarray, f: float,
                     size: tuple[int, int], margin: float) -> float:
    """How far along ``direction`` from ``target`` the eye must stand for every (subsampled) vertex, plus
    each body's extreme ones along the image axes, to lie in the (H, W) image with ``margin``."""
    H, W = size
    R0, _ = _look_at(target + direction, target, up)
    flat = v.reshape(-1, v.shape[-2], 3)
    extremes = []
    for axis in R0:
        proj = flat @ axis
        extremes += [np.take_along_axis(flat, proj.argmax(1)[:, None, None], 1)[:, 0],
                     np.take_along_axis(flat, proj.argmin(1)[:, None, None], 1)[:, 0]]
    stride = max(1, flat.size // 3 // 50000)
    pts = np.concatenate([flat.reshape(-1, 3)[::stride]] + extremes)
    dist = 1.0
    for _ in range(30):
        eye = target + direction * dist
        R, _ = _look_at(eye, target, up)
        pc = (pts - eye) @ R.T
        if (pc[:, 2] > 0.1).all():
            u = np.abs(pc[:, 0] / pc[:, 2]) * f * margin
            w = np.abs(pc[:, 1] / pc[:, 2]) * f * margin
            if (u <= W / 2).all() and (w <= H / 2).all():
                break
        dist *= 1.15
    return dist


def _look_at(eye, target, up):
    """Camera-from-world rotation R (rows: camera x right, y down, z forward) and eye position."""
    f = target - eye
    f = f / np.linalg.norm(f)
    r = np.cross(f, up)  # right = forward x up  (with y down: x = y_down x z ... built explicitly below)
    r = r / np.linalg.norm(r)
    d = np.cross(f, r)  # down
    return np.stack([r, d, f]), eye


@dataclass
class SideCamera:
    """A virtual pinhole camera for the side view, fixed over a sequence (camera-frame coordinates of the
    reconstruction in, side-camera coordinates out), and the ground plane ``up . p = ground``."""
    R: np.ndarray  # (3, 3) side-camera-from-reconstruction rotation
    eye: np.ndarray  # (3,) side camera position in the reconstruction's camera frame
    K: np.ndarray  # (3, 3) intrinsics of the side view image
    size: tuple[int, int]  # (H, W)
    up: np.ndarray  # (3,) unit up direction in the reconstruction's camera frame
    ground: float  # height of the ground plane along ``up``
    tile: float = 0.5  # checker square side, metres

    def to_cam(self, p: np.ndarray) -> np.ndarray:
        return (np.asarray(p, dtype=np.float64) - self.eye) @ self.R.T

    @classmethod
    def fit(cls, vertices, size: tuple[int, int], up=None, yaw_deg: float = 35.0, elevation_deg: float = 12.0,
            fov_deg: float = 45.0, margin: float = 1.15) -> "SideCamera":
        """Place the side camera for a whole sequence: vertices (T, P, V, 3) or (P, V, 3) camera frame.

        The camera looks horizontally (``elevation_deg`` down) at the pair's centre, from the side: along
        the horizontal perpendicular to the line joining the two people (both stay visible), on the
        original camera's side, turned ``yaw_deg`` about the up axis (so depth errors show), far enough
        for every frame's bodies to fit in the image.
        """
        v = as_numpy(vertices)
        if v.ndim == 3:
            v = v[None]
        v = fill_missing_frames(v)
        T, P = v.shape[:2]
        if T > 200:
            v = v[np.linspace(0, T - 1, 200).round().astype(int)]
        up = estimate_up(v) if up is None else as_numpy(up) / np.linalg.norm(as_numpy(up))
        heights = v @ up  # (T, P, V)
        per_frame_low = heights.min(axis=(1, 2))
        ground = float(np.percentile(per_frame_low, 5))

        centres = v.mean(axis=2)  # (T, P, 3)
        centre = centres.mean(axis=(0, 1))
        direction = _side_direction(centres, up, yaw_deg, elevation_deg)  # from the target towards the eye
        # Aim at the middle of the bodies' height range.
        hmin, hmax = ground, float(np.percentile(heights.max(axis=2), 95))
        target = centre - (centre @ up) * up + up * (0.5 * (hmin + hmax))

        H, W = size
        f = 0.5 * H / np.tan(np.radians(fov_deg) / 2)
        K = np.array([[f, 0, W / 2.0], [0, f, H / 2.0], [0, 0, 1.0]])
        dist = _distance_to_fit(v, target, direction, up, f, (H, W), margin)
        eye = target + direction * dist
        R, _ = _look_at(eye, target, up)
        return cls(R=R, eye=eye, K=K, size=(H, W), up=up, ground=ground)

    def ground_image(self, light=(210, 210, 210), dark=(150, 150, 150), sky_top=(236, 240, 246),
                     sky_bottom=(190, 200, 215)) -> tuple[np.ndarray, np.ndarray]:
        """The background (H, W, 3) uint8: a checker ground plane under a sky gradient, and its depth
        (H, W) (inf on the sky), for the z-buffer."""
        H, W = self.size
        u, v = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
        rays_cam = np.stack([(u - self.K[0, 2]) / self.K[0, 0], (v - self.K[1, 2]) / self.K[1, 1],
                             np.ones_like(u)], -1)
        rays = rays_cam @ self.R  # to the reconstruction frame (R is orthonormal)
        denom = rays @ self.up
        hit_t = (self.ground - self.eye @ self.up) / np.where(np.abs(denom) < 1e-9, -1e-9, denom)
        valid = (hit_t > 0) & (denom < 0)
        hits = self.eye + rays * hit_t[..., None]
        # Checker in plane coordinates.
        e1 = np.cross(self.up, self.R[2])
        e1 /= np.linalg.norm(e1) if np.linalg.norm(e1) > 1e-9 else 1.0
        e2 = np.cross(self.up, e1)
        a = np.floor(hits @ e1 / self.tile).astype(np.int64)
        b = np.floor(hits @ e2 / self.tile).astype(np.int64)
        checker = ((a + b) & 1).astype(bool)
        t = np.linspace(0, 1, H)[:, None, None]
        sky = (1 - t) * np.array(sky_top) + t * np.array(sky_bottom)
        img = np.broadcast_to(sky, (H, W, 3)).copy()
        ground_rgb = np.where(checker[..., None], np.array(light, float), np.array(dark, float))
        # Fade to the horizon colour with distance.
        fade = np.clip((hit_t - 3.0) / 25.0, 0.0, 1.0)[..., None] * 0.7
        ground_rgb = (1 - fade) * ground_rgb + fade * np.array(sky_bottom, float)
        img = np.where(valid[..., None], ground_rgb, img)
        depth = np.where(valid, hit_t * rays_cam[..., 2], np.inf)
        return np.clip(img + 0.5, 0, 255).astype(np.uint8), depth


def render_side_view(meshes, faces, camera: SideCamera, joints=None, background=None) -> np.ndarray:
    """The bodies (list of (V, 3) reconstruction camera-frame vertices) seen by the side camera on its
    checker ground. ``background`` = ``camera.ground_image()`` may be passed to reuse it across frames."""
    img, depth = background if background is not None else camera.ground_image()
    side = [camera.to_cam(as_numpy(m)) for m in meshes]
    out = draw_meshes(img, side, faces, camera.K, alpha=1.0, background_depth=depth,
                      light_dir=(0.3, -0.6, -1.0))
    if joints is not None:
        out = draw_skeleton(out, [camera.to_cam(as_numpy(j)) for j in joints], camera.K)
    return out
