"""Frames of a video by index, in any order the dub timeline asks for, with bounded memory.

Forward runs decode sequentially; a backward run (ping-pong) or a jump (resuming a job) seeks to the
keyframe before the wanted frame and decodes a short block forward, keeping at most `block` frames.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from fractions import Fraction

import av
import numpy as np

from talkinghead.errors import InputError, require_file
from talkinghead.media.i420 import I420Frame
from talkinghead.media.timers import stage
from talkinghead.media.video_reader import _open, _quarter_turns, _reason, _video_stream


class FrameFetcher:
    """Open once; `scan` lists every frame's pts, `frames(indices)` returns frames by index."""

    def __init__(self, path: str | os.PathLike[str], block: int = 24) -> None:
        self.path = require_file(path, "video file")
        self.block = block
        self._container = _open(self.path)
        try:
            self._stream = _video_stream(self._container, self.path)
        except BaseException:
            self._container.close()
            raise
        self._stream.thread_type = "AUTO"
        self.time_base = Fraction(self._stream.time_base)  # type: ignore[arg-type]
        cc = self._stream.codec_context
        # colour tags of the source, so frames passed through as planes are shown exactly as before
        self.colors = (int(cc.color_range), int(cc.colorspace), int(cc.color_primaries), int(cc.color_trc))
        self._decoder: Iterator[av.VideoFrame] | None = None
        self._index_of: dict[int, int] = {}
        self._next = 0  # index of the frame the decoder yields next
        self._used = False  # a fresh container can be decoded from the start without seeking

    def scan(self, after_pts: int | None = None) -> Iterator[tuple[int, I420Frame]]:
        """(pts, read-only frame) in presentation order, from the start or from just after `after_pts`."""
        if after_pts is not None or self._used:
            self._seek(after_pts)
        self._used = True
        for frame in self._decoder or self._decoded():
            if after_pts is not None and frame.pts <= after_pts:  # type: ignore[operator]
                continue
            yield int(frame.pts), I420Frame.from_av(frame, _quarter_turns(frame), copy=False)  # type: ignore[arg-type]

    def index(self, pts: Sequence[int] | np.ndarray) -> None:
        """Tell the fetcher every frame's pts (from `scan`), so frames can be asked for by index."""
        new = np.asarray(pts, np.int64)
        old = getattr(self, "_pts", None)
        if old is not None and len(old) <= len(new) and np.array_equal(new[: len(old)], old):
            self._index_of.update({int(p): i for i, p in enumerate(new[len(old) :], start=len(old))})
            self._pts = new  # more frames known: the decoder keeps its place
            return
        self._pts = new
        self._index_of = {int(p): i for i, p in enumerate(self._pts)}
        self._decoder, self._next = None, -(10**9)  # force a seek on first use

    def frames(self, indices: Sequence[int] | np.ndarray) -> Iterator[I420Frame]:
        """Frames at these indices, in this order (a fresh frame each)."""
        idx = [int(i) for i in indices]
        cache: dict[int, I420Frame] = {}
        for pos, i in enumerate(idx):
            if i in cache:
                yield cache.pop(i)
                continue
            if self._next <= i < self._next + 2 * self.block:
                for k, img in self._forward_until(i):
                    if k == i:
                        yield img
                continue
            # a jump or a backward run: decode the block of frames this run will ask for next
            q = pos
            while q + 1 < len(idx) and idx[q + 1] == idx[q] - 1 and i - idx[q + 1] < self.block:
                q += 1
            lo = idx[q]
            self._seek(int(self._pts[lo]))
            cache = {k: img for k, img in self._forward_until(i) if k >= lo}
            yield cache.pop(i)

    def _forward_until(self, i: int) -> Iterator[tuple[int, I420Frame]]:
        assert self._decoder is not None
        while self._next <= i:
            frame = next(self._decoder, None)
            if frame is None:
                raise InputError(f"The video '{self.path}' ended before frame {i}; was it changed during the dub?")
            k = self._index_of.get(int(frame.pts))  # type: ignore[arg-type]
            if k is None or k < self._next:
                continue
            self._next = k + 1
            if k >= i - self.block:  # only frames that can still be asked for are converted
                yield k, _own(frame)

    def _seek(self, pts: int | None) -> None:
        """Position the decoder at the keyframe at or before `pts` (None: the start)."""
        try:
            self._container.seek(
                0 if pts is None else max(int(pts), 0), stream=self._stream, backward=True, any_frame=False
            )
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"Cannot seek in the video '{self.path}' ({_reason(exc)}).") from None
        self._decoder = self._decoded()
        self._next = 0
        self._used = True

    def _decoded(self) -> Iterator[av.VideoFrame]:
        try:
            frames = iter(self._container.decode(self._stream))
            while True:
                with stage("decode"):
                    frame = next(frames, None)
                if frame is None:
                    return
                if frame.pts is not None:
                    yield frame
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"The video in '{self.path}' could not be decoded ({_reason(exc)}).") from None

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> FrameFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _own(frame: av.VideoFrame) -> I420Frame:
    with stage("decode: copy frame"):
        return I420Frame.from_av(frame, _quarter_turns(frame))
