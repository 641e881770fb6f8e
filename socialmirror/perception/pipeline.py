"""The perception stage in one call: stream a video, detect people in each frame, track them."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from socialmirror.body.keypoints import NUM_KEYPOINTS
from socialmirror.io import atomic_savez
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


def detect_and_track(video_path: str | os.PathLike, detector: PoseDetector | None = None, progress: bool = True,
                     fps: float | None = None, tracker: TrackerConfig | None = None,
                     appearance: bool = True, checkpoint: DetectionCheckpoint | None = None) -> Tracks:
    """Detect and track every person in a video file or folder of frames, streamed frame by frame.

    ``detector`` defaults to ``MediaPipePoseDetector()`` (two people, with the second pass), created and closed
    here; a detector passed in is left open. ``appearance`` adds a colour descriptor to each detection for
    re-identification after re-entry. The result's ``meta["timing_ms_per_frame"]`` holds the mean cost of
    reading, detection, appearance and tracking per frame, ``meta["frames"]`` the number of frames read.
    With a ``checkpoint`` the detections are saved in chunks as they are made, and the frames an earlier,
    interrupted run saved are read back instead of detected again.
    """
    own = detector is None
    detector = MediaPipePoseDetector() if own else detector
    t_read = t_detect = t_app = 0.0
    per_frame = checkpoint.load() if checkpoint is not None else []
    if per_frame:
        log.info("perception resumes at frame %d (the earlier run's detections are read back)", len(per_frame))
    try:
        with open_video(video_path, fps=fps) as reader:
            frames = reader.frames(len(per_frame))
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=reader.num_frames, initial=len(per_frame), desc="perception", unit="frame")
            try:
                while True:
                    t0 = time.perf_counter()
                    try:
                        _, frame = next(frames)
                    except StopIteration:
                        break
                    t1 = time.perf_counter()
                    people = detector.detect(frame)
                    t2 = time.perf_counter()
                    if appearance:
                        add_appearance(people, frame)
                    t3 = time.perf_counter()
                    t_read, t_detect, t_app = t_read + t1 - t0, t_detect + t2 - t1, t_app + t3 - t2
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
        if own:
            detector.close()
    _check_orientation(video_path, per_frame, rotation)
    t0 = time.perf_counter()
    tracks = track(per_frame, tracker, fps=video_fps, image_size=size)
    t_track = time.perf_counter() - t0
    n = max(len(per_frame), 1)
    tracks.meta.update({
        "source": str(video_path),
        "frames": len(per_frame),
        "detector": type(detector).__name__,
        "timing_ms_per_frame": {"read": 1e3 * t_read / n, "detect": 1e3 * t_detect / n,
                                "appearance": 1e3 * t_app / n, "track": 1e3 * t_track / n},
    })
    return tracks


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
