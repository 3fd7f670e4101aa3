"""Still images in, RGB uint8 out."""

from __future__ import annotations

import os

import cv2
import numpy as np

from talkinghead.errors import InputError, require_file


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode JPEG/PNG/WebP/BMP/TIFF to RGB uint8 (alpha composited on white, greyscale expanded)."""
    p = require_file(path, "face image")
    data = np.fromfile(p, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise InputError(f"{p} is not an image this tool can read (use JPEG, PNG or WebP).")
    if img.dtype != np.uint8:
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(float(img.max()), 1.0))
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        a = img[..., 3:4].astype(np.float32) / 255.0
        img = (img[..., :3].astype(np.float32) * a + 255.0 * (1 - a)).astype(np.uint8)
    return cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)


def fit_size(image: np.ndarray, longer_side: int | None) -> np.ndarray:
    """Resize so the longer side is `longer_side` (if given), then make both sides even for H.264."""
    h, w = image.shape[:2]
    if longer_side:
        s = longer_side / max(h, w)
        nw, nh = max(2, int(round(w * s / 2)) * 2), max(2, int(round(h * s / 2)) * 2)
        return cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    return np.ascontiguousarray(image[: h - h % 2, : w - w % 2])
