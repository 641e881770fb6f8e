"""The perception stage in one call: stream a video, detect people in each frame, track them."""
from __future__ import annotations

import collections
import contextlib
import logging
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, Union

import numpy as np

from socialmirror.body.keypoints import NUM_KEYPOINTS
from socialmirror.io import atomic_savez
from socialmirror.perception.bridge import (BridgeConfig, RecentFrames, bridge_backward, bridge_missed_frames,
                                            chains_backward, detected_counts, frames_to_bridge)
from socialmirror.perception.fused import FusedConfig, unfuse_tracks
from socialmirror.perception.pose import MediaPipePoseDetector, PersonDetection, PoseDetector
from socialmirror.perception.tracking import TrackerConfig, Tracks, appearance_descriptor, track
from socialmirror.perception.video import open_video

log = logging.getLogger(__name__)


class DetectionCheckpoint:
    """Per-frame detections saved in chunks of ``every`` frames while perception runs, so that an
    interrupted run (Ctrl-C, a crash, a machine going down) resumes after the last saved chunk instead of from
    frame 0. Chunks are ``frames_START_END.npz`` (flat arrays, no pickles), written atomically."""

    def __init__(self, folder: str | os.PathLike, every: int = 256):
        self.folder = Path(folder)
        self.every = max(1, int(every))
        self.pending: list[list[PersonDetection]] = []
        self.saved = 0  # frames on disk

    def load(self) -> list[list[PersonDetection]]:
        """The detections of frames 0..N-1 saved by an earlier run (the contiguous chunks from frame 0)."""
        per_frame: list[list[PersonDetection]] = []
        chunks = sorted(self.folder.glob("frames_*.npz"))
        for path in chunks:
            start, end = (int(x) for x in path.stem.split("_")[1:3])
            if start != len(per_frame):
                break
            try:
                per_frame.extend(_read_chunk(path, end - start))
            except Exception as exc:  # noqa: BLE001 - a damaged chunk is detected again, never fatal
                log.warning("perception checkpoint %s unreadable (%s); detecting from frame %d", path, exc, start)
                break
        self.saved = len(per_frame)
        return per_frame

    def add(self, people: list[PersonDetection]) -> None:
        self.pending.append(people)
        if len(self.pending) >= self.every:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        end = self.saved + len(self.pending)
        _write_chunk(self.folder / f"frames_{self.saved:07d}_{end:07d}.npz", self.pending)
        self.saved, self.pending = end, []


def _write_chunk(path: Path, per_frame: list[list[PersonDetection]]) -> None:
    people = [(t, p) for t, frame in enumerate(per_frame) for p in frame]
    dim = next((len(p.appearance) for _, p in people if p.appearance is not None), 0)
    appearance = np.full((len(people), dim), np.nan, np.float32)
    for k, (_, p) in enumerate(people):
        if p.appearance is not None and dim:
            appearance[k] = p.appearance
    atomic_savez(path, frame=np.array([t for t, _ in people], np.int64),
                 keypoints=np.array([p.keypoints for _, p in people], np.float32).reshape(-1, NUM_KEYPOINTS, 3),
                 world=np.array([p.world for _, p in people], np.float32).reshape(-1, NUM_KEYPOINTS, 3),
                 box=np.array([p.box for _, p in people], np.float32).reshape(-1, 4),
                 score=np.array([p.score for _, p in people], np.float32),
                 has_appearance=np.array([p.appearance is not None for _, p in people]),
                 appearance=appearance, source=np.array([p.source for _, p in people], dtype=str))


def _read_chunk(path: Path, frames: int) -> list[list[PersonDetection]]:
    out: list[list[PersonDetection]] = [[] for _ in range(frames)]
    with np.load(path, allow_pickle=False) as z:
        for k, t in enumerate(z["frame"]):
            appearance = z["appearance"][k] if z["has_appearance"][k] else None
            out[int(t)].append(PersonDetection(z["keypoints"][k], z["world"][k], z["box"][k], float(z["score"][k]),
                                               appearance, str(z["source"][k])))
    return out


