"""The soundtrack of a dub: the new speech, followed by the video's own sound where the video runs on.

With `--rest keep` and speech shorter than the video, the rest of the video is kept as filmed, and
so is its sound from the moment the new speech ends (a video without sound continues in silence).
"""

from __future__ import annotations

import os

import numpy as np

from talkinghead.errors import InputError
from talkinghead.media.audio import load_audio
from talkinghead.media.timeline import Timeline
from talkinghead.types import Waveform


def splice_soundtrack(
    wave: Waveform, video: str | os.PathLike[str], plan: Timeline, time_base: float, rest: str
) -> Waveform:
    """The new speech; with rest 'keep' and a longer video, followed by the video's own sound up to the
    plan's end, at the speech's sample rate and channel count."""
    end = plan.end_pts * time_base
    if rest != "keep" or wave.duration >= end - 1e-3:
        return wave
    rate, channels = wave.sample_rate, wave.channels
    n_end = int(round(end * rate))
    tail = np.zeros((n_end - wave.samples.shape[0], channels), np.float32)
    try:
        orig = load_audio(video, sample_rate=rate, mono=channels == 1)
        o = orig.samples if orig.samples.ndim == 2 else orig.samples[:, None]
        if o.shape[1] != channels:
            o = np.repeat(o.mean(1, keepdims=True), channels, axis=1)
        piece = o[wave.samples.shape[0] : n_end]
        tail[: len(piece)] = piece
    except InputError:
        pass  # a video without sound: the rest is silent
    new = wave.samples if wave.samples.ndim == 2 else wave.samples[:, None]
    both = np.concatenate([new, tail])
    return Waveform(both if channels > 1 else both[:, 0], rate)
