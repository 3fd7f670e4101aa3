"""The running cues and the head sampler are computed with shortcuts (a sorted window for the running percentile
and median, rows cached between calls, torch's GRU op called directly...) that must give bit for bit the values
of the straightforward computation: photo mode and streaming share this code, and a seed gives the same motion
whichever version runs. Each shortcut against numpy's own function, then the whole sampler and a stream against
the straightforward code (kept here as the reference)."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest
import torch
from speech import SENTENCES, speech_with_pause

from talkinghead.audio import running
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
from talkinghead.audio.running import ENERGY_BINS, LOUDNESS_FLOOR, CumulativeMean, RunningMel, _clip, level_db
from talkinghead.audio.sorted_window import SortedWindow
from talkinghead.config import GenerateOptions
from talkinghead.motion import learned
from talkinghead.motion.learned import LearnedMotion, hazard_scale


def _same(a: float, b: float) -> bool:
    return (a == b and math.copysign(1, a) == math.copysign(1, b)) or (a != a and b != b)


@pytest.mark.parametrize("kind", ["levels", "ties", "infinite", "pitch"])
def test_sorted_window_is_numpys_percentile_and_median(kind):
    rng = np.random.default_rng(len(kind))
    window = SortedWindow(int(rng.integers(40, 200)))
    for k in range(500):
        if kind == "levels":
            x = float(rng.normal(-30, 15))
        elif kind == "ties":  # digital silence (-100 dB), the floor and a few repeated levels
            x = float(rng.choice([-100.0, -45.0, -20.5, 0.0, 3.25]))
        elif kind == "infinite":
            x = float(rng.choice([-100.0, float(rng.normal(-20, 5)), -math.inf, math.inf]))
            x = math.nan if k in (100, 101) else x  # NaN makes numpy's answer NaN while it is in the window
        else:
            x = float(np.log(SAMPLE_RATE / rng.integers(40, 320)))
        window.add(x)
        values = np.fromiter(window.values, np.float64)
        with np.errstate(invalid="ignore"):
            for q in (95, 50, 30, 99.9):
                assert _same(window.percentile(q), float(np.percentile(values, q))), (k, q)
            assert _same(window.median(), float(np.median(values))), k
    assert len(window) == window.values.maxlen


def test_scalar_shortcuts_are_numpys():
    for lo, hi in [(-3.0, 0.5), (0.0, 1.0), (-1.0, 1.0), (-3.0, 3.0)]:
        for x in [-0.0, 0.0, math.nan, math.inf, -math.inf, 5.0, -5.0, lo, hi, 0.25, -1e-300]:
            assert _same(_clip(x, lo, hi), float(np.clip(x, lo, hi))), (x, lo, hi)
    rng = np.random.default_rng(0)
    for n in (1, 7, 640):
        x = (rng.normal(0, 0.1, n) * rng.lognormal(0, 3)).astype(np.float32)
        assert level_db(x) == float(10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-10))
    assert level_db(np.zeros(640, np.float32)) == -100.0


def test_axis_mean_is_numpys_mean():
    rng = np.random.default_rng(7)
    for shape, axis, keepdims in [
        ((1, 640), 1, True),
        ((4, 80), 1, False),
        ((8, 10), 1, False),
        ((4, 14), 0, False),
        ((300, 640), 1, True),
        ((3, 5, 7), 2, False),
    ]:
        for dtype in (np.float32, np.float64):
            a = (rng.normal(0, 1, shape) * rng.lognormal(0, 3, shape)).astype(dtype)
            got, ref = axis_mean(a, axis, keepdims), a.mean(axis=axis, keepdims=keepdims)
            assert got.dtype == ref.dtype and got.shape == ref.shape and np.array_equal(got, ref)


class _ReferenceMean:
    """`CumulativeMean` as first written: each row's bin from its own mean, every bin summed, empty ones included."""

    def __init__(self) -> None:
        self.counts = np.zeros(len(ENERGY_BINS) + 1)
        self.sums = np.zeros((len(ENERGY_BINS) + 1, N_MELS))
        self.first: list[np.ndarray] = []

    def add(self, row: np.ndarray) -> None:
        i = int(np.searchsorted(ENERGY_BINS, float(row.mean())))
        self.counts[i] += 1
        self.sums[i] += row
        if len(self.first) <= 10:
            self.first.append(row.astype(np.float64))

    def mean(self) -> tuple[np.ndarray, float]:
        n = int(self.counts.sum())
        if n <= 10:
            return np.mean(self.first, axis=0), float(n)
        i = int(np.searchsorted(np.cumsum(self.counts), np.floor(0.3 * (n - 1)) + 1))
        weight = self.counts[i + 1 :].sum()
        if weight == 0:
            return self.sums.sum(axis=0) / n, float(n)
        return self.sums[i + 1 :].sum(axis=0) / weight, float(weight)


