"""Does MediaPipe's per-person segmentation mask tell who is in front where two people overlap? (issue 22)

For every sequence that ``socialmirror evaluate --observe render --json OUT`` scored, the rendered video it
recorded is read again and each frame goes through one landmarker call with segmentation masks. The two
people found nearest to the ground truth's projected shoulders (within 40 px) are compared where their keypoint
boxes overlap (intersection at least 15% of the smaller box): a cue says who is behind, and is scored against
the ground truth's shoulder depths on frames where the two are more than 0.2 m apart in depth. Two cues:

    own:   the person whose own mask is weaker under their own keypoints inside the overlap is behind
           (hidden joints are guessed onto pixels that are not theirs);
    other: the person whose keypoints inside the overlap lie on the other's mask is behind.

A cue decides where its two values differ by more than 0.1.

    .venv/bin/python scripts/occlusion_cue.py --data npz:/tmp/sm_val --json val.json --max-frames 60
"""
from __future__ import annotations

import argparse
import json

import numpy as np

MATCH_PX = 40.0
MIN_OVERLAP = 0.15
MIN_DEPTH_GAP_M = 0.2
MIN_MARGIN = 0.1


def mask_under(mask: np.ndarray, kp: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Mean mask value under the keypoints that lie inside the box (lo, hi); NaN when none does."""
    inside = ((kp[:, :2] >= lo) & (kp[:, :2] <= hi)).all(1)
    if not inside.any():
        return float("nan")
    h, w = mask.shape
    x = np.clip(kp[inside, 0].astype(int), 0, w - 1)
    y = np.clip(kp[inside, 1].astype(int), 0, h - 1)
    return float(mask[y, x].mean())


def frame_cues(people: list, shoulders_uv: np.ndarray) -> tuple[float, float] | None:
    """people [(keypoints (33, 3) px, mask (H, W))], shoulders_uv (2, 2) the truth's projected shoulder centres
    -> (own, other): positive where person 0 is behind by that cue; None where the pair is not both found or
    does not overlap."""
    from socialmirror.body.keypoints import SHOULDER_KEYPOINTS
    from socialmirror.geometry.camera import person_boxes

    centres = np.array([kp[list(SHOULDER_KEYPOINTS), :2].mean(0) for kp, _ in people])
    dist = np.linalg.norm(centres[:, None] - shoulders_uv[None], axis=-1)  # (found, 2)
    a, b = int(dist[:, 0].argmin()), int(dist[:, 1].argmin())
    if a == b or dist[a, 0] > MATCH_PX or dist[b, 1] > MATCH_PX:
        return None
    (ka, ma), (kb, mb) = people[a], people[b]
    box_a, box_b = person_boxes(ka[:, :2]), person_boxes(kb[:, :2])
    lo, hi = np.maximum(box_a[:2], box_b[:2]), np.minimum(box_a[2:], box_b[2:])
    smaller = min(np.prod(box_a[2:] - box_a[:2]), np.prod(box_b[2:] - box_b[:2]))
    if np.prod(np.clip(hi - lo, 0, None)) < MIN_OVERLAP * smaller:
        return None
    own = mask_under(mb, kb, lo, hi) - mask_under(ma, ka, lo, hi)
    other = mask_under(mb, ka, lo, hi) - mask_under(ma, kb, lo, hi)
    return own, other


def main() -> None:
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    from socialmirror.data.datasets import sequences_from_spec
    from socialmirror.evaluation import render_protocol as rp
    from socialmirror.perception.pose import pose_task_bundle
    from socialmirror.perception.video import open_video

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the data spec evaluate ran on")
    parser.add_argument("--json", required=True, help="evaluate's --json of that run (videos and cameras)")
    parser.add_argument("--max-frames", type=int, default=60)
    args = parser.parse_args()

    record = json.load(open(args.json))
    scored = {s["sequence"]: s for runs in record["sequences"].values() for s in runs}
    options = vision.PoseLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(pose_task_bundle(None))),
        running_mode=vision.RunningMode.IMAGE, num_poses=3, output_segmentation_masks=True)
    landmarker = vision.PoseLandmarker.create_from_options(options)
    rows = []  # (sequence, own, other, person 0 behind)
    for seq in sequences_from_spec(args.data, fps=30.0):
        if seq.name not in scored:
            continue
        item = scored[seq.name]
        seq = rp.clip_sequence(seq, args.max_frames, 30.0)
        cam = item["camera"]
        R, t, K = np.array(cam["R"]), np.array(cam["t"]), np.array(cam["K"])
        names = {n: i for i, n in enumerate(seq.joint_names)}
        shoulders = seq.joints3d[:, :, [names["left_shoulder"], names["right_shoulder"]]] @ R.T + t  # (T, 2, 2, 3)
        uv = (shoulders[..., :2] / shoulders[..., 2:] * K[0, 0] + K[:2, 2]).mean(2)  # (T, 2, 2)
        depth = shoulders[..., 2].mean(2)  # (T, 2)
        with open_video(item["video"]) as reader:
            for f, frame in reader:
                if f >= len(depth) or abs(depth[f, 0] - depth[f, 1]) <= MIN_DEPTH_GAP_M:
                    continue
                h, w = frame.shape[:2]
                result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame)))
                if len(result.pose_landmarks) < 2:
                    continue
                people = [(np.array([[q.x * w, q.y * h, q.visibility] for q in marks]), m.numpy_view())
                          for marks, m in zip(result.pose_landmarks, result.segmentation_masks)]
                cues = frame_cues(people, uv[f])
                if cues is not None:
                    rows.append((seq.name, *cues, bool(depth[f, 0] > depth[f, 1])))
    report(rows)


def report(rows: list) -> None:
    print(f"{len(rows)} overlapping frames, {len({r[0] for r in rows})} sequences")
    for k, cue in ((1, "own"), (2, "other")):
        decided = [r for r in rows if np.isfinite(r[k]) and abs(r[k]) > MIN_MARGIN]
        right = [(r[k] > 0) == r[3] for r in decided]
        print(f"{cue}: decides {len(decided)} of {len(rows)}, right in {np.mean(right) if right else float('nan'):.2f}")
        for name in sorted({r[0] for r in decided}):
            own = [(r[k] > 0) == r[3] for r in decided if r[0] == name]
            print(f"    {name}: {len(own)} frames, right in {np.mean(own):.2f}")


if __name__ == "__main__":
    main()
