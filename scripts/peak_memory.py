"""Peak memory of ``socialmirror reconstruct`` against the video's length (issue 15, case 2: it must be bounded by
a constant plus the outputs, not grow with every frame).

Builds videos of 91, 455 and 1547 frames from the embedded sample (played forwards, then backwards, so the
motion stays continuous), reconstructs each in a fresh process (``--force``: every stage computed) with the
default outputs and with ``--no-render --no-viewer``, and prints the peak resident memory of each run (the
child's ``ru_maxrss``), its wall time and the size of viewer.html.

    .venv/bin/python scripts/peak_memory.py [--frames 91 455 1547] [--work /tmp/sm_peak_memory]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path


def long_video(path: Path, frames: int) -> Path:
    """The embedded sample played back and forth up to ``frames`` frames (cached at ``path``)."""
    import imageio.v3 as iio
    import numpy as np

    from socialmirror.render.demo_sample import SAMPLE_VIDEO
    if not path.exists():
        clip = iio.imread(SAMPLE_VIDEO)
        reps = -(-frames // len(clip))
        seq = np.concatenate([clip if k % 2 == 0 else clip[::-1] for k in range(reps)])[:frames]
        iio.imwrite(path, seq, fps=30, codec="libx264", macro_block_size=1)
    return path


# Run in a fresh interpreter so that its children's peak is this run's alone (ru_maxrss of the children is
# the maximum over every child that has ended).
_MEASURE = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
            "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def peak_of_run(args: list[str]) -> tuple[float, float]:
    """(peak resident memory in MB, wall seconds) of ``socialmirror ARGS`` in a fresh process."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _MEASURE, sys.executable, "-m", "socialmirror", *args],
                         check=True, capture_output=True, text=True)
    return int(out.stdout.split()[-1]) / 1024.0, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[91, 455, 1547])
    parser.add_argument("--work", default="/tmp/sm_peak_memory")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"{'frames':>6}  {'outputs':<22} {'peak MB':>8} {'seconds':>8} {'viewer.html MB':>15}")
    for frames in sorted(args.frames):
        video = long_video(work / f"sample_{frames}.mp4", frames)
        for label, extra in (("no render, no viewer", ["--no-render", "--no-viewer"]), ("default", [])):
            out = work / f"out_{frames}_{'all' if not extra else 'none'}"
            peak, seconds = peak_of_run(["reconstruct", str(video), "-o", str(out), "--force", *extra])
            viewer = out / "viewer.html"
            size = f"{viewer.stat().st_size / 1e6:.1f}" if viewer.exists() else "-"
            print(f"{frames:>6}  {label:<22} {peak:8.0f} {seconds:8.1f} {size:>15}", flush=True)


if __name__ == "__main__":
    main()
