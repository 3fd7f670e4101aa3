"""Audio-visual sync from the lip-sync expert: offset, confidence and distance.

Sign convention: `offset_frames` > 0 means the video lags the audio (the mouth moves after the sound).
Our analogue of LSE-C is `confidence` (best similarity minus the median over shifts) and of LSE-D is
`distance` (1 - best cosine similarity); they come from our own expert, so they are not comparable with
papers that used the original SyncNet weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from talkinghead.audio.features import mel_slice
from talkinghead.models.sync import SyncNet
from talkinghead.weights import WeightsRef, load_model

MAX_SHIFT = 15


@dataclass(frozen=True)
class SyncResult:
    offset_frames: int
    confidence: float
    distance: float
    curve: np.ndarray  # mean similarity per shift, shifts -MAX_SHIFT..MAX_SHIFT


class SyncExpert:
    """The shipped lip-sync expert and the canonical reference shape it was trained with."""

    def __init__(self, weights: WeightsRef = "sync") -> None:
        loaded = load_model("sync", weights)
        self.net = loaded.network(SyncNet)
        self.reference = loaded.weights.tensors["reference"].numpy()


def audio_windows(mel: np.ndarray, frames: np.ndarray, fps: float, width: int = 20) -> np.ndarray:
    """(len(frames), width, n_mels): the mel around each video frame's time (any frame may be outside)."""
    pos = np.round(np.asarray(frames) * (100.0 / fps)).astype(int)
    half = width // 2
    fill = float(mel.min())
    return np.stack([mel_slice(mel, p - half, p + width - half, fill=fill) for p in pos])


def mouth_windows(offsets: np.ndarray, frames: np.ndarray, width: int = 5) -> np.ndarray:
    """(len(frames), width, M*2): mouth motion of `width` frames centred on each frame (edges clamped)."""
    n = len(offsets)
    flat = offsets.reshape(n, -1)
    half = width // 2
    idx = np.clip(np.asarray(frames)[:, None] + np.arange(-half, width - half)[None, :], 0, n - 1)
    return flat[idx]


@torch.no_grad()
def similarity_map(
    net: SyncNet, mel: np.ndarray, offsets: np.ndarray, fps: float, max_shift: int = MAX_SHIFT
) -> np.ndarray:
    """(2*max_shift+1, T) cosine similarity of video frame t with the audio at frame t + shift."""
    net.eval()
    n = len(offsets)
    cfg = net.cfg
    v = net.embed_mouth(torch.from_numpy(mouth_windows(offsets, np.arange(n), cfg.video_window)).float())
    frames = np.arange(-max_shift, n + max_shift)
    a = net.embed_audio(torch.from_numpy(audio_windows(mel, frames, fps, cfg.mel_window)).float())
    sims = np.zeros((2 * max_shift + 1, n), np.float32)
    for i, k in enumerate(range(-max_shift, max_shift + 1)):
        sims[i] = (v * a[max_shift + k : max_shift + k + n]).sum(-1).numpy()
    return sims


def sync_from_map(sims: np.ndarray, valid: np.ndarray | None = None) -> SyncResult:
    """Offset and confidence from a similarity map (frames without a face ignored)."""
    cols = sims if valid is None else sims[:, valid]
    curve = cols.mean(axis=1) if cols.shape[1] else np.zeros(sims.shape[0], np.float32)
    best = int(np.argmax(curve))
    shift = best - (len(curve) - 1) // 2
    return SyncResult(
        offset_frames=-shift,
        confidence=float(curve[best] - np.median(curve)),
        distance=float(1.0 - curve[best]),
        curve=curve,
    )