def add_appearance(people: list[PersonDetection], frame_rgb: np.ndarray) -> list[PersonDetection]:
    """Each detection that has none gets the colour descriptor that tracking re-identifies people by."""
    for p in people:
        if p.appearance is None:
            p.appearance = appearance_descriptor(frame_rgb, p.keypoints)
    return people


# A detector (used as it is), a class or function that makes one, or None (MediaPipe's).
DetectorSource = Union[PoseDetector, Callable[[], PoseDetector], None]


def makes_detectors(source: DetectorSource) -> bool:
    """Whether ``source`` makes detectors (None, a class or a function), so that several workers can each have
    their own, rather than being one detector."""
    return source is None or isinstance(source, type) or not hasattr(source, "detect")


def detect_and_track(video_path: str | os.PathLike, detector: DetectorSource = None, progress: bool = True,
                     fps: float | None = None, tracker: TrackerConfig | None = None,
                     appearance: bool = True, checkpoint: DetectionCheckpoint | None = None,
                     workers: int = 1, bridge: BridgeConfig | None = None,
                     unfuse: FusedConfig | None = None) -> Tracks:
    """Detect and track every person in a video file or folder of frames, streamed frame by frame.

    ``detector``: a detector (left open), or a function that makes one (each made here is closed here);
    default ``MediaPipePoseDetector`` (two people, with the second pass). ``workers`` > 1 detects that many
    frames at once with as many detectors from the function, each frame by an idle one (MediaPipe releases the
    GIL: two workers on two cores detect the sample in 49 instead of 93 ms a frame); the frames are decoded once,
    and the detections are the same, in the same order, as one worker's. ``appearance`` adds a colour
    descriptor to each detection for re-identification after re-entry. The result's
    ``meta["timing_ms_per_frame"]`` holds the cost per frame of reading, detection, appearance (summed over
    the workers) and tracking, ``meta["frames"]`` the number of frames read, ``meta["workers"]`` the workers.
    With a ``checkpoint`` the detections are saved in chunks as they are made, and the frames an earlier,
    interrupted run saved are read back instead of detected again. With ``bridge`` the frames where a tracked
    person was missed are looked at again around where they were a frame earlier (``perception.bridge``; the
    frames needed are decoded a second time) and the tracks are linked again, then (``bridge.backward``) the
    frames before a detection that follows a miss, from that detection back (decoded a third time);
    ``meta["bridged"]`` holds how many detections that added. With ``unfuse`` the halves of skeletons fitted
    across two bodies are let go (``perception.fused``; ``meta["unfused"]`` holds how many person-frames).
    """
    pool = DetectorPool.of(detector, workers, appearance)
    per_frame = checkpoint.load() if checkpoint is not None else []
    if per_frame:
        log.info("perception resumes at frame %d (the earlier run's detections are read back)", len(per_frame))
    t_read = 0.0
    try:
        with open_video(video_path, fps=fps) as reader:
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=reader.num_frames, initial=len(per_frame), desc="perception", unit="frame")
            frames = reader.frames(len(per_frame))

            def timed_frames():
                nonlocal t_read
                while True:
                    t0 = time.perf_counter()
                    try:
                        _, frame = next(frames)
                    except StopIteration:
                        return
                    t_read += time.perf_counter() - t0
                    yield frame
            try:
                for people in pool.detect_in_order(timed_frames()):
                    per_frame.append(people)
                    if checkpoint is not None:
                        checkpoint.add(people)
                    if bar is not None:
                        bar.update(1)
            finally:
                if bar is not None:
                    bar.close()
                if checkpoint is not None:  # an interrupted run keeps every frame it finished
                    checkpoint.flush()
            video_fps, size = reader.fps, reader.size
            rotation = getattr(reader, "rotation", 0)
    finally:
        pool.close()
    _check_orientation(video_path, per_frame, rotation)
    t0 = time.perf_counter()
    tracks = track(per_frame, tracker, fps=video_fps, image_size=size)
    t_track = time.perf_counter() - t0
    bridged, t_bridge = 0, time.perf_counter()
    if bridge is not None and bridge.enabled:
        per_frame, bridged = bridge_tracks(video_path, fps, per_frame, tracks, bridge, appearance)
        if bridged:
            tracks = track(per_frame, tracker, fps=video_fps, image_size=size)
        if bridge.backward:
            per_frame, before = bridge_tracks(video_path, fps, per_frame, tracks, bridge, appearance, backward=True)
            if before:
                tracks = track(per_frame, tracker, fps=video_fps, image_size=size)
            bridged += before
    t_bridge = time.perf_counter() - t_bridge
    unfused = 0
    if unfuse is not None and unfuse.enabled:
        tracks, unfused = unfuse_tracks(tracks, unfuse)
    n = max(len(per_frame), 1)
    tracks.meta.update({
        "source": str(video_path),
        "frames": len(per_frame),
        "detector": pool.detector_name,
        "workers": int(workers),
        "bridged": int(bridged),
        "unfused": int(unfused),
        "timing_ms_per_frame": {"read": 1e3 * t_read / n, "detect": 1e3 * pool.seconds["detect"] / n,
                                "appearance": 1e3 * pool.seconds["appearance"] / n, "track": 1e3 * t_track / n,
                                "bridge": 1e3 * t_bridge / n},
    })
    return tracks


