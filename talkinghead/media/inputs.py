"""Checks and loads shared by both modes (photo and dub): the speech to animate, the output to write.

Kept here so `pipeline` and `dubbing` ask the same questions of their inputs and say the same
sentence when something is wrong, without one mode importing the other.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from talkinghead.errors import InputError, OutputError
from talkinghead.media.audio import load_audio, resample
from talkinghead.types import Waveform


def load_speech(path: str | os.PathLike[str]) -> tuple[Waveform, np.ndarray]:
    """The audio as given (for the output track) and as 16 kHz mono (for the models)."""
    full = load_audio(path, sample_rate=None, mono=False)
    mono = full.mono()
    speech = resample(mono, full.sample_rate, 16000) if full.sample_rate != 16000 else mono
    if float(np.max(np.abs(speech), initial=0.0)) < 1e-3:
        raise InputError(f"The audio {os.fspath(path)} is silent: there is no speech to animate.")
    return full, speech.astype(np.float32)


def check_output(out: str | os.PathLike[str]) -> Path:
    p = Path(out)
    if p.suffix.lower() != ".mp4":
        raise OutputError(f"The output must be an .mp4 file, not '{p.name}'.")
    if p.is_dir():
        raise OutputError(f"The output {p} is a folder; give a file name ending in .mp4.")
    return p


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name the same existing file (an output that would overwrite an input)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
