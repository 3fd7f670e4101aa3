"""Head motion and blinks: seeded, smooth, speech-correlated (procedural baseline).

The Animator now samples the learned model (`motion/learned.py`); this module stays as the baseline
that `benchmarks/motion_stats.py` compares it with. Without a learned prior, head pose is low-pass
filtered noise whose amplitude rises while the person speaks (people move more when talking), with
small nods on loud syllables; blinks are a renewal process with a refractory gap and an asymmetric lid
profile (fast close, slower open), at 10-30 a minute and 100-400 ms each like real speakers. Everything is
drawn from one seeded generator, so a seed gives the same video every time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HeadMotionOptions:
    # std of each axis while speaking: set to ~0.75x of the real varied speakers of the corpus
    # (tracked std yaw 4.25, pitch 3.1, roll 2.95 deg on the 20 non-GRID training clips)
    yaw_deg: float = 3.4
    pitch_deg: float = 2.6
    roll_deg: float = 2.4
    shift: float = 0.03  # std of translation, in inter-ocular units
    pose_scale: float = 1.0  # 0 = still head
    blinks_per_min: float = 17.0


def _smooth_noise(n: int, fps: float, tau_s: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance noise, low-passed by a Gaussian of width tau (s)."""
    sigma = max(tau_s * fps, 1e-3)
    half = int(3 * sigma) + 1
    pad = half
    x = rng.standard_normal(n + 2 * pad)
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    y = np.convolve(x, k / k.sum(), mode="valid")[: n + 2 * pad - 2 * half]
    y = y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)), mode="edge")
    return (y - y.mean()) / (y.std() + 1e-8)


def speech_activity(db: np.ndarray, fps: float) -> np.ndarray:
    """0..1 smoothed activity from per-frame loudness (dB)."""
    top = np.percentile(db, 95) if len(db) else 0.0
    act = np.clip((db - (top - 35.0)) / 15.0, 0, 1)
    k = max(int(0.4 * fps), 1)
    return np.convolve(np.pad(act, k, mode="edge"), np.ones(2 * k + 1) / (2 * k + 1), mode="valid")


def head_pose(db: np.ndarray, fps: float, rng: np.random.Generator, opts: HeadMotionOptions) -> np.ndarray:
    """(T, 5): yaw, pitch, roll (degrees), x, y shift (inter-ocular units)."""
    n = len(db)
    out = np.zeros((n, 5), np.float32)
    if opts.pose_scale <= 0 or n == 0:
        return out
    act = speech_activity(db, fps)
    amp = 0.45 + 0.55 * act  # calmer in pauses, never frozen
    out[:, 0] = opts.yaw_deg * _smooth_noise(n, fps, 0.9, rng) * amp
    out[:, 1] = opts.pitch_deg * _smooth_noise(n, fps, 0.6, rng) * amp
    out[:, 2] = opts.roll_deg * _smooth_noise(n, fps, 1.2, rng) * amp
    out[:, 3] = opts.shift * _smooth_noise(n, fps, 1.5, rng)
    out[:, 4] = opts.shift * 0.6 * _smooth_noise(n, fps, 1.5, rng)
    # small nods following loud syllables: pitch follows the smoothed loudness derivative
    level = np.clip((db - db.max() + 30) / 30, 0, 1) if n else db
    env = np.convolve(np.pad(level, 2, mode="edge"), np.ones(5) / 5, mode="valid")
    out[:, 1] += 1.2 * (env - env.mean())
    return out * opts.pose_scale


def blinks(n: int, fps: float, rng: np.random.Generator, per_min: float = 17.0) -> np.ndarray:
    """(T,) eyelid closure in [0, 1]."""
    out = np.zeros(n, np.float32)
    if per_min <= 0 or n == 0:
        return out
    mean_gap = 60.0 / per_min
    t = rng.uniform(0.3, min(mean_gap, 3.0))
    total = n / fps
    while t < total:
        dur = rng.uniform(0.15, 0.32)
        close = dur * 0.4
        frames = np.arange(int(t * fps), min(n, int(np.ceil((t + dur) * fps)) + 1))
        for f in frames:
            u = f / fps - t
            if u < 0 or u > dur:
                continue
            v = u / close if u < close else 1 - (u - close) / (dur - close)
            out[f] = max(out[f], float(np.sin(0.5 * np.pi * np.clip(v, 0, 1)) ** 0.7))
        # gamma-distributed gaps with a 0.8 s refractory period, mean = 60 / per_min
        t += dur + 0.8 + rng.gamma(2.0, max(mean_gap - 0.8 - 0.23, 0.1) / 2.0)
    return out
