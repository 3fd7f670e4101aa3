"""Decoded frames kept in their native 4:2:0 planes.

A dub changes a few hundred pixels round the mouth of a full-HD frame. Converting every frame to RGB
and back costs more than decoding and encoding it (measured: ~36 ms of ~95 ms a frame at 1080p), and
the round trip through RGB alters colours everywhere. Keeping the planes, converting only the
regions that are looked at or re-rendered, and handing the planes straight to the encoder leaves all
other pixels exactly as decoded.

Regions are converted with the frame's own colour tags (BT.601 / BT.709 / BT.2020 matrix, limited or
full range), so what the renderer paints is what a player shows; untagged frames get the matrix
players assume for their size. Writing back averages each 2x2 block's chroma (4:2:0 siting) instead of
taking one pixel's.
"""

from __future__ import annotations

import av
import cv2
import numpy as np

from talkinghead.media.timers import stage

# AVCOL_SPC_* -> (Kr, Kb) of the matrix; 1 BT.709, 5/6 BT.601, 9/10 BT.2020 (non-constant luminance)
_MATRICES = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722), "bt2020": (0.2627, 0.0593)}
_SPACE_NAMES = {1: "bt709", 5: "bt601", 6: "bt601", 9: "bt2020", 10: "bt2020"}
_SPACE_CODES = {"bt709": 1, "bt601": 6, "bt2020": 9}
_JPEG = 2  # AVCOL_RANGE_JPEG (full range)


def colour_matrix(colorspace: int, width: int, height: int) -> str:
    """The YUV matrix of a frame: its tag, or for untagged frames what players assume (BT.709 for HD)."""
    if colorspace in _SPACE_NAMES:
        return _SPACE_NAMES[colorspace]
    return "bt709" if width >= 1280 or height > 576 else "bt601"


def _affines(matrix: str, full_range: bool) -> tuple[np.ndarray, np.ndarray]:
    """3x4 affine maps RGB (0..255) -> YUV and YUV -> RGB for cv2.transform."""
    kr, kb = _MATRICES[matrix]
    kg = 1.0 - kr - kb
    ys, cs, y0 = (255.0, 255.0, 0.0) if full_range else (219.0, 224.0, 16.0)
    rows = (
        np.array(
            [
                [kr, kg, kb],
                [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
                [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))],
            ]
        )
        / 255.0
    )
    fwd = np.zeros((4, 4))
    fwd[:3, :3] = rows * np.array([[ys], [cs], [cs]])
    fwd[:3, 3] = [y0, 128.0, 128.0]
    fwd[3, 3] = 1.0
    inv = np.linalg.inv(fwd)
    return fwd[:3].astype(np.float32), inv[:3].astype(np.float32)


_AFFINES = {(m, f): _affines(m, f) for m in _MATRICES for f in (False, True)}


def _plane(frame: av.VideoFrame, k: int) -> np.ndarray:
    """Writable (height, width) view of plane k of a frame we own (rows padded to line_size)."""
    p = frame.planes[k]
    return np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[: p.height, : p.width]  # type: ignore[call-overload]


def _tags(frame: av.VideoFrame) -> tuple[int, int]:
    """(colorspace, range) of a decoded frame; yuvj formats are full range whatever the tag says."""
    rng = int(frame.color_range)
    if frame.format.name.startswith("yuvj"):
        rng = _JPEG
    return int(frame.colorspace), rng


