"""Emotion as a canonical-frame expression offset, added under the speech motion.

Offsets come from labelled clips (`talkinghead train emotion`). Their mouth-opening component is
removed here: emotional speech is articulated more, and keeping that would hold the mouth open in
pauses; what stays is the shape (wider or lowered corners, brows, eyes).
"""

from __future__ import annotations

import json

import numpy as np

from talkinghead.errors import InputError
from talkinghead.weights import load_weights


class Emotions:
    def __init__(self, weights: str = "emotions") -> None:
        w = load_weights(weights)
        self.names: list[str] = json.loads(w.metadata["names"])
        self._offsets = w.tensors["offsets"].numpy()

    def offset(self, name: str, strength: float, mouth_indices: np.ndarray, open_direction: np.ndarray) -> np.ndarray:
        """(478, 3) canonical offset for `name` at `strength`, with no mouth-opening component."""
        if name not in self.names:
            raise InputError(f"Unknown emotion '{name}'; choose one of: {', '.join(self.names)}.")
        off = self._offsets[self.names.index(name)].copy() * strength
        mouth = off[mouth_indices, :2].reshape(-1)
        d = open_direction.reshape(-1)
        off[mouth_indices, :2] = (mouth - (mouth @ d) / (d @ d) * d).reshape(-1, 2)
        return off
