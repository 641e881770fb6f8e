"""``render.mp4``: the input frames with both meshes overlaid, beside a side view of the two bodies on a
ground plane, at the input's fps.

Frames are rendered and streamed one at a time to ffmpeg (the binary bundled by imageio-ffmpeg): H.264,
yuv420p, even frame sizes, so any player opens it. The file is written under a temporary name in the same
folder and renamed into place when complete, so a reader never sees a partial ``render.mp4``.
"""
from __future__ import annotations

import collections
import itertools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from socialmirror.body.meshes import as_mesh_frames
from socialmirror.config import available_cores
from socialmirror.errors import OutputError
from socialmirror.io import temporary_beside
from socialmirror.render.mesh_renderer import SideCamera, as_numpy, render_camera_view, render_side_view

FrameSource = Iterable[np.ndarray] | Callable[[int], np.ndarray] | None


def _frame_getter(frames: FrameSource, num_frames: int, image_size: tuple[int, int] | None):
    """Normalise the frame source to a generator of T RGB uint8 frames."""
    if frames is None:
        if image_size is None:
            raise ValueError("without frames, image_size=(H, W) is needed")
        blank = np.full((*image_size, 3), 40, dtype=np.uint8)
        return (blank for _ in range(num_frames))
    if callable(frames):
        return (frames(t) for t in range(num_frames))
    return iter(frames)


