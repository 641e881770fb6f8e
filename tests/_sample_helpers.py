"""The embedded demo sample as test input."""
from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio


def write_sample_frames(folder: Path, count: int) -> Path:
    """The embedded sample's first ``count`` frames as a folder of PNGs (a short real input)."""
    from socialmirror.render.demo_sample import SAMPLE_VIDEO
    for i, frame in enumerate(iio.imiter(SAMPLE_VIDEO)):
        if i >= count:
            break
        iio.imwrite(folder / f"f{i:03d}.png", frame)
    return folder
