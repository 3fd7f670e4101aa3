"""Audio -> mouth motion network.

A dilated 1-D convolution stack runs once over the log-mel sequence (100 frames a second); its
features are then read at each video frame's time, so any frame rate (25, 29.97, 30...) uses the same
acoustic context and no work is repeated for overlapping windows. A short temporal convolution at the
video rate co-articulates neighbouring frames. Features are read `delay` mel frames before the frame's
time, which makes the context asymmetric: mostly past, bounded future, so the model can stream.
Look-ahead = (receptive radius - delay) * 10 ms + 2 * `context` video frames, <= 200 ms by default.
Output: mouth-motion coefficients in the PCA basis stored beside the weights. Small on purpose: the
corpus is an hour of video, and bigger nets overfit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class LipsConfig:
    n_mels: int = 80
    width: int = 128
    dilations: tuple[int, ...] = (1, 2, 4, 8)  # kernel 3: receptive radius 15 mel frames
    delay: int = 6  # read features 60 ms before the frame time: 210 ms past, 90 ms future
    context: int = 1  # video frames each side, per temporal layer (two layers)
    n_coeffs: int = 8
    dropout: float = 0.2
    n_embed: int = 0  # extra per-mel-frame input channels (96 speech embedding, 512 Whisper, 0 without)
    use_mel: bool = True  # False: the speech embedding alone (most speaker-invariant)
    embedding: str = "speech"  # what fills n_embed: "speech" (openwakeword) or "whisper" (Whisper-base encoder)

    @property
    def radius(self) -> int:
        return 2 + sum(self.dilations)  # the stem has kernel 5

    @property
    def lookahead_ms(self) -> float:
        return (self.radius - self.delay) * 10.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class LipsNet(nn.Module):
    """features (B, L, n_mels + n_embed) + frame positions (B, T) in mel frames -> (B, T, n_coeffs)."""

    def __init__(self, cfg: LipsConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.stem = nn.Sequential(
            nn.Conv1d(cfg.n_mels * cfg.use_mel + cfg.n_embed, w, 5, padding=2), nn.BatchNorm1d(w), nn.GELU()
        )
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv1d(w, w, 3, padding=d, dilation=d), nn.BatchNorm1d(w), nn.GELU())
            for d in cfg.dilations
        )
        k = 2 * cfg.context + 1
        self.temporal = nn.Sequential(
            nn.Dropout(cfg.dropout),
            nn.Conv1d(w, w, k, padding=cfg.context),
            nn.GELU(),
            nn.Conv1d(w, w, k, padding=cfg.context),
            nn.GELU(),
        )
        self.head = nn.Linear(w, cfg.n_coeffs)

    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, L, n_mels + n_embed) -> (B, width, L) acoustic features at the mel rate."""
        z = self.stem(mel.transpose(1, 2))
        for block in self.blocks:
            z = z + block(z)
        return z

    def decode(self, feats: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Read features at video-frame positions (B, T) and map to coefficients (B, T, n_coeffs)."""
        idx = (positions - self.cfg.delay).clamp(0, feats.shape[2] - 1)
        z = torch.gather(feats, 2, idx[:, None, :].expand(-1, feats.shape[1], -1))
        z = z + self.temporal(z)
        return self.head(z.transpose(1, 2))

    def forward(self, mel: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(mel), positions)


EMBED_SCALE = 0.1  # speech-embedding values have std ~10; bring them near the mel's scale
EMBED_SCALES = {"speech": EMBED_SCALE, "whisper": 1.0}  # Whisper encoder states have std ~1.4


def model_input(
    mel_normalized: np.ndarray, embedding: np.ndarray | None, use_mel: bool = True, scale: float = EMBED_SCALE
) -> np.ndarray:
    """Per-mel-frame network input: normalised log-mel (if used), then the scaled embedding (if used)."""
    if embedding is None:
        return mel_normalized.astype(np.float32)
    n = min(len(mel_normalized), len(embedding))
    parts = ([mel_normalized[:n]] if use_mel else []) + [scale * embedding[:n]]
    return np.concatenate(parts, axis=1).astype(np.float32)
