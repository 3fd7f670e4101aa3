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
from talkinghead.face.indices import LIP_BOTTOM, LIP_TOP


def lip_gap(canonical: np.ndarray) -> float:
    """Inner-lip gap of a face in canonical units (inter-ocular = 1)."""
    return float(np.linalg.norm(canonical[LIP_TOP, :2] - canonical[LIP_BOTTOM, :2]))


class DubMouth:
    """Built once per dub from the lips model's geometry."""

    def __init__(self, reference: np.ndarray, indices: np.ndarray, open_direction: np.ndarray) -> None:
        self.reference = reference
        self.indices = indices
        self.open_direction = open_direction

    def target(self, points: np.ndarray, offset: np.ndarray, closed_gap: float, weight: float = 1.0) -> np.ndarray:
        """(478, 3) pixels: `points` with the mouth following `offset`; weight 0 keeps the original.
        `closed_gap` is the speaker's lip gap with the mouth closed (canonical units)."""
        sim = fit_canonical(points, self.reference)
        canon = sim.apply(points)
        mouth = canon[self.indices, :2]
        closed = mouth - max(0.0, lip_gap(canon) - closed_gap) * self.open_direction
        canon[self.indices, :2] = mouth + weight * (closed + offset - mouth)
        out = points.copy()
        out[self.indices] = sim.invert(canon)[self.indices]
        return out
