"""Combines mouth, eyelid and head motion into target landmarks for one frame.

All motion is added in the canonical frame (identity- and pose-free), then mapped back to the
photo's pixels through the source's own similarity, so the photo's scale and pose are kept.
"""

from __future__ import annotations

import numpy as np

from talkinghead.face.canonical import euler_to_rotation
from talkinghead.face.indices import LEFT_EYE_LOWER, LEFT_EYE_UPPER, RIGHT_EYE_LOWER, RIGHT_EYE_UPPER
from talkinghead.face.source import SourceFace

_UPPER = np.array(LEFT_EYE_UPPER + RIGHT_EYE_UPPER)
_LOWER = np.array(LEFT_EYE_LOWER + RIGHT_EYE_LOWER)
# head rotation pivot in canonical units: behind the face, level with the upper lip
_PIVOT = np.array([0.0, 0.9, 1.6], np.float32)


def target_points(
    source: SourceFace,
    neutral: np.ndarray,
    mouth_indices: np.ndarray,
    mouth_offset: np.ndarray,
    eyelid_closure: float,
    pose: np.ndarray,
) -> np.ndarray:
    """(478, 3) target landmarks in pixels for one frame of `types.Motion` (mouth offset, lids, pose)."""
    p = neutral.copy()
    p[mouth_indices, :2] += mouth_offset
    if eyelid_closure > 0:
        p[_UPPER] += eyelid_closure * 0.97 * (p[_LOWER] - p[_UPPER])
    if np.any(pose):
        rot = euler_to_rotation(float(pose[0]), float(pose[1]), float(pose[2])).astype(np.float32)
        p = (p - _PIVOT) @ rot.T + _PIVOT
        p[:, 0] += pose[3]
        p[:, 1] += pose[4]
    return source.to_canonical.invert(p)
