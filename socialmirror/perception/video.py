"""Streaming frame readers for video files and folders of frames.

``open_video(path, fps=None)`` returns a reader with ``fps``, ``num_frames`` (``None`` when a container does
not say), ``size`` as ``(width, height)`` after rotation, and iteration that yields ``(index, frame)`` with
``frame`` an RGB ``uint8`` array of shape ``(height, width, 3)``. Frames are decoded one at a time; a video is
never held in memory.

* Video files (mp4, avi, mov, mkv, webm, ...) are decoded by OpenCV's FFmpeg backend. Rotation metadata (the
  display matrix phones write) is honoured: OpenCV 4.x rotates frames when ``CAP_PROP_ORIENTATION_AUTO`` is
  on, which is its default and which the reader sets explicitly (verified with a 90-degree display matrix
  written by ffmpeg: frames come out rotated and ``size`` swaps). ``fps`` is the container's unless given.
  A variable frame rate (phones record one) is resampled by the frames' timestamps to a constant rate, the
  rate of its densest part: each output frame is the input frame nearest in time, so a slower stretch
  repeats frames and nothing is dropped (`constant_rate_schedule`; the timestamps come from ffmpeg reading
  the container's packets, without decoding). With ``fps`` given, the frames are taken as they come, at it.
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
import subprocess
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
        # Output frame i is input frame _schedule[i] (None: every input frame once, in order).
        self._schedule: np.ndarray | None = None
        if fps is None:
            self._resample_if_variable()

    def _resample_if_variable(self) -> None:
        times = frame_times(self.path)
        plan = None if times is None else constant_rate_schedule(*times)
        if plan is None:
            return
        self.fps, self._schedule = plan
        self.num_frames = len(self._schedule)
        self._warned_rate = True  # said here, with what was done about it
        if self.path not in _ANNOUNCED_RESAMPLING:
            _ANNOUNCED_RESAMPLING.add(self.path)
            ticks, timebase = times
            steps = np.diff(ticks) * timebase * 1000.0
            repeated = len(self._schedule) - len(np.unique(self._schedule))
            log.warning("%s has a variable frame rate (frames %.0f to %.0f ms apart): resampled by the frames' "
                        "timestamps to a constant %.2f fps (%d frames -> %d, %d repeated where frames are further "
                        "apart)", self.path, *np.percentile(steps, [5, 95]), self.fps, len(ticks),
                        len(self._schedule), repeated)

    def _open(self) -> "cv2.VideoCapture":
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise InputError(f"cannot open {self.path} as a video (unsupported or corrupt file)")
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        return cap

    def frames(self, start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
        if self._schedule is not None:
            yield from self._resampled_frames(start)
            return
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

    def _resampled_frames(self, start: int) -> Iterator[tuple[int, np.ndarray]]:
        """Output frames from ``start`` on, each input frame decoded once and converted only when used."""
        self.close()
        self._cap = cap = self._open()
        wanted = self._schedule[start:]  # input frame of each output frame, non-decreasing
        index, source = 0, 0  # next output frame (from start), next input frame
        try:
            while index < len(wanted):
                if source < wanted[index]:
                    if not cap.grab():
                        break
                else:
                    ok, frame = cap.read()
                    if not ok or frame is None:
                        break
                    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                    while index < len(wanted) and wanted[index] == source:
                        yield start + index, rgb
                        index += 1
                source += 1
        finally:
            self.close()
        if start + index == 0:
            raise InputError(f"no frame could be decoded from {self.path} (empty or corrupt video)")
        self._check_length(start + index)

    def _check_rate(self, stamps_ms: np.ndarray) -> None:
        """Say so, once, when the frames are not evenly spaced in time (a variable frame rate, as phones
        record): the models take the frames as evenly spaced at the container's mean rate."""
        steps = np.diff(stamps_ms)
        steps = steps[np.isfinite(steps) & (steps > 0)]
        if len(steps) < 2 or self._warned_rate:
            return
        low, high = np.percentile(steps, [5, 95])
        if high > _VARIABLE_SPREAD * low:
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


# A video's frames are evenly spaced unless the 95th percentile of their spacing exceeds the 5th by this factor.
_VARIABLE_SPREAD = 1.25
_ANNOUNCED_RESAMPLING: set[Path] = set()  # videos whose resampling has been logged (once per process)


def frame_times(path: Path) -> tuple[np.ndarray, float] | None:
    """The presentation times of a video's frames in display order, as integer ticks of its time base, and
    the time base in seconds; read by ffmpeg from the container's packets (no decoding: ~0.04 s for 1500
    frames). None where ffmpeg is missing or the container has no usable timestamps."""
    try:
        import imageio_ffmpeg
        out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:0",
                              "-c", "copy", "-f", "framemd5", "-"], capture_output=True, text=True, timeout=120)
    except (ImportError, OSError, RuntimeError, subprocess.SubprocessError):
        return None
    timebase, ticks = None, []
    for line in out.stdout.splitlines():
        if line.startswith("#tb 0:"):
            num, den = line.split(":", 1)[1].strip().split("/")
            timebase = int(num) / int(den)
        elif line and not line.startswith("#"):
            fields = [f.strip() for f in line.split(",")]
            if len(fields) < 3 or not fields[2].lstrip("-").isdigit():
                return None  # a packet without a presentation time
            ticks.append(int(fields[2]))
    if out.returncode != 0 or not timebase or len(ticks) < 3:
        return None
    return np.sort(np.asarray(ticks, dtype=np.int64)), float(timebase)


def constant_rate_schedule(ticks: np.ndarray, timebase: float) -> tuple[float, np.ndarray] | None:
    """For frames at integer times ``ticks`` (sorted, units of ``timebase`` seconds): None when they are evenly
    spaced; else ``(fps, schedule)``, a constant rate (the spacing of the densest tenth of the video) and for
    each output frame the input frame nearest in time (the earlier one on a tie), from the first frame to the
    last."""
    steps = np.diff(ticks)
    steps = steps[steps > 0]
    if len(steps) < 2:
        return None
    low, high = np.percentile(steps, [5, 95])
    if not high > _VARIABLE_SPREAD * low:
        return None
    step = int(np.sort(steps)[int(0.1 * (len(steps) - 1))])
    span = int(ticks[-1] - ticks[0])
    grid = ticks[0] + step * np.arange((2 * span + step) // (2 * step) + 1, dtype=np.int64)
    # In doubled units every midpoint between two frames is an integer: ties compare exactly.
    midpoints = ticks[:-1] + ticks[1:]
    schedule = np.searchsorted(midpoints, 2 * grid, side="left")
    return 1.0 / (step * timebase), schedule.astype(np.int64)


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
