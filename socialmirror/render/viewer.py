"""``viewer.html``: a self-contained interactive page of the reconstruction (three.js, works offline).

One HTML file holds everything: three.js (the minified ES module build shipped under
``socialmirror/assets/viewer/``, MIT licence, imported from a blob URL made of an inline copy), the page's
own script (``viewer.js`` there: playback, frame slider, orbit camera, a Canvas-2D fallback where WebGL is
missing) and the animation data. No network access, no CDN: it opens from ``file://``.

Data: the meshes are moved from the camera frame (OpenCV: y down) into a y-up world whose ground plane
(estimated from the lowest vertices and the up direction, as for the side view of ``render.mp4``) is y = 0,
quantised to int16 on a grid of ``precision`` metres (1 mm by default, coarser only for scenes larger than
65 m), delta-coded over time, byte-planed, zlib-compressed and base64-encoded; the page inflates it with the
browser's ``DecompressionStream``. About 1-3 kB per body per frame for moving anny bodies (13,718 vertices).

Test hooks: ``window.viewerState = {frame, numFrames, ready, playing, renderer}``, ``window.setFrame(k)``,
and the URL parameters ``?frame=K`` (start paused at frame K), ``?slider=K`` (move the frame slider to K
once loaded, through its input event, as a user would), ``?play=0``, ``?skeleton=1`` and ``?renderer=canvas``
(force the Canvas-2D fallback that is otherwise used only where WebGL is missing).
"""
from __future__ import annotations

import base64
import html
import json
import logging
import warnings
import zlib
from importlib import resources
from pathlib import Path

import numpy as np

from socialmirror.body.meshes import MeshFrames, as_mesh_frames
from socialmirror.body.skeleton import SMPL24_PARENTS
from socialmirror.render.mesh_renderer import PERSON_COLORS, as_numpy, estimate_up, fill_missing_frames

log = logging.getLogger(__name__)

THREE_VERSION = "0.170.0"
DEFAULT_MAX_BYTES = 60_000_000


def _asset(name: str) -> str:
    return resources.files("socialmirror").joinpath("assets", "viewer", name).read_text(encoding="utf-8")


def world_frame(vertices: np.ndarray, up=None) -> tuple[np.ndarray, np.ndarray]:
    """Rotation Rw (3, 3) and origin o (3,) taking camera-frame points p to a y-up world, w = Rw (p - o):
    y along the (estimated) up direction, the ground (lowest vertices) at y = 0, x along the camera's
    horizontal right, z towards the camera, the pair's mean centre above the origin."""
    v = vertices
    up = estimate_up(v) if up is None else np.asarray(up, float) / np.linalg.norm(up)
    x = np.array([1.0, 0.0, 0.0]) - up[0] * up
    if np.linalg.norm(x) < 1e-6:
        x = np.array([0.0, 0.0, 1.0]) - up[2] * up
    x /= np.linalg.norm(x)
    z = np.cross(x, up)
    Rw = np.stack([x, up, z])
    sub = v[np.linspace(0, len(v) - 1, min(len(v), 200)).round().astype(int)]
    heights = sub @ up
    ground = float(np.percentile(heights.min(axis=(1, 2)), 5))
    centre = sub.mean(axis=(0, 1, 2))
    origin = centre - (centre @ up) * up + ground * up
    return Rw, origin


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _Layout:
    """Where the page's positions live: the y-up world (``world_frame`` of a sample of the frames) and the
    int16 grid over the bounds of every frame (one pass over the meshes)."""

    def __init__(self, meshes: MeshFrames, up, precision: float):
        self.meshes = meshes
        self.Rw, self.origin = world_frame(fill_missing_frames(meshes.sample().astype(np.float64)), up)
        lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
        for _, w in self.world_chunks():
            lo, hi = np.minimum(lo, w.min(axis=(0, 1, 2))), np.maximum(hi, w.max(axis=(0, 1, 2)))
        self.lo, self.hi = lo, hi
        self.mid = (lo + hi) / 2
        self.step = max(precision, float((hi - lo).max()) / 65000.0)

    def world_chunks(self):
        """(first frame, (n, P, V, 3) world positions) a chunk at a time."""
        for start, block in self.meshes.chunks():
            w = (block.astype(np.float64) - self.origin) @ self.Rw.T
            # Collapse the missing person-frames (not reconstructed) to one point on the ground: invisible.
            w[~np.isfinite(w).all(axis=(2, 3))] = 0.0
            yield start, w

    def planes(self):
        """The positions as the page reads them: int16 deltas over time, all low bytes, then all high bytes
        (one pass over the meshes per plane), as a stream of byte strings."""
        for byte in (0, 1):
            previous = np.zeros(self.meshes.shape[1:], np.int32)
            for _, w in self.world_chunks():
                q = np.round((w - self.mid) / self.step).astype(np.int32)  # within +-32500
                d = np.diff(q, axis=0, prepend=previous[None])
                previous = q[-1]
                # two's-complement wrap, undone by the page's Int16Array accumulation
                yield np.ascontiguousarray(d.astype("<i2")).view(np.uint8).reshape(-1, 2)[:, byte].tobytes()


