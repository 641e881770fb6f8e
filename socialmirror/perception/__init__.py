"""Perception: video and frame reading, multi-person pose, tracking, the closest pair and its crop.

``detect_and_track(video)`` runs the stage; ``select_closest_pair`` and ``pair_crop_boxes`` pick the pair and
the region the annotator sees. The stage's record (and cache) is ``Tracks``.
"""
from socialmirror.perception.pipeline import detect_and_track
from socialmirror.perception.pose import MediaPipePoseDetector, PersonDetection, PoseDetector, pose_task_bundle
from socialmirror.perception.tracking import (TrackerConfig, Tracks, crop_frame, pair_crop_boxes,
                                              select_closest_pair, track)
from socialmirror.perception.video import open_video

__all__ = [
    "MediaPipePoseDetector", "PersonDetection", "PoseDetector", "TrackerConfig", "Tracks", "crop_frame",
    "detect_and_track", "open_video", "pair_crop_boxes", "pose_task_bundle", "select_closest_pair", "track",
]
