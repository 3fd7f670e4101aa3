"""Still images in, RGB uint8 out: upright (EXIF orientation applied), of a size that can be animated."""

from __future__ import annotations

import os

import cv2
import numpy as np

from talkinghead.errors import InputError, require_file

MAX_SIDE = 4096  # longer side of an animated photo unless the caller asks for another size (`--size`)
MAX_PIXELS = 100_000_000  # larger images are refused from their header, before decoding (decompression bombs)
_ORIENTATION = 0x0112  # EXIF tag: how the stored pixels must be turned to be shown upright


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode JPEG/PNG/WebP/BMP/TIFF to RGB uint8 (alpha composited on white, greyscale expanded), turned
    upright as the EXIF orientation of phone photos says."""
    p = require_file(path, "face image")
    orientation = _check_header(p)
    data = np.fromfile(p, dtype=np.uint8)
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error:
        img = None
    if img is None or img.size == 0:
        raise InputError(f"{p} is not an image this tool can read (use JPEG, PNG or WebP).")
    if img.dtype != np.uint8:
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(float(img.max()), 1.0))
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        a = img[..., 3:4].astype(np.float32) / 255.0
        img = cv2.cvtColor((img[..., :3].astype(np.float32) * a + 255.0 * (1 - a)).astype(np.uint8), cv2.COLOR_BGR2RGB)
    else:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(upright(img, orientation))


def _check_header(p: str) -> int:
    """EXIF orientation (1 = as stored) from the header alone; an image over MAX_PIXELS raises InputError
    before a byte of it is decoded."""
    import warnings

    from PIL import Image  # lazy: only photo mode needs it

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides, below
            with Image.open(p) as im:
                w, h = im.size
                try:
                    orientation = int(im.getexif().get(_ORIENTATION, 1) or 1)
                except Exception:  # a damaged EXIF block: the pixels may still be fine
                    orientation = 1
    except Image.DecompressionBombError:
        w, h, orientation = MAX_PIXELS, 2, 1
    except Exception:  # not something Pillow reads (OpenCV may): its decoder decides below
        return 1
    if w * h > MAX_PIXELS:
        raise InputError(
            f"{p} is too large an image ({w}x{h} pixels; at most {MAX_PIXELS // 1_000_000} "
            "megapixels): scale it down first."
        )
    return orientation if 1 <= orientation <= 8 else 1


def upright(img: np.ndarray, orientation: int) -> np.ndarray:
    """The stored pixels turned as EXIF orientation 1..8 says (the same as Pillow's `exif_transpose`)."""
    if orientation == 2:
        return img[:, ::-1]
    if orientation == 3:
        return img[::-1, ::-1]
    if orientation == 4:
        return img[::-1]
    if orientation == 5:
        return img.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(img, k=-1)
    if orientation == 7:
        return np.rot90(img, k=2).transpose(1, 0, 2)
    if orientation == 8:
        return np.rot90(img, k=1)
    return img


def fit_size(image: np.ndarray, longer_side: int | None) -> np.ndarray:
    """Resize so the longer side is `longer_side` (if given; else at most MAX_SIDE), then make both sides
    even for H.264."""
    h, w = image.shape[:2]
    if not longer_side and max(h, w) > MAX_SIDE:
        longer_side = MAX_SIDE
    if longer_side:
        s = longer_side / max(h, w)
        nw, nh = max(2, int(round(w * s / 2)) * 2), max(2, int(round(h * s / 2)) * 2)
        return cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    return np.ascontiguousarray(image[: h - h % 2, : w - w % 2])