def _base64_stream(chunks, compress: bool):
    """Byte strings -> (zlib ->) base64 text pieces, holding only what the compressor has not yet emitted."""
    packer = zlib.compressobj(6) if compress else None
    pending = b""
    for chunk in chunks:
        pending += packer.compress(chunk) if packer else chunk
        cut = len(pending) - len(pending) % 3  # base64 encodes whole 3-byte groups
        if cut:
            yield _b64(pending[:cut])
            pending = pending[cut:]
    if packer:
        pending += packer.flush()
    if pending:
        yield _b64(pending)


_POSITIONS = "@positions@"  # where the streamed position data goes in the page's JSON


def _animation_data(vertices, faces, fps: float, joints, up, precision: float, compress: bool, colors):
    """(the page's data object with ``_POSITIONS`` in place of the position data, the stream of its base64
    pieces). Vertices: (T, P, V, 3) camera frame, an array or ``body.meshes.MeshFrames``."""
    if not isinstance(vertices, MeshFrames):
        vertices = as_numpy(vertices, np.float64)
        vertices = as_mesh_frames(vertices[None] if vertices.ndim == 3 else vertices)
    T, P, V, _ = vertices.shape
    faces = as_numpy(faces, np.int64)
    layout = _Layout(vertices, up, precision)
    data = {
        "version": 1, "numFrames": T, "numPeople": P, "numVertices": V, "fps": float(fps),
        "compressed": bool(compress),
        "positions": {"step": layout.step, "offset": layout.mid.tolist(), "data": _POSITIONS},
        "faces": {"type": "uint32" if V > 65535 else "uint16"},
        "colors": [list(c) for c in (colors or [PERSON_COLORS[i % len(PERSON_COLORS)] for i in range(P)])],
        "bounds": {"min": layout.lo.tolist(), "max": layout.hi.tolist()},
        "parents": list(SMPL24_PARENTS),
    }
    fb = faces.astype("<u4" if V > 65535 else "<u2").tobytes()
    data["faces"]["data"] = _b64(zlib.compress(fb, 6) if compress else fb)
    if joints is not None:
        j = as_numpy(joints, np.float64)
        if j.ndim == 3:
            j = j[None]
        jw = (j - layout.origin) @ layout.Rw.T
        jw[~np.isfinite(jw).all(axis=(-1, -2))] = 0.0
        jw = jw.astype("<f4")
        data["joints"] = {"numJoints": int(j.shape[-2]), "data": _b64(jw.tobytes())}
    return data, _base64_stream(layout.planes(), compress)


def encode_animation(vertices, faces, fps: float, joints=None, up=None, precision: float = 1e-3,
                     compress: bool = True, colors=None) -> dict:
    """The page's data object (JSON-serialisable) for vertices (T, P, V, 3) camera frame (an array or
    ``body.meshes.MeshFrames``, read a chunk of frames at a time)."""
    data, positions = _animation_data(vertices, faces, fps, joints, up, precision, compress, colors)
    data["positions"]["data"] = "".join(positions)
    return data


def viewer_html(data: dict, title: str = "SocialMirror") -> str:
    """The page's HTML for an ``encode_animation`` data object."""
    payload = json.dumps(data, separators=(",", ":"))
    _check_inlinable("data", payload)
    head, tail = _page_around_data(title, data["numFrames"])
    return head + payload + tail


