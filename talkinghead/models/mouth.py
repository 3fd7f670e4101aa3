"""Mouth-interior network: the teeth, tongue and cavity seen between given inner lips.

A small U-Net on a mouth-centred patch (`render/learned_mouth.py` defines the frame: the outer lip
corners on a fixed line, so every face and size looks the same to it). Input: the target opening
(inside mask, signed distance to the inner lip, patch coordinates) and the face's colours (skin, and lip
relative to skin) broadcast over the patch; output: the interior's colour relative to the skin, so
the same network lights teeth and cavity for any face and any light. Trained on the corpus' real mouths
by `talkinghead train mouth` (training/train_mouth.py).

With `components` K > 1 the network answers K candidate colours per pixel and their odds (a mixture),
trained on the likelihood of the real colour; it draws, per pixel, the likeliest candidate (softly:
odds raised to `sharpness`). One colour per pixel fitted by L1 (K = 1, the first file) draws the
average of the mouths it saw: where half of them show teeth and half a dark cavity, a grey-pink smear.
The likeliest candidate is a tooth or the cavity, not their blend.

With `teeth` > 0 the network also takes whether the mouth shows teeth (1: teeth brighter than the skin
under the upper lip above a cavity darker than half of it, measured on each training patch: only ~4 % of
the corpus' open mouths, whose low-resolution and shadowed teeth are mostly darker than the cheeks) as a
7th colour input, and the renderer asks for `teeth`: visible teeth, as a viewer expects of an open mouth.
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
    components: int = 1  # candidate colours per pixel (1: a single L1-fitted colour)
    sharpness: float = 3.0  # with components > 1: odds ** sharpness weight the candidates when drawing
    teeth: float = 0.0  # > 0: teeth asked for (a 7th colour input, see above); 0: no such input

    @property
    def colour_channels(self) -> int:
        return COLOUR_CHANNELS + (self.teeth > 0)

    def to_dict(self) -> dict[str, int | float]:
        return asdict(self)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GELU(), nn.Conv2d(cout, cout, 3, padding=1), nn.GELU())


class MouthNet(nn.Module):
    """(B, 4, H, W) shape maps + (B, 6) colours (7 with `teeth`: the teeth brightness last) -> (B, 3, H, W)
    interior colour / skin colour (>= 0)."""

    def __init__(self, cfg: MouthConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        cin = SHAPE_CHANNELS + cfg.colour_channels
        self.enc1 = _block(cin, w)
        self.enc2 = _block(w, 2 * w)
        self.mid = _block(2 * w, 4 * w)
        self.dec2 = _block(4 * w + 2 * w, 2 * w)
        self.dec1 = _block(2 * w + w, w)
        k = cfg.components
        self.out = nn.Conv2d(w, 3 if k == 1 else 4 * k, 1)  # K > 1: K odds (logits), then K colours

    def forward(self, shape: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
        if self.cfg.components == 1:
            return F.softplus(self.out(self.features(shape, colours)))
        logits, cols = self.mixture(shape, colours)
        weight = torch.softmax(logits * self.cfg.sharpness, 1)
        return (weight[:, :, None] * cols).sum(1)

    def mixture(self, shape: torch.Tensor, colours: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K, H, W) logits of the candidates and (B, K, 3, H, W) their colours / skin (components > 1)."""
        y = self.out(self.features(shape, colours))
        b, _, h, w = y.shape
        k = self.cfg.components
        return y[:, :k], F.softplus(y[:, k:]).reshape(b, k, 3, h, w)

    def features(self, shape: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
        b, _, h, w = shape.shape
        x = torch.cat([shape, colours[:, :, None, None].expand(b, colours.shape[1], h, w)], 1)
        e1 = self.enc1(x)
        e2 = self.enc2(F.avg_pool2d(e1, 2))
        m = self.mid(F.avg_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([F.interpolate(m, size=e2.shape[-2:], mode="bilinear"), e2], 1))
        return self.dec1(torch.cat([F.interpolate(d2, size=e1.shape[-2:], mode="bilinear"), e1], 1))
