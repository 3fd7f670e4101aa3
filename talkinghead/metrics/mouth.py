"""Mouth opening and eye closure re-measured on a video's frames.

Used to check generated video the same way we look at real speakers: inner-lip gap (mediapipe points
13/14) over the inter-ocular distance, per frame; NaN where no face is found.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from talkinghead.face.indices import eye_aspect_ratio, mouth_opening
from talkinghead.face.track import FaceTrack, track_video


@dataclass(frozen=True)
class FaceMeasures:
    times: np.ndarray  # (T,) seconds
    mouth: np.ndarray  # (T,) inner-lip gap / inter-ocular
    eyes: np.ndarray  # (T,) eye aspect ratio (mean of both eyes)
    points: np.ndarray  # (T, 478, 3), NaN where no face


def measure_video(path: str | os.PathLike[str]) -> FaceMeasures:
    return measure_track(track_video(path))


def measure_track(track: FaceTrack) -> FaceMeasures:
    """Mouth opening and eye aspect ratio per frame of an existing track (NaN where no face)."""
    mouth = np.full(len(track.times), np.nan)
    eyes = np.full(len(track.times), np.nan)
    for k in np.flatnonzero(track.found):
        mouth[k] = mouth_opening(track.points[k])
        eyes[k] = eye_aspect_ratio(track.points[k])
    return FaceMeasures(track.times, mouth, eyes, track.points)


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
