"""Skeletons fitted across two bodies: the borrowed half found through the track, and let go.

Where two people overlap, MediaPipe's landmarker sometimes fits one person's head and shoulders onto the
other person's hips and legs (README, issue 22: on the CMU pair the far person's skeleton ends on the near
person's hips for a dozen frames). Such a person still counts as detected, so neither the masked second pass
nor bridging looks at it again, and the 3D stages place that person from the other's legs.

In one frame a fused skeleton looks like a leaning person. Through the track it shows: two people share a
body half in the image (hips within ``shared`` torso lengths of each other while their heads are more than
``apart`` torso lengths apart, or the other way round), and one of them has its head-to-hips offset far from
its own usual one (median over the track, in its median torso lengths), while the other keeps its own. That one
borrowed the shared half: that half is replaced by the person's own from the nearest frame where nothing was
borrowed (``let_go_of_borrowed``), so the 3D stages take that person from their own body. Two people standing
one behind the other share hips in the image too, but neither's head-to-hips offset changes, so nothing is let
go there.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np

from socialmirror.body.keypoints import (FACE_KEYPOINTS, HIP_KEYPOINTS, KEYPOINT_INDEX, NUM_KEYPOINTS,
                                         SHOULDER_KEYPOINTS, keypoints_box)
from socialmirror.perception.tracking import Tracks

UPPER_HALF = tuple(range(KEYPOINT_INDEX["left_hip"]))                # face, shoulders, arms and hands
LOWER_HALF = tuple(range(KEYPOINT_INDEX["left_hip"], NUM_KEYPOINTS))  # hips, legs and feet


@dataclass(frozen=True)
class FusedConfig:
    """Settings of ``borrowed_halves``; lengths in the larger of the two people's median torso lengths."""

    enabled: bool = True
    shared: float = 0.3        # two hips (or heads) closer than this are one body's
    apart: float = 0.5         # the other half's distance that makes the two people different people
    min_offset_change: float = 0.4  # head-to-hips offset off the person's own, in its torso lengths
    min_track_frames: int = 5  # a track seen less often has no "usual" offset to compare with

    def __post_init__(self):
        if not 0.0 < self.shared < self.apart:
            raise ValueError("fused.shared must be positive and below fused.apart")


def _points(keypoints: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head (face landmarks' mean), hips' midpoint and torso length (N, T, ...) where seen; NaN elsewhere."""
    kp = np.where(present[..., None, None], np.asarray(keypoints, np.float64), np.nan)[..., :2]
    head = np.nanmean(kp[:, :, FACE_KEYPOINTS], axis=2)
    hips = kp[:, :, HIP_KEYPOINTS].mean(2)
    torso = np.linalg.norm(kp[:, :, SHOULDER_KEYPOINTS].mean(2) - hips, axis=-1)
    return head, hips, torso


def borrowed_halves(keypoints: np.ndarray, present: np.ndarray, config: FusedConfig = FusedConfig()) -> np.ndarray:
    """(N, T) int8 per track and frame: 0 nothing borrowed, 1 the lower body (hips and legs) is another person's,
    2 the upper body (head, shoulders, arms) is. ``keypoints`` (N, T, 33, 3) and ``present`` (N, T) as in
    ``tracking.Tracks``."""
    present = np.asarray(present, bool)
    n, T = present.shape
    out = np.zeros((n, T), np.int8)
    if n < 2:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NaN means of unseen frames are intended
        head, hips, torso = _points(keypoints, present)
        offset = hips - head                                            # (N, T, 2)
        length = np.nanmedian(torso, axis=1)                            # (N,)
        usual = np.nanmedian(offset, axis=1)                            # (N, 2)
    followed = (present.sum(1) >= config.min_track_frames) & np.isfinite(length) & (length > 0)
    change = np.linalg.norm(offset - usual[:, None], axis=-1) / np.where(followed, length, np.nan)[:, None]
    for i in range(n):
        for j in range(i + 1, n):
            scale = max(length[i], length[j])
            if not (followed[i] and followed[j] and scale > 0):
                continue
            d_hips = np.linalg.norm(hips[i] - hips[j], axis=-1) / scale
            d_head = np.linalg.norm(head[i] - head[j], axis=-1) / scale
            for half, same, other in ((1, d_hips, d_head), (2, d_head, d_hips)):
                shared = (same < config.shared) & (other > config.apart)
                for t in np.flatnonzero(shared):
                    a, b = (i, j) if change[i, t] >= change[j, t] else (j, i)
                    # The borrower's offset changed and the owner's did not (at most half as much).
                    if change[a, t] >= config.min_offset_change and change[b, t] <= 0.5 * change[a, t]:
                        out[a, t] = half
    return out


def let_go_of_borrowed(keypoints: np.ndarray, borrowed: np.ndarray, present: np.ndarray,
                       confidence: float = 0.5) -> np.ndarray:
    """A copy of ``keypoints`` (N, T, 33, 3) whose borrowed halves (``borrowed_halves``) are the person's own from
    the nearest frame where nothing was borrowed, moved with the half that is its own (its shoulders' midpoint
    for borrowed legs, its hips' for a borrowed upper body), at ``confidence`` times that frame's confidence;
    confidence 0 where the track has no such frame. A fused skeleton lasts a few frames, in which a person's
    body changes little; leaving the half out instead made the 3D stages place that person from a box around
    the other half only (worse, README issue 22)."""
    kp = np.array(keypoints, copy=True)
    clean = np.asarray(present, bool) & (borrowed == 0)
    for i, t in zip(*np.nonzero(borrowed)):
        joints, anchor = (LOWER_HALF, SHOULDER_KEYPOINTS) if borrowed[i, t] == 1 else (UPPER_HALF, HIP_KEYPOINTS)
        joints = list(joints)
        frames = np.flatnonzero(clean[i])
        if len(frames) == 0:
            kp[i, t, joints, 2] = 0.0
            continue
        s = frames[np.argmin(np.abs(frames - t))]
        shift = keypoints[i, t, list(anchor), :2].mean(0) - keypoints[i, s, list(anchor), :2].mean(0)
        kp[i, t, joints, :2] = keypoints[i, s, joints, :2] + shift
        kp[i, t, joints, 2] = confidence * keypoints[i, s, joints, 2]
    return kp


def unfuse_tracks(tracks: Tracks, config: FusedConfig = FusedConfig()) -> tuple[Tracks, int]:
    """``tracks`` with each borrowed half (``borrowed_halves``) replaced by the person's own
    (``let_go_of_borrowed``) and the box around the result, and how many person-frames that changed."""
    seen = tracks.present & ~tracks.interpolated
    borrowed = borrowed_halves(tracks.keypoints, seen, config)
    if not borrowed.any():
        return tracks, 0
    keypoints = let_go_of_borrowed(tracks.keypoints, borrowed, seen)
    boxes = tracks.boxes.copy()
    for i, t in zip(*np.nonzero(borrowed)):
        boxes[i, t] = keypoints_box(keypoints[i, t], image_size=tracks.image_size, min_confidence=1e-6)
    return dataclasses.replace(tracks, keypoints=keypoints, boxes=boxes), int((borrowed > 0).sum())
