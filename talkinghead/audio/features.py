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
def mel_filterbank(
    n_mels: int = N_MELS, n_fft: int = N_FFT, sr: int = SAMPLE_RATE, fmin: float = 55.0, fmax: float = 7600.0
) -> np.ndarray:
    """Slaney-style triangular mel filters, shape (n_mels, n_fft // 2 + 1)."""

    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))  # type: ignore[arg-type]
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    fb = np.maximum(0, np.minimum((freqs - lower) / (centre - lower), (upper - freqs) / (upper - centre)))
    fb *= 2.0 / (upper - lower)  # equal area per band
    return fb.astype(np.float32)


_BLOCK = 3000  # mel frames per FFT block (30 s)


def log_mel(samples: np.ndarray) -> np.ndarray:
    """(T, 80) float32 log-mel of 16 kHz mono samples; frame t is centred at t * 10 ms."""
    x = np.asarray(samples, np.float32)
    pad = N_FFT // 2
    n = 1 + (len(x) + 2 * pad + HOP - N_FFT) // HOP  # frames of x zero-padded by (pad, pad + HOP)
    n = max(n, 1)
    window = np.zeros(N_FFT, np.float32)
    off = (N_FFT - WIN) // 2
    window[off : off + WIN] = np.hanning(WIN + 2)[1:-1]
    bank = mel_filterbank().T
    expected = int(np.ceil(len(samples) / HOP))
    out = np.empty((min(n, expected), bank.shape[1]), np.float32)
    # blocks of frames keep the framing and FFT buffers small however long the speech (a film)
    for a in range(0, len(out), _BLOCK):
        b = min(len(out), a + _BLOCK)
        start = HOP * a
        seg = padded_slice(x, start, HOP * (b - 1) + N_FFT, pad)
        idx = np.arange(N_FFT)[None, :] + HOP * np.arange(b - a)[:, None]
        power = np.abs(np.fft.rfft(seg[idx] * window, axis=1)) ** 2
        out[a:b] = np.log(power @ bank + 1e-6)
    return out


def padded_slice(x: np.ndarray, start: int, stop: int, left: int) -> np.ndarray:
    """`np.pad(x, (left, ...))[start:stop]` with zeros outside x, without padding (copying) the whole clip."""
    out = np.zeros(stop - start, x.dtype)
    a, b = max(start - left, 0), min(stop - left, len(x))
    if b > a:
        out[a - (start - left) : b - (start - left)] = x[a:b]
    return out


def normalize(mel: np.ndarray) -> np.ndarray:
    """Per-band mean removal over the clip, ignoring near-silent frames when estimating the mean."""
    energy = mel.mean(axis=1)
    voiced = energy > np.percentile(energy, 30) if len(energy) > 10 else np.ones(len(energy), bool)
    mean = mel[voiced].mean(axis=0) if voiced.any() else mel.mean(axis=0)
    return (mel - mean).astype(np.float32, copy=False)


def frame_positions(n_frames: int, fps: float, first: int = 0) -> np.ndarray:
    """Mel-frame index of each video frame's time (frames first..first+n_frames-1), any frame rate."""
    return np.round(np.arange(first, first + n_frames) * (MEL_FPS / fps)).astype(np.int64)


def mel_slice(mel: np.ndarray, start: int, stop: int, fill: float | None = None) -> np.ndarray:
    """mel[start:stop], padded with `fill` (default: the clip's minimum, i.e. silence) outside the clip."""
    fill_value = float(mel.min()) if fill is None else fill
    out = np.full((stop - start, mel.shape[1]), fill_value, np.float32)
    a, b = max(start, 0), min(stop, len(mel))
    if b > a:
        out[a - start : b - start] = mel[a:b]
    return out


_FRAMES_BLOCK = 1000  # video frames per block of the pitch autocorrelation (40 s at 25 fps)
_SAMPLES_BLOCK = 1 << 20  # samples per block of the running energy sum (65 s at 16 kHz)


