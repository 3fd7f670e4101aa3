"""Mouth motion of a tracked face in the canonical frame (what the lips model predicts and the sync
expert compares with audio): mouth/jaw landmark offsets from the track's own closed mouth, the mean of
its 10 % least-open frames, so every speaker's "closed" is zero."""

from __future__ import annotations

import numpy as np

from talkinghead.face.canonical import fit_canonical
from talkinghead.face.indices import LIP_BOTTOM, LIP_TOP, MOUTH_JAW


def to_canonical(points: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 478, 3) pixels (NaN where no face) -> canonical (T, 478, 3) and validity (T,)."""
    valid = ~np.isnan(points[:, 0, 0])
    out = np.zeros_like(points)
    for t in np.flatnonzero(valid):
        out[t] = fit_canonical(points[t], reference).apply(points[t])
    return out, valid


def mouth_offsets(points: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """offsets (T, len(MOUTH_JAW), 2), validity (T,), opening (T,) in inter-ocular units; zeros where invalid."""
    canon, valid = to_canonical(points, reference)
    mouth = canon[:, MOUTH_JAW, :2]
    opening = np.linalg.norm(canon[:, LIP_TOP, :2] - canon[:, LIP_BOTTOM, :2], axis=1)
    if not valid.any():
        return np.zeros(mouth.shape, np.float32), valid, np.zeros(len(valid), np.float32)
    thr = np.percentile(opening[valid], 10)
    closed = mouth[valid & (opening <= thr)].mean(axis=0)
    offsets = np.where(valid[:, None, None], mouth - closed, 0.0).astype(np.float32)
    return offsets, valid, np.where(valid, opening, 0.0).astype(np.float32)
