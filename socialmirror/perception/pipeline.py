"""The perception stage in one call: stream a video, detect people in each frame, track them."""
from __future__ import annotations

import os
import time

from socialmirror.perception.pose import MediaPipePoseDetector, PoseDetector
from socialmirror.perception.tracking import TrackerConfig, Tracks, appearance_descriptor, track
from socialmirror.perception.video import open_video


def detect_and_track(video_path: str | os.PathLike, detector: PoseDetector | None = None, progress: bool = True,
                     fps: float | None = None, tracker: TrackerConfig | None = None,
                     appearance: bool = True) -> Tracks:
    """Detect and track every person in a video file or folder of frames, streamed frame by frame.

    ``detector`` defaults to ``MediaPipePoseDetector()`` (two people, with the second pass), created and closed
    here; a detector passed in is left open. ``appearance`` adds a colour descriptor to each detection for
    re-identification after re-entry. The result's ``meta["timing_ms_per_frame"]`` holds the mean cost of
    reading, detection, appearance and tracking per frame, ``meta["frames"]`` the number of frames read.
    """
    own = detector is None
    detector = MediaPipePoseDetector() if own else detector
    t_read = t_detect = t_app = 0.0
    per_frame = []
    try:
        with open_video(video_path, fps=fps) as reader:
            frames = iter(reader)
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=reader.num_frames, desc="perception", unit="frame")
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
                        for p in people:
                            if p.appearance is None:
                                p.appearance = appearance_descriptor(frame, p.keypoints)
                    t3 = time.perf_counter()
                    t_read, t_detect, t_app = t_read + t1 - t0, t_detect + t2 - t1, t_app + t3 - t2
                    per_frame.append(people)
                    if bar is not None:
                        bar.update(1)
            finally:
                if bar is not None:
                    bar.close()
            video_fps, size = reader.fps, reader.size
    finally:
        if own:
            detector.close()
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
