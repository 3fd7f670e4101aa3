"""Speech features computed as the audio arrives, for streaming (`motion/stream.py`).

The offline features (`features.py`) look at the whole clip for three things: the per-band log-mel mean
(`normalize`), the loudness a clip's speech reaches (its 95th percentile, for pauses and the mouth gate) and
the speaker's median pitch. Here each becomes a running statistic, updated at fixed points of the audio timeline,
so a value depends only on the audio before it (never on how the audio was cut into chunks) and memory stays flat
however long the stream. The mel mean is cumulative (every frame since the stream began, kept as a histogram of
frame energies with per-bin sums, `CumulativeMean`), so it converges to the whole input's mean that `generate`
uses; the loudness level and pitch look at the last `HISTORY_S` seconds. The first half second is the warm-up:
the statistics are refreshed at every frame. The mel mean starts from a corpus-wide prior (`stream_priors.json`
beside the weights, `scripts/stream_priors.py`) worth `PRIOR_FRAMES` frames, which the stream's own frames
outweigh within a second: the mean of a few frames alone moved the lips far from the offline ones.

Everything else is the offline computation itself: the same log-mel frames (`log_mel`'s framing), the same
loudness windows, the same pitch autocorrelation.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np

from talkinghead.audio.features import (
    HOP,
    N_FFT,
    N_MELS,
    PITCH_WIN,
    SAMPLE_RATE,
    VOICED,
    axis_mean,
    mel_filterbank,
    pitch_peak,
)
from talkinghead.audio.sorted_window import SortedWindow

HISTORY_S = 30.0  # seconds of past audio the running loudness level and pitch look at
ENERGY_BINS = np.linspace(-16.0, 8.0, 1201)  # frame energy (mean log-mel) bins of the cumulative mel mean
WARMUP = 50  # mel frames (0.5 s) during which the mel mean is refreshed every frame, then every REFRESH
REFRESH = 10  # mel frames between refreshes of the mel mean after the warm-up
LOUDNESS_FLOOR = -45.0  # dB: a stream that starts in silence does not take its noise for the speech level
PRIOR_FRAMES = 25  # weight of the prior mel mean, in voiced mel frames (see RESULTS.md, streaming, third round)
PRIORS_FILE = Path(__file__).resolve().parents[1] / "weights" / "stream_priors.json"


@cache
def stream_priors() -> dict:
    """The corpus-wide priors of streaming's running statistics ({} if the file is missing)."""
    return dict(json.loads(PRIORS_FILE.read_text())) if PRIORS_FILE.exists() else {}


class SampleBuffer:
    """The samples of a stream still needed, addressed by their absolute index since the stream began."""

    def __init__(self) -> None:
        self.data = np.zeros(0, np.float32)
        self.start = 0  # absolute index of data[0]
        self.finished = False  # no more samples will come: reads past the end give zeros

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    def push(self, samples: np.ndarray) -> None:
        self.data = np.concatenate([self.data, np.asarray(samples, np.float32).reshape(-1)])

    def forget_before(self, index: int) -> None:
        """Drop the samples before `index` (no reader needs them any more): keeps memory flat."""
        cut = min(index, self.end) - self.start
        if cut > 0:
            self.data, self.start = self.data[cut:].copy(), self.start + cut

    def read(self, a: int, b: int) -> np.ndarray:
        """Samples [a, b); zeros before the stream began and after its end."""
        out = np.zeros(b - a, np.float32)
        lo, hi = max(a, 0), min(b, self.end)
        if hi > lo:
            if lo < self.start:
                raise ValueError(f"samples from {lo} were dropped (kept from {self.start})")
            out[lo - a : hi - a] = self.data[lo - self.start : hi - self.start]
        return out


class Ring:
    """The last `size` rows of a growing sequence of vectors, addressed by absolute index."""

    def __init__(self, size: int, width: int) -> None:
        self.data = np.zeros((size, width), np.float32)
        self.count = 0

    def append(self, row: np.ndarray) -> None:
        self.data[self.count % len(self.data)] = row
        self.count += 1

    def rows(self, a: int, b: int) -> np.ndarray:
        """Rows [a, b) (all still held)."""
        if a < self.count - len(self.data) or b > self.count:
            raise ValueError(f"rows {a}..{b} are not held (have {max(0, self.count - len(self.data))}..{self.count})")
        start = a % len(self.data)
        if start + (b - a) <= len(self.data):  # one stretch of the ring (a copy, as the wrapped case)
            return self.data[start : start + (b - a)].copy()
        return self.data[np.arange(a, b) % len(self.data)]

    def last(self, n: int) -> np.ndarray:
        n = min(n, self.count, len(self.data))
        return self.rows(self.count - n, self.count)


