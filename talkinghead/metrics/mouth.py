"""Mouth opening and eye closure re-measured on a video's frames.

Used to check generated video the same way we look at real speakers: inner-lip gap (mediapipe points
13/14) over the inter-ocular distance, per frame; NaN where no face is found.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from talkinghead.face.indices import (LEFT_EYE_CORNERS, LEFT_EYE_LOWER, LEFT_EYE_UPPER, RIGHT_EYE_CORNERS,
                                      RIGHT_EYE_LOWER, RIGHT_EYE_UPPER, mouth_opening)
from talkinghead.face.landmarks import FaceTracker
from talkinghead.media import iter_frames


@dataclass(frozen=True)
class FaceMeasures:
    times: np.ndarray  # (T,) seconds
    mouth: np.ndarray  # (T,) inner-lip gap / inter-ocular
    eyes: np.ndarray  # (T,) eye aspect ratio (mean of both eyes)
    points: np.ndarray  # (T, 478, 3), NaN where no face


def eye_aspect_ratio(points: np.ndarray) -> float:
    """Lid gap over eye width, both eyes averaged: ~0.25-0.35 open, < 0.12 closed."""
    vals = []
    for up, lo, (a, b) in ((LEFT_EYE_UPPER, LEFT_EYE_LOWER, LEFT_EYE_CORNERS),
                           (RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, RIGHT_EYE_CORNERS)):
        gap = np.linalg.norm(points[up[1:-1], :2] - points[lo[1:-1], :2], axis=1).mean()
        vals.append(gap / max(np.linalg.norm(points[a, :2] - points[b, :2]), 1e-6))
    return float(np.mean(vals))


def measure_video(path: str | os.PathLike[str]) -> FaceMeasures:
    times, mouth, eyes, pts = [], [], [], []
    with FaceTracker() as tracker:
        for t, frame in iter_frames(path):
            p = tracker(frame)
            times.append(t)
            if p is None:
                mouth.append(np.nan)
                eyes.append(np.nan)
                pts.append(np.full((478, 3), np.nan, np.float32))
            else:
                mouth.append(mouth_opening(p))
                eyes.append(eye_aspect_ratio(p))
                pts.append(p)
    return FaceMeasures(np.array(times), np.array(mouth), np.array(eyes), np.stack(pts) if pts else np.zeros((0, 478, 3)))


def count_blinks(ear: np.ndarray, fps: float) -> tuple[int, list[float]]:
    """Blinks as dips of the eye aspect ratio below 75 % of its median; returns count and durations (s).

    The face mesh under-reads closed lids (a shut eye often still measures ~60 % of its open ratio), so
    the threshold sits closer to the open value than the classic EAR rules.
    """
    e = np.nan_to_num(ear, nan=np.nanmedian(ear) if np.isfinite(ear).any() else 0.0)
    closed = e < 0.75 * np.median(e)
    durations, run = [], 0
    for c in list(closed) + [False]:
        if c:
            run += 1
        elif run:
            durations.append(run / fps)
            run = 0
    return len(durations), durations
