"""The dataclasses that flow between stages, with their array conventions written once.

Conventions used everywhere in talkinghead:
- **Images** are RGB uint8, shape (H, W, 3), row-major, (0, 0) the top-left pixel.
- **Landmarks** are mediapipe's 478-point face mesh (with irises) as float32 (478, 3) in pixels:
  x to the right, y down, z scaled like x, *smaller z closer to the camera* (mediapipe's convention).
  Named groups of indices live in `face/indices.py`.
- **The canonical face frame** is where motion lives: a face's landmarks after the similarity
  (rotation, scale, shift) that best maps its rigid points onto the lips model's reference face
  (`face/canonical.py`). Units: the inter-ocular distance is 1, so motion is identity- and
  pose-free and transfers between faces.
- **Audio** is float32 in [-1, 1]; the models take 16 kHz mono.
- **Time**: motion arrays have one row per output video frame; frame k shows time k / fps.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from talkinghead.face.indices import LIP_BOTTOM, LIP_TOP


@dataclass(frozen=True)
class Waveform:
    """Decoded audio. `samples` is float32, shape (n,) for mono or (n, channels)."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        return self.samples.shape[0] / float(self.sample_rate)

    @property
    def channels(self) -> int:
        return 1 if self.samples.ndim == 1 else int(self.samples.shape[1])

    def mono(self) -> np.ndarray:
        """Mono float32 samples (channel mean)."""
        s = self.samples
        return s if s.ndim == 1 else s.mean(axis=1).astype(np.float32)


@dataclass(frozen=True)
class Motion:
    """Everything that moves, per output frame (T frames at `fps`), in the canonical face frame.

    - `mouth`: float32 (T, M, 2), x/y offsets of the M mouth/jaw points (`MouthGeometry.indices`) from
      a closed mouth, inter-ocular units;
    - `lids`: float32 (T,), eyelid closure, 0 open .. 1 closed;
    - `pose`: float32 (T, 5), head yaw, pitch, roll in degrees and x, y shift in canonical units,
      relative to the face's own resting pose (all zeros = the photo's pose).
    """

    mouth: np.ndarray
    lids: np.ndarray
    pose: np.ndarray
    fps: float

    def __post_init__(self) -> None:
        n = len(self.mouth)
        if self.mouth.ndim != 3 or self.mouth.shape[2] != 2 or self.lids.shape != (n,) or self.pose.shape != (n, 5):
            raise ValueError(
                f"inconsistent Motion shapes: mouth {self.mouth.shape}, lids {self.lids.shape}, pose {self.pose.shape}"
            )

    def __len__(self) -> int:
        return len(self.mouth)


class HeadMotion(NamedTuple):
    """Head pose (T, 5) and eyelid closure (T,) as in `Motion`: what the motion model or a driving video gives."""

    pose: np.ndarray
    lids: np.ndarray


def lip_gap(canonical: np.ndarray) -> float:
    """Inner-lip gap (points 13/14) of a canonical face, inter-ocular units: the mouth-opening measure."""
    return float(np.linalg.norm(canonical[LIP_TOP, :2] - canonical[LIP_BOTTOM, :2]))


@dataclass(frozen=True)
class MouthGeometry:
    """The lips model's view of a face: which points form mouth and jaw, and how a mouth opens.

    - `reference`: float32 (478, 3), the canonical face every face is fitted to;
    - `indices`: int (M,), the mouth/jaw points that speech moves;
    - `open_direction`: float32 (M, 2), their motion per unit of lip gap when the mouth opens
      (learned from the corpus; used to close a mouth whatever its shape).
    """

    reference: np.ndarray
    indices: np.ndarray
    open_direction: np.ndarray

    def close(self, canonical: np.ndarray, closed_gap: float = 0.0) -> np.ndarray:
        """A copy of the canonical face with its mouth closed down to `closed_gap` along the opening
        direction; the rest of its expression (a smile, a pout) stays."""
        out = canonical.copy()
        excess = max(0.0, lip_gap(canonical) - closed_gap)
        out[self.indices, :2] -= excess * self.open_direction
        return out

    def without_opening(self, offset: np.ndarray) -> np.ndarray:
        """A (478, 3) canonical offset with the mouth-opening component of its mouth points removed."""
        out = offset.copy()
        mouth = out[self.indices, :2].reshape(-1)
        d = self.open_direction.reshape(-1)
        out[self.indices, :2] = (mouth - (mouth @ d) / (d @ d) * d).reshape(-1, 2)
        return out


class TrackStatus(enum.IntEnum):
    """Why a tracked video frame can or cannot be dubbed (stored as uint8 in the work folder)."""

    OK = 0
    NO_FACE = 1
    TOO_SMALL = 2
    PROFILE = 3
    MOUTH_OUT_OF_FRAME = 4

    @property
    def reason(self) -> str:
        """How the dub report names it ('dubbed' for OK)."""
        return _REASONS[self]


_REASONS = {
    TrackStatus.OK: "dubbed",
    TrackStatus.NO_FACE: "no face",
    TrackStatus.TOO_SMALL: "too small",
    TrackStatus.PROFILE: "profile",
    TrackStatus.MOUTH_OUT_OF_FRAME: "mouth out of frame",
}
