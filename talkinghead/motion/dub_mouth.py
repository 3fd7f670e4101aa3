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


def canonical_gap(points: np.ndarray, reference: np.ndarray) -> float:
    """Inner-lip gap of one frame's face in canonical units (inter-ocular = 1)."""
    c = fit_canonical(points, reference).apply(points)
    return float(np.linalg.norm(c[LIP_TOP, :2] - c[LIP_BOTTOM, :2]))


class DubMouth:
    """Built once per dub from the lips model's geometry and the speaker's closed-mouth gap."""

    def __init__(self, reference: np.ndarray, indices: np.ndarray, open_direction: np.ndarray,
                 closed_gap: float) -> None:
        self.reference = reference
        self.indices = indices
        self.open_direction = open_direction
        self.closed_gap = closed_gap

    def target(self, points: np.ndarray, offset: np.ndarray, weight: float = 1.0) -> np.ndarray:
        """(478, 3) pixels: `points` with the mouth following `offset`; weight 0 keeps the original."""
        sim = fit_canonical(points, self.reference)
        canon = sim.apply(points)
        gap = float(np.linalg.norm(canon[LIP_TOP, :2] - canon[LIP_BOTTOM, :2]))
        mouth = canon[self.indices, :2]
        closed = mouth - max(0.0, gap - self.closed_gap) * self.open_direction
        canon[self.indices, :2] = mouth + weight * (closed + offset - mouth)
        out = points.copy()
        out[self.indices] = sim.invert(canon)[self.indices]
        return out
