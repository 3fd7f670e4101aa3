"""Head pose and blinks sampled from the learned motion model (`models/motion.py`).

One sampler, `HeadSteps`, serves both the offline path (`LearnedMotion.sample`, the whole clip at once) and
streaming (`motion/stream.py`, audio as it arrives): it runs at 25 fps (the model's training rate), one frame
of speech cues at a time, and everything it computes depends only on the audio before a fixed point of the
timeline. So the same speech and seed give the same head motion and blinks offline and streamed, whatever
the chunking. The price, offline, is what a stream cannot avoid:

- the cues use running statistics (speech level, median pitch, log-mel mean over the past, `audio/running.py`)
  in place of the clip's, which differ only in the first seconds;
- the pose prior reads the next chunk's cues (160 ms), so pose runs `POSE_LAG` frames (320 ms) behind the
  speech, which a nod can afford and a mouth cannot;
- the pose mean removed (the photo's own pose is the neutral) is the running mean of the pose so far
  (cumulative for the first `POSE_MEAN_S`, then over the last `POSE_MEAN_S`), not the clip's; it starts at
  the model's zero worth `POSE_PRIOR_FRAMES` frames, so that a short clip's mean does not swallow its own
  motion (RESULTS.md "Session 6, lead"), and the pose fades in over `POSE_FADE_FRAMES` after the lag;
- a blink starts closing at its onset frame, and the blink-rate scale is re-solved on the speech so far, at
  every frame of the first `RATE_EVERY`, then every `RATE_EVERY` frames.

Everything random comes from two torch generators seeded from the caller's numpy generator (pose, blinks),
so a `--seed` gives the same motion every time and different seeds give different motion. Pose is
interpolated to the output frame rate and blinks are events in seconds rendered at the output rate, so a
30 or 60 fps video gets the same motion.

Blink rate: the model's hazard decides *when* blinks happen (its speech term and its refractory term
after each blink); `--blink-rate` rescales the hazard (1 - (1 - h)^s) with s solved so that the expected
rate on the speech is the requested one, so the flag means what it says. The unscaled model blinks at the
rate stored in the weights' metadata (`blinks_per_min`, measured after training).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from talkinghead.audio.features import axis_mean
from talkinghead.audio.running import HISTORY_S, RunningCues, RunningMel, SampleBuffer
from talkinghead.models.motion import MotionModel
from talkinghead.types import HeadMotion
from talkinghead.weights import WeightsRef, load_model

FPS = 25.0
# lid closure over a blink: fast close (40 % of it), slower opening; the lid is more than half closed
# for OPEN_SHARE of the blink, so a blink whose closed span should be d lasts d / OPEN_SHARE in all
_CLOSE = 0.4
_OPEN_SHARE = 0.758
_REFRACTORY = 6  # frames (240 ms at 25 fps): no new blink starts sooner after one
POSE_LAG = 8  # model frames (320 ms at 25 fps) that head pose runs behind the speech
POSE_MEAN_S = 30.0  # the running pose mean: cumulative over the first POSE_MEAN_S, then this time constant
POSE_PRIOR_FRAMES = 125  # the running mean starts at the model's zero (training poses are clip-centred), worth this
POSE_FADE_FRAMES = 10  # after the lag the pose fades in from the photo's own pose over this many frames (0: none)
RATE_EVERY = 50  # 25 fps frames between re-solving the blink-rate scale
_AUDIO_PRESENT = np.ones(1, np.float32)  # the flag appended to the speech cues (training's "audio present")


class _GruStep:
    """`rnn(x, state)` of a one-layer, one-way, batch-first `nn.GRU`, through the op it calls (`torch.gru`) with
    the same weights and arguments, so the same values: `nn.GRU.forward` re-checks its weights and arguments at
    every call, which at one frame a call cost a third as much again as the step itself (23 vs 17 us)."""

    def __init__(self, rnn: torch.nn.GRU) -> None:
        if rnn.num_layers != 1 or rnn.bidirectional or not rnn.batch_first:
            raise ValueError("_GruStep takes a one-layer, one-way, batch-first GRU")
        self.rnn = rnn
        self.weights: list[torch.Tensor] = [w for layer in rnn.all_weights for w in layer]

    def __call__(self, x: torch.Tensor, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        rnn = self.rnn
        if state is None:
            state = torch.zeros(1, x.shape[0], rnn.hidden_size, dtype=x.dtype)
        out, state = torch.gru(x, state, self.weights, rnn.bias, 1, float(rnn.dropout), rnn.training, False, True)
        return out, state


def lid_profile(u: np.ndarray) -> np.ndarray:
    """Closure 0..1 at normalised time u in [0, 1] of a blink (0 outside)."""
    v = np.where(u < _CLOSE, u / _CLOSE, 1 - (u - _CLOSE) / (1 - _CLOSE))
    out = np.sin(0.5 * np.pi * np.clip(v, 0, 1)) ** 0.7
    return np.where((u >= 0) & (u <= 1), out, 0.0)


class LearnedMotion:
    """Loads the motion weights once; `sample` gives pose and lids for a speech clip."""

    def __init__(self, weights: WeightsRef = "motion") -> None:
        loaded = load_model("motion", weights)
        self.model = loaded.network(MotionModel)
        self.config = self.model.cfg
        self.natural_rate = float(loaded.weights.metadata.get("blinks_per_min", "nan"))  # unscaled rate, for reference

    @torch.inference_mode()
    def sample(
        self,
        speech16k: np.ndarray,
        n_frames: int,
        fps: float,
        rng: np.random.Generator,
        pose_scale: Any = 1.0,
        blinks_per_min: float = 17.0,
    ) -> HeadMotion:
        """Head pose and lid closure for `n_frames` frames at `fps` (conventions: `types.Motion`): `HeadSteps`
        over the whole clip, so the values are those a stream of the same speech and seed gets."""
        parts = list(self.pieces(speech16k, n_frames, fps, rng, pose_scale, blinks_per_min, max(n_frames, 1)))
        if not parts:
            return HeadMotion(np.zeros((0, 5), np.float32), np.zeros(0, np.float32))
        return HeadMotion(np.concatenate([p.pose for p in parts]), np.concatenate([p.lids for p in parts]))

    @torch.inference_mode()
    def pieces(
        self,
        speech16k: np.ndarray,
        n_frames: int,
        fps: float,
        rng: np.random.Generator,
        pose_scale: Any = 1.0,
        blinks_per_min: float = 17.0,
        size: int = 25,
    ) -> Iterator[HeadMotion]:
        """`sample` in consecutive pieces of `size` frames, each given as soon as it is drawn (the same values):
        the command line's motion process sends them while the first frames are rendered."""
        buffer = SampleBuffer()
        buffer.push(speech16k)
        steps = HeadSteps(self, RunningCues(buffer, RunningMel(buffer), FPS), rng, pose_scale, blinks_per_min)
        for a in range(0, n_frames, size):
            b = min(n_frames, a + size)
            pose = np.zeros((b - a, 5), np.float32)
            lids = np.zeros(b - a, np.float32)
            for k in range(a, b):
                t = k / fps
                if not steps.until(t):  # past the speech: silence follows, as when a stream ends
                    buffer.finished = True
                    steps.until(t)
                pose[k - a], lids[k - a] = steps.pose(t), steps.lid(t)
            yield HeadMotion(pose, lids)

    @torch.no_grad()
    def _blink_onsets(self, cues: torch.Tensor, gen: torch.Generator, per_min: float | None) -> np.ndarray:
        """Blink start times (s) on whole-clip cues (training's: `prosody` + the audio flag), drawn frame by
        frame from the learned hazard; `per_min` None = unscaled (training measures the natural rate with it)."""
        if per_min is not None and per_min <= 0:
            return np.zeros(0)
        n = cues.shape[1]
        u = torch.rand(n, generator=gen).numpy()
        start = int(FPS * (1.0 + 3.0 * float(torch.rand(1, generator=gen))))  # frames since an unseen blink
        speech = self.model.blink.speech_logit(cues)[0].numpy().astype(np.float64)
        table = self.model.blink.since_logit(torch.arange(0, 15 * FPS + 1) / FPS).numpy().astype(np.float64)
        scale = 1.0 if per_min is None else hazard_scale(speech, table, per_min)
        out = []
        since = start
        for t in range(n):
            h = 1.0 / (1.0 + np.exp(-(speech[t] + table[min(since, len(table) - 1)])))
            if since > _REFRACTORY and u[t] < 1.0 - (1.0 - h) ** scale:
                out.append(t / FPS)
                since = 0
            since += 1
        return np.asarray(out)


