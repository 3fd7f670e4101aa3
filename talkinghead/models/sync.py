"""Lip-sync expert: does this mouth motion match this audio?

Two small encoders map 0.2 s of log-mel (20 mel frames) and 5 video frames of mouth motion (canonical
mouth/jaw landmark offsets) into one unit-length embedding space, trained contrastively (InfoNCE over
the true alignment against the same clip's audio shifted by up to +-15 frames). The cosine similarity
across shifts gives the offset and a confidence: our analogue of SyncNet's LSE-D / LSE-C, not
comparable with figures computed with the original SyncNet weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class SyncConfig:
    n_mels: int = 80
    mel_window: int = 20  # 0.2 s
    video_window: int = 5  # frames
    mouth_dim: int = 290  # (number of mouth/jaw points) * 2
    dim: int = 128
    width: int = 128

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class SyncNet(nn.Module):
    def __init__(self, cfg: SyncConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.audio = nn.Sequential(
            nn.Conv1d(cfg.n_mels, w, 3, padding=1),
            nn.BatchNorm1d(w),
            nn.GELU(),
            nn.Conv1d(w, w, 3, padding=1, stride=2),
            nn.BatchNorm1d(w),
            nn.GELU(),
            nn.Conv1d(w, w, 3, padding=1, stride=2),
            nn.BatchNorm1d(w),
            nn.GELU(),
            nn.Flatten(),
            nn.Linear(w * ((cfg.mel_window + 3) // 4), cfg.dim),
        )
        self.mouth = nn.Sequential(
            nn.Conv1d(cfg.mouth_dim, w, 3, padding=1),
            nn.BatchNorm1d(w),
            nn.GELU(),
            nn.Conv1d(w, w, 3, padding=1),
            nn.BatchNorm1d(w),
            nn.GELU(),
            nn.Flatten(),
            nn.Linear(w * cfg.video_window, cfg.dim),
        )
        self.log_scale = nn.Parameter(torch.tensor(2.3))  # learned inverse temperature (e^2.3 = 10)

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """(N, mel_window, n_mels) -> (N, dim), unit length."""
        return F.normalize(self.audio(mel.transpose(1, 2)), dim=-1)

    def embed_mouth(self, mouth: torch.Tensor) -> torch.Tensor:
        """(N, video_window, mouth_dim) -> (N, dim), unit length."""
        return F.normalize(self.mouth(mouth.transpose(1, 2)), dim=-1)