class CumulativeMean:
    """`features.normalize`'s mean (per band, over the frames louder than the 30th percentile of frame energy) of
    every row added so far, in flat memory: rows are summed per energy bin (`ENERGY_BINS`, 0.02 log units), and
    the frames of the bin holding the 30th percentile are left out with it. Over a whole clip it is `normalize`'s
    mean to within the bin width (the 30-second window it replaced differed from it for most of a long input
    of several voices: RESULTS.md, streaming agreement, fifth round)."""

    def __init__(self, width: int) -> None:
        self.counts = np.zeros(len(ENERGY_BINS) + 1, np.float64)
        self.sums = np.zeros((len(ENERGY_BINS) + 1, width), np.float64)
        self.first: list[np.ndarray] = []  # the first rows themselves: `normalize` takes them all below 11 frames
        self.count = 0
        self._lo, self._hi = len(self.counts), -1  # the lowest and highest bins holding frames

    @staticmethod
    def bins(rows: np.ndarray) -> np.ndarray:
        """The energy bin of each row (its mean, as `row.mean()` gives it: one call for a batch of rows)."""
        return np.searchsorted(ENERGY_BINS, axis_mean(rows, 1).astype(np.float64))

    def add(self, row: np.ndarray, energy_bin: int | None = None) -> None:
        """Add one row (`energy_bin`: its bin from `bins`, computed here if not given)."""
        i = int(self.bins(row[None])[0]) if energy_bin is None else int(energy_bin)
        self.counts[i] += 1
        self.sums[i] += row
        self.count += 1
        self._lo, self._hi = min(self._lo, i), max(self._hi, i)
        if len(self.first) <= 10:
            self.first.append(row.astype(np.float64))

    def mean(self) -> tuple[np.ndarray, float]:
        """(the mean, how many frames it averages)."""
        n = self.count
        if n <= 10:
            return np.mean(self.first, axis=0), float(n)
        below = np.floor(0.3 * (n - 1)) + 1  # frames at or below the 30th percentile (as np.percentile places it)
        # the bin holding the percentile: left out, as `normalize` leaves out every frame equal to it (digital
        # silence). Only the bins from the lowest to the highest holding frames are summed: the others would add
        # exact zeros (the sums run bin after bin), and they are most of them.
        lo, hi = self._lo, self._hi + 1
        i = lo + int(np.searchsorted(np.cumsum(self.counts[lo:hi]), below))
        weight = self.counts[i + 1 : hi].sum()
        if weight == 0:
            return self.sums[lo:hi].sum(axis=0) / n, float(n)
        return self.sums[i + 1 : hi].sum(axis=0) / weight, float(weight)


