"""Landmarks of one face through a whole video (driving videos, metrics, training data)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from talkinghead.face.landmarks import FaceTracker
from talkinghead.media import iter_frames


@dataclass(frozen=True)
class FaceTrack:
    """times (T,) seconds; points (T, 478, 3) pixels, NaN where no face was found."""

    times: np.ndarray
    points: np.ndarray

    @property
    def found(self) -> np.ndarray:
        return ~np.isnan(self.points[:, 0, 0])


def track_video(path: str | os.PathLike[str], progress: Callable[[int], None] | None = None) -> FaceTrack:
    """Track the face frame by frame; frames without a face are kept as NaN, never an error."""
    times, pts = [], []
    with FaceTracker() as tracker:
        for t, frame in iter_frames(path):
            p = tracker(frame)
            times.append(t)
            pts.append(p if p is not None else np.full((478, 3), np.nan, np.float32))
            if progress:
                progress(len(times))
    return FaceTrack(np.asarray(times, np.float64), np.stack(pts) if pts else np.zeros((0, 478, 3), np.float32))
