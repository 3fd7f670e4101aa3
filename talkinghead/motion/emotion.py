"""Emotion as a canonical-frame expression offset, added under the speech motion.

Offsets come from labelled clips (`talkinghead train emotion`). Their mouth-opening component is
removed here: emotional speech is articulated more, and keeping that would hold the mouth open in
pauses; what stays is the shape (wider or lowered corners, brows, eyes).
"""

from __future__ import annotations

import json

import numpy as np

from talkinghead.errors import InputError
from talkinghead.types import MouthGeometry
from talkinghead.weights import WeightsRef, load_model


class Emotions:
    def __init__(self, weights: WeightsRef = "emotions") -> None:
        w = load_model("emotions", weights).weights
        self.names: list[str] = json.loads(w.metadata["names"])
        self._offsets = w.tensors["offsets"].numpy()

    def offset(self, name: str, strength: float, geometry: MouthGeometry) -> np.ndarray:
        """(478, 3) canonical offset for `name` at `strength`, with no mouth-opening component."""
        if name not in self.names:
            raise InputError(f"Unknown emotion '{name}'; choose one of: {', '.join(self.names)}.")
        return geometry.without_opening(self._offsets[self.names.index(name)] * strength)