class I420Frame:
    """Y, U, V planes of an even-sized frame, held in an encoder-ready av.VideoFrame of our own."""

    def __init__(self, frame: av.VideoFrame, colorspace: int | None = None, color_range: int | None = None) -> None:
        self.av_frame = frame
        self.width, self.height = frame.width, frame.height
        self.y, self.u, self.v = (_plane(frame, k) for k in range(3))
        space, rng = _tags(frame)
        self.colorspace = space if colorspace is None else colorspace
        self.color_range = rng if color_range is None else color_range
        self.matrix = colour_matrix(self.colorspace, self.width, self.height)
        self.full_range = self.color_range == _JPEG
        self._to_yuv, self._to_rgb = _AFFINES[self.matrix, self.full_range]
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
        written to). Other pixel formats go through one conversion that keeps YUV values and colour tags;
        rotation turns the planes themselves; odd sizes are padded to even (`_padded`)."""
        space, rng = _tags(frame)
        w, h = frame.width, frame.height
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        if quarter_turns % 4:
            k = quarter_turns % 4
            ow, oh = (h, w) if k % 2 else (w, h)
            turned = av.VideoFrame(ow, oh, "yuv420p")
            for i in range(3):
                _plane(turned, i)[:] = np.rot90(_plane(frame, i), k=k)
            frame, w, h, copy = turned, ow, oh, False
        if w % 2 or h % 2:
            return I420Frame._padded(frame, space, rng)
        return I420Frame(frame, space, rng).copy() if copy else I420Frame(frame, space, rng)

    def forget_rgb(self) -> None:
        """Drop the whole-frame RGB made by `rgb()` (a frame held on for later, e.g. in a dub's hand-off)."""
        self._rgb = None

    def copy(self) -> I420Frame:
        """A writable copy of our own, with the same colour tags (a read-only decoded frame, made ours to draw on)."""
        own = I420Frame(av.VideoFrame(self.width, self.height, "yuv420p"), self.colorspace, self.color_range)
        for dst, src in ((own.y, self.y), (own.u, self.u), (own.v, self.v)):
            dst[:] = src
        return own

    @staticmethod
    def _padded(frame: av.VideoFrame, space: int, rng: int) -> I420Frame:
        """An odd-sized yuv420p frame in an even one a row/column larger (edge repeated; its chroma planes
        already cover the even size): every pixel is kept, and the writer crops the padding off."""
        w, h = frame.width, frame.height
        own = I420Frame(av.VideoFrame(w + w % 2, h + h % 2, "yuv420p"), space, rng)
        own.y[:h, :w] = _plane(frame, 0)
        own.y[:h, w:] = own.y[:h, w - 1 : w]
        own.y[h:] = own.y[h - 1 : h]
        own.u[:] = _plane(frame, 1)
        own.v[:] = _plane(frame, 2)
        return own

    @staticmethod
    def from_rgb(rgb: np.ndarray, matrix: str = "bt601", full_range: bool = False) -> I420Frame:
        """RGB -> planes, tagged with the matrix and range used; odd sizes are padded by repeating the edge
        (see `_padded`)."""
        if rgb.shape[0] % 2 or rgb.shape[1] % 2:
            rgb = cv2.copyMakeBorder(
                np.ascontiguousarray(rgb), 0, rgb.shape[0] % 2, 0, rgb.shape[1] % 2, cv2.BORDER_REPLICATE
            )
        h, w = rgb.shape[:2]
        own = I420Frame(av.VideoFrame(w, h, "yuv420p"), _SPACE_CODES[matrix], _JPEG if full_range else 1)
        own.put(np.ascontiguousarray(rgb), 0, 0)
        return own

    def rgb(self) -> np.ndarray:
        """The whole frame as RGB (made once, for face detection)."""
        if self._rgb is None:
            self._rgb = self._convert(0, 0, self.width, self.height)
        return self._rgb

    def clip(self, x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
        """A box clipped to the frame with even corners (chroma is shared by 2x2 pixels)."""
        a = max(0, int(np.floor(x0)) // 2 * 2)
        b = max(0, int(np.floor(y0)) // 2 * 2)
        c = min(self.width, (int(np.ceil(x1)) + 1) // 2 * 2)
        d = min(self.height, (int(np.ceil(y1)) + 1) // 2 * 2)
        return a, b, max(c, a), max(d, b)

    def warped_rgb(self, m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """RGB of the frame mapped by the 2x3 affine `m` (frame pixels -> output pixels) into a (w, h)
        image, edges repeated, bilinear; read from the planes, so a reduced copy of a big region (the face
        tracker's input) costs only its own pixels instead of converting the region first."""
        with stage("colour: yuv->rgb"):
            w, h = size
            m = np.asarray(m, np.float64)
            # chroma sample (i, j) sits at the centre of luma pixels 2i..2i+1, 2j..2j+1
            mc = np.concatenate([m[:, :2] * 2, m[:, 2:] + 0.5 * (m[:, :1] + m[:, 1:2])], 1)
            flags, border = cv2.INTER_LINEAR, cv2.BORDER_REPLICATE
            planes = [
                cv2.warpAffine(p, a, (w, h), flags=flags, borderMode=border)
                for p, a in ((self.y, m), (self.u, mc), (self.v, mc))
            ]
            return cv2.transform(cv2.merge(planes), self._to_rgb)

    def remap(self, box: tuple[int, int, int, int], xy: np.ndarray) -> None:
        """Move the pixels of `box` (x0, y0, x1, y1) as the cv2.remap map `xy` of its size says ((h, w, 2): where
        each pixel takes its colour from, in frame coordinates), in the planes themselves: luma at full
        resolution, chroma at its own, so a warp needs no conversion to RGB and back. A box with odd corners is
        widened to even ones (those pixels keep their place)."""
        with stage("warp: planes"):
            x0, y0, x1, y1 = box
            ex0, ey0 = x0 // 2 * 2, y0 // 2 * 2
            ex1, ey1 = min(self.width, (x1 + 1) // 2 * 2), min(self.height, (y1 + 1) // 2 * 2)
            if (ex0, ey0, ex1, ey1) != (x0, y0, x1, y1):
                grid = np.empty((ey1 - ey0, ex1 - ex0, 2), np.float32)
                grid[..., 0] = np.arange(ex0, ex1, dtype=np.float32)
                grid[..., 1] = np.arange(ey0, ey1, dtype=np.float32)[:, None]
                grid[y0 - ey0 : y1 - ey0, x0 - ex0 : x1 - ex0] = xy
                xy = grid
            flags, border = cv2.INTER_LINEAR, cv2.BORDER_REFLECT
            # fixed-point maps: what remap makes of float maps itself, made in one pass (faster for a 2-channel map)
            fixed, frac = cv2.convertMaps(xy, None, cv2.CV_16SC2)
            self.y[ey0:ey1, ex0:ex1] = cv2.remap(self.y, fixed, frac, flags, borderMode=border)
            # chroma sample (i, j) sits at the centre of luma pixels 2i..2i+1, 2j..2j+1: the mean of their maps
            cxy = cv2.resize(xy, ((ex1 - ex0) // 2, (ey1 - ey0) // 2), interpolation=cv2.INTER_AREA)
            cxy -= 0.5
            cxy *= 0.5
            for p in (self.u, self.v):
                p[ey0 // 2 : ey1 // 2, ex0 // 2 : ex1 // 2] = cv2.remap(p, cxy, None, flags, borderMode=border)
            self._rgb = None

    def remap_offsets(self, box: tuple[int, int, int, int], offsets: np.ndarray, origin: tuple[int, int]) -> None:
        """`remap` for a map given as offsets (`mouth_warp_offsets`: box pixel (x, y) takes its colour from
        origin + (x - x0, y - y0) + offsets; box and origin even, the origin up-left of every pixel read): the
        planes from the origin on are remapped with cv2.WARP_RELATIVE_MAP, so no grid of pixel coordinates is
        made or added. Luma at full resolution, chroma at its own (the offsets averaged over each 2x2 block,
        halved)."""
        with stage("warp: planes"):
            x0, y0, x1, y1 = box
            ox, oy = origin
            flags, border = cv2.INTER_LINEAR | cv2.WARP_RELATIVE_MAP, cv2.BORDER_REFLECT
            fixed, frac = cv2.convertMaps(offsets, None, cv2.CV_16SC2)
            self.y[y0:y1, x0:x1] = cv2.remap(self.y[oy:, ox:], fixed, frac, flags, borderMode=border)
            half = cv2.resize(offsets, ((x1 - x0) // 2, (y1 - y0) // 2), interpolation=cv2.INTER_AREA)
            half *= 0.5
            for p in (self.u, self.v):
                moved = cv2.remap(p[oy // 2 :, ox // 2 :], half, None, flags, borderMode=border)
                p[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = moved
            self._rgb = None

    def pixels(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """(n, 3) uint8 RGB of the pixels (xs[i], ys[i]) (ints inside the frame), converted as `region` converts
        them: a few samples of a large face cost a few pixels, not the box round them."""
        xs, ys = np.asarray(xs, np.intp), np.asarray(ys, np.intp)
        yuv = np.stack([self.y[ys, xs], self.u[ys // 2, xs // 2], self.v[ys // 2, xs // 2]], 1)
        return cv2.transform(np.ascontiguousarray(yuv[:, None, :]), self._to_rgb)[:, 0]

    def region(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """RGB copy of an even-aligned box (from `clip`)."""
        if self._rgb is not None:
            return self._rgb[y0:y1, x0:x1].copy()
        return self._convert(x0, y0, x1, y1)

    def _convert(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        with stage("colour: yuv->rgb"):
            return self._converted(x0, y0, x1, y1)

    def _converted(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        w, h = x1 - x0, y1 - y0
        if w == 0 or h == 0:
            return np.zeros((h, w, 3), np.uint8)
        up = [
            cv2.resize(p[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2], (w, h), interpolation=cv2.INTER_NEAREST)
            for p in (self.u, self.v)
        ]
        return cv2.transform(cv2.merge([self.y[y0:y1, x0:x1], *up]), self._to_rgb)

    def put(self, rgb: np.ndarray, x0: int, y0: int) -> None:
        """Write an RGB box back (same even-aligned box as `region`)."""
        with stage("colour: rgb->yuv"):
            self._put(rgb, x0, y0)

    def _put(self, rgb: np.ndarray, x0: int, y0: int) -> None:
        h, w = rgb.shape[:2]
        if w == 0 or h == 0:
            return
        yuv = cv2.transform(rgb.astype(np.float32), self._to_yuv)
        self.y[y0 : y0 + h, x0 : x0 + w] = np.clip(np.rint(yuv[..., 0]), 0, 255)
        for k, p in ((1, self.u), (2, self.v)):
            half = cv2.resize(yuv[..., k], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
            p[y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2] = np.clip(np.rint(half), 0, 255)
        self._rgb = None
