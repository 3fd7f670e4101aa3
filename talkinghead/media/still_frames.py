"""Frames that differ from one still image only inside a box, handed to the encoder as 4:2:0 planes.

In photo mode every pixel outside the head's region is the photo's own in every frame. Converting the
whole RGB frame to YUV for the encoder repeats the same work on those pixels each frame; here the still
is converted once, each frame starts as a copy of its planes (a memcpy), and only the box that changed
is converted. `BackgroundEncoder` then converts and encodes on a second thread, so rendering frame k + 1
overlaps converting and encoding frame k (x264 and the numpy/OpenCV calls release the GIL): the renderer,
not x264, is the slower side of photo mode, so work moved off its thread shortens the job (issue 16).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

import av
import cv2
import numpy as np

from talkinghead.media.i420 import I420Frame
from talkinghead.media.timers import stage
from talkinghead.media.video_writer import VideoWriter

_CHROMA_GAIN = 224.0 / 255.0  # full-range chroma (OpenCV's YCrCb) -> limited range, about 128


def yuv420(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y (h, w), U and V (h/2, w/2) of an even-sized RGB uint8 image, BT.601 limited range (the writer's
    tags for RGB input); chroma is that of each 2x2 block's mean colour (OpenCV's own 4:2:0 conversion
    takes one pixel of four), so a box with even corners converts exactly as in the whole frame. Against
    the writer's swscale conversion of a photo: luma within 1 level, chroma 0.3 levels on average and a
    few at sharp colour edges (swscale's chroma filter is a little wider)."""
    h, w = rgb.shape[:2]
    rgb = np.ascontiguousarray(rgb)
    y = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)[:h]
    half = cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    ycc = cv2.cvtColor(half, cv2.COLOR_RGB2YCrCb)
    ycc = cv2.convertScaleAbs(ycc, alpha=_CHROMA_GAIN, beta=128 * (1 - _CHROMA_GAIN))
    return y, ycc[..., 2], ycc[..., 1]


class StillPlanes:
    """The still's planes, converted once; `frame` pastes one changed box over a copy of them."""

    def __init__(self, still: np.ndarray, box: tuple[int, int, int, int]) -> None:
        h, w = still.shape[:2]
        if h % 2 or w % 2 or any(v % 2 for v in box):
            raise ValueError("StillPlanes needs an even-sized image and a box with even corners")
        self.width, self.height = w, h
        self.box = box
        self.planes = yuv420(still)

    def frame(self, region: np.ndarray) -> av.VideoFrame:
        """A new yuv420p frame: the still, with `region` (RGB, the box's size) converted into the box."""
        x0, y0, x1, y1 = self.box
        out = I420Frame(av.VideoFrame(self.width, self.height, "yuv420p"))
        for dst, src in zip((out.y, out.u, out.v), self.planes):
            dst[:] = src
        ry, ru, rv = yuv420(region)
        out.y[y0:y1, x0:x1] = ry
        out.u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = ru
        out.v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = rv
        return out.av_frame


_DONE = None


class BackgroundEncoder:
    """Feeds `writer.write_yuv` from a worker thread through a short queue (memory stays flat: at most
    `depth` frames wait). `convert` (e.g. `StillPlanes.frame`) makes each frame from what is `put`, on the
    worker thread; without it `put` takes yuv420p frames. An error in the worker is raised again by the next
    `put` or by `close`."""

    def __init__(
        self, writer: VideoWriter, depth: int = 4, convert: Callable[[Any], av.VideoFrame] | None = None
    ) -> None:
        self._writer = writer
        self._convert = convert
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="talkinghead-encoder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            vf = self._queue.get()
            if vf is _DONE:
                return
            if self._error is not None:
                continue  # drain: the producer learns of the error on its next put
            try:
                if self._convert is not None:
                    with stage("colour"):
                        vf = self._convert(vf)
                with stage("encode"):
                    self._writer.write_yuv(vf)
            except BaseException as exc:  # handed to the producer thread
                self._error = exc

    def put(self, vf: Any) -> None:
        """Queue a frame (or what `convert` makes one from); waits while `depth` are queued."""
        self._raise()
        self._queue.put(vf)

    def close(self) -> None:
        """Wait until every queued frame is encoded; raise the worker's error, if any."""
        if self._thread.is_alive():
            self._queue.put(_DONE)
            self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def __enter__(self) -> BackgroundEncoder:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
            return
        # the producer failed: stop the worker without encoding what is left (the writer discards the file)
        self._error = self._error or exc
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        self._queue.put(_DONE)
        self._thread.join()
