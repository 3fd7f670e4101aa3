"""Decoding fuzz (issue 12): seeded random corruptions (byte flips, truncations, zeroed or inserted runs) of
a valid MP4, WAV, MP3 and JPEG go through the loaders; each either loads or raises the project's InputError,
never anything else (an FFmpeg, OpenCV, Pillow or numpy exception would be a traceback for the user).
Loaders only, no rendering: fast enough for the default suite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from battery_kit import demo_face_rgb, tone_speech, write_encoded, write_pcm, write_rgb, write_video

from talkinghead.errors import InputError

PER_FORMAT = 60  # 4 formats x 60 = 240 corrupted files


def _corrupt(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    kind = rng.integers(0, 5)
    if kind == 0:  # flip a few bytes anywhere (headers included)
        for i in rng.integers(0, len(b), int(rng.integers(1, 40))):
            b[i] ^= int(rng.integers(1, 256))
    elif kind == 1:  # truncate
        b = b[: int(rng.integers(0, len(b)))]
    elif kind == 2:  # zero a run
        a = int(rng.integers(0, len(b)))
        n = min(len(b) - a, int(rng.integers(1, 2000)))
        b[a : a + n] = bytes(n)
    elif kind == 3:  # insert random bytes
        a = int(rng.integers(0, len(b)))
        b[a:a] = rng.bytes(int(rng.integers(1, 500)))
    else:  # flip bytes in the first 64 bytes only (magic numbers, sizes)
        for i in rng.integers(0, min(64, len(b)), int(rng.integers(1, 6))):
            b[i] ^= int(rng.integers(1, 256))
    return bytes(b)


def _load_image(p: Path) -> None:
    from talkinghead.media import load_image

    load_image(p)


def _load_sound(p: Path) -> None:
    from talkinghead.media import load_audio

    load_audio(p)
    load_audio(p, sample_rate=None, mono=False)


def _load_video(p: Path) -> None:
    from talkinghead.media import iter_frames, load_audio, probe_video
    from talkinghead.media.frame_fetch import FrameFetcher

    probe_video(p)
    for _ in iter_frames(p):
        pass
    with FrameFetcher(p) as fetch:
        for _ in fetch.scan():
            pass
    load_audio(p)


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("fuzz")
    x = tone_speech(0.5, 22050)
    return {
        "jpg": write_rgb(d / "o.jpg", demo_face_rgb()[::4, ::4].copy()),
        "wav": write_pcm(d / "o.wav", np.stack([x, x], 1), 22050),
        "mp3": write_encoded(d / "o.mp3", x, 22050, "libmp3lame"),
        "mp4": write_video(d / "o.mp4", [demo_face_rgb()[::8, ::8].copy()] * 8, audio=(tone_speech(0.3, 16000), 16000)),
    }


@pytest.mark.parametrize(
    "fmt, load", [("jpg", _load_image), ("wav", _load_sound), ("mp3", _load_sound), ("mp4", _load_video)]
)
def test_corrupted_files_raise_only_input_error(fmt, load, originals, tmp_path):
    load(originals[fmt])  # the original loads
    data = originals[fmt].read_bytes()
    escaped = []
    outcomes = {"loaded": 0, "InputError": 0}
    for seed in range(PER_FORMAT):
        p = tmp_path / f"c{seed}.{fmt}"
        p.write_bytes(_corrupt(data, np.random.default_rng([seed, len(fmt)])))
        try:
            load(p)
            outcomes["loaded"] += 1
        except InputError as exc:
            outcomes["InputError"] += 1
            assert "\n" not in str(exc) and str(exc).endswith((".", ")")), str(exc)
        except Exception as exc:
            escaped.append(f"seed {seed}: {type(exc).__name__}: {exc}")
    assert not escaped, "\n".join(escaped)
    assert outcomes["InputError"] > 0, outcomes  # the corruptions do break things
