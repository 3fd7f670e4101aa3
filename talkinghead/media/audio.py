"""Audio decoding and resampling.

Everything goes through PyAV so that any container FFmpeg understands (WAV, MP3, M4A, FLAC, OGG,
Opus, or the audio track of a video) is accepted without shelling out to an ffmpeg binary.
"""

from __future__ import annotations

import os
from math import gcd

import av
import numpy as np

from talkinghead.errors import InputError, require_file
from talkinghead.types import Waveform

__all__ = ["load_audio", "resample"]

# Demuxers whose edit lists give an exact audio length. Their AAC decoders still emit the
# zero padding of the last codec frame, so we trim to the declared length (see `_trim_padding`).
_EXACT_LENGTH_FORMATS = ("mov", "mp4", "m4a")


def load_audio(path: str | os.PathLike[str], sample_rate: int | None = 16000, mono: bool = True) -> Waveform:
    """Decode an audio (or video) file to float32 samples in [-1, 1].

    `sample_rate=None` keeps the file's own rate. With `mono=False` the channels are kept and the
    result has shape (n, channels). Anything a user can get wrong (missing file, not a media file,
    no audio track, empty track) raises `InputError`; FFmpeg exceptions never escape.
    """
    if sample_rate is not None and sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    p = require_file(path, "audio file")

    try:
        container = av.open(p, mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"'{p}' is not a readable audio or video file ({_reason(exc)}).") from None

    try:
        if not container.streams.audio:
            raise InputError(f"'{p}' has no audio track.")
        stream = container.streams.audio[0]
        try:
            chunks, out_rate, native_rate = _decode(container, stream, sample_rate, mono)
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"The audio in '{p}' could not be decoded ({_reason(exc)}).") from None
        expected = _declared_length(container, stream, out_rate)
    finally:
        container.close()

    if not chunks:
        raise InputError(f"'{p}' contains no audio.")
    samples = np.concatenate(chunks, axis=0)
    if samples.shape[0] == 0:
        raise InputError(f"'{p}' contains no audio.")
    samples = _trim_padding(samples, expected, native_rate, out_rate)
    if mono:
        samples = samples[:, 0]
    if not np.isfinite(samples).all():
        # a float file with NaN or infinite samples (a broken export): silence and full scale, so nothing
        # downstream (features, the face fit) ever sees a NaN
        np.nan_to_num(samples, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    np.clip(samples, -1.0, 1.0, out=samples)
    return Waveform(samples=np.ascontiguousarray(samples, dtype=np.float32), sample_rate=out_rate)


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Polyphase-resample float32 audio along axis 0 (mono (n,) or (n, channels)).

    Polyphase filtering with gcd-reduced factors is exact for the common rate pairs
    (44.1k/48k/16k) and much faster than FFT resampling on long clips.
    """
    if src_rate <= 0 or dst_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {src_rate} -> {dst_rate}")
    x = np.asarray(samples, dtype=np.float32)
    if src_rate == dst_rate:
        return x.copy()
    from scipy.signal import resample_poly  # lazy: scipy.signal costs ~1.5 s to import

    g = gcd(int(src_rate), int(dst_rate))
    out = resample_poly(x, int(dst_rate) // g, int(src_rate) // g, axis=0)
    return np.ascontiguousarray(out, dtype=np.float32)


def _decode(
    container: av.container.InputContainer,
    stream: av.audio.stream.AudioStream,
    sample_rate: int | None,
    mono: bool,
) -> tuple[list[np.ndarray], int, int]:
    """Decode to packed float chunks of shape (n, ch); also returns (out_rate, native_rate)."""
    native_rate = int(stream.codec_context.sample_rate or stream.rate or 0)
    out_rate = int(sample_rate) if sample_rate else native_rate
    chunks: list[np.ndarray] = []
    resampler: av.AudioResampler | None = None
    setup: tuple[str, str, int] | None = None
    target_layout: av.AudioLayout | None = None

    def drain(frames: list[av.AudioFrame]) -> None:
        for out in frames:
            if out.samples == 0:
                continue
            ch = len(out.layout.channels)
            # Packed 'flt' comes back as (1, n * ch) interleaved.
            chunk = out.to_ndarray().reshape(-1, ch).astype(np.float32, copy=False)
            if mono and ch > 1:
                # Plain channel mean: libswresample's downmix applies +3 dB (0.707 * (L + R)),
                # which clips loud stereo speech.
                chunk = chunk.mean(axis=1, keepdims=True, dtype=np.float32)
            chunks.append(chunk)

    stream.thread_type = "AUTO"  # type: ignore[attr-defined]
    for frame in container.decode(stream):
        if frame.samples == 0:
            continue
        if not native_rate:
            native_rate = int(frame.sample_rate)
        if not out_rate:
            out_rate = native_rate
        if target_layout is None:
            # Fix the output layout on the first frame so a mid-stream layout change
            # (seen in concatenated broadcast AAC) cannot produce ragged chunks.
            target_layout = frame.layout
        key = (frame.format.name, frame.layout.name, int(frame.sample_rate))
        if key != setup:
            # PyAV's resampler is configured by the first frame it sees and rejects frames with a
            # different format/layout/rate, so rebuild it (after flushing) when the input changes.
            if resampler is not None:
                drain(resampler.resample(None))
            resampler = av.AudioResampler(format="flt", layout=target_layout, rate=out_rate)
            setup = key
        # Only the sample order matters here; dropping pts keeps the resampler's filter graph
        # from reacting to timestamp jumps in damaged files.
        frame.pts = None
        drain(resampler.resample(frame))  # type: ignore[union-attr]
    if resampler is not None:
        drain(resampler.resample(None))
    return chunks, out_rate, native_rate or out_rate


def _declared_length(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream, out_rate: int
) -> int | None:
    """Length in output samples that the container declares, where it is known to be exact."""
    fmt = container.format.name if container.format is not None else ""
    if not any(name in fmt.split(",") for name in _EXACT_LENGTH_FORMATS):
        return None
    if not stream.duration or stream.time_base is None or not out_rate:
        return None
    return int(round(float(stream.duration * stream.time_base) * out_rate))


def _trim_padding(samples: np.ndarray, expected: int | None, native_rate: int, out_rate: int) -> np.ndarray:
    """Drop the encoder's end padding (under one AAC frame) that FFmpeg's decoder leaves in.

    Without this a 2.000 s track decodes to ~2.02 s, which shifts frame counts derived from
    audio length. Only a small excess is trimmed, so a wrong header can never cut real audio.
    """
    if expected is None or expected <= 0:
        return samples
    excess = samples.shape[0] - expected
    max_pad = int(np.ceil(2048 * out_rate / max(native_rate, 1)))
    if 0 < excess <= max_pad:
        return samples[:expected]
    return samples


def _reason(exc: BaseException) -> str:
    """Short human reason from an FFmpeg/OS error, without the errno clutter."""
    msg = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(msg).rstrip(".").lower()