def bridge_tracks(video_path: str | os.PathLike, fps: float | None, per_frame: list[list[PersonDetection]],
                  tracks: Tracks, config: BridgeConfig, appearance: bool, backward: bool = False
                  ) -> tuple[list[list[PersonDetection]], int]:
    """``perception.bridge.bridge_missed_frames`` (``backward``: ``bridge_backward``) on the video's frames,
    decoded again from the first frame a chain needs."""
    from socialmirror.perception.recall import RegionPoseLandmarker

    detected = detected_counts(per_frame)
    if backward:
        first = min((start for _, _, start in chains_backward(tracks.present, config, detected)), default=None)
    else:
        wanted = np.flatnonzero(frames_to_bridge(tracks.present, config, detected).any(0))
        first = int(wanted[0]) if len(wanted) else None
    if first is None:
        return per_frame, 0
    landmarker = RegionPoseLandmarker()
    try:
        with open_video(video_path, fps=fps) as reader:
            # Several chains may ask for one frame; a backward chain reaches max_frames before the newest.
            frame_at = RecentFrames(reader.frames(first), config.max_frames + 1 if backward else 1)
            follow = bridge_backward if backward else bridge_missed_frames
            return follow(per_frame, tracks.keypoints, tracks.present, frame_at, landmarker, config, appearance)
    finally:
        landmarker.close()