def loudness(samples: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """RMS level in dB per video frame (window of one frame), for pauses and the loudness baseline."""
    x = np.asarray(samples)
    edges = (np.arange(n_frames + 1) * (SAMPLE_RATE / fps)).astype(np.int64).clip(0, len(x))
    # energy[j] = sum of the first j squared samples, wanted only at the frame edges: a running sum over
    # blocks of samples (the same additions, in the same order, as one cumsum) keeps memory flat for long
    # speech (one cumsum of 1 h of audio took 1.8 GB)
    energy = np.zeros(len(edges), np.float64)
    carry = 0.0
    for a in range(0, len(x), _SAMPLES_BLOCK):
        v = np.asarray(x[a : a + _SAMPLES_BLOCK], np.float64)
        run = np.cumsum(np.concatenate([[carry], v * v]))  # run[k] = energy[a + k]
        lo, hi = np.searchsorted(edges, a, "left"), np.searchsorted(edges, a + len(v), "right")
        energy[lo:hi] = run[edges[lo:hi] - a]
        carry = float(run[-1])
    counts = np.diff(edges)
    mean = (energy[1:] - energy[:-1]) / np.maximum(counts, 1)
    return np.where(counts > 0, 10 * np.log10(mean + 1e-10), -100.0).astype(np.float32)


N_PROSODY = 13


def prosody(samples: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """(n_frames, 13) float32 speech-level cues per video frame for head motion and blinks.

    Columns: loudness relative to the clip's 95th percentile (/20 dB), speech/pause indicator,
    loudness change, voicing (peak normalised autocorrelation, 50-400 Hz), log pitch relative to the
    clip's median voiced pitch (/0.3, 0 when unvoiced), and 8 coarse log-mel bands (clip mean removed,
    /5). Relative measures make the cues independent of microphone gain and the speaker's voice.
    """
    x = np.asarray(samples, np.float32)
    db = loudness(x, n_frames, fps)
    top = float(np.percentile(db, 95)) if n_frames else 0.0
    rel = np.clip((db - top) / 20.0, -3.0, 0.5)
    active = np.clip((db - (top - 30.0)) / 10.0, 0.0, 1.0)
    d_rel = np.clip(np.diff(rel, prepend=rel[:1]), -1.0, 1.0)
    # voicing and pitch from the autocorrelation of a 40 ms window centred on each frame
    win = PITCH_WIN
    centres = ((np.arange(n_frames) + 0.5) * (SAMPLE_RATE / fps)).astype(np.int64)
    peak = np.empty(n_frames, np.int64)
    ratio = np.empty(n_frames, np.float64)
    # blocks of frames keep the (frames x 2 * win) FFT buffers small however long the speech (1 h of audio
    # took 6 GB in one block); every row is computed alone, so the values are those of one pass
    for a in range(0, n_frames, _FRAMES_BLOCK):
        b = min(n_frames, a + _FRAMES_BLOCK)
        # rows of x zero-padded by win // 2 on both sides, indices clipped to it (as one np.pad of the clip)
        lo_i = int(min(centres[a], len(x) + win - 1))
        hi_i = int(min(centres[b - 1] + win, len(x) + win))
        seg = padded_slice(x, lo_i, hi_i, win // 2)
        idx = np.clip(centres[a:b, None] + np.arange(win)[None, :], 0, len(x) + win - 1) - lo_i
        peak[a:b], ratio[a:b] = pitch_peak(seg[idx])
    voicing = np.clip(ratio, 0.0, 1.0) * active
    logf0 = np.log(SAMPLE_RATE / peak.astype(np.float64))
    voiced = voicing > VOICED
    ref = np.median(logf0[voiced]) if voiced.sum() > 5 else float(np.log(150.0))
    pitch = np.where(voiced, np.clip((logf0 - ref) / 0.3, -3, 3), 0.0)
    # coarse spectrum: 8 bands of 10 mel bands, averaged over the frame's mel frames
    mel = normalize(log_mel(x)) if len(x) else np.zeros((1, N_MELS), np.float32)
    pos = frame_positions(n_frames, fps).clip(0, len(mel) - 1)
    bands = mel.reshape(len(mel), 8, N_MELS // 8).mean(axis=2)[pos] / 5.0
    out = np.column_stack([rel, active, d_rel, voicing, pitch, bands])
    return out.astype(np.float32)


PITCH_WIN = 640  # samples (40 ms) of each frame's autocorrelation window
VOICED = 0.45  # voicing above which a frame's pitch counts


def axis_mean(a: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    """`a.mean(axis, keepdims=keepdims)` of a float array of 2 or more dimensions, by numpy's very operations
    (`numpy/core/_methods.py`'s `_mean`: the sum, then one division in place by the count) without its
    Python-level work, most of the cost on the small arrays of frame-by-frame code (streaming's cues)."""
    total = np.add.reduce(a, axis=axis, keepdims=keepdims)
    return np.true_divide(total, np.intp(a.shape[axis]), out=total, casting="unsafe")


@functools.cache
def _pitch_window() -> np.ndarray:
    """`pitch_peak`'s Hann window, made once (streaming calls it at every frame)."""
    window = np.hanning(PITCH_WIN).astype(np.float32)
    window.flags.writeable = False
    return window


def pitch_peak(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of (n, PITCH_WIN) samples: the autocorrelation's peak lag in 50-400 Hz and its height relative
    to lag 0 (the voicing). Shared by `prosody` and the streaming cues (`audio/running.py`)."""
    win = PITCH_WIN
    lo, hi = SAMPLE_RATE // 400, SAMPLE_RATE // 50
    frames = frames * _pitch_window()
    frames = frames - axis_mean(frames, 1, keepdims=True)
    spec = np.fft.rfft(frames, n=2 * win, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :win]
    peak = lo + np.argmax(ac[:, lo:hi], axis=1)
    ratio = ac[np.arange(len(frames)), peak] / (ac[:, 0] + 1e-6)
    return peak, ratio
