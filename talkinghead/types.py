"""Frozen dataclasses that flow between stages.

Array conventions: images are RGB uint8 HxWx3; landmarks are float32 (N, 3) in pixel units
(x right, y down, z towards the viewer-ish as mediapipe gives it, scaled like x); audio is float32
in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
