"""`socialmirror bench`: frames per second of every stage on a video (default: the embedded sample), as ratios
measured in one run.

Runs the real pipeline (`socialmirror.api.reconstruct`) from scratch in a temporary folder and reads the stage
timings it records (one per stage of `socialmirror.pipeline`: tracks, pair, draft, annotations, text,
estimate, outputs; `3d/*` the estimate's sub-stages). Beside it, on the same frames and in the same run, the
**floor**: one plain MediaPipe landmarker call per frame (no second pass, no recall), decoding included, the
rate that perception with this model cannot beat. The machines are shared and noisy, so the figures to compare
are the ratios within one report (end to end over the floor), with the cores, threads and resolution beside
them.

JSON keys: ``end_to_end_fps``, ``floor_fps``, ``fps_3d`` (the 3D stages together: the semantics-free draft and
the estimate), ``stages`` ({name: {seconds, fps}}), ``ratio_to_floor``, ``frames``, ``image_size``,
``machine``.
"""
from __future__ import annotations

import platform
import tempfile
import time
from pathlib import Path

import torch

from socialmirror.config import available_cores

THREE_D_STAGES = ("draft", "estimate")


def landmarker_floor(video: str | Path, num_poses: int = 2) -> dict:
    """Seconds and frames per second of one plain landmarker call per frame over ``video``, decoding
    included."""
    from socialmirror.perception.pose import MediaPipePoseDetector
    from socialmirror.perception.video import open_video
    with MediaPipePoseDetector(num_poses=num_poses, second_pass=False, recall=False) as detector:
        with open_video(video) as reader:
            t0, frames = time.perf_counter(), 0
            for _, frame in reader:
                detector.run_landmarker(frame, "floor")
                frames += 1
            seconds = time.perf_counter() - t0
    return {"seconds": round(seconds, 3), "fps": round(frames / seconds, 2), "frames": frames}


def bench(input_path: str | None = None, threads: int | None = None, method: str = "socialmirror") -> dict:
    from socialmirror.api import ReconstructConfig, reconstruct
    from socialmirror.render.demo_sample import SAMPLE_VIDEO

    src = Path(input_path) if input_path else SAMPLE_VIDEO
    if threads:
        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="socialmirror-bench-") as tmp:
        t0 = time.perf_counter()
        res = reconstruct(src, tmp, ReconstructConfig(method=method, progress=False), force=True)
        total = time.perf_counter() - t0
    floor = landmarker_floor(src)
    frames = int(res.joints3d.shape[0])
    rate = (lambda seconds: round(frames / seconds, 1) if seconds > 0 else None)  # noqa: E731
    stages = {k: {"seconds": round(v, 3), "fps": rate(v)} for k, v in res.timings.items()}
    three_d = sum(res.timings.get(k, 0.0) for k in THREE_D_STAGES)
    end_to_end = frames / total
    return {
        "input": str(src), "frames": frames, "image_size": list(res.image_size), "method": method,
        "machine": {"cpu_cores": available_cores(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform(), "python": platform.python_version(),
                    "torch": torch.__version__},
        "stages": stages,
        "end_to_end_fps": round(end_to_end, 2),
        "floor_fps": floor["fps"],
        "ratio_to_floor": round(end_to_end / floor["fps"], 3),
        "fps_3d": rate(three_d),
        "share_of_3d_stages": round(three_d / total, 3),
    }


def format_bench(report: dict) -> str:
    w, h = report["image_size"]
    lines = [f"{report['input']}: {report['frames']} frames {w}x{h}; {report['machine']['cpu_cores']} cores, torch "
             f"threads {report['machine']['torch_threads']}", "| stage | seconds | frames/s |", "|---|---|---|"]
    for name, v in report["stages"].items():
        lines.append(f"| {name} | {v['seconds']:.2f} | {v['fps']} |")
    lines.append(f"| 3D stages ({' + '.join(THREE_D_STAGES)}) | - | {report['fps_3d']} |")
    lines.append(f"| end to end | - | {report['end_to_end_fps']} |")
    lines.append(f"| floor: one plain landmarker call a frame | - | {report['floor_fps']} |")
    lines.append(f"end to end = {report['ratio_to_floor']:.2f} x the floor; the 3D stages are "
                 f"{100 * report['share_of_3d_stages']:.0f}% of the end-to-end time")
    return "\n".join(lines)
