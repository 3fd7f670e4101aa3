"""Audio read from a pipe as it arrives (`talkinghead generate --audio -`), as 16 kHz mono float32 chunks.

What comes down the pipe is either a WAV stream (detected by its `RIFF` header: 16-bit PCM or 32-bit float, any
rate and channel count; the data size may be left unknown, as streaming TTS engines write it), or raw
little-endian PCM in the format the caller names (`s16le` or `f32le`, `rate` Hz, mono). Other rates are
resampled to 16 kHz by linear interpolation chunk by chunk (the lips model reads nothing above 7.6 kHz); several
channels are averaged. Each read returns what the pipe holds, so chunks follow the producer's pace.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np

from talkinghead.errors import InputError

RATE = 16000
FORMATS: dict[str, np.dtype[Any]] = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}
_READ = 1 << 14


class _Resampler:
    """Linear interpolation from `rate` to 16 kHz across chunk boundaries (the last input sample is carried)."""

    def __init__(self, rate: int) -> None:
        self.step = rate / RATE
        self.pos = 0.0  # next output position, in input samples from the start of `prev + x`
        self.prev = np.zeros(0, np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.step == 1.0:
            return x
        y = np.concatenate([self.prev, x])
        if len(y) < 2:
            self.prev = y
            return np.zeros(0, np.float32)
        n = int(np.floor((len(y) - 1 - self.pos) / self.step)) + 1 if self.pos <= len(y) - 1 else 0
        t = self.pos + self.step * np.arange(n)
        out = np.interp(t, np.arange(len(y)), y).astype(np.float32)
        self.pos += self.step * n
        keep = int(np.floor(self.pos))
        keep = min(keep, len(y) - 1)
        self.prev, self.pos = y[keep:], self.pos - keep
        return out


def _header(first: bytes, read: BinaryIO) -> tuple[np.dtype[Any], int, int, bytes]:
    """Parse a WAV header from `first` plus what more is read: (sample dtype, rate, channels, leftover data)."""
    buf = bytearray(first)

    def need(n: int) -> None:
        while len(buf) < n:
            more = read.read(n - len(buf))
            if not more:
                raise InputError("The WAV stream on standard input ends inside its header.")
            buf.extend(more)

    need(12)
    if buf[8:12] != b"WAVE":
        raise InputError("Standard input starts with RIFF but is not a WAV stream.")
    pos, fmt = 12, None
    while True:
        need(pos + 8)
        cid, size = bytes(buf[pos : pos + 4]), struct.unpack("<I", buf[pos + 4 : pos + 8])[0]
        if cid == b"data":
            if fmt is None:
                raise InputError("The WAV stream on standard input has no format chunk before its data.")
            return (*fmt, bytes(buf[pos + 8 :]))
        if size > 1 << 20:
            raise InputError("The WAV stream on standard input has a damaged header.")
        need(pos + 8 + size + (size & 1))
        if cid == b"fmt ":
            tag, channels, rate = struct.unpack("<HHI", buf[pos + 8 : pos + 16])
            bits = struct.unpack("<H", buf[pos + 22 : pos + 24])[0]
            if tag == 0xFFFE and size >= 40:
                tag = struct.unpack("<H", buf[pos + 32 : pos + 34])[0]
            dtype: np.dtype[Any]
            if (tag, bits) == (1, 16):
                dtype = np.dtype("<i2")
            elif (tag, bits) == (3, 32):
                dtype = np.dtype("<f4")
            else:
                raise InputError("A WAV stream on standard input must be 16-bit PCM or 32-bit float.")
            if channels < 1 or not 4000 <= rate <= 192000:
                raise InputError(f"The WAV stream on standard input declares {channels} channels at {rate} Hz.")
            fmt = (dtype, int(rate), int(channels))
        pos += 8 + size + (size & 1)


def pcm_chunks(stream: BinaryIO, fmt: str = "s16le", rate: int = RATE) -> Iterator[np.ndarray]:
    """16 kHz mono float32 chunks of the audio on `stream` (a binary pipe), yielded as it arrives."""
    try:
        fd: int | None = stream.fileno()  # os.read returns what the pipe holds, without waiting for more
    except (AttributeError, OSError, ValueError):
        fd = None

    def read(n: int) -> bytes:
        return os.read(fd, n) if fd is not None else stream.read(n)

    first = b""
    while len(first) < 4:
        more = read(4 - len(first))
        if not more:
            break
        first += more
    if first[:4] == b"RIFF":

        class _Reader:
            def read(self, n: int) -> bytes:
                return read(n)

        dtype, rate, channels, rest = _header(first, _Reader())  # type: ignore[arg-type]
    else:
        if fmt not in FORMATS:
            raise InputError(f"The audio format must be s16le or f32le, not '{fmt}'.")
        if not 4000 <= rate <= 192000:
            raise InputError(f"The audio rate must be from 4000 to 192000 Hz, not {rate}.")
        dtype, channels, rest = FORMATS[fmt], 1, first
    frame = dtype.itemsize * channels
    resample = _Resampler(rate)
    pending = rest
    total = 0
    while True:
        data = read(_READ)
        pending += data
        n = len(pending) // frame * frame
        if n:
            x = np.frombuffer(pending[:n], dtype).reshape(-1, channels).astype(np.float32)
            pending = pending[n:]
            x = x.mean(axis=1) if channels > 1 else x[:, 0]
            if dtype.kind == "i":
                x /= 32768.0
            elif not np.isfinite(x).all():
                raise InputError("The audio on standard input holds values that are not numbers; is it s16le?")
            y = resample(np.clip(x, -1.0, 1.0))
            total += len(y)
            if len(y):
                yield y
        if not data:
            break
    if total == 0:
        raise InputError("No audio arrived on standard input.")