def _to_rgb_uint8(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=2)
    if frame.shape[2] == 4:
        frame = frame[..., :3]
    if frame.dtype != np.uint8:
        frame = np.clip(frame * (255.0 if frame.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return frame


def _even(image: np.ndarray) -> np.ndarray:
    """Pad (bottom/right, edge colour) to even height and width, as yuv420p needs."""
    H, W = image.shape[:2]
    ph, pw = H % 2, W % 2
    if ph or pw:
        image = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge")
    return image


def render_frame(frame: np.ndarray | None, vertices, faces, K, side_camera: SideCamera | None = None,
                 side_view: bool = True, joints=None, alpha: float = 0.85, draw_mesh: bool = True,
                 image_size: tuple[int, int] | None = None, side_background=None,
                 label: str | None = None, camera_view: bool = True) -> np.ndarray:
    """One composite frame (H, W [+ W_side], 3) RGB uint8: the camera view (the frame with the meshes
    overlaid) and the side view, or either alone (``camera_view`` / ``side_view`` False).

    frame: the input image (H, W, 3) RGB (None: a dark background of ``image_size``); vertices (P, V, 3)
    camera frame (P people, usually 2); faces (F, 3); K (3, 3) intrinsics of ``frame``; joints (P, 24, 3)
    optional skeleton overlay. The side view (same size as the frame) uses ``side_camera``, fitted to this
    frame's bodies when not given (pass one fitted to the whole sequence for a steady view).
    """
    vertices = as_numpy(vertices)
    faces = as_numpy(faces, np.int64)
    K = as_numpy(K)
    if frame is None:
        if image_size is None:
            raise ValueError("without a frame, image_size=(H, W) is needed")
        frame = np.full((*image_size, 3), 40, dtype=np.uint8)
    if not (camera_view or side_view):
        raise ValueError("render_frame needs the camera view, the side view or both")
    frame = _to_rgb_uint8(frame)
    joints_list = None if joints is None else list(as_numpy(joints))
    views = []
    if camera_view:
        cam_view = render_camera_view(frame, list(vertices), faces, K, alpha=alpha, joints=joints_list,
                                      draw_mesh=draw_mesh)
        if label:
            cv2.putText(cam_view, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
        views.append(cam_view)
    if side_view:
        H, W = frame.shape[:2]
        if side_camera is None:
            side_camera = SideCamera.fit(vertices, (H, W))
        side = render_side_view(list(vertices), faces, side_camera, joints=joints_list, background=side_background)
        if side.shape[0] != H:
            side = cv2.resize(side, (int(round(side.shape[1] * H / side.shape[0])), H), interpolation=cv2.INTER_AREA)
        views.append(side)
    return views[0] if len(views) == 1 else np.concatenate(views, axis=1)


def write_render_video(path, frames: FrameSource, vertices, faces, K, fps: float, side_view: bool = True,
                       joints=None, image_size: tuple[int, int] | None = None, alpha: float = 0.85,
                       up=None, progress: bool = True, crf: int = 20, preset: str = "veryfast",
                       camera_view: bool = True, workers: int | None = None) -> Path:
    """Write ``render.mp4``: per frame the input frame with the meshes overlaid, beside the side view (or
    either alone: ``camera_view`` / ``side_view`` False).

    path: output .mp4; frames: an iterable of T RGB frames (or of (index, frame) pairs, as the readers of
    ``socialmirror.perception.video`` yield), a function t -> frame, or None (dark background of
    ``image_size``); vertices (T, P, V, 3) camera frame, an array or ``body.meshes.MeshFrames`` (read frame
    by frame, so a long video's meshes are never in memory whole); faces (F, 3); K (3, 3) or (T, 3, 3); fps: the
    input's frame rate; joints (T, P, 24, 3) optional skeleton overlay; up: the world's up direction in the
    camera frame for the side view's ground (estimated when None); crf/preset: libx264's quality and speed;
    workers: threads drawing the frames (None: ``render_workers``). Returns the path.
    """
    import imageio_ffmpeg

    path = Path(path)
    vertices = as_mesh_frames(vertices)
    faces = as_numpy(faces, np.int64)
    K = as_numpy(K)
    joints = None if joints is None else as_numpy(joints)
    T = len(vertices)
    if T == 0:
        raise ValueError("no frames to render")
    source = _frame_getter(frames, T, image_size)

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temporary_beside(path, ".tmp.mp4")
    os.close(fd)
    writer = None
    try:
        bar = _progress(T, progress, path.name)
        inputs = _frame_inputs(source, vertices, K, joints, T)
        first = next(inputs)
        side_camera = SideCamera.fit(vertices.sample(), first[0].shape[:2], up=up) if side_view else None
        constants = _RenderConstants(faces, side_camera, None if side_camera is None else side_camera.ground_image(),
                                     side_view, camera_view, alpha)
        for t, img in enumerate(_composites(itertools.chain([first], inputs), constants,
                                            render_workers(T) if workers is None else workers)):
            if writer is None:
                size = (img.shape[1], img.shape[0])
                writer = imageio_ffmpeg.write_frames(
                    tmp, size, fps=float(fps), codec="libx264", pix_fmt_in="rgb24", pix_fmt_out="yuv420p",
                    macro_block_size=1, quality=None, ffmpeg_log_level="error",
                    output_params=["-crf", str(crf), "-preset", preset, "-movflags", "+faststart"])
                writer.send(None)
            elif (img.shape[1], img.shape[0]) != size:
                raise ValueError(f"frame {t} has size {img.shape[1]}x{img.shape[0]}, not {size[0]}x{size[1]}")
            writer.send(np.ascontiguousarray(img))
            bar.update(1)
        bar.close()
        writer.close()  # imageio-ffmpeg does not check ffmpeg's exit status: the file itself is checked
        writer = None
        if not mp4_is_complete(tmp):
            raise OutputError(f"could not write {path}: ffmpeg left an incomplete video (disk full or a file "
                              f"size limit?); an earlier {path.name} is kept")
        from socialmirror.io import default_mode
        os.chmod(tmp, default_mode())
        os.replace(tmp, path)
    except BaseException:
        if writer is not None:
            try:
                writer.close()
            except Exception:
                pass
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def render_workers(num_frames: int) -> int:
    """Threads that draw render.mp4's frames: one per core, at most two, and one for a single frame."""
    return 1 if num_frames < 2 else min(2, available_cores())


def _frame_inputs(source, vertices, K: np.ndarray, joints, num_frames: int):
    """(frame, vertices, K, joints) of each frame t, the frame as RGB uint8."""
    for t in range(num_frames):
        try:
            frame = next(source)
        except StopIteration:
            raise ValueError(f"the frame source ended after {t} frames, {num_frames} meshes given") from None
        if isinstance(frame, tuple):  # (index, frame) pairs, as socialmirror.perception's readers yield
            frame = frame[-1]
        yield (_to_rgb_uint8(frame), np.asarray(vertices[t]), K[t] if K.ndim == 3 else K,
               None if joints is None else joints[t])


@dataclass(frozen=True)
class _RenderConstants:
    """What every frame of render.mp4 shares."""
    faces: np.ndarray
    side_camera: SideCamera | None
    background: np.ndarray | None
    side_view: bool
    camera_view: bool
    alpha: float

    def draw(self, frame: np.ndarray, vertices: np.ndarray, K: np.ndarray, joints) -> np.ndarray:
        return _even(render_frame(frame, vertices, self.faces, K, side_camera=self.side_camera,
                                  side_view=self.side_view, joints=joints, alpha=self.alpha,
                                  side_background=self.background, camera_view=self.camera_view))


def _composites(inputs, constants: _RenderConstants, workers: int):
    """The composite frames in order, drawn here or by ``workers`` threads (a few frames in flight each, so
    memory stays bounded); the same pixels either way. Threads, not processes: the rasteriser's NumPy and
    OpenCV calls release the GIL, and a process pool would re-run a user's unguarded script (spawn) or
    fork a process that torch's and MediaPipe's threads live in."""
    if workers <= 1:
        for item in inputs:
            yield constants.draw(*item)
        return
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(workers, thread_name_prefix="socialmirror-render") as pool:
        pending: collections.deque = collections.deque()
        for item in inputs:
            pending.append(pool.submit(constants.draw, *item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def mp4_is_complete(path: str | os.PathLike) -> bool:
    """Whether the file's top-level MP4 boxes run to its end and include the movie header and data ('moov',
    'mdat'): a video that ffmpeg could not finish (it writes 'moov' last) is not."""
    size, offset, seen = os.path.getsize(path), 0, set()
    with open(path, "rb") as f:
        while offset + 8 <= size:
            f.seek(offset)
            header = f.read(16)
            box_size, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if box_size == 1 and len(header) == 16:  # a 64-bit size follows the type
                box_size = int.from_bytes(header[8:16], "big")
            elif box_size == 0:  # the box runs to the end of the file
                box_size = size - offset
            if box_size < 8 or offset + box_size > size:
                return False
            seen.add(kind)
            offset += box_size
    return offset == size and {b"moov", b"mdat"} <= seen


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


def _progress(total: int, enabled: bool, desc: str):
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is optional here
        return _NoBar()
    return tqdm(total=total, desc=f"render {desc}", unit="frame", leave=False)
