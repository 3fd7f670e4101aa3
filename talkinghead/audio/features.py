"""Log-mel features aligned to video frames.

80-band log-mel at 16 kHz with a 10 ms hop (100 feature frames a second) is the field's standard
input for audio-to-mouth models. Per-band mean normalisation over the clip removes the microphone and
speaker colouring that otherwise dominates what a small model learns.
"""

from __future__ import annotations

import functools

import numpy as np

SAMPLE_RATE = 16000
HOP = 160  # 10 ms
WIN = 400  # 25 ms
N_FFT = 512
N_MELS = 80
MEL_FPS = SAMPLE_RATE // HOP  # 100


@functools.lru_cache(maxsize=4)
def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, sr: int = SAMPLE_RATE,
                   fmin: float = 55.0, fmax: float = 7600.0) -> np.ndarray:
    """Slaney-style triangular mel filters, shape (n_mels, n_fft // 2 + 1)."""
    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    fb = np.maximum(0, np.minimum((freqs - lower) / (centre - lower), (upper - freqs) / (upper - centre)))
    fb *= (2.0 / (upper - lower))  # equal area per band
    return fb.astype(np.float32)


def log_mel(samples: np.ndarray) -> np.ndarray:
    """(T, 80) float32 log-mel of 16 kHz mono samples; frame t is centred at t * 10 ms."""
    x = np.asarray(samples, np.float32)
    pad = N_FFT // 2
    x = np.pad(x, (pad, pad + HOP), mode="constant")
    n = 1 + (len(x) - N_FFT) // HOP
    n = max(n, 1)
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    window = np.zeros(N_FFT, np.float32)
    off = (N_FFT - WIN) // 2
    window[off:off + WIN] = np.hanning(WIN + 2)[1:-1]
    frames = x[idx] * window
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    mel = power @ mel_filterbank().T
    expected = int(np.ceil(len(samples) / HOP))
    return np.log(mel[:expected] + 1e-6).astype(np.float32)


def normalize(mel: np.ndarray) -> np.ndarray:
    """Per-band mean removal over the clip, ignoring near-silent frames when estimating the mean."""
    energy = mel.mean(axis=1)
    voiced = energy > np.percentile(energy, 30) if len(energy) > 10 else np.ones(len(energy), bool)
    mean = mel[voiced].mean(axis=0) if voiced.any() else mel.mean(axis=0)
    return (mel - mean).astype(np.float32)


def frame_positions(n_frames: int, fps: float, first: int = 0) -> np.ndarray:
    """Mel-frame index of each video frame's time (frames first..first+n_frames-1), any frame rate."""
    return np.round(np.arange(first, first + n_frames) * (MEL_FPS / fps)).astype(np.int64)


def mel_slice(mel: np.ndarray, start: int, stop: int, fill: float | None = None) -> np.ndarray:
    """mel[start:stop], padded with `fill` (default: the clip's minimum, i.e. silence) outside the clip."""
    fill_value = float(mel.min()) if fill is None else fill
    out = np.full((stop - start, mel.shape[1]), fill_value, np.float32)
    a, b = max(start, 0), min(stop, len(mel))
    if b > a:
        out[a - start:b - start] = mel[a:b]
    return out


def loudness(samples: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """RMS level in dB per video frame (window of one frame), for pauses and the loudness baseline."""
    x = np.asarray(samples, np.float64)
    edges = (np.arange(n_frames + 1) * (SAMPLE_RATE / fps)).astype(np.int64).clip(0, len(x))
    energy = np.concatenate([[0.0], np.cumsum(x * x)])
    counts = np.diff(edges)
    mean = (energy[edges[1:]] - energy[edges[:-1]]) / np.maximum(counts, 1)
    return np.where(counts > 0, 10 * np.log10(mean + 1e-10), -100.0).astype(np.float32)
