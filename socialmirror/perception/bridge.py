"""A tracked person's missed frames, found again from where they were a frame earlier.

MediaPipe's pose detector finds a person only when its BlazePose detector does, frame by frame. Beside or in
front of someone else, turned away, or a child at an adult's side, a person it found in one frame is often
missed in the next ones (on the render protocol's validation split a quarter of the person-frames were
missed, README, issue 22), and the tracker then breaks that person into short tracks that the pair stage
cannot use. MediaPipe's own VIDEO mode runs the landmark model between detections on the region the previous
frame's landmarks give; this module does the same after tracking, where it is known who is missing:

for every track seen in at least ``min_track_frames`` frames, forward in time, a frame where it is missed
within ``max_frames`` of its last sighting, and where fewer people than the pair were detected (``people``),
is given to the pose landmark model alone
(``recall.RegionPoseLandmarker``) on the region around the person's previous keypoints. The result is kept
when the model sees a person there, its box overlaps the previous box by ``min_overlap`` (the chain stays on
its person) and it is nobody detected in that frame already (``same_person`` or ``same_upper_body``); the
region its alignment points give is the next frame's (one model call a frame, as MediaPipe's tracking). A
rejected frame ends the chain until the person's next detection. The kept detections (``source`` "bridge")
join the frame's detections, and the tracker links them again (``pipeline.detect_and_track``).

Then the same backward in time (``bridge_backward``, with ``backward``): the frames before a person's first
detection, or before a detection after a miss that the forward chain could not fill, are followed from that
detection towards the past, up to ``max_frames``, through frames where fewer than the pair were detected.
A person who walks into view from behind the other, or whom the detector first finds late, is otherwise
missing from the start of the video until then (on the render protocol's synthesized splits that was 5% of
the person-frames, as much as all the gaps between detections together). A chain's result that puts its upper
body where a detected person's is (``pose.same_upper_body``) is that person again, and ends the chain.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from socialmirror.body.keypoints import HIP_KEYPOINTS, SHOULDER_KEYPOINTS, keypoints_box
from socialmirror.geometry.camera import box_iou
from socialmirror.perception.pose import PersonDetection, same_person, same_upper_body
from socialmirror.perception.recall import upright_rotation
from socialmirror.perception.tracking import appearance_descriptor


@dataclass(frozen=True)
class BridgeConfig:
    """Settings of ``bridge_missed_frames``; see the module docstring."""

    enabled: bool = True
    max_frames: int = 30       # how far a chain may run past the person's last detection
    min_track_frames: int = 3  # tracks seen less often are not followed (a stray detection)
    min_overlap: float = 0.3   # box IoU with the previous frame's box
    min_confidence: float = 0.3  # keypoints that place the region
    backward: bool = True      # also follow each detection back into the missed frames before it
    # Chains run only through frames where fewer people than this were detected (the pair): chains from a stray
    # third detection re-linked the pair's tracks wrongly (README, issue 22).
    people: int = 2

    def __post_init__(self):
        if self.max_frames < 1 or self.min_track_frames < 1:
            raise ValueError("bridge.max_frames and bridge.min_track_frames must be >= 1")
        if not 0.0 <= self.min_overlap <= 1.0:
            raise ValueError("bridge.min_overlap must lie in [0, 1]")


def region_around(keypoints: np.ndarray, min_confidence: float = 0.3
                  ) -> tuple[float, float, float, float] | None:
    """The landmark model's region (centre x, centre y, side, rotation) around a person's (33, 3) keypoints, as
    MediaPipe's tracking draws it from its alignment points: centred on the hips, 2.5 times the radius of the
    circle around the body from there, turned so that hips -> shoulders points up. None without both hips, both
    shoulders and four confident keypoints."""
    kp = np.asarray(keypoints, np.float64)
    needed = kp[list(HIP_KEYPOINTS + SHOULDER_KEYPOINTS), :2]
    confident = np.isfinite(kp[:, :2]).all(1) & (np.nan_to_num(kp[:, 2]) >= min_confidence)
    if not np.isfinite(needed).all() or confident.sum() < 4:
        return None
    hips, shoulders = needed[:2].mean(0), needed[2:].mean(0)
    # The landmarks stop at the eyes and the soles: the circle reaches a little past the farthest one.
    radius = 1.15 * float(np.linalg.norm(kp[confident, :2] - hips, axis=1).max())
    if not radius > 1.0:
        return None
    return float(hips[0]), float(hips[1]), 2.5 * radius, upright_rotation(tuple(hips), tuple(shoulders))


def frames_to_bridge(present: np.ndarray, config: BridgeConfig, detected: np.ndarray | None = None) -> np.ndarray:
    """(N, T) bool: for each track (N, T ``present``) the frames a chain may fill: missed, within
    ``max_frames`` after a sighting, on tracks seen at least ``min_track_frames`` times, and where given, with
    fewer than ``config.people`` people ``detected`` (T,)."""
    present = np.asarray(present, bool)
    if detected is not None:
        return frames_to_bridge(present, config) & (np.asarray(detected)[None, :] < config.people)
    n, T = present.shape
    since = np.full(n, np.iinfo(np.int64).max // 2)
    out = np.zeros_like(present)
    followed = present.sum(1) >= config.min_track_frames
    for t in range(T):
        since = np.where(present[:, t], 0, since + 1)
        out[:, t] = followed & ~present[:, t] & (since <= config.max_frames)
    return out


def detected_counts(per_frame: list[list[PersonDetection]]) -> np.ndarray:
    """(T,) how many people were detected in each frame."""
    return np.array([len(people) for people in per_frame], dtype=np.int64)


def chains_backward(present: np.ndarray, config: BridgeConfig, detected: np.ndarray | None = None
                    ) -> list[tuple[int, int, int]]:
    """The backward chains of ``bridge_backward``: (the detection's frame s, the track, the chain's first
    frame), one for each missed run of frames that ends right before a detection of a followed track, at
    most ``max_frames`` long and, where given, through frames with fewer than ``config.people`` people
    ``detected`` (T,) (it runs from s - 1 down to the first frame), in increasing s."""
    present = np.asarray(present, bool)
    wanted = frames_to_bridge(present[:, ::-1], config, None if detected is None else detected[::-1])[:, ::-1]
    chains = []
    for i in range(len(present)):
        for s in np.flatnonzero(present[i, 1:] & wanted[i, :-1]) + 1:
            start = int(s) - 1
            while start > 0 and wanted[i, start - 1]:
                start -= 1
            chains.append((int(s), i, start))
    return sorted(chains)


def bridge_missed_frames(per_frame: list[list[PersonDetection]], keypoints: np.ndarray, present: np.ndarray,
                         frame_at: Callable[[int], np.ndarray], landmarker, config: BridgeConfig = BridgeConfig(),
                         appearance: bool = False) -> tuple[list[list[PersonDetection]], int]:
    """``per_frame`` (each frame's detections) with the bridged detections added, and how many were added.

    ``keypoints`` (N, T, 33, 3) and ``present`` (N, T) are the tracks' (``tracking.Tracks``); ``frame_at(t)``
    gives frame t as RGB, asked for in increasing t and only where a chain runs; ``landmarker`` has
    ``landmarks(frame, region)`` and ``refine(frame, region, iterations)``, each a ``RegionPose`` or None
    (``recall.RegionPoseLandmarker``); ``appearance`` gives the bridged detections the tracker's colour
    descriptor."""
    wanted = frames_to_bridge(present, config, detected_counts(per_frame))
    out = [list(people) for people in per_frame]
    # Each track's chain: the keypoints it was last seen with, and the region the landmark model's alignment
    # points gave there (None after a detection: drawn from the keypoints and refined once).
    chain: list[tuple[np.ndarray, tuple | None] | None] = [None] * len(present)
    added = 0
    last = int(np.flatnonzero(wanted.any(0)).max()) if wanted.any() else -1
    for t in range(last + 1):
        for i in range(len(present)):
            if present[i, t]:
                chain[i] = (keypoints[i, t], None)
            elif not wanted[i, t] or chain[i] is None:
                chain[i] = None
            else:
                frame = frame_at(t)
                found = follow(frame, *chain[i], out[t], landmarker, config)
                chain[i] = None
                if found is not None:
                    person, region = found
                    if appearance:
                        person.appearance = appearance_descriptor(frame, person.keypoints)
                    out[t].append(person)
                    chain[i] = (person.keypoints, region)
                    added += 1
    return out, added


def follow(frame: np.ndarray, previous: np.ndarray, region: tuple | None, others: list[PersonDetection],
           landmarker, config: BridgeConfig) -> tuple[PersonDetection, tuple] | None:
    """The person seen a frame earlier with keypoints ``previous`` (and the model's ``region`` there, when the
    model found them), found in ``frame``, with the region for the next frame; None when the model sees no
    person there, the result jumps away, or it is someone in ``others``. One landmark-model call after a
    bridged frame (MediaPipe's tracking), two after a detection."""
    if region is None:
        start = region_around(previous, config.min_confidence)
        pose = None if start is None else landmarker.refine(frame, start, iterations=1)
    else:
        pose = landmarker.landmarks(frame, region)
    if pose is None:
        return None
    size = (frame.shape[1], frame.shape[0])
    box = keypoints_box(pose.keypoints, image_size=size)
    if box_iou(box, keypoints_box(previous, image_size=size)) < config.min_overlap:
        return None
    if any(same_person(pose.keypoints, o.keypoints) or same_upper_body(pose.keypoints, o.keypoints) for o in others):
        return None
    found = PersonDetection(pose.keypoints, pose.world, box, float(pose.keypoints[:, 2].mean()), source="bridge")
    return found, pose.next_region


def bridge_backward(per_frame: list[list[PersonDetection]], keypoints: np.ndarray, present: np.ndarray,
                    frame_at: Callable[[int], np.ndarray], landmarker, config: BridgeConfig = BridgeConfig(),
                    appearance: bool = False) -> tuple[list[list[PersonDetection]], int]:
    """As ``bridge_missed_frames``, from each detection back in time (``chains_backward``). ``frame_at`` is
    asked for frames by chain, the chains in increasing order of their detection's frame, each frame at most
    ``max_frames`` before the newest one asked for (``RecentFrames`` holds that many)."""
    out = [list(people) for people in per_frame]
    added = 0
    for s, i, start in chains_backward(present, config, detected_counts(per_frame)):
        previous, region = keypoints[i, s], None
        for t in range(s - 1, start - 1, -1):
            frame = frame_at(t)
            found = follow(frame, previous, region, out[t], landmarker, config)
            if found is None:
                break
            person, region = found
            if appearance:
                person.appearance = appearance_descriptor(frame, person.keypoints)
            out[t].append(person)
            previous = person.keypoints
            added += 1
    return out, added


class RecentFrames:
    """``frame_at(t)`` over a stream of (index, frame) pairs read forward once, keeping the newest ``size``
    frames: enough for backward chains asked for in the order of ``bridge_backward``."""

    def __init__(self, frames, size: int):
        self.frames, self.size = frames, int(size)
        self.kept: dict[int, np.ndarray] = {}
        self.newest = -1

    def __call__(self, t: int) -> np.ndarray:
        while self.newest < t:
            try:
                self.newest, frame = next(self.frames)
            except StopIteration:
                raise RuntimeError(f"the video ended before frame {t} on its second reading") from None
            self.kept[self.newest] = frame
            self.kept.pop(self.newest - self.size, None)
        if t not in self.kept:
            raise RuntimeError(f"frame {t} is no longer held (frames {self.newest - self.size + 1}-{self.newest} "
                               "are)")
        return self.kept[t]
