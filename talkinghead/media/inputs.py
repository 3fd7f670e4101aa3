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
    mono = _speech_channel(full)
    speech = resample(mono, full.sample_rate, 16000) if full.sample_rate != 16000 else mono
    if float(np.max(np.abs(speech), initial=0.0)) < 1e-3:
        raise InputError(f"The audio {os.fspath(path)} is silent: there is no speech to animate.")
    return full, speech.astype(np.float32, copy=False)


# room left in a file name for the hidden files written next to the output (`.NAME.partial-PID-XXXXXXXX.mp4`,
# `.NAME.dub`)
_HIDDEN_EXTRA = 40


def _speech_channel(wave: Waveform) -> np.ndarray:
    """Mono samples for the models: the channel mean, or the loudest channel where the channels cancel in the
    mean (one channel phase-inverted, a common wiring fault), which would make speech look silent."""
    if wave.channels == 1:  # a view, not a copy: 1 h of audio is 230 MB at 16 kHz
        return wave.samples.reshape(-1)
    mix = wave.mono()
    rms = np.sqrt(np.mean(np.square(wave.samples, dtype=np.float64), axis=0))
    if float(np.sqrt(np.mean(np.square(mix, dtype=np.float64)))) < 0.1 * float(rms.max()):
        return np.ascontiguousarray(wave.samples[:, int(np.argmax(rms))])
    return mix


def check_output(out: str | os.PathLike[str]) -> Path:
    """The output path, if it can be an MP4 written here; else OutputError with one sentence."""
    p = Path(out)
    if p.suffix.lower() != ".mp4":
        raise OutputError(f"The output must be an .mp4 file, not '{p.name}'.")
    limit = _name_max(p.parent) - _HIDDEN_EXTRA
    if len(os.fsencode(p.name)) > limit:
        raise OutputError(
            f"The output file name is too long for this file system ({len(os.fsencode(p.name))} "
            f"bytes; at most {limit})."
        )
    try:
        is_dir = p.is_dir()
    except OSError as exc:  # a path component too long, a loop of links...
        raise OutputError(f"Cannot write '{p}' ({(exc.strerror or str(exc)).lower()}).") from None
    if is_dir:
        raise OutputError(f"The output {p} is a folder; give a file name ending in .mp4.")
    if not p.parent.is_dir():
        raise OutputError(f"Cannot write '{p}' because the folder '{p.parent}' does not exist.")
    return p


def _name_max(folder: Path) -> int:
    """Longest file name (bytes) the folder's file system takes; 255 where it cannot be asked."""
    try:
        return int(os.pathconf(folder if folder.is_dir() else ".", "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name the same existing file (an output that would overwrite an input)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
