"""Mouth and jaw motion from speech, with the learned lips model.

Offsets are in the canonical face frame (inter-ocular distance 1), relative to a closed mouth, so
they can be added to any face. A loudness gate guarantees the mouth closes in silence and pauses even
where the model hesitates; it only scales motion down, never invents it.
"""

from __future__ import annotations

import numpy as np
import torch

from talkinghead.audio.embedding import speech_embedding
from talkinghead.audio.features import frame_positions, log_mel, loudness, normalize
from talkinghead.errors import InputError
from talkinghead.face.indices import LIP_BOTTOM, LIP_TOP
from talkinghead.models.lips import EMBED_SCALES, LipsNet, model_input
from talkinghead.types import MouthGeometry
from talkinghead.weights import WeightsRef, load_model


class MouthModel:
    """Loaded once; `predict` maps 16 kHz mono speech to per-frame mouth offsets."""

    def __init__(self, weights: WeightsRef = "lips") -> None:
        loaded = load_model("lips", weights)
        self.net, w = loaded.network(LipsNet), loaded.weights
        self.config = self.net.cfg
        self.geometry = MouthGeometry(
            reference=w.tensors["reference"].numpy(),
            indices=w.tensors["mouth_indices"].numpy().astype(int),
            open_direction=w.tensors["open_direction"].numpy().reshape(-1, 2),
        )
        self.basis = w.tensors["pca_components"]
        self.std = w.tensors["pca_std"]
        # calibrated gain on the predicted motion (see the file's amplitude_note metadata)
        self.amplitude = float(w.metadata.get("amplitude", "1.0"))
        # newer files: the real speakers' typical spread of the lip gap, which each clip's motion is scaled to
        self.spread = float(w.metadata.get("spread", "0"))
        # an avatar's adapted copy (avatar/adapt.py) takes its spread gain from the shared model's motion, so
        # that what it learned about the person's amplitude is not scaled away again
        self.gain_reference: MouthModel | None = None
        self.readout: WeightsRef = "whisper-readout"  # the Whisper readout of `lips="whisper"` (a name or a file)

    @torch.no_grad()
    def predict(self, samples: np.ndarray, n_frames: int, fps: float, lips: str = "standard") -> np.ndarray:
        """(n_frames, len(indices), 2) offsets, gated to zero in silence. `lips`: "standard" (this model alone)
        or "whisper" (averaged with the Whisper readout, models/whisper_readout.py; the `[whisper]` extra)."""
        whisper = self.whisper_motion(samples, n_frames, fps) if lips == "whisper" else None
        out = self.blend(self.raw(samples, n_frames, fps), whisper)
        if self.gain_reference is None:
            return out * self.scale(out, samples, fps)[:, None, None]
        ref = self.gain_reference.blend(self.gain_reference.raw(samples, n_frames, fps), whisper)
        return out * self.gain_reference.scale(ref, samples, fps)[:, None, None]

    def whisper_motion(self, samples: np.ndarray, n_frames: int, fps: float) -> tuple[float, np.ndarray]:
        """(the lips model's share, the readout's offsets before gain and gate) for `--lips whisper`."""
        from talkinghead.models.whisper_readout import load_readout

        readout = load_readout(str(self.readout))
        if not np.array_equal(readout.indices, self.geometry.indices):
            raise InputError(
                "The Whisper readout moves the built-in lips model's mouth points, and these lips weights use "
                "others; use --lips standard with them."
            )
        return readout.lips_share, readout.offsets(samples, n_frames, fps)

    @staticmethod
    def blend(out: np.ndarray, whisper: tuple[float, np.ndarray] | None) -> np.ndarray:
        """The network's offsets, or their weighted average with the Whisper readout's."""
        if whisper is None:
            return out
        share, other = whisper
        return (share * out + (1.0 - share) * other).astype(np.float32)

    @torch.no_grad()
    def raw(self, samples: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
        """(n_frames, len(indices), 2) the network's offsets, before gain and gate."""
        mel = self.network_input(samples)
        pos = frame_positions(n_frames, fps)
        coef = torch.cat([self._window(mel, pos, f0, min(n_frames, f0 + WINDOW)) for f0 in range(0, n_frames, WINDOW)])
        return self.offsets(coef)

    def network_input(self, samples: np.ndarray) -> torch.Tensor:
        """(n_mel, channels) features of 16 kHz speech, as this network was trained on them."""
        kind = self.config.embedding
        emb = embedding_features(samples, kind) if self.config.n_embed else None
        return torch.from_numpy(model_input(normalize(log_mel(samples)), emb, self.config.use_mel, EMBED_SCALES[kind]))

    def scale(self, out: np.ndarray, samples: np.ndarray, fps: float) -> np.ndarray:
        """(n_frames,) factor `predict` applies to the network's offsets `out`: gain times the silence gate."""
        gate = speech_gate(samples, len(out), fps)
        return self.gain(self.lip_gaps(out[gate > 0.5])) * gate

    def offsets(self, coef: torch.Tensor) -> np.ndarray:
        """(T, n_coeffs) model coefficients -> (T, len(indices), 2) offsets, before gain and gate."""
        return ((coef * self.std) @ self.basis).numpy().reshape(len(coef), len(self.geometry.indices), 2)

    def lip_gaps(self, out: np.ndarray) -> np.ndarray:
        """(T,) the inner-lip gap change of each frame of offsets (T, len(indices), 2)."""
        idx = list(self.geometry.indices)
        top, bottom = idx.index(LIP_TOP), idx.index(LIP_BOTTOM)
        return np.asarray(out[:, bottom, 1] - out[:, top, 1])

    def gain(self, speech_gaps: np.ndarray) -> float:
        """The file's fixed gain, or (files with a `spread`) the gain that gives the lip gaps of the speech
        frames the spread real speakers have: regression shrinks motion most on voices unlike the training ones."""
        return self.gain_for(float(speech_gaps.std()) if len(speech_gaps) else 0.0, len(speech_gaps))

    def gain_for(self, gap_std: float, count: int) -> float:
        """`gain` from the std of `count` speech frames' lip gaps (a stream keeps running moments, not the gaps)."""
        if not self.spread or count < 10:
            return self.amplitude
        return spread_gain(gap_std, self.spread, self.amplitude)

    def _window(self, mel: torch.Tensor, pos: np.ndarray, f0: int, f1: int) -> torch.Tensor:
        """Coefficients of frames [f0, f1), computed on a window with margins wider than the network's
        reach, so long speech (a film) costs flat memory and gives the same values as one pass."""
        g0, g1 = max(0, f0 - _MARGIN_FRAMES), min(len(pos), f1 + _MARGIN_FRAMES)
        m0 = max(0, int(pos[g0]) - _MARGIN_MEL)
        m1 = min(mel.shape[0], int(pos[g1 - 1]) + _MARGIN_MEL)
        local = torch.from_numpy(pos[g0:g1] - m0)[None]
        return self.net(mel[None, m0:m1], local)[0][f0 - g0 : f1 - g0]


def spread_gain(gap_std: float, spread: float, amplitude: float) -> float:
    """Gain that gives a predicted lip gap whose std over speech frames is `gap_std` the real speakers'
    `spread`, bounded to 0.5-2.5 x the file's calibrated `amplitude`.
    Any estimate of the std works: the whole clip's (MouthModel) or a running one over the speech so far
    (streaming, where the clip's end is not known yet)."""
    return float(np.clip(spread / max(gap_std, 1e-6), 0.5 * amplitude, 2.5 * amplitude))


def embedding_features(samples: np.ndarray, kind: str) -> np.ndarray:
    """(n_mel, dim) speaker-invariant features of the kind a weights file was trained on."""
    if kind == "whisper":
        from talkinghead.audio.whisper import whisper_states

        return whisper_states(samples)
    return speech_embedding(samples)


WINDOW = 1500  # video frames per inference window (60 s at 25 fps)
_MARGIN_FRAMES = 50  # > the temporal head's reach in frames
_MARGIN_MEL = 300  # > the encoder's reach plus its delay, in mel frames


def speech_gate(samples: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """1 in speech, 0 in silence, smooth in between (per video frame)."""
    db = loudness(samples, n_frames, fps)
    if not np.isfinite(db).any():
        return np.zeros(n_frames, np.float32)
    return gate_from_loudness(db, float(np.percentile(db, 95)))


SILENCE_DB = -90.0  # frames at or below this level (dB full scale) are digital silence


def gate_from_loudness(db: np.ndarray, top: float) -> np.ndarray:
    """The gate of frames with levels `db` (dB) against the speech level `top`; the ends are held (edge)."""
    n_frames = len(db)
    gate = np.clip((db - (top - 40.0)) / 12.0, 0.0, 1.0)
    gate[db <= SILENCE_DB] = 0.0  # digital silence is never speech, even when there is nothing louder
    # open slightly before the sound and close a little after it: max over +-2 frames, then smooth
    k = 2
    padded = np.pad(gate, k, mode="edge")
    gate = np.max(np.stack([padded[i : i + n_frames] for i in range(2 * k + 1)]), axis=0)
    kernel = np.array([0.25, 0.5, 0.25])
    return np.convolve(np.pad(gate, 1, mode="edge"), kernel, mode="valid").astype(np.float32)
