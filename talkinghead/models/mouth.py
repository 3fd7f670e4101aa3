"""Mouth-interior network: the teeth, tongue and cavity seen between given inner lips.

A small U-Net on a mouth-centred patch (`render/learned_mouth.py` defines the frame: the outer lip
corners on a fixed line, so every face and size looks the same to it). Input: the target opening
(inside mask, signed distance to the inner lip, patch coordinates) and the face's colours (skin, and lip
relative to skin) broadcast over the patch; output: the interior's colour relative to the skin, so
the same network lights teeth and cavity for any face and any light. Trained on the corpus' real mouths
by `talkinghead train mouth` (training/train_mouth.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

SHAPE_CHANNELS = 4  # inside mask, signed distance, x, y
COLOUR_CHANNELS = 6  # skin RGB (0..1), log(lip / skin) RGB


@dataclass(frozen=True)
class MouthConfig:
    width: int = 12  # channels of the first level; x2 per level
    patch_w: int = 64
    patch_h: int = 40

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GELU(), nn.Conv2d(cout, cout, 3, padding=1), nn.GELU())


class MouthNet(nn.Module):
    """(B, 4, H, W) shape maps + (B, 6) colours -> (B, 3, H, W) interior colour / skin colour (>= 0)."""

    def __init__(self, cfg: MouthConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        cin = SHAPE_CHANNELS + COLOUR_CHANNELS
        self.enc1 = _block(cin, w)
        self.enc2 = _block(w, 2 * w)
        self.mid = _block(2 * w, 4 * w)
        self.dec2 = _block(4 * w + 2 * w, 2 * w)
        self.dec1 = _block(2 * w + w, w)
        self.out = nn.Conv2d(w, 3, 1)

    def forward(self, shape: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
        b, _, h, w = shape.shape
        x = torch.cat([shape, colours[:, :, None, None].expand(b, COLOUR_CHANNELS, h, w)], 1)
        e1 = self.enc1(x)
        e2 = self.enc2(F.avg_pool2d(e1, 2))
        m = self.mid(F.avg_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([F.interpolate(m, size=e2.shape[-2:], mode="bilinear"), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, size=e1.shape[-2:], mode="bilinear"), e1], 1))
        return F.softplus(self.out(d1))
