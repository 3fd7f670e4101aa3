"""Mouth and jaw motion from speech, with the learned lips model.

Offsets are in the canonical face frame (inter-ocular distance 1), relative to a closed mouth, so
they can be added to any face. A loudness gate guarantees the mouth closes in silence and pauses even
where the model hesitates; it only scales motion down, never invents it.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from talkinghead.audio.features import frame_windows, log_mel, loudness, normalize
from talkinghead.models.lips import LipsConfig, LipsNet
from talkinghead.weights import load_weights


class MouthModel:
    """Loaded once; `predict` maps 16 kHz mono speech to per-frame mouth offsets."""

    def __init__(self, weights: str = "lips") -> None:
        w = load_weights(weights)
        self.config = LipsConfig(**json.loads(w.metadata["config"]))
        self.net = LipsNet(self.config)
        self.net.load_state_dict({k[6:]: v for k, v in w.tensors.items() if k.startswith("model.")})
        self.net.eval()
        self.reference = w.tensors["reference"].numpy()
        self.basis = w.tensors["pca_components"]
        self.std = w.tensors["pca_std"]
        self.open_direction = w.tensors["open_direction"].numpy().reshape(-1, 2)
        self.indices = w.tensors["mouth_indices"].numpy().astype(int)

    @torch.no_grad()
    def predict(self, samples: np.ndarray, n_frames: int, fps: float, chunk: int = 500) -> np.ndarray:
        """(n_frames, len(indices), 2) offsets; computed in chunks so memory stays flat for long audio."""
        cfg = self.config
        mel = normalize(log_mel(samples))
        out = np.zeros((n_frames, len(self.indices), 2), np.float32)
        pad = 8  # frames of overlap so chunk borders see full temporal context
        for a in range(0, n_frames, chunk):
            lo, hi = max(0, a - pad), min(n_frames, a + chunk + pad)
            win = frame_windows(mel, hi - lo, fps, cfg.before, cfg.after, first=lo)
            coef = self.net(torch.from_numpy(win)[None])[0]
            off = ((coef * self.std) @ self.basis).numpy().reshape(hi - lo, -1, 2)
            b = min(n_frames, a + chunk)
            out[a:b] = off[a - lo:b - lo]
        return out * speech_gate(samples, n_frames, fps)[:, None, None]


def speech_gate(samples: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """1 in speech, 0 in silence, smooth in between (per video frame)."""
    db = loudness(samples, n_frames, fps)
    if not np.isfinite(db).any():
        return np.zeros(n_frames, np.float32)
    top = np.percentile(db, 95)
    gate = np.clip((db - (top - 40.0)) / 12.0, 0.0, 1.0)
    # open slightly before the sound and close a little after it: max over +-2 frames, then smooth
    k = 2
    padded = np.pad(gate, k, mode="edge")
    gate = np.max(np.stack([padded[i:i + n_frames] for i in range(2 * k + 1)]), axis=0)
    kernel = np.array([0.25, 0.5, 0.25])
    return np.convolve(np.pad(gate, 1, mode="edge"), kernel, mode="valid").astype(np.float32)
