"""Time bases of motion data: uniform grids and linear resampling onto them.

Real recordings come at their own rates (CMU at 120 Hz, the Bütepage sensor at an irregular ~30 Hz) while
the models work on a fixed rate, so every reader and the interchange format share this one definition of
"resample": a uniform grid that starts at the first sample and never runs past the last one (no
extrapolation), and linear interpolation between the two neighbouring samples.
"""
from __future__ import annotations

import math

import numpy as np


def uniform_times(duration: float, fps: float) -> np.ndarray:
    """Sample times 0, 1/fps, 2/fps, ... up to and including ``duration`` (within a microsecond)."""
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps}")
    if not (math.isfinite(duration) and duration >= 0):
        raise ValueError(f"duration must be >= 0, got {duration}")
    count = int(math.floor(duration * fps + 1e-6)) + 1
    return np.arange(count, dtype=np.float64) / fps


def interpolate(values: np.ndarray, times: np.ndarray, new_times: np.ndarray) -> np.ndarray:
    """Linear interpolation of (T, ...) ``values`` sampled at increasing ``times`` onto ``new_times``.

    ``new_times`` outside [times[0], times[-1]] are clamped to the end samples. The dtype of floating
    input is kept.
    """
    values = np.asarray(values)
    times = np.asarray(times, dtype=np.float64)
    new_times = np.asarray(new_times, dtype=np.float64)
    if values.shape[0] != times.shape[0]:
        raise ValueError(f"{values.shape[0]} samples but {times.shape[0]} times")
    if times.size == 0:
        raise ValueError("cannot interpolate an empty sequence")
    if times.size > 1 and not np.all(np.diff(times) > 0):
        raise ValueError("sample times must be strictly increasing")
    if times.size == 1:
        return np.repeat(values[:1], new_times.size, axis=0)
    hi = np.clip(np.searchsorted(times, new_times, side="right"), 1, times.size - 1)
    lo = hi - 1
    w = np.clip((new_times - times[lo]) / (times[hi] - times[lo]), 0.0, 1.0)
    w = w.reshape((-1,) + (1,) * (values.ndim - 1))
    out = (1.0 - w) * values[lo] + w * values[hi]
    return out.astype(values.dtype if np.issubdtype(values.dtype, np.floating) else np.float64, copy=False)


def resample_uniform(values: np.ndarray, fps: float, target_fps: float) -> np.ndarray:
    """(T, ...) samples at ``fps`` resampled to ``target_fps`` over the same time span.

    Downsampling does no low-pass filtering: at mocap rates (120 -> 30 Hz) human motion carries little
    energy above 15 Hz, and an exact integer ratio (120 -> 30) simply picks every fourth frame.
    """
    values = np.asarray(values)
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps}")
    times = np.arange(values.shape[0], dtype=np.float64) / fps
    if values.shape[0] == 0:
        raise ValueError("cannot resample an empty sequence")
    return interpolate(values, times, uniform_times(times[-1], target_fps))