class DetectorPool:
    """``workers`` threads that detect frames, each frame with a detector of its own while it is detected:
    detectors are made by ``make`` when none is idle (at most ``workers``; closed by ``close`` when ``owned``),
    and the seconds they spent in detection and appearance."""

    @classmethod
    def of(cls, detector: DetectorSource, workers: int, appearance: bool = True) -> "DetectorPool":
        """The pool for ``detector`` (``DetectorSource``) and ``workers`` threads: one detector passed in is
        used as it is (one worker only) and left open."""
        if workers < 1:
            raise ValueError("workers must be >= 1")
        if makes_detectors(detector):
            return cls(detector or MediaPipePoseDetector, workers, appearance)  # a class or a function
        if workers > 1:
            raise ValueError("several workers need a function that makes detectors, not one detector")
        return cls(lambda: detector, 1, appearance, owned=False)

    def __init__(self, make: Callable[[], PoseDetector], workers: int = 1, appearance: bool = True,
                 owned: bool = True):
        self.make, self.workers, self.appearance, self.owned = make, int(workers), appearance, owned
        self.idle: queue.SimpleQueue = queue.SimpleQueue()
        self.made: list[PoseDetector] = []
        self.lock = threading.Lock()
        self.seconds = {"detect": 0.0, "appearance": 0.0}
        self.detector_name = ""

    def _new_detector(self) -> PoseDetector:
        det = self.make()
        with self.lock:
            self.made.append(det)
            self.detector_name = type(det).__name__
        return det

    @contextlib.contextmanager
    def detector(self) -> Iterator[PoseDetector]:
        """An idle detector (a new one when none is) for one frame, idle again afterwards."""
        try:
            det = self.idle.get_nowait()
        except queue.Empty:
            det = self._new_detector()
        try:
            yield det
        finally:
            self.idle.put(det)

    def warm_up(self) -> "DetectorPool":
        """Every worker's detector made and warmed up now (``PoseDetector.warm_up``): a live source's frames
        arrive from the moment it is opened, and those that came while detectors were made were dropped."""
        with self.lock:
            missing = self.workers - len(self.made)
        for _ in range(missing):
            det = self._new_detector()
            det.warm_up()
            self.idle.put(det)
        return self

    def detect(self, frame: np.ndarray) -> list[PersonDetection]:
        t0 = time.perf_counter()
        with self.detector() as det:
            people = det.detect(frame)
        t1 = time.perf_counter()
        if self.appearance:
            add_appearance(people, frame)
        t2 = time.perf_counter()
        with self.lock:
            self.seconds["detect"] += t1 - t0
            self.seconds["appearance"] += t2 - t1
        return people

    def detect_in_order(self, frames: Iterator[np.ndarray]) -> Iterator[list[PersonDetection]]:
        """Each frame's detections, in the frames' order; with several workers at most twice as many frames as
        workers are decoded ahead (bounded memory)."""
        if self.workers == 1:
            for frame in frames:
                yield self.detect(frame)
            return
        workers = self.workers
        with ThreadPoolExecutor(workers, thread_name_prefix="perception") as executor:
            pending: collections.deque = collections.deque()
            try:
                for frame in frames:
                    pending.append(executor.submit(self.detect, frame))
                    if len(pending) >= 2 * workers:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:  # interrupted (an error, Ctrl-C): no frame is started after this
                for future in pending:
                    future.cancel()

    def close(self) -> None:
        if self.owned:
            for det in self.made:
                det.close()
        self.made = []
        self.idle = queue.SimpleQueue()


def sideways_share(per_frame) -> float:
    """The share of detected people whose trunk (hip midpoint to shoulder midpoint) points more than 60
    degrees away from the image's up: people lying down, or a video turned the wrong way."""
    from socialmirror.body.keypoints import KEYPOINT_INDEX
    ls, rs, lh, rh = (KEYPOINT_INDEX[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
    sideways = total = 0
    for people in per_frame:
        for person in people:
            kp = np.asarray(person.keypoints, dtype=np.float64)
            if not np.isfinite(kp[[ls, rs, lh, rh], :2]).all():
                continue
            dx, dy = (kp[ls, :2] + kp[rs, :2] - kp[lh, :2] - kp[rh, :2]) / 2
            total += 1
            sideways += bool(-dy < np.cos(np.radians(60)) * np.hypot(dx, dy))
    return sideways / total if total else 0.0


def _check_orientation(video_path, per_frame, rotation: int) -> None:
    """Warn when most people lie sideways in the frames as decoded; name the video's rotation tag if it has
    one (the frames were turned by it: the tag is then the likely cause)."""
    share = sideways_share(per_frame)
    if share <= 0.5:
        if rotation:
            log.info("%s: frames turned %d degrees by the video's rotation tag", video_path, rotation)
        return
    if rotation:
        log.warning("%s: the video's rotation tag turned its frames %d degrees, and %.0f%% of the people then "
                    "lie sideways: the tag is probably wrong; remove it (ffmpeg -display_rotation 0 -i IN -c copy "
                    "OUT) and run again", video_path, rotation, 100 * share)
    else:
        log.warning("%s: %.0f%% of the people lie sideways in the frames: a video turned on its side? The 3D "
                    "stages assume people roughly upright", video_path, 100 * share)
