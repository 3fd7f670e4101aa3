"""A linear readout of Whisper-base encoder states to mouth motion, for `--lips whisper`.

One matrix (512 encoder channels and a bias -> the lips model's 8 PCA coefficients of mouth motion), fitted in
closed form (ridge) on the training clips by `talkinghead train whisper-readout`. It reads the speaker-invariant
features of the optional Whisper encoder (audio/whisper.py) and is averaged with the lips model: the two err
differently, and their average follows unseen voices better than either alone (benchmarks/RESULTS.md, issue 10).
The file also holds the PCA basis it predicts in, so its motion does not depend on which lips file it joins.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from talkinghead.audio.features import frame_positions
from talkinghead.weights import load_model

CONTEXT_STEP = 2  # mel frames between the two 20 ms Whisper states averaged at each video frame


@dataclass(frozen=True)
class WhisperReadout:
    """The readout and the basis of its output; `offsets` maps speech to mouth offsets (before gain and gate)."""

    matrix: np.ndarray  # (n_features, n_coeffs): features of `frame_features` -> coefficients / std
    basis: np.ndarray  # (n_coeffs, 2 * n_points) PCA components of mouth motion
    std: np.ndarray  # (n_coeffs,)
    indices: np.ndarray  # (n_points,) mesh indices of the mouth and jaw points, as in the lips model
    context: int  # video frames each side whose states join the frame's own (0: the frame alone)
    centre: bool  # subtract the speech's own mean state first (a per-recording speaker and channel normalisation)
    lips_share: float  # the lips model's weight in the average; the readout has 1 - lips_share

    def coefficients(self, states: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
        """(n_frames, n_coeffs) from encoder states at the mel rate (audio/whisper.py)."""
        if self.centre and len(states):
            states = states - states.mean(axis=0)
        return frame_features(states, n_frames, fps, self.context) @ self.matrix * self.std

    def offsets(self, samples: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
        """(n_frames, n_points, 2) mouth offsets of 16 kHz speech, before gain and gate (runs the encoder)."""
        from talkinghead.audio.whisper import whisper_states

        coef = self.coefficients(whisper_states(samples), n_frames, fps)
        return (coef @ self.basis).reshape(n_frames, len(self.indices), 2).astype(np.float32)


def frame_features(states: np.ndarray, n_frames: int, fps: float, context: int = 0) -> np.ndarray:
    """(n_frames, 512 * (2 context + 1) + 1): at each video frame's time the encoder state averaged with the
    next 20 ms one (Whisper runs at 50 Hz, video at 25), the same for `context` frames each side, and a bias."""
    if len(states) == 0:
        states = np.zeros((1, states.shape[1] if states.ndim == 2 else 512), np.float32)
    pos = frame_positions(n_frames, fps)
    last = len(states) - 1
    parts = []
    for k in range(-context, context + 1):
        p = np.clip(pos + k * 4, 0, last)  # one 25 fps video frame = 4 mel frames
        parts.append((states[p] + states[np.clip(p + CONTEXT_STEP, 0, last)]).astype(np.float32) / 2)
    parts.append(np.ones((n_frames, 1), np.float32))
    return np.concatenate(parts, axis=1)


@functools.lru_cache(maxsize=4)
def load_readout(weights: str = "whisper-readout") -> WhisperReadout:
    """The shipped readout (sha256-checked at load) or a file written by `talkinghead train whisper-readout`."""
    w = load_model("whisper-readout", weights).weights
    return WhisperReadout(
        matrix=w.tensors["readout"].double().numpy(),
        basis=w.tensors["pca_components"].double().numpy(),
        std=w.tensors["pca_std"].double().numpy(),
        indices=w.tensors["mouth_indices"].numpy().astype(int),
        context=int(w.metadata.get("context", "0")),
        centre=w.metadata.get("centre", "false") == "true",
        lips_share=float(w.metadata.get("lips_share", "0.5")),
    )
