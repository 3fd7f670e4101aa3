"""Head pose and blinks sampled from the learned motion model (`models/motion.py`).

Everything random comes from one torch generator seeded from the caller's numpy generator, so a
`--seed` gives the same motion every time and different seeds give different motion. The model runs at
25 fps (its training rate); pose is interpolated to the output frame rate and blinks are drawn as
events in seconds and rendered at the output rate, so a 30 or 60 fps video gets the same motion.

Blink rate: the model's hazard decides *when* blinks happen (its speech term and its refractory term
after each blink); `--blink-rate` rescales the hazard (1 - (1 - h)^s) with s solved so that the expected
rate on this clip's speech is the requested one, so the flag means what it says. The unscaled model
blinks at the rate stored in the weights' metadata (`blinks_per_min`, measured after training).
"""

from __future__ import annotations

import numpy as np
import torch

from talkinghead.audio.features import prosody
from talkinghead.models.motion import MotionModel
from talkinghead.motion.resample import at_rate
from talkinghead.types import HeadMotion
from talkinghead.weights import WeightsRef, load_model

FPS = 25.0
# lid closure over a blink: fast close (40 % of it), slower opening; the lid is more than half closed
# for OPEN_SHARE of the blink, so a blink whose closed span should be d lasts d / OPEN_SHARE in all
_CLOSE = 0.4
_OPEN_SHARE = 0.758
_REFRACTORY = 6  # frames (240 ms at 25 fps): no new blink starts sooner after one


def speech_cues(speech16k: np.ndarray, n_frames: int) -> np.ndarray:
    """(n_frames, 14) model input at 25 fps: prosody cues plus the audio-present flag."""
    cues = prosody(speech16k, n_frames, FPS)
    return np.column_stack([cues, np.ones(n_frames, np.float32)]).astype(np.float32)


def lid_profile(u: np.ndarray) -> np.ndarray:
    """Closure 0..1 at normalised time u in [0, 1] of a blink (0 outside)."""
    v = np.where(u < _CLOSE, u / _CLOSE, 1 - (u - _CLOSE) / (1 - _CLOSE))
    out = np.sin(0.5 * np.pi * np.clip(v, 0, 1)) ** 0.7
    return np.where((u >= 0) & (u <= 1), out, 0.0)


def render_blinks(onsets_s: np.ndarray, closed_s: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """(n_frames,) lid closure from blink start times and closed-eye spans, both in seconds."""
    t = np.arange(n_frames) / fps
    out = np.zeros(n_frames, np.float64)
    for t0, d in zip(onsets_s, closed_s):
        total = d / _OPEN_SHARE
        start = t0 - (_CLOSE * 0.242) * total - 0.01  # half-closed just before the onset frame
        out = np.maximum(out, lid_profile((t - start) / total))
    return out.astype(np.float32)


class LearnedMotion:
    """Loads the motion weights once; `sample` gives pose and lids for a speech clip."""

    def __init__(self, weights: WeightsRef = "motion") -> None:
        loaded = load_model("motion", weights)
        self.model = loaded.network(MotionModel)
        self.config = self.model.cfg
        self.natural_rate = float(loaded.weights.metadata.get("blinks_per_min", "nan"))  # unscaled rate, for reference

    @torch.no_grad()
    def sample(
        self,
        speech16k: np.ndarray,
        n_frames: int,
        fps: float,
        rng: np.random.Generator,
        pose_scale: float = 1.0,
        blinks_per_min: float = 17.0,
    ) -> HeadMotion:
        """Head pose and lid closure for `n_frames` frames at `fps` (conventions: `types.Motion`)."""
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
        if n_frames == 0:
            return HeadMotion(np.zeros((0, 5), np.float32), np.zeros(0, np.float32))
        duration = n_frames / fps
        chunk = self.config.chunk
        n25 = int(np.ceil(duration * FPS)) + 1
        n25 = ((n25 + chunk - 1) // chunk) * chunk
        cues = torch.from_numpy(speech_cues(speech16k, n25))[None]
        pose25 = self.model.pose.sample(cues, gen)[0].numpy() * self.model.pose_std.numpy()
        pose25 -= pose25.mean(0)  # the photo's own pose is the neutral
        pose = at_rate(pose25, FPS, np.arange(n_frames) / fps) * pose_scale
        onsets = self._blink_onsets(cues, gen, blinks_per_min)
        q = self.model.blink_durations.numpy()
        picks = torch.rand(len(onsets), generator=gen).numpy() * (len(q) - 1)
        # real closed spans, kept inside 120-360 ms so that, counted in whole frames, they read as 100-400 ms
        closed = np.clip(np.interp(picks, np.arange(len(q)), q), 0.12, 0.36)
        lids = render_blinks(onsets, closed, n_frames, fps)
        return HeadMotion(pose.astype(np.float32), lids)

    @torch.no_grad()
    def _blink_onsets(self, cues: torch.Tensor, gen: torch.Generator, per_min: float | None) -> np.ndarray:
        """Blink start times (s), drawn frame by frame from the learned hazard; `per_min` None = unscaled."""
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


def hazard_scale(speech: np.ndarray, table: np.ndarray, per_min: float) -> float:
    """Exponent s for the per-frame hazard, 1 - (1 - h)^s, that gives `per_min` blinks a minute in
    expectation on this clip's speech: the mean gap of the renewal process, from its survival curve."""
    pick = speech[:: max(len(speech) // 2000, 1)]
    h = (1.0 / (1.0 + np.exp(-(pick[:, None] + table[None, :])))).mean(0)
    h[: _REFRACTORY + 1] = 0.0

    def rate(s: float) -> float:
        p = 1.0 - (1.0 - h) ** s
        surv = np.cumprod(1.0 - p)
        gap = 1.0 + surv[:-1].sum() + surv[-1] / max(p[-1], 1e-9)  # geometric tail past the table
        return 60.0 * FPS / gap

    lo, hi = -6.0, 6.0  # log s
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if rate(float(np.exp(mid))) < per_min else (lo, mid)
    return float(np.exp(0.5 * (lo + hi)))
