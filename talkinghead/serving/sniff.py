"""What an uploaded file really is, found from its bytes, never from its name or its Content-Type.

Photos: the format from the magic bytes and the pixel count from the header (JPEG SOF, PNG IHDR, WebP
VP8/VP8L/VP8X), so a decompression bomb is refused before anything decodes it. Audio and video: PyAV
opens the container, its packets are counted up to the duration limit (recordings from a browser often
declare no duration) and the first packets are decoded, so a file that merely starts like a media file
is refused too.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from talkinghead.errors import InputError

# container formats PyAV opens still images with: a photo is not a video to dub
_IMAGE_DEMUXERS = ("image2", "_pipe", "gif", "apng")


class TooLarge(InputError):
    """The file is valid but beyond a limit of this server (pixels, duration)."""


class Unsupported(InputError):
    """The bytes are not a kind of file this server takes."""


@dataclass(frozen=True)
class ImageInfo:
    format: str  # jpeg | png | webp
    width: int
    height: int

    @property
    def suffix(self) -> str:
        return {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}[self.format]


@dataclass(frozen=True)
class MediaInfo:
    format: str  # container name as FFmpeg calls it
    duration: float  # seconds, from the packets
    width: int = 0  # video only
    height: int = 0


def image_info(path: Path) -> ImageInfo | None:
    """Format and size of a JPEG, PNG or WebP from its header; None if the bytes are none of these."""
    with open(path, "rb") as f:
        head = f.read(32)
        try:
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                w, h = struct.unpack(">II", head[16:24])
                return ImageInfo("png", w, h)
            if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
                return _webp(head)
            if head.startswith(b"\xff\xd8\xff"):
                return _jpeg(f)
        except (struct.error, IndexError):
            return None
    return None


def _webp(head: bytes) -> ImageInfo | None:
    chunk = head[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(head[24:27], "little") + 1
        h = int.from_bytes(head[27:30], "little") + 1
        return ImageInfo("webp", w, h)
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", head[26:30])
        return ImageInfo("webp", w & 0x3FFF, h & 0x3FFF)
    if chunk == b"VP8L" and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return ImageInfo("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    return None


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(f: BinaryIO) -> ImageInfo | None:
    """Walk the JPEG segments up to the first start-of-frame marker, which holds the size."""
    f.seek(2)
    for _ in range(10_000):  # a real file reaches its SOF within a handful of segments
        b = f.read(1)
        if b != b"\xff":
            return None
        marker = f.read(1)
        while marker == b"\xff":  # fill bytes
            marker = f.read(1)
        if not marker:
            return None
        m = marker[0]
        if m == 0x01 or 0xD0 <= m <= 0xD7:  # markers without a length
            continue
        if m in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        length = struct.unpack(">H", f.read(2))[0]
        if length < 2:
            return None
        if m in _SOF:
            seg = f.read(5)
            h, w = struct.unpack(">HH", seg[1:5])
            return ImageInfo("jpeg", w, h)
        f.seek(length - 2, 1)
    return None


def check_image(path: Path, max_pixels: int, what: str = "photo") -> ImageInfo:
    """The photo's format and size, or InputError: not a JPEG/PNG/WebP, empty, or more pixels than allowed."""
    info = image_info(path)
    if info is None:
        raise Unsupported(f"The {what} is not a JPEG, PNG or WebP image.")
    if info.width <= 0 or info.height <= 0:
        raise InputError(f"The {what} declares no size; it is damaged.")
    if info.width * info.height > max_pixels:
        raise TooLarge(
            f"The {what} is {info.width}x{info.height} pixels; this server takes at most "
            f"{max_pixels / 1e6:.0f} megapixels."
        )
    return info


def check_media(path: Path, kind: str, max_seconds: float, max_pixels: int = 0) -> MediaInfo:
    """Probe an audio (`kind="audio"`) or video (`kind="video"`) upload: it must open, hold that kind of
    stream, decode, and last at most `max_seconds`; a video's frames at most `max_pixels`."""
    import av

    what = "speech" if kind == "audio" else "video"
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        raise Unsupported(f"The {what} is not an audio or video file this server can read.") from None
    try:
        fmt = container.format.name
        streams = container.streams.audio if kind == "audio" else container.streams.video
        if kind == "video" and any(d in fmt for d in _IMAGE_DEMUXERS):
            raise Unsupported("The video is a still image; use the photo mode for photos.")
        if not streams:
            raise Unsupported(f"The {what} has no {'sound' if kind == 'audio' else 'picture'}.")
        stream = streams[0]
        width = height = 0
        if kind == "video":
            ctx: Any = stream.codec_context
            width, height = ctx.width, ctx.height
            if width * height > max_pixels:
                raise TooLarge(
                    f"The video is {width}x{height} pixels; this server takes at most "
                    f"{max_pixels / 1e6:.0f} megapixels per frame."
                )
        duration = _duration(container, stream, max_seconds, what)
    except av.FFmpegError:
        raise InputError(f"The {what} could not be decoded; the file is damaged or in an unsupported format.") from None
    finally:
        container.close()
    return MediaInfo(fmt, duration, width, height)


def _duration(container: Any, stream: Any, max_seconds: float, what: str) -> float:
    """Seconds spanned by the stream's packets (decoding the first few), stopping past the limit."""
    tb = float(stream.time_base) if stream.time_base else 0.0
    start = end = None
    decoded = tried = 0
    for packet in container.demux(stream):
        if packet.size == 0:
            continue
        if decoded < 3 and tried < 60:  # a few frames prove the codec works; a damaged file fails here
            tried += 1
            decoded += len(packet.decode())
        if packet.pts is not None and tb:
            t0 = packet.pts * tb
            t1 = t0 + (packet.duration or 0) * tb
            start = t0 if start is None else min(start, t0)
            end = t1 if end is None else max(end, t1)
            if end - start > max_seconds:
                raise TooLarge(f"The {what} is longer than {max_seconds:g} seconds, the most this server takes.")
    if not decoded:
        raise InputError(f"The {what} holds no {'sound' if what == 'speech' else 'frames'} that can be decoded.")
    return 0.0 if start is None or end is None else end - start