class HeadSteps:
    """Head pose and blinks at 25 fps, one frame of speech cues at a time (see the module's docstring).

    `until(t)` runs the model until the pose and lids of time t (s) are known (False: that needs cues whose
    audio has not arrived); then `pose(t)` and `lid(t)` read them. Times must not go back. Memory is flat:
    only the frames still to be read are kept."""

    def __init__(
        self, head: LearnedMotion, cues: RunningCues, rng: np.random.Generator, pose_scale: Any, blinks_per_min: float
    ) -> None:
        self.model, self.cues = head.model, cues
        self.pose_scale = np.asarray(pose_scale, np.float32)
        self.blinks_per_min = float(blinks_per_min)
        self._pose_gen = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
        self._blink_gen = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
        cfg = self.model.cfg
        self._chunk_rows: list[np.ndarray] = []
        self._prev_rows: np.ndarray | None = None  # cues of the chunk waiting for the next one
        self._z = torch.zeros(1, 1, cfg.z_dim)
        self._prior_state: torch.Tensor | None = None
        self._dec_state: torch.Tensor | None = None
        self._pose_std = self.model.pose_std.numpy()
        self._pose_mean = np.zeros(5, np.float32)
        self._pose_count = 0
        self._pose25: deque[np.ndarray] = deque([np.zeros(5, np.float32)] * POSE_LAG)
        self._pose_base = 0  # 25 fps frame index of _pose25[0]
        self._blink_state: torch.Tensor | None = None
        self._blink_rnn = _GruStep(self.model.blink.rnn)
        self._dec_rnn = _GruStep(self.model.pose.dec)
        self._logits: deque[float] = deque(maxlen=int(HISTORY_S * FPS))
        table = self.model.blink.since_logit(torch.arange(0, 15 * FPS + 1) / FPS)
        self._since_table = table.detach().numpy().astype(np.float64)
        # `hazards` of the logits in _logits, each row written at i % W and i % W + W (W = the window): the
        # window is one slice, and each row is computed once, not at every re-solving of the rate scale
        window = self._logits.maxlen or 1
        self._hazard_rows = np.zeros((2 * window, len(self._since_table)))
        self._logit_count = 0  # logits drawn so far
        self._hazard_count = 0  # of which rows were computed
        self._since = int(FPS * (1.0 + 3.0 * float(torch.rand(1, generator=self._blink_gen))))
        self._rate_scale = 1.0
        self._onsets: deque[tuple[float, float]] = deque()  # (start time s, closed span s)

    @torch.inference_mode()
    def until(self, t: float) -> bool:
        j_blink = int(np.floor(t * FPS + 1e-9))  # blink draws up to the 25 fps frame at t
        j_pose = j_blink + 1  # pose interpolated between frames j_blink and j_blink + 1
        while self.cues.count <= j_blink or self._pose_base + len(self._pose25) <= j_pose:
            if not self.cues.ready():
                return False
            self._step(self.cues.next())
        return True

    def pose(self, t: float) -> np.ndarray:
        """(5,) yaw, pitch, roll (deg), x, y shift at t, scaled by `pose_scale`."""
        x = t * FPS
        i = int(np.floor(x + 1e-9))
        f = x - i
        while self._pose_base < i - 2:  # older frames are never read again
            self._pose25.popleft()
            self._pose_base += 1
        p0, p1 = self._pose25[i - self._pose_base], self._pose25[i + 1 - self._pose_base]
        return (p0 * (1 - f) + p1 * f) * self.pose_scale

    def lid(self, t: float) -> float:
        """Lid closure at t: each blink starts closing at its onset frame."""
        while self._onsets and t > self._onsets[0][0] + self._onsets[0][1] / _OPEN_SHARE:
            self._onsets.popleft()
        out = 0.0
        for start, closed in self._onsets:
            total = closed / _OPEN_SHARE
            out = max(out, float(lid_profile(np.array([(t - start) / total]))[0]))
        return out

    def _step(self, cue: np.ndarray) -> None:
        j = self.cues.count - 1
        row = np.concatenate((cue, _AUDIO_PRESENT))
        self._blink_step(j, torch.from_numpy(row)[None, None])
        self._chunk_rows.append(row)
        if len(self._chunk_rows) < self.model.cfg.chunk:
            return
        rows, self._chunk_rows = np.stack(self._chunk_rows), []
        if self._prev_rows is not None:
            self._pose_chunk(self._prev_rows, rows)
        self._prev_rows = rows

    def _pose_chunk(self, rows: np.ndarray, next_rows: np.ndarray) -> None:
        """Draw the latent of one chunk (its cues and the next chunk's, as `MotionVAE.chunk_audio`), decode it."""
        vae = self.model.pose
        ac = torch.from_numpy(np.concatenate([axis_mean(rows, 0), axis_mean(next_rows, 0)]))[None, None]
        mu, logvar, self._prior_state = vae.prior_params(self._z, ac, self._prior_state)
        self._z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=self._pose_gen)
        zf = self._z.repeat_interleave(len(rows), dim=1)
        h, self._dec_state = self._dec_rnn(torch.cat([zf, torch.from_numpy(rows)[None]], -1), self._dec_state)
        pose = vae.dec_out(h)[0].numpy() * self._pose_std
        for p in pose:
            self._pose_count += 1
            alpha = max(1.0 / (self._pose_count + POSE_PRIOR_FRAMES), 1.0 / (POSE_MEAN_S * FPS))
            self._pose_mean = self._pose_mean + alpha * (p - self._pose_mean)
            u = min(1.0, self._pose_count / POSE_FADE_FRAMES) if POSE_FADE_FRAMES else 1.0
            if u < 1.0:
                self._pose25.append(((p - self._pose_mean) * u * u * (3 - 2 * u)).astype(np.float32))
            else:  # faded in: the factor is exactly 1
                self._pose25.append((p - self._pose_mean).astype(np.float32, copy=False))

    def _blink_step(self, j: int, x: torch.Tensor) -> None:
        blink = self.model.blink
        h, self._blink_state = self._blink_rnn(x, self._blink_state)
        logit = torch.nn.functional.linear(h, blink.out.weight, blink.out.bias).item()  # blink.out(h), one value
        self._logits.append(logit)
        self._logit_count += 1
        u = float(torch.rand(1, generator=self._blink_gen))
        if self.blinks_per_min <= 0:
            return
        if j < RATE_EVERY or j % RATE_EVERY == 0:  # every frame at first: one frame's logit is a poor guide
            self._rate_scale = self._solve_rate_scale()
        table = self._since_table
        hz = 1.0 / (1.0 + np.exp(-(logit + table[min(self._since, len(table) - 1)])))
        if self._since > _REFRACTORY and u < 1.0 - (1.0 - hz) ** self._rate_scale:
            q = self.model.blink_durations.numpy()
            pick = float(torch.rand(1, generator=self._blink_gen)) * (len(q) - 1)
            # real closed spans, kept inside 120-360 ms so that, counted in whole frames, they read as 100-400 ms
            closed = float(np.clip(np.interp(pick, np.arange(len(q)), q), 0.12, 0.36))
            self._onsets.append((j / FPS, closed))
            self._since = 0
        self._since += 1

    def _solve_rate_scale(self) -> float:
        """`hazard_scale` on the logits of the last HISTORY_S (the same value, from the rows kept)."""
        n = len(self._logits)
        window = len(self._hazard_rows) // 2
        if n >= 4000:  # hazard_scale would subsample the logits
            return hazard_scale(np.asarray(self._logits), self._since_table, self.blinks_per_min)
        new = min(self._logit_count - self._hazard_count, n)
        if new:
            at = np.arange(self._logit_count - new, self._logit_count) % window
            rows = hazards(np.asarray(list(self._logits)[n - new :]), self._since_table)
            self._hazard_rows[at] = rows
            self._hazard_rows[at + window] = rows
            self._hazard_count = self._logit_count
        start = (self._logit_count - n) % window
        return scale_for_hazard(self._hazard_rows[start : start + n].mean(0), self.blinks_per_min)


