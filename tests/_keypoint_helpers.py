"""A schematic standing person in MediaPipe's 33-landmark layout, shared by the keypoint and pose tests
(no detector needed)."""
from __future__ import annotations

import numpy as np

from socialmirror.body.keypoints import KEYPOINT_INDEX, NUM_KEYPOINTS

# Landmark positions in units of body height around the box centre (person's left = image right).
_LANDMARKS = {"nose": (0, -0.42), "left_ear": (0.05, -0.43), "right_ear": (-0.05, -0.43),
              "left_shoulder": (0.12, -0.3), "right_shoulder": (-0.12, -0.3), "left_elbow": (0.15, -0.12),
              "right_elbow": (-0.15, -0.12), "left_wrist": (0.16, 0.02), "right_wrist": (-0.16, 0.02),
              "left_hip": (0.08, 0.02), "right_hip": (-0.08, 0.02), "left_knee": (0.08, 0.25),
              "right_knee": (-0.08, 0.25), "left_ankle": (0.08, 0.45), "right_ankle": (-0.08, 0.45),
              "left_heel": (0.08, 0.48), "right_heel": (-0.08, 0.48), "left_foot_index": (0.1, 0.49),
              "right_foot_index": (-0.1, 0.49), "left_index": (0.16, 0.06), "right_index": (-0.16, 0.06),
              "left_pinky": (0.17, 0.05), "right_pinky": (-0.17, 0.05)}


def standing(cx, cy=400.0, h=400.0, conf=0.9):
    """Keypoints (33, 3) of a schematic standing person of height ``h`` pixels centred at (cx, cy)."""
    rel = np.zeros((NUM_KEYPOINTS, 2))
    for name, xy in _LANDMARKS.items():
        rel[KEYPOINT_INDEX[name]] = xy
    for face in ("left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
                 "mouth_left", "mouth_right"):
        side = 0.01 if face.startswith("left") or face == "mouth_left" else -0.01
        rel[KEYPOINT_INDEX[face]] = rel[KEYPOINT_INDEX["nose"]] + (side, -0.01)
    for thumb, wrist in (("left_thumb", "left_wrist"), ("right_thumb", "right_wrist")):
        rel[KEYPOINT_INDEX[thumb]] = rel[KEYPOINT_INDEX[wrist]] + (0, 0.03)
    xy = np.array([cx, cy]) + rel * h
    return np.concatenate([xy, np.full((NUM_KEYPOINTS, 1), conf)], axis=1)
