"""Audio -> mouth motion network.

Each output frame sees a log-mel window of `before` + `after` mel frames around its time (so any
video frame rate uses the same acoustic context), encoded by a small 2-D CNN; a temporal convolution
over neighbouring frames then smooths and co-articulates. Look-ahead = `after` * 10 ms + 2 * `context` video
frames, bounded (<= 200 ms) so the model can stream. Output: mouth-motion coefficients in the PCA basis stored
beside the weights. Small on purpose: the corpus is an hour of video, and bigger nets overfit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LipsConfig:
    n_mels: int = 80
    before: int = 24  # mel frames of past context (240 ms)
    after: int = 12  # mel frames of future context (120 ms)
    width: int = 64
    context: int = 1  # video frames each side, per temporal layer (two layers)
    n_coeffs: int = 8
    dropout: float = 0.2

    def to_dict(self) -> dict[str, int | float]:
        return asdict(self)


class LipsNet(nn.Module):
    """(B, T, before+after, n_mels) normalised log-mel windows -> (B, T, n_coeffs)."""

    def __init__(self, cfg: LipsConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width

        def block(cin: int, cout: int, stride: tuple[int, int]) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout), nn.GELU())

        self.encoder = nn.Sequential(
            block(1, w // 2, (1, 2)),
            block(w // 2, w, (2, 2)),
            block(w, w, (2, 2)),
            block(w, 2 * w, (2, 2)),
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(),
        )
        k = 2 * cfg.context + 1
        self.temporal = nn.Sequential(
            nn.Dropout(cfg.dropout),
            nn.Conv1d(2 * w, 2 * w, k, padding=cfg.context),
            nn.GELU(),
            nn.Conv1d(2 * w, 2 * w, k, padding=cfg.context),
            nn.GELU(),
        )
        self.head = nn.Linear(2 * w, cfg.n_coeffs)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        b, t, n, m = windows.shape
        z = self.encoder(windows.reshape(b * t, 1, n, m)).reshape(b, t, -1)
        z = z + self.temporal(z.transpose(1, 2)).transpose(1, 2)
        return self.head(z)
