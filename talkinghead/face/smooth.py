"""Temporal smoothing of tracked landmarks, so a dubbed mouth does not shimmer with tracker noise.

Runs are smoothed separately: a frame without a face or a jump (a cut to another shot) ends a run,
so positions are never averaged across a cut.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from talkinghead.face.indices import inter_ocular

RADIUS = 3  # frames each side that influence a smoothed frame (sigma 1, truncated at 3 sigma)


def runs(points: np.ndarray, jump: float = 0.5) -> list[tuple[int, int]]:
    """[start, end) of runs of found faces without a jump larger than `jump` inter-ocular distances."""
    found = ~np.isnan(points[:, 0, 0])
    out: list[tuple[int, int]] = []
    start = None
    for t in range(len(points)):
        if not found[t]:
            if start is not None:
                out.append((start, t))
                start = None
            continue
        if start is not None:
            step = np.linalg.norm(points[t, :, :2].mean(0) - points[t - 1, :, :2].mean(0))
            if step > jump * inter_ocular(points[t]):
                out.append((start, t))
                start = t
        else:
            start = t
    if start is not None:
        out.append((start, len(points)))
    return out


def smooth_points(points: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """(T, N, 3) landmarks with NaN rows where no face -> the same, Gaussian-smoothed within runs."""
    out = points.copy()
    for a, b in runs(points):
        if b - a > 1:
            out[a:b] = gaussian_filter1d(points[a:b], sigma, axis=0, mode="nearest", truncate=RADIUS / sigma)
    return out
