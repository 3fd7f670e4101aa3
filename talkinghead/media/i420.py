"""Decoded frames kept in their native 4:2:0 planes.

A dub changes a few hundred pixels round the mouth of a full-HD frame. Converting every frame to RGB
and back costs more than decoding and encoding it (measured: ~36 ms of ~95 ms a frame at 1080p), and
the round trip through RGB alters colours everywhere. Keeping the planes, converting only the
regions that are looked at or re-rendered, and handing the planes straight to the encoder leaves all
other pixels exactly as decoded.
"""

from __future__ import annotations

import av
import cv2
import numpy as np


def _plane(frame: av.VideoFrame, k: int) -> np.ndarray:
    """Writable (height, width) view of plane k of a frame we own (rows padded to line_size)."""
    p = frame.planes[k]
    return np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[: p.height, : p.width]


class I420Frame:
    """Y, U, V planes of an even-sized frame, held in an encoder-ready av.VideoFrame of our own."""

    def __init__(self, frame: av.VideoFrame) -> None:
        self.av_frame = frame
        self.width, self.height = frame.width, frame.height
        self.y, self.u, self.v = (_plane(frame, k) for k in range(3))
        self._rgb: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.height, self.width, 3

    @property
    def planes(self) -> np.ndarray:
        """The planes as one contiguous (H * 3 / 2, W) I420 buffer (a copy)."""
        return np.concatenate([self.y.ravel(), self.u.ravel(), self.v.ravel()]).reshape(-1, self.width)

    @staticmethod
    def from_av(frame: av.VideoFrame, quarter_turns: int = 0, copy: bool = True) -> I420Frame:
        """A decoded frame; copied unless only read (decoder buffers may be reference pictures, never
        written to). Other pixel formats, odd sizes and rotation go through one conversion."""
        w, h = frame.width, frame.height
        if quarter_turns:
            return I420Frame.from_rgb(np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"), k=quarter_turns)))
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        if w % 2 or h % 2:
            return I420Frame._padded(frame)
        if not copy:
            return I420Frame(frame)
        own = I420Frame(av.VideoFrame(w, h, "yuv420p"))
        for k, dst in enumerate((own.y, own.u, own.v)):
            dst[:] = _plane(frame, k)
        return own

    @staticmethod
    def _padded(frame: av.VideoFrame) -> I420Frame:
        """An odd-sized yuv420p frame in an even one a row/column larger (edge repeated; its chroma planes
        already cover the even size): every pixel is kept, and the writer crops the padding off."""
        w, h = frame.width, frame.height
        own = I420Frame(av.VideoFrame(w + w % 2, h + h % 2, "yuv420p"))
        own.y[:h, :w] = _plane(frame, 0)
        own.y[:h, w:] = own.y[:h, w - 1:w]
        own.y[h:] = own.y[h - 1:h]
        own.u[:] = _plane(frame, 1)
        own.v[:] = _plane(frame, 2)
        return own

    @staticmethod
    def from_rgb(rgb: np.ndarray) -> I420Frame:
        if rgb.shape[0] % 2 or rgb.shape[1] % 2:  # odd sizes: padded by repeating the edge (see `_padded`)
            rgb = cv2.copyMakeBorder(np.ascontiguousarray(rgb), 0, rgb.shape[0] % 2, 0, rgb.shape[1] % 2,
                                     cv2.BORDER_REPLICATE)
        h, w = rgb.shape[:2]
        flat = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420).reshape(-1)
        own = I420Frame(av.VideoFrame(w, h, "yuv420p"))
        n = w * h
        own.y[:] = flat[:n].reshape(h, w)
        own.u[:] = flat[n:n + n // 4].reshape(h // 2, w // 2)
        own.v[:] = flat[n + n // 4:].reshape(h // 2, w // 2)
        return own

    def rgb(self) -> np.ndarray:
        """The whole frame as RGB (made once, for face detection)."""
        if self._rgb is None:
            self._rgb = cv2.cvtColor(self.planes, cv2.COLOR_YUV2RGB_I420)
        return self._rgb

    def clip(self, x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
        """A box clipped to the frame with even corners (chroma is shared by 2x2 pixels)."""
        a = max(0, int(np.floor(x0)) // 2 * 2)
        b = max(0, int(np.floor(y0)) // 2 * 2)
        c = min(self.width, (int(np.ceil(x1)) + 1) // 2 * 2)
        d = min(self.height, (int(np.ceil(y1)) + 1) // 2 * 2)
        return a, b, max(c, a), max(d, b)

    def region(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """RGB copy of an even-aligned box (from `clip`)."""
        if self._rgb is not None:
            return self._rgb[y0:y1, x0:x1].copy()
        w, h = x1 - x0, y1 - y0
        if w == 0 or h == 0:
            return np.zeros((h, w, 3), np.uint8)
        buf = np.concatenate([self.y[y0:y1, x0:x1].ravel(), self.u[y0 // 2:y1 // 2, x0 // 2:x1 // 2].ravel(),
                              self.v[y0 // 2:y1 // 2, x0 // 2:x1 // 2].ravel()]).reshape(h * 3 // 2, w)
        return cv2.cvtColor(buf, cv2.COLOR_YUV2RGB_I420)

    def put(self, rgb: np.ndarray, x0: int, y0: int) -> None:
        """Write an RGB box back (same even-aligned box as `region`)."""
        h, w = rgb.shape[:2]
        flat = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).reshape(-1)
        n = w * h
        self.y[y0:y0 + h, x0:x0 + w] = flat[:n].reshape(h, w)
        self.u[y0 // 2:(y0 + h) // 2, x0 // 2:(x0 + w) // 2] = flat[n:n + n // 4].reshape(h // 2, w // 2)
        self.v[y0 // 2:(y0 + h) // 2, x0 // 2:(x0 + w) // 2] = flat[n + n // 4:].reshape(h // 2, w // 2)
        self._rgb = None
