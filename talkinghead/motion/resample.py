"""Motion tracks between time grids: the lips and motion models run at 25 fps, videos at any rate."""

from __future__ import annotations

import numpy as np


def resample(values: np.ndarray, times: np.ndarray, t: np.ndarray) -> np.ndarray:
    """`values` (N, ...) sampled at increasing `times` (s) -> float32 (len(t), ...) at times `t`, linearly
    interpolated and held at the first/last value outside the sampled span."""
    x = np.interp(np.asarray(t, np.float64), times, np.arange(len(times), dtype=np.float64))
    i0 = np.floor(x).astype(int)
    i1 = np.minimum(i0 + 1, len(times) - 1)
    f = (x - i0).reshape((-1,) + (1,) * (values.ndim - 1))
    return (values[i0] * (1 - f) + values[i1] * f).astype(np.float32)


def at_rate(values: np.ndarray, fps: float, t: np.ndarray) -> np.ndarray:
    """`resample` for a track sampled at a constant rate `fps` from time 0."""
    return resample(values, np.arange(len(values)) / fps, t)


def pingpong_times(t: np.ndarray, start: float, end: float) -> np.ndarray:
    """Times inside [start, end] for output times `t`: forwards, then backwards, then forwards again."""
    length = max(end - start, 1e-6)
    phase = np.mod(t, 2 * length)
    return np.where(phase <= length, phase, 2 * length - phase) + start
