"""Checks that the espeak-ng test-speech helper yields usable multilingual speech.

Other tests trust this audio (speech where we say speech, silence where we say
a pause), so a broken voice or an off-by-one gap must fail loudly here first.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from speech import SENTENCES, speech_with_pause, synthesize, write_wav

SR = 16000


@pytest.mark.parametrize("language", sorted(SENTENCES))
def test_each_sentence_is_audible_speech(language: str) -> None:
    for part in SENTENCES[language]:
        samples = synthesize(part, language, sample_rate=SR)
        assert samples.dtype == np.float32 and samples.ndim == 1
        assert 1.0 <= samples.size / SR <= 6.0, f"{language}: {samples.size / SR:.2f} s"
        assert np.abs(samples).max() <= 1.0
        assert np.sqrt(np.mean(samples**2)) > 0.02, f"{language}: near-silent output"


@pytest.mark.parametrize("language", ["en", "hi", "zh"])
def test_pauses_are_digital_silence_between_speech(language: str) -> None:
    samples, pauses = speech_with_pause(SENTENCES[language], language, pause_s=1.0, lead_s=0.3)
    assert len(pauses) == len(SENTENCES[language]) - 1
    for start, end in pauses:
        assert end - start == pytest.approx(1.0, abs=1 / SR)
        a, b = round(start * SR), round(end * SR)
        assert not np.any(samples[a:b]), "pause must be exact zeros"
        # The gap is the whole gap: audio touches it on both sides.
        assert np.abs(samples[a - 80 : a]).max() > 0
        assert np.abs(samples[b : b + 80]).max() > 0
    lead = round(0.3 * SR)
    assert not np.any(samples[:lead]) and not np.any(samples[-lead:])


def test_unknown_language_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="no voice"):
        synthesize("hello", "xx-not-a-language")


def test_write_wav_is_16bit_mono(tmp_path: Path) -> None:
    samples = synthesize(SENTENCES["en"][0], "en", sample_rate=SR)
    path = tmp_path / "speech.wav"
    write_wav(path, samples, SR)
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, SR)
        assert wav.getnframes() == samples.size


def test_speech_does_not_depend_on_what_was_spoken_before() -> None:
    # espeak-ng in one process drifts with every synthesis; tests must see the same speech alone and in the suite.
    from speech import _speak_fresh

    first = synthesize(SENTENCES["en"][0], "en", sample_rate=SR)
    _speak_fresh.cache_clear()
    synthesize(SENTENCES["de"][0], "de", sample_rate=SR)
    synthesize(SENTENCES["en"][1], "en", sample_rate=SR)
    again = synthesize(SENTENCES["en"][0], "en", sample_rate=SR)
    assert again.shape == first.shape and np.array_equal(again, first)
