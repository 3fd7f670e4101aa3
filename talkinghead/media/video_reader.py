"""Video probing and streaming frame decoding.

Frames are yielded one at a time with their own timestamps, so long or variable-frame-rate
clips (phone recordings) never have to fit in memory or be assumed constant-rate.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

from talkinghead.errors import InputError, require_file

__all__ = ["VideoInfo", "iter_frames", "probe_video"]


@dataclass(frozen=True)
class VideoInfo:
    """What a caller needs to plan work on a video; sizes are as displayed (rotation applied)."""

    width: int
    height: int
    fps: float
    n_frames: int
    duration: float
    has_audio: bool


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Read a video's size, rate, length and whether it has sound, decoding only one frame.

    The first frame is decoded because rotation (phone videos) lives in per-frame side data,
    and the reported size must match what `iter_frames` yields.
    """
    p = require_file(path, "video file")
    container = _open(p)
    try:
        stream = _video_stream(container, p)
        fps = _rate(stream)
        duration = 0.0
        if stream.duration and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        n_frames = int(stream.frames or 0)
        if n_frames <= 0:
            n_frames = int(round(duration * fps)) if fps > 0 else 0
        if duration <= 0 and n_frames > 0 and fps > 0:
            duration = n_frames / fps

        try:
            first = next(container.decode(stream), None)
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"The video in '{p}' could not be decoded ({_reason(exc)}).") from None
        if first is None:
            raise InputError(f"'{p}' contains no video frames.")
        width, height = first.width, first.height
        if _quarter_turns(first) % 2:
            width, height = height, width
        return VideoInfo(
            width=int(width),
            height=int(height),
            fps=fps,
            n_frames=n_frames,
            duration=duration,
            has_audio=bool(container.streams.audio),
        )
    finally:
        container.close()


def iter_frames(path: str | os.PathLike[str]) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (timestamp_seconds, HxWx3 uint8 RGB frame) in presentation order, one at a time.

    Timestamps are the container's own (frame.time), so variable frame rate is preserved. The file
    is opened immediately, so a bad path raises `InputError` at the call, not at the first
    `next()`.
    """
    p = require_file(path, "video file")
    container = _open(p)
    try:
        stream = _video_stream(container, p)
    except BaseException:
        container.close()
        raise
    return _frames(container, stream, p)


def _frames(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: str
) -> Iterator[tuple[float, np.ndarray]]:
    stream.thread_type = "AUTO"  # frame + slice threads; decoding dominates reading time
    fps = _rate(stream) or 25.0
    index = 0
    last_t = None
    try:
        try:
            for frame in container.decode(stream):
                t = frame.time
                if t is None:
                    # Raw elementary streams have no pts; fall back to the nominal rate.
                    t = index / fps if last_t is None else last_t + 1.0 / fps
                img = frame.to_ndarray(format="rgb24")
                k = _quarter_turns(frame)
                if k:
                    img = np.ascontiguousarray(np.rot90(img, k=k))  # type: ignore[assignment]
                index += 1
                last_t = float(t)
                yield float(t), img
        except (av.FFmpegError, OSError) as exc:
            reason = _reason(exc)
            raise InputError(f"The video in '{path}' could not be decoded ({reason}).") from None
    finally:
        container.close()


def _quarter_turns(frame: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns that display the frame upright (np.rot90's k)."""
    try:
        rotation = frame.rotation or 0
    except Exception:
        return 0
    return int(round(rotation / 90.0)) % 4


def _rate(stream: av.video.stream.VideoStream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    return 0.0


def _open(p: str) -> av.container.InputContainer:
    try:
        return av.open(p, mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"'{p}' is not a readable video file ({_reason(exc)}).") from None


def _reason(exc: BaseException) -> str:
    """Short human reason from an FFmpeg/OS error, without the errno clutter."""
    return str(getattr(exc, "strerror", None) or exc or type(exc).__name__).rstrip(".").lower()


def _video_stream(container: av.container.InputContainer, p: str) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise InputError(f"'{p}' has no video track.")
    return container.streams.video[0]