def hazard_scale(speech: np.ndarray, table: np.ndarray, per_min: float) -> float:
    """Exponent s for the per-frame hazard, 1 - (1 - h)^s, that gives `per_min` blinks a minute in
    expectation on this clip's speech: the mean gap of the renewal process, from its survival curve."""
    pick = speech[:: max(len(speech) // 2000, 1)]
    return scale_for_hazard(hazards(pick, table).mean(0), per_min)


def hazards(speech: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(len(speech), len(table)) per-frame blink hazard for each speech logit and each time since the last blink
    (an element's value does not depend on the others: `HeadSteps` computes rows as the logits come)."""
    return 1.0 / (1.0 + np.exp(-(speech[:, None] + table[None, :])))


def scale_for_hazard(h: np.ndarray, per_min: float) -> float:
    """`hazard_scale` from the mean hazard h over the speech frames, per time since the last blink (changed)."""
    h[: _REFRACTORY + 1] = 0.0
    keep = 1.0 - h

    def rate(s: float) -> float:
        p = 1.0 - keep**s
        surv = np.cumprod(1.0 - p)
        gap = 1.0 + surv[:-1].sum() + surv[-1] / max(p[-1], 1e-9)  # geometric tail past the table
        return 60.0 * FPS / gap

    lo, hi = -6.0, 6.0  # log s
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if rate(float(np.exp(mid))) < per_min else (lo, mid)
    return float(np.exp(0.5 * (lo + hi)))
