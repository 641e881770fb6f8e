"""Perception recall on rendered scenes: people found vs people present, with and without the recall passes.

Renders ``--scenes`` stills (fixed seeds) of 2-5 clothed anny bodies standing 2-10 m from the camera (turned up to 70 degrees from it) before a
room (640 x 480, focal = the image diagonal), caches them under ``--out``, runs ``MediaPipePoseDetector`` with
``recall`` off and on, and counts a rendered person as found when a detection's torso centre lies inside the
person's projected silhouette box and no other detection claimed that person. Also times ``detect`` per frame.

    .venv/bin/python scripts/perception_recall.py --scenes 30 [--images ../shared/data/images]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch


def render_scenes(out: Path, n: int, size=(640, 480)) -> list[tuple[Path, np.ndarray]]:
    from socialmirror.body import build_body_model
    from socialmirror.render.scene import Outfit, face_colors, render_scene, room_geometry, vertex_materials

    out.mkdir(parents=True, exist_ok=True)
    W, H = size
    f = float(np.hypot(W, H))
    K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])
    body = build_body_model("anny")
    with torch.no_grad():
        rest = body(torch.eye(3).expand(24, 3, 3))
    mats = vertex_materials(rest.vertices.numpy(), rest.joints.numpy(), False)
    faces = body.faces.numpy()
    scenes = []
    for s in range(n):
        png, npz = out / f"scene{s:03d}.png", out / f"scene{s:03d}.npz"
        if png.exists() and npz.exists():
            scenes.append((png, np.load(npz)["boxes"]))
            continue
        rng = np.random.default_rng(1000 + s)
        k = int(rng.integers(2, 6))
        cam_h = 1.5  # camera height above the floor; bodies stand on the floor (y down in the camera frame)
        meshes, boxes = [], []
        for _ in range(k):
            z = float(rng.uniform(2.0, 10.0))
            x = float(rng.uniform(-0.45, 0.45)) * z * W / f
            yaw = float(rng.uniform(-1.2, 1.2))
            R = torch.eye(3).repeat(24, 1, 1)
            c, si = np.cos(yaw), np.sin(yaw)
            turn = torch.tensor([[c, 0, si], [0, 1, 0], [-si, 0, c]], dtype=torch.float32)
            R[0] = torch.diag(torch.tensor([1.0, -1.0, -1.0])) @ turn  # upright (y down), facing the camera +- yaw
            with torch.no_grad():
                v = body(R).vertices.numpy().astype(np.float64)
            v = v * float(rng.uniform(0.85, 1.1))
            v = v - [0, v[:, 1].max(), 0] + [x, cam_h, z]  # feet on the floor
            meshes.append((v, faces, face_colors(mats, faces, Outfit.sample(rng))))
            uv = (v @ K.T)[:, :2] / v[:, 2:3]
            boxes.append([uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()])
        rv, rf, rc = room_geometry(0.0, np.array([0.0, 0.0, 6.0]), np.array([0.0, 0.0, 1.0]), size=24.0,
                                   wall_distance=6.0)
        rv = rv * [1, -1, 1] + [0, cam_h, 0]  # world y up -> camera y down, floor at the bodies' feet
        img = render_scene((H, W), K, [(rv, rf, rc)] + meshes)
        boxes = np.array(boxes)
        iio.imwrite(png, img)
        np.savez(npz, boxes=boxes)
        scenes.append((png, boxes))
    return scenes


def count_found(people, boxes: np.ndarray, shape) -> tuple[int, list[str]]:
    """Rendered people matched by a detection (torso centre inside the person's box), one each, and the
    sources of the detections that match nobody (duplicates or false people)."""
    claimed, unmatched = set(), []
    for p in people:
        n = len(claimed)
        torso = p.keypoints[[11, 12, 23, 24], :2].mean(axis=0)
        for i, b in enumerate(boxes):
            if i in claimed:
                continue
            if b[0] <= torso[0] <= b[2] and b[1] <= torso[1] <= b[3]:
                claimed.add(i)
                break
        if len(claimed) == n:
            unmatched.append(p.source)
    return len(claimed), unmatched


def visible(boxes: np.ndarray, shape) -> np.ndarray:
    h, w = shape
    return (boxes[:, 2] > 0) & (boxes[:, 0] < w) & (boxes[:, 3] > 0) & (boxes[:, 1] < h)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=30)
    ap.add_argument("--out", type=Path, default=Path("/tmp/socialmirror_recall_scenes"))
    ap.add_argument("--images", type=Path, default=None, help="folder of real photos to count people in")
    ap.add_argument("--num-poses", type=int, default=None, help="people asked for (default: 2, as reconstruct)")
    args = ap.parse_args()
    from socialmirror.perception.pose import MediaPipePoseDetector

    scenes = render_scenes(args.out, args.scenes)
    for recall in (False, True):
        det = MediaPipePoseDetector(num_poses=args.num_poses or 5, recall=recall, recall_target=args.num_poses or 5)
        present = found = 0
        unmatched: list[str] = []
        sources: dict[str, int] = {}
        times, short_times = [], []
        for png, boxes in scenes:
            img = iio.imread(png)[..., :3]
            vis = visible(boxes, img.shape[:2])
            t = time.perf_counter()
            people = det.detect(img)
            times.append(time.perf_counter() - t)
            present += int(vis.sum())
            n, extra = count_found(people, boxes[vis], img.shape[:2])
            found += n
            unmatched += extra
            for p in people:
                sources[p.source.split("+")[0]] = sources.get(p.source.split("+")[0], 0) + 1
        print(f"rendered, recall={recall}: {found}/{present} people found over {len(scenes)} scenes; "
              f"detect {1e3 * np.mean(times):.0f} ms a frame (median {1e3 * np.median(times):.0f}); "
              f"detections by source {sources}; matching nobody: {len(unmatched)} {sorted(unmatched)}")
        det.close()
        if args.images is not None:
            det = MediaPipePoseDetector(num_poses=2, recall=recall)
            for png in sorted(args.images.glob("*.png")):
                img = iio.imread(png)
                img = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img[..., :3]
                det.detect(img)
                t = time.perf_counter()
                people = det.detect(img)
                print(f"  {png.name}: {len(people)} people ({', '.join(p.source for p in people)}), "
                      f"{1e3 * (time.perf_counter() - t):.0f} ms")
            det.close()


if __name__ == "__main__":
    main()