def test_cumulative_mean_sums_only_occupied_bins_to_the_same_value():
    rng = np.random.default_rng(3)
    for trial in range(6):
        mean, reference = CumulativeMean(N_MELS), _ReferenceMean()
        rows: list[np.ndarray] = []
        for k in range(int(rng.integers(5, 400))):
            if trial % 3 == 0 and k % 4 == 0:  # digital silence: many frames in one bin
                row = np.full(N_MELS, np.log(1e-6), np.float32)
            else:
                row = rng.normal(rng.choice([-9.0, -5.0, -2.0]), rng.choice([0.2, 2.0]), N_MELS).astype(np.float32)
            rows.append(row)
            energy_bin = int(CumulativeMean.bins(row[None])[0]) if k % 2 else None
            mean.add(row, energy_bin)
            reference.add(row)
            if k % 7 == 0 or trial == 5:
                got, ref = mean.mean(), reference.mean()
                assert got[1] == ref[1] and np.array_equal(got[0], ref[0]), (trial, k)
        batch = np.stack(rows)
        expected = [int(np.searchsorted(ENERGY_BINS, float(r.mean()))) for r in rows]
        assert CumulativeMean.bins(batch).tolist() == expected


def test_mel_product_is_the_one_numpy_made_of_the_float32_filters():
    bank = RunningMel(running.SampleBuffer())._bank
    rng = np.random.default_rng(4)
    for n in (1, 4, 5, 37):
        power = np.abs(rng.normal(0, 1, (n, N_FFT // 2 + 1)) * rng.lognormal(0, 4, (n, 1))) ** 2
        assert np.array_equal(power @ bank, power @ mel_filterbank().T)


# ------------------------------------------------------------------ the straightforward code, as the reference


def _reference_level_add(self, db: float) -> float:
    values = self.__dict__.setdefault("reference_values", deque(maxlen=self.values.values.maxlen))
    values.append(db)
    return max(float(np.percentile(np.fromiter(values, np.float64), 95)), LOUDNESS_FLOOR)


def _reference_rows(self, a: int, b: int) -> np.ndarray:
    return self.data[np.arange(a, b) % len(self.data)]


def _reference_extend(self, n_frames: int) -> None:
    a = self.mel.count
    if n_frames <= a:
        return
    seg = self.buffer.read(a * HOP - N_FFT // 2, (n_frames - 1) * HOP + N_FFT // 2)
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n_frames - a)[:, None]
    power = np.abs(np.fft.rfft(seg[idx] * self._window, axis=1)) ** 2
    rows = np.log(power @ mel_filterbank().T + 1e-6).astype(np.float32)
    sums = self.__dict__.setdefault("reference_mean", _ReferenceMean())
    for row in rows:
        self.mel.append(row)
        sums.add(row)
        t = self.mel.count - 1
        if t < running.WARMUP or t % running.REFRESH == 0:
            mean, n = sums.mean()
            if self.prior is not None:
                mean = (running.PRIOR_FRAMES * self.prior + n * mean) / (running.PRIOR_FRAMES + n)
            self._means.append(mean.astype(np.float32))


def _reference_next(self) -> np.ndarray:
    pitches = self.__dict__.setdefault("reference_pitches", deque(maxlen=self.pitches.values.maxlen))
    j = self.count
    seg = self.buffer.read(j * self.step, j * self.step + PITCH_WIN)
    x = self.buffer.read(j * self.step, (j + 1) * self.step).astype(np.float64)
    db = float(10 * np.log10(np.mean(x * x) + 1e-10)) if len(x) else -100.0
    top = self.level.add(db)
    rel = float(np.clip((db - top) / 20.0, -3.0, 0.5))
    active = float(np.clip((db - (top - 30.0)) / 10.0, 0.0, 1.0))
    d_rel = float(np.clip(rel - (self._rel if j else rel), -1.0, 1.0))
    self._rel = rel
    peak, ratio = pitch_peak(seg[None])
    voicing = float(np.clip(ratio[0], 0.0, 1.0)) * active
    logf0 = float(np.log(SAMPLE_RATE / float(peak[0])))
    if voicing > VOICED:
        pitches.append(logf0)
    ref = float(np.median(np.fromiter(pitches, np.float64))) if len(pitches) > 5 else float(np.log(150))
    pitch = float(np.clip((logf0 - ref) / 0.3, -3, 3)) if voicing > VOICED else 0.0
    t = int(round(j * 100.0 / self.fps))
    need = self.mel.available(self.buffer.end if self.buffer.finished else (j + 1) * self.step)
    self.mel.extend(need)
    t = min(t, self.mel.count - 1)
    row = self.mel.normalized(t, t + 1, t)[0]
    bands = row.reshape(8, N_MELS // 8).mean(axis=1) / 5.0
    self.count += 1
    return np.concatenate([[rel, active, d_rel, voicing, pitch], bands]).astype(np.float32)


def _reference_pose_chunk(self, rows: np.ndarray, next_rows: np.ndarray) -> None:
    vae = self.model.pose
    ac = torch.from_numpy(np.concatenate([rows.mean(0), next_rows.mean(0)]))[None, None]
    mu, logvar, self._prior_state = vae.prior_params(self._z, ac, self._prior_state)
    self._z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=self._pose_gen)
    zf = self._z.repeat_interleave(len(rows), dim=1)
    h, self._dec_state = vae.dec(torch.cat([zf, torch.from_numpy(rows)[None]], -1), self._dec_state)
    pose = vae.dec_out(h)[0].numpy() * self._pose_std
    for p in pose:
        self._pose_count += 1
        alpha = max(1.0 / (self._pose_count + learned.POSE_PRIOR_FRAMES), 1.0 / (learned.POSE_MEAN_S * learned.FPS))
        self._pose_mean = self._pose_mean + alpha * (p - self._pose_mean)
        u = min(1.0, self._pose_count / learned.POSE_FADE_FRAMES) if learned.POSE_FADE_FRAMES else 1.0
        self._pose25.append(((p - self._pose_mean) * u * u * (3 - 2 * u)).astype(np.float32))


def _reference_blink_step(self, j: int, x: torch.Tensor) -> None:
    blink = self.model.blink
    h, self._blink_state = blink.rnn(x, self._blink_state)
    logit = float(blink.out(h)[0, 0, 0])
    self._logits.append(logit)
    u = float(torch.rand(1, generator=self._blink_gen))
    if self.blinks_per_min <= 0:
        return
    if j < learned.RATE_EVERY or j % learned.RATE_EVERY == 0:
        self._rate_scale = hazard_scale(np.asarray(self._logits), self._since_table, self.blinks_per_min)
    table = self._since_table
    hz = 1.0 / (1.0 + np.exp(-(logit + table[min(self._since, len(table) - 1)])))
    if self._since > learned._REFRACTORY and u < 1.0 - (1.0 - hz) ** self._rate_scale:
        q = self.model.blink_durations.numpy()
        pick = float(torch.rand(1, generator=self._blink_gen)) * (len(q) - 1)
        closed = float(np.clip(np.interp(pick, np.arange(len(q)), q), 0.12, 0.36))
        self._onsets.append((j / learned.FPS, closed))
        self._since = 0
    self._since += 1


def _use_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(running.RunningLevel, "add", _reference_level_add)
    monkeypatch.setattr(running.Ring, "rows", _reference_rows)
    monkeypatch.setattr(running.RunningMel, "extend", _reference_extend)
    monkeypatch.setattr(running.RunningCues, "next", _reference_next)
    monkeypatch.setattr(learned.HeadSteps, "_pose_chunk", _reference_pose_chunk)
    monkeypatch.setattr(learned.HeadSteps, "_blink_step", _reference_blink_step)


@pytest.fixture(scope="module")
def speech_36s() -> np.ndarray:
    """36 s (past the 30-second windows) of speech with pauses, a stretch of digital silence and a quiet one."""
    samples, _ = speech_with_pause(SENTENCES["en"], "en", pause_s=0.6)
    tiled = np.tile(samples, int(np.ceil(34 * SAMPLE_RATE / len(samples))))[: 34 * SAMPLE_RATE]
    quiet = 1e-4 * tiled[:SAMPLE_RATE]
    return np.concatenate(
        [tiled[: 20 * SAMPLE_RATE], np.zeros(SAMPLE_RATE, np.float32), quiet, tiled[20 * SAMPLE_RATE :]]
    )


def _head(model: LearnedMotion, speech: np.ndarray, opts: GenerateOptions) -> tuple[np.ndarray, np.ndarray]:
    n = int(round(len(speech) / SAMPLE_RATE * opts.fps))
    rng = np.random.default_rng(opts.seed)
    parts = list(model.pieces(speech, n, opts.fps, rng, opts.pose_scale, opts.blinks_per_min))
    return np.concatenate([p.pose for p in parts]), np.concatenate([p.lids for p in parts])


def test_head_motion_is_the_straightforward_codes(speech_36s, monkeypatch):
    model = LearnedMotion()
    options = [GenerateOptions(seed=0), GenerateOptions(seed=3, fps=30.0, blinks_per_min=40.0)]
    fast = [_head(model, speech_36s, o) for o in options]
    assert (fast[0][1] > 0.5).any()  # blinks were drawn
    with monkeypatch.context() as patch:
        _use_reference(patch)
        reference = [_head(model, speech_36s, o) for o in options]
    for (pose, lids), (ref_pose, ref_lids) in zip(fast, reference):
        assert np.array_equal(pose, ref_pose) and np.array_equal(lids, ref_lids)


def test_stream_in_odd_chunks_is_the_straightforward_codes(animator, speech_36s, monkeypatch):
    from talkinghead.motion.stream import MotionStream

    mouth, head = animator.mouth, animator.head
    speech = speech_36s[39 * SAMPLE_RATE // 2 : 47 * SAMPLE_RATE // 2]  # speech, silence, the quiet stretch, speech

    def stream() -> list[np.ndarray]:
        motion = MotionStream(mouth, head, GenerateOptions(seed=1))
        sizes, parts, i = np.random.default_rng(5).integers(1, 5000, 200), [], 0
        for size in sizes:
            if i >= len(speech):
                break
            parts.append(motion.push(speech[i : i + size]))
            i += size
        parts.append(motion.finish())
        return [np.concatenate([getattr(p, k) for p in parts]) for k in ("mouth", "lids", "pose")]

    fast = stream()
    with monkeypatch.context() as patch:
        _use_reference(patch)
        reference = stream()
    assert len(fast[1]) == 100
    for got, ref in zip(fast, reference):
        assert np.array_equal(got, ref)
