"""Motion from speech that arrives in chunks: the streaming counterpart of `Animator.motion`.

Rule: output frame k (time k / fps) is computed once, as soon as the audio up to k / fps + `lookahead` has
arrived, from that audio only; it is never revised. Each part keeps the offline computation and replaces what
looked at the whole clip by a running statistic (`audio/running.py`):

- mouth: the lips model on a window of log-mel around the frame (its receptive field, `LipsConfig.radius` and
  `delay`; the two temporal layers read `context` video frames each side), normalised with the running mel
  mean; what lies beyond the look-ahead is treated as the clip's end, as offline at the last frame. The
  loudness gate and the lip-gap spread rule (`MouthModel.gain`) use running levels and gaps.
- head pose: the motion VAE sampled chunk by chunk (its prior reads the next chunk's cues, so pose runs
  `POSE_LAG` model frames behind the speech, which a nod can afford and a mouth cannot); its mean is removed
  with a slow running average instead of the clip's mean.
- blinks: the learned hazard stepped frame by frame, its rate scale re-solved every `RATE_EVERY` frames.

Because every value depends only on the audio before a fixed point of the timeline, the frames do not depend on
how the audio was cut into chunks. Random draws come from two generators seeded from `opts.seed` (pose, blinks),
so a seed gives the same stream every time; they are drawn in another order than offline, so head motion and
blinks differ from `generate`'s for the same seed (the mouth does not use randomness).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch

from talkinghead.audio.features import HOP, N_FFT, SAMPLE_RATE, frame_positions
from talkinghead.audio.running import HISTORY_S, RunningCues, RunningLevel, RunningMel, SampleBuffer, level_db
from talkinghead.config import GenerateOptions
from talkinghead.errors import InputError
from talkinghead.motion.learned import _OPEN_SHARE, _REFRACTORY, FPS, LearnedMotion, hazard_scale, lid_profile
from talkinghead.motion.mouth import MouthModel, gate_from_loudness
from talkinghead.types import Motion

LOOKAHEAD_S = 0.15  # default: audio after a frame's time that the frame waits for (see RESULTS.md, streaming)
MIN_LOOKAHEAD_S = 0.04
POSE_LAG = 8  # model frames (320 ms at 25 fps) that head pose runs behind the speech
POSE_MEAN_S = 4.0  # time constant of the running pose mean that is removed (offline: the clip's mean)
RATE_EVERY = 50  # 25 fps frames between re-solving the blink-rate scale


class MotionStream:
    """Feed 16 kHz mono chunks with `push`, end with `finish`; each returns the new frames as one `Motion`
    (possibly empty). `style` is an avatar's `MotionStyle` (lip gain, pose scale, blink rate) or None."""

    def __init__(
        self,
        mouth: MouthModel,
        head: LearnedMotion,
        opts: GenerateOptions,
        style: Any = None,
        lookahead: float = LOOKAHEAD_S,
    ) -> None:
        if mouth.config.n_embed:
            raise InputError("Streaming needs a lips model that reads log-mel only; this one needs a speech embedding.")
        if not MIN_LOOKAHEAD_S <= lookahead <= 1.0:
            raise InputError(f"The look-ahead must be from {MIN_LOOKAHEAD_S} to 1 second, not {lookahead}.")
        if opts.pose_from:
            raise InputError("A driving video (pose_from) cannot be used while streaming.")
        self.mouth, self.head, self.fps, self.lookahead = mouth, head, float(opts.fps), lookahead
        self.buffer = SampleBuffer()
        self.mel = RunningMel(self.buffer)
        rng = np.random.default_rng(opts.seed)
        self._pose_gen = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
        self._blink_gen = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
        self.lip_scale = float(opts.lip_strength)
        pose_scale: Any = 0.0 if opts.still else opts.pose_scale
        blinks = opts.blinks_per_min
        if style is not None:  # as `Animator.motion`
            self.lip_scale *= style.lip_gain
            pose_scale = pose_scale * np.asarray(style.pose_scale, np.float32)
            blinks = style.blinks_per_min * opts.blinks_per_min / GenerateOptions.blinks_per_min
        self.pose_scale = np.asarray(pose_scale, np.float32)
        self.blinks_per_min = float(blinks)
        self.k = 0  # next output frame
        self.n_total: int | None = None  # frames in all, once the stream has ended
        # mouth gate: one level per output frame
        self._edges_step = SAMPLE_RATE / self.fps
        self._level = RunningLevel(self.fps)
        self._db: deque[tuple[float, float]] = deque()  # (level, speech level) of frames _db_base..
        self._db_base = 0
        self._gaps: deque[float] = deque(maxlen=int(HISTORY_S * self.fps))
        # head: cues at 25 fps, pose VAE by chunks, blink hazard by frames
        cfg = head.model.cfg
        self.cues = RunningCues(self.buffer, self.mel, FPS)
        self._chunk_rows: list[np.ndarray] = []
        self._prev_rows: np.ndarray | None = None  # cues of the chunk waiting for the next one
        self._z = torch.zeros(1, 1, cfg.z_dim)
        self._prior_state: torch.Tensor | None = None
        self._dec_state: torch.Tensor | None = None
        self._pose_std = head.model.pose_std.numpy()
        self._pose_mean: np.ndarray | None = None
        self._pose25: deque[np.ndarray] = deque([np.zeros(5, np.float32)] * POSE_LAG)
        self._pose_base = 0  # 25 fps frame index of _pose25[0]
        self._blink_state: torch.Tensor | None = None
        self._logits: deque[float] = deque(maxlen=int(HISTORY_S * FPS))
        table = head.model.blink.since_logit(torch.arange(0, 15 * FPS + 1) / FPS)
        self._since_table = table.detach().numpy().astype(np.float64)
        self._since = int(FPS * (1.0 + 3.0 * float(torch.rand(1, generator=self._blink_gen))))
        self._rate_scale = 1.0
        self._onsets: deque[tuple[float, float]] = deque()  # (start time s, closed span s)

    # ------------------------------------------------------------------ public

    def push(self, samples: np.ndarray) -> Motion:
        """Add a chunk; the frames it completes."""
        if self.buffer.finished:
            raise RuntimeError("MotionStream: push after finish")
        self.buffer.push(samples)
        return self._run()

    def finish(self) -> Motion:
        """No more audio: the remaining frames, up to the clip's length (as `generate` counts frames)."""
        self.buffer.finished = True
        self.n_total = max(1, int(round(self.buffer.end / SAMPLE_RATE * self.fps)), self.k)
        return self._run()

    @property
    def delay_s(self) -> float:
        """Audio after a frame's time that the frame waits for."""
        return max(self.lookahead, 1.0 / FPS)

    # ------------------------------------------------------------------ frames

    @torch.inference_mode()
    def _run(self) -> Motion:
        mouths, lids, poses = [], [], []
        while self.n_total is None or self.k < self.n_total:
            need = self._audio_end(self.k)
            if not self.buffer.finished and self.buffer.end < need:
                break
            t = self.k / self.fps
            if not self._head_until(t):
                break
            mouths.append(self._mouth(self.k, need))
            lids.append(self._lid(t))
            poses.append(self._pose(t))
            self.k += 1
        self._forget()
        n_points = len(self.mouth.geometry.indices)
        return Motion(
            mouth=np.asarray(mouths, np.float32).reshape(len(mouths), n_points, 2),
            lids=np.asarray(lids, np.float32).reshape(-1),
            pose=np.asarray(poses, np.float32).reshape(-1, 5),
            fps=self.fps,
        )

    def _audio_end(self, k: int) -> int:
        """Samples frame k's mouth may use."""
        n = int(round((k / self.fps + self.lookahead) * SAMPLE_RATE))
        return min(n, self.buffer.end) if self.buffer.finished else n

    def _forget(self) -> None:
        next_db = self._db_base + len(self._db)
        keep = min(self.mel.count * HOP, self.cues.count * self.cues.step, int(next_db * self._edges_step))
        self.buffer.forget_before(keep - N_FFT)
        while len(self._db) > 8 and self._db_base < self.k - 8:
            self._db.popleft()
            self._db_base += 1

    # ------------------------------------------------------------------ mouth

    def _mouth(self, k: int, n_samples: int) -> np.ndarray:
        cfg = self.mouth.config
        t_max = self.mel.available(n_samples) - 1
        self.mel.extend(t_max + 1)
        reach = 2 * cfg.context  # two temporal layers
        frames = np.arange(max(0, k - reach), k + reach + 1)
        pos = frame_positions(len(frames), self.fps, int(frames[0]))
        keep = (frames <= k) | (pos - cfg.delay <= t_max)
        if self.n_total is not None:
            keep &= frames < self.n_total
        frames, pos = frames[keep], pos[keep]
        m0 = max(0, int(pos[0]) - cfg.delay - cfg.radius)
        m1 = max(m0 + 1, min(t_max + 1, int(pos[-1]) - cfg.delay + cfg.radius + 1))
        mel = torch.from_numpy(np.ascontiguousarray(self.mel.normalized(m0, m1, max(t_max, 0)), np.float32))
        local = torch.from_numpy(pos - m0)[None]
        coef = self.mouth.net(mel[None], local)[0][int(np.flatnonzero(frames == k)[0])]
        out = self.mouth.offsets(coef[None])[0]
        gate = self._gate(k, n_samples)
        gap = float(self.mouth.lip_gaps(out[None])[0])
        if gate > 0.5:
            self._gaps.append(gap)
        gain = self.mouth.gain(np.asarray(self._gaps, np.float32))
        return out * (gain * gate * self.lip_scale)

    def _gate(self, k: int, n_samples: int) -> float:
        """The mouth gate of frame k (`mouth.speech_gate`) from the levels of frames the first n_samples cover."""
        end = self.buffer.end if self.buffer.finished else n_samples
        last = self.n_total - 1 if self.n_total is not None else k + 3
        while self._db_base + len(self._db) <= min(k + 3, last):
            j = self._db_base + len(self._db)
            a, b = int(j * self._edges_step), int((j + 1) * self._edges_step)
            if b > end and not (self.buffer.finished and a < end):
                break
            db = level_db(self.buffer.read(a, min(b, end))) if a < end else -100.0
            self._db.append((db, self._level.add(db)))
        lo = max(0, k - 3)
        hi = min(k + 3, self._db_base + len(self._db) - 1)
        if hi < lo:
            return 0.0
        rows = [self._db[j - self._db_base] for j in range(lo, hi + 1)]
        gate = gate_from_loudness(np.array([r[0] for r in rows], np.float32), rows[-1][1])
        return float(gate[min(k, hi) - lo])

    # ------------------------------------------------------------------ head

    def _head_until(self, t: float) -> bool:
        """Run the head models until the pose and blinks of time t are known; False if that needs more audio."""
        j_blink = int(np.floor(t * FPS + 1e-9))  # blink draws up to the 25 fps frame at t
        j_pose = j_blink + 1  # pose interpolated between frames j_blink and j_blink + 1
        while self.cues.count <= j_blink or self._pose_base + len(self._pose25) <= j_pose:
            if not self.cues.ready():
                return False
            self._head_step(self.cues.next())
        return True

    def _head_step(self, cue: np.ndarray) -> None:
        j = self.cues.count - 1
        row = np.append(cue, np.float32(1.0))  # + audio present
        x = torch.from_numpy(row)[None, None]
        self._blink_step(j, x)
        self._chunk_rows.append(row)
        chunk = self.head.model.cfg.chunk
        if len(self._chunk_rows) < chunk:
            return
        rows, self._chunk_rows = np.stack(self._chunk_rows), []
        if self._prev_rows is not None:
            self._pose_chunk(self._prev_rows, rows)
        self._prev_rows = rows

    def _pose_chunk(self, rows: np.ndarray, next_rows: np.ndarray) -> None:
        """Draw the latent of one chunk (its cues and the next chunk's, as `MotionVAE.chunk_audio`), decode it."""
        vae = self.head.model.pose
        ac = torch.from_numpy(np.concatenate([rows.mean(0), next_rows.mean(0)]))[None, None]
        mu, logvar, self._prior_state = vae.prior_params(self._z, ac, self._prior_state)
        self._z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=self._pose_gen)
        zf = self._z.repeat_interleave(len(rows), dim=1)
        h, self._dec_state = vae.dec(torch.cat([zf, torch.from_numpy(rows)[None]], -1), self._dec_state)
        pose = vae.dec_out(h)[0].numpy() * self._pose_std
        alpha = 1.0 / (POSE_MEAN_S * FPS)
        for p in pose:
            self._pose_mean = p.copy() if self._pose_mean is None else self._pose_mean + alpha * (p - self._pose_mean)
            self._pose25.append((p - self._pose_mean).astype(np.float32))

    def _pose(self, t: float) -> np.ndarray:
        x = t * FPS
        i = int(np.floor(x + 1e-9))
        f = x - i
        while self._pose_base < i - 2:  # older frames are never read again
            self._pose25.popleft()
            self._pose_base += 1
        p0, p1 = self._pose25[i - self._pose_base], self._pose25[i + 1 - self._pose_base]
        return (p0 * (1 - f) + p1 * f) * self.pose_scale

    def _blink_step(self, j: int, x: torch.Tensor) -> None:
        blink = self.head.model.blink
        h, self._blink_state = blink.rnn(x, self._blink_state)
        logit = float(blink.out(h)[0, 0, 0])
        self._logits.append(logit)
        u = float(torch.rand(1, generator=self._blink_gen))
        if self.blinks_per_min <= 0:
            return
        if j % RATE_EVERY == 0:
            self._rate_scale = hazard_scale(np.asarray(self._logits), self._since_table, self.blinks_per_min)
        table = self._since_table
        hz = 1.0 / (1.0 + np.exp(-(logit + table[min(self._since, len(table) - 1)])))
        if self._since > _REFRACTORY and u < 1.0 - (1.0 - hz) ** self._rate_scale:
            q = self.head.model.blink_durations.numpy()
            pick = float(torch.rand(1, generator=self._blink_gen)) * (len(q) - 1)
            closed = float(np.clip(np.interp(pick, np.arange(len(q)), q), 0.12, 0.36))
            self._onsets.append((j / FPS, closed))
            self._since = 0
        self._since += 1

    def _lid(self, t: float) -> float:
        """Lid closure at t: each blink starts closing at its onset (offline: a little before it, which a
        stream would have to wait for)."""
        while self._onsets and t > self._onsets[0][0] + self._onsets[0][1] / _OPEN_SHARE:
            self._onsets.popleft()
        out = 0.0
        for start, closed in self._onsets:
            total = closed / _OPEN_SHARE
            out = max(out, float(lid_profile(np.array([(t - start) / total]))[0]))
        return out