class RunningMel:
    """80-band log-mel frames (as `features.log_mel`) as the samples arrive, and their running per-band mean.

    Frame t is centred at t * 10 ms and needs the samples up to t * HOP + N_FFT / 2 (16 ms later). The mean is
    `features.normalize`'s over every frame so far (`CumulativeMean`), blended with the prior mean
    (`PRIOR_FRAMES`), and frozen between refresh points: `mean_at(t)` is the one the stream used at t. The
    frames themselves are kept for the last HISTORY_S seconds. `prior` None: the shipped one, if any."""

    def __init__(self, buffer: SampleBuffer, prior: np.ndarray | None = None) -> None:
        self.buffer = buffer
        if prior is None and "mel_mean" in stream_priors():
            prior = np.asarray(stream_priors()["mel_mean"], np.float32)
        self.prior = prior
        size = int(HISTORY_S * SAMPLE_RATE / HOP)
        self.mel = Ring(size, N_MELS)
        self._sums = CumulativeMean(N_MELS)
        self._means = Ring(size // REFRESH + WARMUP + 2, N_MELS)  # mean snapshots, one per refresh point
        self._window = np.zeros(N_FFT, np.float32)
        off = (N_FFT - 400) // 2
        self._window[off : off + 400] = np.hanning(402)[1:-1]
        # float64 and C-ordered: the copy `power @ bank.T` made of the float32 filters at every call (same values)
        self._bank = np.ascontiguousarray(mel_filterbank().T, np.float64)
        self._frames_idx: dict[int, np.ndarray] = {}  # sample indices of n frames in a read, by n

    @property
    def count(self) -> int:
        return self.mel.count

    def available(self, n_samples: int) -> int:
        """How many frames the first `n_samples` samples complete (all of them once the stream has ended)."""
        if self.buffer.finished and n_samples >= self.buffer.end:
            return max(1, int(np.ceil(self.buffer.end / HOP)))
        return max(0, (n_samples - N_FFT // 2) // HOP + 1)

    def extend(self, n_frames: int) -> None:
        """Compute frames up to `n_frames` (their samples must have arrived)."""
        a = self.mel.count
        if n_frames <= a:
            return
        seg = self.buffer.read(a * HOP - N_FFT // 2, (n_frames - 1) * HOP + N_FFT // 2)
        idx = self._frame_indices(n_frames - a)
        power = np.abs(np.fft.rfft(seg[idx] * self._window, axis=1)) ** 2
        rows = np.log(power @ self._bank + 1e-6).astype(np.float32)
        for row, energy_bin in zip(rows, CumulativeMean.bins(rows)):
            self.mel.append(row)
            self._sums.add(row, energy_bin)
            t = self.mel.count - 1
            if t < WARMUP or t % REFRESH == 0:
                self._means.append(self._mean())

    def _frame_indices(self, n: int) -> np.ndarray:
        """(n, N_FFT) indices of n frames' samples in a read; the few small n of frame-by-frame calls are kept."""
        idx = self._frames_idx.get(n)
        if idx is None:
            idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
            if n <= 16:
                self._frames_idx[n] = idx
        return idx

    def _mean(self) -> np.ndarray:
        mean, n = self._sums.mean()
        if self.prior is None:
            return mean.astype(np.float32)
        return ((PRIOR_FRAMES * self.prior + n * mean) / (PRIOR_FRAMES + n)).astype(np.float32)

    def mean_at(self, t: int) -> np.ndarray:
        """The running mean as it was when frame t was computed (t < count)."""
        i = t if t < WARMUP else WARMUP + (t - WARMUP) // REFRESH
        return self._means.rows(i, i + 1)[0]

    def normalized(self, a: int, b: int, t: int) -> np.ndarray:
        """Frames [a, b) minus the mean as of frame t; frames before the stream are silence, as `log_mel` pads."""
        lo = max(a, 0)
        rows = self.mel.rows(lo, b)
        if lo > a:
            rows = np.concatenate([np.full((lo - a, N_MELS), rows.min() if len(rows) else -13.8, np.float32), rows])
        return rows - self.mean_at(t)


class RunningLevel:
    """A running 95th percentile of loudness (dB) over the last HISTORY_S seconds, never below LOUDNESS_FLOOR:
    the level a stream's speech reaches, which pauses and the mouth gate are measured against."""

    def __init__(self, rate: float) -> None:
        self.values = SortedWindow(max(1, int(HISTORY_S * rate)))

    def add(self, db: float) -> float:
        """Record one frame's level; the speech level including it."""
        self.values.add(db)
        return max(self.values.percentile(95), LOUDNESS_FLOOR)


def level_db(samples: np.ndarray) -> float:
    """RMS level in dB of one window (as `features.loudness`)."""
    if len(samples) == 0:
        return -100.0
    x = samples.astype(np.float64)
    return float(10 * np.log10(float(np.add.reduce(x * x)) / len(x) + 1e-10))  # np.mean's sum and division


_LOG_150 = float(np.log(150))  # the reference log pitch before the first voiced frames


def _clip(x: float, lo: float, hi: float) -> float:
    """`float(np.clip(x, lo, hi))` for one Python float, without numpy's per-call cost (NaN stays NaN, -0.0
    below lo = 0.0 gives lo, as numpy)."""
    return lo if x <= lo else hi if x >= hi else x


class RunningCues:
    """The 13 prosody cues of `features.prosody` for one 25 fps frame at a time, with running statistics
    (speech level, median voiced pitch, mel mean) in place of the clip's."""

    def __init__(self, buffer: SampleBuffer, mel: RunningMel, fps: float) -> None:
        self.buffer, self.mel, self.fps = buffer, mel, fps
        self.step = int(round(SAMPLE_RATE / fps))
        self.level = RunningLevel(fps)
        self.pitches = SortedWindow(int(HISTORY_S * fps))
        self.count = 0
        self._rel = 0.0

    def ready(self) -> bool:
        """Whether the next frame's samples have arrived (or the stream ended: then silence follows)."""
        return self.buffer.finished or self.buffer.end >= (self.count + 1) * self.step

    def next(self) -> np.ndarray:
        """(13,) cues of the next frame."""
        j = self.count
        seg = self.buffer.read(j * self.step, j * self.step + PITCH_WIN)
        # at 25 fps the pitch window is the frame itself
        frame = seg if self.step == PITCH_WIN else self.buffer.read(j * self.step, (j + 1) * self.step)
        db = level_db(frame)
        top = self.level.add(db)
        rel = _clip((db - top) / 20.0, -3.0, 0.5)
        active = _clip((db - (top - 30.0)) / 10.0, 0.0, 1.0)
        d_rel = _clip(rel - (self._rel if j else rel), -1.0, 1.0)
        self._rel = rel
        peak, ratio = pitch_peak(seg[None])
        voicing = _clip(float(ratio[0]), 0.0, 1.0) * active
        logf0 = float(np.log(SAMPLE_RATE / float(peak[0])))
        if voicing > VOICED:
            self.pitches.add(logf0)
        ref = self.pitches.median() if len(self.pitches) > 5 else _LOG_150
        pitch = _clip((logf0 - ref) / 0.3, -3.0, 3.0) if voicing > VOICED else 0.0
        t = int(round(j * 100.0 / self.fps))
        need = self.mel.available(self.buffer.end if self.buffer.finished else (j + 1) * self.step)
        self.mel.extend(need)
        t = min(t, self.mel.count - 1)
        row = self.mel.normalized(t, t + 1, t)[0]
        bands = axis_mean(row.reshape(8, N_MELS // 8), 1) / 5.0
        self.count += 1
        return np.concatenate([[rel, active, d_rel, voicing, pitch], bands]).astype(np.float32)
