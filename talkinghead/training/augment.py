"""Speaker- and channel-invariance augmentation, applied to log-mel (cheap, no re-synthesis).

The corpus has one studio speaker for most of its minutes; these perturbations stand in for the
voices and microphones we lack: formant/pitch warp along the mel axis, band masks, added noise.
"""

from __future__ import annotations

import numpy as np


def warp_frequency(mel: np.ndarray, factor: float) -> np.ndarray:
    """Stretch the mel axis by `factor` (>1 moves energy up, like a shorter vocal tract)."""
    n = mel.shape[1]
    src = np.clip(np.arange(n) / factor, 0, n - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    a = (src - lo).astype(np.float32)
    return mel[:, lo] * (1 - a) + mel[:, hi] * a


def add_noise(mel: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add coloured stationary noise at roughly `snr_db` below the clip's mean power."""
    power = np.exp(mel)
    level = power.mean() * 10 ** (-snr_db / 10)
    tilt = np.exp(rng.normal(0, 1.0) * np.linspace(-1, 1, mel.shape[1]))
    noise = level * tilt[None, :] * rng.exponential(1.0, size=mel.shape)
    return np.log(power + noise).astype(np.float32)


def mask_bands(mel: np.ndarray, rng: np.random.Generator, n_masks: int = 2, max_width: int = 10) -> np.ndarray:
    out = mel.copy()
    fill = float(np.median(mel))
    for _ in range(n_masks):
        w = int(rng.integers(0, max_width + 1))
        f0 = int(rng.integers(0, mel.shape[1] - w + 1))
        out[:, f0 : f0 + w] = fill
    return out


def augment(mel_raw: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random perturbation of a raw (un-normalised) log-mel segment."""
    x = mel_raw
    if rng.random() < 0.8:
        x = warp_frequency(x, float(np.exp(rng.uniform(np.log(0.85), np.log(1.18)))))
    if rng.random() < 0.5:
        x = add_noise(x, float(rng.uniform(5, 30)), rng)
    if rng.random() < 0.5:
        x = mask_bands(x, rng)
    return x.astype(np.float32)
