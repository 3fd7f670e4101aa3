"""Motion from speech that arrives in chunks: the streaming counterpart of `Animator.motion`.

Rule: output frame k (time k / fps) is computed once, as soon as the audio up to k / fps + `lookahead` has
arrived, from that audio only; it is never revised. Each part keeps the offline computation and replaces what
looked at the whole clip by a running statistic (`audio/running.py`):

- mouth: the lips model on a window of log-mel around the frame (its receptive field, `LipsConfig.radius` and
  `delay`; the two temporal layers read `context` video frames each side), normalised with the running mel
  mean; what lies beyond the look-ahead is treated as the clip's end, as offline at the last frame. The
  loudness gate and the lip-gap spread rule (`MouthModel.gain`) use running levels and gaps. The mel mean and
  the lip-gap spread are cumulative (all the audio so far, in flat memory), so over a long input they converge to
  the whole input's that `generate` uses; a 30 s window differed from it for most of a multi-voice programme. They
  start from corpus-wide priors (`stream_priors.json`, `scripts/stream_priors.py`) that
  the stream's own values outweigh as they come (`PRIOR_FRAMES` mel frames, `GAP_PRIOR_FRAMES` speech frames):
  without them, the statistics of the first second or two, taken alone, moved the lips away from offline's.
- head pose and blinks: `motion/learned.py`'s step-by-step sampler (`HeadSteps`), the very one the offline
  path runs, fed the same running cues: pose runs `POSE_LAG` model frames behind the speech (its prior reads the
  next chunk's cues), blinks are drawn frame by frame.

Because every value depends only on the audio before a fixed point of the timeline, the frames do not depend on
how the audio was cut into chunks. Random draws (pose, blinks) come from two generators seeded from `opts.seed`
in the same order as offline, so a seed gives the same head motion and blinks as `generate` (only the mouth,
which uses no randomness, differs, by the running statistics and the look-ahead).
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import Any

import numpy as np
import torch

from talkinghead.audio.features import HOP, N_FFT, SAMPLE_RATE, frame_positions
from talkinghead.audio.running import (
    RunningCues,
    RunningLevel,
    RunningMel,
    SampleBuffer,
    level_db,
    stream_priors,
)
from talkinghead.config import GenerateOptions
from talkinghead.errors import InputError
from talkinghead.motion.learned import FPS, HeadSteps, LearnedMotion
from talkinghead.motion.mouth import MouthModel, gate_from_loudness, spread_gain
from talkinghead.types import Motion

LOOKAHEAD_S = 0.15  # default: audio after a frame's time that the frame waits for (see RESULTS.md, streaming)
MIN_LOOKAHEAD_S = 0.04
GAP_PRIOR_FRAMES = 25  # weight of the prior lip-gap spread, in speech frames (RESULTS.md, streaming, third round)


def lips_fingerprint(mouth: MouthModel) -> str:
    """Identifies a lips model's output scale (its PCA scales and gain rule), which the gap prior belongs to."""
    h = hashlib.sha256(np.ascontiguousarray(mouth.std.numpy(), np.float32).tobytes())
    h.update(f"{mouth.spread:.6g} {mouth.amplitude:.6g}".encode())
    return h.hexdigest()[:16]


def _gap_prior(mouth: MouthModel) -> float | None:
    priors = stream_priors()
    if not mouth.spread or priors.get("lips_fingerprint") != lips_fingerprint(mouth):
        return None  # another lips model: its own running spread alone, as before the priors
    return float(priors["gap_std"])


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
        self.lip_scale = float(opts.lip_strength)
        pose_scale: Any = 0.0 if opts.still else opts.pose_scale
        blinks = opts.blinks_per_min
        if style is not None:  # as `Animator.motion`
            self.lip_scale *= style.lip_gain
            pose_scale = pose_scale * np.asarray(style.pose_scale, np.float32)
            blinks = style.blinks_per_min * opts.blinks_per_min / GenerateOptions.blinks_per_min
        self.k = 0  # next output frame
        self.n_total: int | None = None  # frames in all, once the stream has ended
        # mouth gate: one level per output frame
        self._edges_step = SAMPLE_RATE / self.fps
        self._level = RunningLevel(self.fps)
        self._db: deque[tuple[float, float]] = deque()  # (level, speech level) of frames _db_base..
        self._db_base = 0
        self._gap_sums = np.zeros(3)  # speech frames so far: count, sum and sum of squares of their lip gaps
        self._gap_prior = _gap_prior(mouth)
        # head: cues at 25 fps, the offline sampler step by step (same generators, same order)
        self.cues = RunningCues(self.buffer, self.mel, FPS)
        self.steps = HeadSteps(head, self.cues, np.random.default_rng(opts.seed), pose_scale, blinks)

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
            if not self.steps.until(t):
                break
            mouths.append(self._mouth(self.k, need))
            lids.append(self.steps.lid(t))
            poses.append(self.steps.pose(t))
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
            self._gap_sums += (1.0, gap, gap * gap)
        return out * (self._gain() * gate * self.lip_scale)

    def _gain(self) -> float:
        """`MouthModel.gain` on all the speech frames so far (cumulative, as `generate` takes the whole clip's),
        their spread blended with the prior's."""
        m, total, squares = self._gap_sums
        var = max(squares / m - (total / m) ** 2, 0.0) if m else 0.0
        if self._gap_prior is None:
            return self.mouth.gain_for(float(np.sqrt(var)), int(m))
        var = (GAP_PRIOR_FRAMES * self._gap_prior**2 + m * var) / (GAP_PRIOR_FRAMES + m)
        return spread_gain(float(np.sqrt(var)), self.mouth.spread, self.mouth.amplitude)

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