def _check_inlinable(name: str, text: str) -> None:
    low = text.lower()
    if "</script" in low or "<!--" in low:
        raise ValueError(f"{name} cannot be inlined in a <script> element")


def _page_around_data(title: str, num_frames: int) -> tuple[str, str]:
    """The page's HTML before and after the data object's JSON."""
    three = _asset("three.module.min.js")
    script = _asset("viewer.js")
    for name, text in (("three.js", three), ("viewer.js", script)):
        _check_inlinable(name, text)
    t = html.escape(title)
    T = num_frames
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{t}</title>
<style>
html, body {{ margin: 0; height: 100%; overflow: hidden; background: #dfe5ec; font: 14px system-ui, sans-serif; }}
#view {{ position: absolute; inset: 0 0 48px 0; }}
#view canvas {{ display: block; width: 100%; height: 100%; touch-action: none; cursor: grab; }}
#ui {{ position: absolute; left: 0; right: 0; bottom: 0; height: 48px; display: flex; align-items: center;
      gap: 10px; padding: 0 12px; background: #26303a; color: #eef; box-sizing: border-box; }}
#ui button {{ min-width: 64px; height: 30px; }}
#frame-slider {{ flex: 1; }}
#frame-counter {{ min-width: 90px; text-align: right; font-variant-numeric: tabular-nums; }}
#title {{ position: absolute; left: 12px; top: 8px; color: #223; font-weight: 600; pointer-events: none; }}
#msg {{ position: absolute; left: 12px; top: 30px; color: #623; pointer-events: none; }}
#legend span {{ display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 8px; }}
</style>
</head>
<body>
<div id="view"></div>
<div id="title">{t}</div>
<div id="msg">loading...</div>
<div id="ui">
  <button id="play-button" type="button">Pause</button>
  <input id="frame-slider" type="range" min="0" max="{T - 1}" step="1" value="0" aria-label="frame">
  <span id="frame-counter">1 / {T}</span>
  <label><input id="skeleton-toggle" type="checkbox"> skeleton</label>
  <span id="legend"></span>
</div>
<script id="sm-data" type="application/json">{_POSITIONS}</script>
<script id="sm-three" type="text/plain">{three}</script>
<script type="module">
{script}
</script>
</body>
</html>
"""
    head, tail = page.rsplit(_POSITIONS, 1)  # the last: a title may hold anything
    return head, tail


def write_viewer_html(path, vertices, faces, fps: float, joints=None, title: str = "SocialMirror",
                      up=None, precision: float = 1e-3, max_bytes: int = DEFAULT_MAX_BYTES,
                      compress: bool = True) -> Path:
    """Write ``viewer.html``: vertices (T, P, V, 3) camera frame (P people, usually 2; an array or
    ``body.meshes.MeshFrames``), faces (F, 3), the frame rate, optional joints (T, P, 24, 3) (a skeleton the
    page can show). The position data is streamed into the file as it is compressed, so memory holds neither
    the page nor its data whole. Atomic (temporary file in the same folder, renamed). Warns when the page is
    larger than ``max_bytes``. Returns the path."""
    from socialmirror.io import atomic_write
    data, positions = _animation_data(vertices, faces, fps, joints, up, precision, compress, None)
    before, after = json.dumps(data, separators=(",", ":")).split(json.dumps(_POSITIONS))
    _check_inlinable("data", before + after)  # base64 cannot close the element
    head, tail = _page_around_data(title, data["numFrames"])

    def write(f) -> None:
        f.write((head + before + '"').encode("utf-8"))
        for piece in positions:
            f.write(piece.encode("ascii"))
        f.write(('"' + after + tail).encode("utf-8"))
    path = atomic_write(path, write)
    size = path.stat().st_size
    if size > max_bytes:
        msg = (f"viewer.html is {size / 1e6:.1f} MB (over {max_bytes / 1e6:.0f} MB): browsers may be slow "
               f"to open it; a coarser precision or fewer frames make it smaller")
        warnings.warn(msg, stacklevel=2)
        log.warning(msg)
    return path
