"""`socialmirror bench`: frames per second of every stage, on a video or the embedded sample.

Runs the real pipeline (`socialmirror.api.reconstruct`) from scratch in a temporary folder and reads the
stage timings it records (one per stage of `socialmirror.pipeline`: tracks, pair, draft, annotations, text,
estimate, outputs; `3d/*` the estimate's sub-stages); reports the machine's cores and thread settings beside
them, since the numbers mean nothing without them.
"""
from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

import torch


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
    frames = int(res.joints3d.shape[0])
    stages = {k: v for k, v in res.timings.items()}
    three_d = sum(v for k, v in stages.items() if k.startswith("3d/"))
    if three_d == 0.0:
        three_d = stages.get("estimate", 0.0) + stages.get("draft", 0.0)
    fps = {k: round(frames / v, 1) if v > 0 else None for k, v in stages.items()}
    return {
        "input": str(src), "frames": frames, "image_size": list(res.image_size),
        "machine": {"cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform(), "python": platform.python_version(),
                    "torch": torch.__version__},
        "seconds": {k: round(v, 3) for k, v in stages.items()},
        "frames_per_second": fps,
        "end_to_end_fps": round(frames / total, 2),
        "share_of_3d_stages": round(three_d / total, 3),
        "method": method,
    }


def format_bench(report: dict) -> str:
    lines = [f"{report['input']}: {report['frames']} frames {report['image_size'][0]}x{report['image_size'][1]}; "
             f"{report['machine']['cpu_cores']} cores, torch threads {report['machine']['torch_threads']}",
             "| stage | seconds | frames/s |", "|---|---|---|"]
    for k, v in report["seconds"].items():
        lines.append(f"| {k} | {v:.2f} | {report['frames_per_second'][k]} |")
    lines.append(f"| end to end | - | {report['end_to_end_fps']} |")
    lines.append(f"3D stages: {100 * report['share_of_3d_stages']:.0f}% of the end-to-end time")
    return "\n".join(lines)
