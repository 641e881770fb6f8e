"""Streaming frame readers for video files and folders of frames.

``open_video(path, fps=None)`` returns a reader with ``fps``, ``num_frames`` (``None`` when a container does
not say), ``size`` as ``(width, height)`` after rotation, and iteration that yields ``(index, frame)`` with
``frame`` an RGB ``uint8`` array of shape ``(height, width, 3)``. Frames are decoded one at a time; a video is
never held in memory.

* Video files (mp4, avi, mov, mkv, webm, ...) are decoded by OpenCV's FFmpeg backend. Rotation metadata (the
  display matrix phones write) is honoured: OpenCV 4.x rotates frames when ``CAP_PROP_ORIENTATION_AUTO`` is
  on, which is its default and which the reader sets explicitly (verified with a 90-degree display matrix
  written by ffmpeg: frames come out rotated and ``size`` swaps). ``fps`` is the container's unless given.
* Folders of frames: every image file in the folder (jpg, jpeg, png, bmp, tif, tiff, webp), sorted naturally
  (``frame2`` before ``frame10``); ``fps`` is the given value or 30. All frames must share one size. EXIF
  orientation of JPEGs is applied by OpenCV's ``imread``.
* A single image file reads as a one-frame sequence.

Problems with the input raise ``socialmirror.errors.InputError`` with a one-line message: missing path,
unreadable or corrupt file, zero frames, empty folder, frames of different sizes.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from socialmirror.errors import InputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp")
DEFAULT_FOLDER_FPS = 30.0

log = logging.getLogger(__name__)


def natural_key(name: str) -> tuple:
    """Sort key that orders digit runs by value: ``frame2`` < ``frame10``."""
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p), p) if p.isdigit() else (1, p.lower(), p) for p in parts if p != "")


class FrameReader:
    """Base class of the readers: iteration yields ``(index, rgb_uint8_frame)``; ``frames(start)`` from frame
    ``start`` on (the frames before it are skipped without being converted)."""

    path: Path
    fps: float
    num_frames: int | None
    size: tuple[int, int]  # (width, height)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        return self.frames(0)

    def frames(self, start: int = 0) -> Iterator[tuple[int, np.ndarray]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __len__(self) -> int:
        if self.num_frames is None:
            raise TypeError("this video does not state its frame count")
        return self.num_frames

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.path)!r}, fps={self.fps:g}, num_frames={self.num_frames}, "
                f"size={self.size})")


class VideoFileReader(FrameReader):
    """A video file decoded by OpenCV, one frame at a time. Each iteration starts from the first frame."""

    def __init__(self, path: Path, fps: float | None = None):
        self.path = path
        cap = self._open()
        try:
            ok, first = cap.read()
            if not ok or first is None:
                raise InputError(f"no frame could be decoded from {path} (empty or corrupt video)")
            container_fps = cap.get(cv2.CAP_PROP_FPS)
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            # A rotation tag (phones write one) turns the frames as OpenCV decodes them: recorded, so that
            # perception can say so when the turned frames show people lying sideways (a wrong tag).
            self.rotation = int(round(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0)) % 360
        finally:
            cap.release()
        if fps is not None:
            self.fps = _check_fps(fps)
        elif container_fps and np.isfinite(container_fps) and 0 < container_fps < 1000:
            self.fps = float(container_fps)
        else:
            self.fps = DEFAULT_FOLDER_FPS
        # The frame count in a container header can be missing or approximate: it is a hint only.
        self.num_frames = count if count > 0 else None
        self.size = (int(first.shape[1]), int(first.shape[0]))
        self._cap: cv2.VideoCapture | None = None
        self._warned_short = self._warned_rate = False

    def _open(self) -> "cv2.VideoCapture":
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise InputError(f"cannot open {self.path} as a video (unsupported or corrupt file)")
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        return cap

    def frames(self, start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
        self.close()
        self._cap = cap = self._open()
        index = 0
        try:
            while index < start and cap.grab():  # demuxed and decoded, never converted
                index += 1
            stamps = []  # each frame's presentation time, ms
            while True:
                ok, frame = cap.read()
                if not ok or frame is None:
                    break
                stamps.append(cap.get(cv2.CAP_PROP_POS_MSEC))
                yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                index += 1
        finally:
            self.close()
        if index == 0:
            raise InputError(f"no frame could be decoded from {self.path} (empty or corrupt video)")
        self._check_length(index)
        self._check_rate(np.asarray(stamps, dtype=np.float64))

    def _check_rate(self, stamps_ms: np.ndarray) -> None:
        """Say so, once, when the frames are not evenly spaced in time (a variable frame rate, as phones
        record): the models take the frames as evenly spaced at the container's mean rate."""
        steps = np.diff(stamps_ms)
        steps = steps[np.isfinite(steps) & (steps > 0)]
        if len(steps) < 2 or self._warned_rate:
            return
        low, high = np.percentile(steps, [5, 95])
        if high > 1.25 * low:
            self._warned_rate = True
            log.warning("%s has a variable frame rate (frames %.0f to %.0f ms apart): they are reconstructed as if "
                        "evenly spaced at %.1f fps, so speeds are off where the rate changes; convert it to a "
                        "constant rate first (ffmpeg -i IN -fps_mode cfr -r 30 OUT)", self.path, low, high, self.fps)

    def _check_length(self, decoded: int) -> None:
        """Say so, once, when far fewer frames decode than the container announces (a truncated file): the
        header's count is a hint that may be off by a frame or two, not by a tenth."""
        announced = self.num_frames
        if announced and decoded < announced - max(2, 0.02 * announced) and not self._warned_short:
            self._warned_short = True
            log.warning("%s: the container announces %d frames but only %d could be decoded (a truncated "
                        "file?); reconstructing those %d", self.path, announced, decoded, decoded)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class ImageSequenceReader(FrameReader):
    """Image files read one at a time, in the given order."""

    def __init__(self, path: Path, files: list[Path], fps: float | None = None):
        self.path = path
        self.files = files
        self.fps = _check_fps(fps) if fps is not None else DEFAULT_FOLDER_FPS
        self.num_frames = len(files)
        first = self._read(files[0])
        self.size = (int(first.shape[1]), int(first.shape[0]))

    @staticmethod
    def _read(file: Path) -> np.ndarray:
        image = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"cannot read image {file} (unreadable or corrupt)")
        return image

    def frames(self, start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
        for index, file in enumerate(self.files[start:], start):
            image = self._read(file)
            if (image.shape[1], image.shape[0]) != self.size:
                raise InputError(f"frame {file.name} is {image.shape[1]}x{image.shape[0]}, "
                                 f"the first frame is {self.size[0]}x{self.size[1]}: all frames must share one size")
            yield index, cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _check_fps(fps: float) -> float:
    fps = float(fps)
    if not np.isfinite(fps) or fps <= 0:
        raise InputError(f"fps must be a positive number, got {fps}")
    return fps


def list_frame_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, naturally sorted (hidden files skipped)."""
    files = [p for p in folder.iterdir()
             if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=lambda p: natural_key(p.name))


def open_video(path: str | os.PathLike, fps: float | None = None) -> FrameReader:
    """Open a video file, a folder of frames or a single image for streaming; see the module docstring."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"input not found: {path}")
    if path.is_dir():
        files = list_frame_files(path)
        if not files:
            raise InputError(f"no image frames ({', '.join(IMAGE_EXTENSIONS)}) in folder {path}")
        return ImageSequenceReader(path, files, fps)
    if not os.access(path, os.R_OK):
        raise InputError(f"input not readable: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"input is an empty file: {path}")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageSequenceReader(path, [path], fps)
    return VideoFileReader(path, fps)
