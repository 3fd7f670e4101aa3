"""Full-reference image metrics: PSNR, SSIM and MS-SSIM (Wang et al. 2003/2004), on luma.

Standard constants: Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, five MS-SSIM scales with the
published weights. Computed in torch on the CPU, one frame pair at a time.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

_MS_WEIGHTS = torch.tensor([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])


def _luma(frame: np.ndarray) -> torch.Tensor:
    y = frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return torch.from_numpy(y)[None, None]


def _window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def _ssim_parts(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    w = _window()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = F.conv2d(x, w), F.conv2d(y, w)
    sxx = F.conv2d(x * x, w) - mx ** 2
    syy = F.conv2d(y * y, w) - my ** 2
    sxy = F.conv2d(x * y, w) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    lum = (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1)
    return (lum * cs).mean(), cs.mean()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """dB over all channels; identical frames give +inf."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(_ssim_parts(_luma(a), _luma(b))[0])


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Five-scale MS-SSIM; frames smaller than 176 px on a side use as many scales as fit."""
    x, y = _luma(a), _luma(b)
    scales = max(1, min(5, int(np.log2(min(x.shape[-2:]) / 11)) + 1))
    weights = _MS_WEIGHTS[:scales] / _MS_WEIGHTS[:scales].sum()
    vals = []
    for i in range(scales):
        s, cs = _ssim_parts(x, y)
        vals.append(s if i == scales - 1 else cs)
        if i < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    v = torch.stack([torch.clamp(t, min=1e-6) for t in vals])
    return float(torch.prod(v ** weights))
