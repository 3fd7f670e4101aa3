"""Target mouth and jaw landmarks for a dubbed frame.

The frame's own mouth is first "closed" along the lips model's opening direction by as much as it is
open beyond the speaker's closed-mouth gap, which removes the original speech but keeps the
speaker's expression (a smile stays a smile); then the new speech's offsets are added. Everything
is done in the canonical frame and mapped back with the frame's own similarity, so head pose and
scale come from the video.
"""

from __future__ import annotations

import numpy as np

from talkinghead.face.canonical import fit_canonical
from talkinghead.types import MouthGeometry


def dub_target(
    geometry: MouthGeometry, points: np.ndarray, offset: np.ndarray, closed_gap: float, weight: float = 1.0
) -> np.ndarray:
    """(478, 3) pixels: `points` with the mouth following `offset`; weight 0 keeps the original.
    `closed_gap` is the speaker's lip gap with the mouth closed (canonical units)."""
    sim = fit_canonical(points, geometry.reference)
    canon = sim.apply(points)
    idx = geometry.indices
    mouth = canon[idx, :2]
    closed = geometry.close(canon, closed_gap)[idx, :2]
    canon[idx, :2] = mouth + weight * (closed + offset - mouth)
    out = points.copy()
    out[idx] = sim.invert(canon)[idx]
    return out
