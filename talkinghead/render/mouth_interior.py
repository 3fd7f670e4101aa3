"""Paints the inside of an open mouth: dark cavity, upper and lower teeth, tongue.

When lips part, the warp alone would fill the gap with stretched lip pixels (the source's lip line),
the most visible artefact of warping methods. This first version draws a shaded procedural interior
clipped to the target inner-lip polygon and lit like the face; a learned refinement replaces it later.
"""

from __future__ import annotations

import cv2
import numpy as np

from talkinghead.face.indices import LOWER_INNER_LIP, UPPER_INNER_LIP
from talkinghead.render.tooth_row import ToothRow

_SS = 2  # supersampling for smooth polygon edges


CHEEKS = [50, 280, 101, 330, 205, 425]  # landmarks whose pixels give the skin's brightness


def face_tone(image: np.ndarray, points: np.ndarray) -> float:
    """Brightness of the face skin (0..1), to light the teeth and cavity like the face."""
    xs, ys = cheek_pixels(points, image.shape[1], image.shape[0])
    return tone_of(image[ys, xs])


def cheek_pixels(points: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(xs, ys): the CHEEKS pixels `face_tone` reads, inside a width x height image."""
    cheek = points[CHEEKS, :2].astype(int)
    return np.clip(cheek[:, 0], 0, width - 1), np.clip(cheek[:, 1], 0, height - 1)


def tone_of(cheek_rgb: np.ndarray) -> float:
    """`face_tone` from the RGB (n, 3) of the `cheek_pixels`."""
    return float(np.clip(np.median(cheek_rgb.mean(axis=1)) / 200.0, 0.25, 1.1))


def skin_colour(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """RGB (0..255 float32) of the cheeks: the median of 3x3 pixels round each cheek point."""
    h, w = image.shape[:2]
    xs = np.clip(np.round(points[CHEEKS, 0]).astype(int)[:, None] + [-1, 0, 1], 0, w - 1)
    ys = np.clip(np.round(points[CHEEKS, 1]).astype(int)[:, None] + [-1, 0, 1], 0, h - 1)
    patches = image[ys[:, :, None], xs[:, None, :]].reshape(-1, 3)
    return np.median(patches.astype(np.float32), axis=0)


def light_tint(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Per-channel tint (max 1) of the light on the face, from the cheeks' colour. Real teeth take the
    colour of the light; a neutral grey band next to warm skin reads as cyan."""
    c = skin_colour(image, points) + 1.0
    return ((c / c.max()) ** TINT_POWER).astype(np.float32)


def painted_teeth(image: np.ndarray, points: np.ndarray) -> ToothRow:
    """The tooth row `--mouth teeth` draws into this face's painted cavity: coloured from the cheeks, with no shade
    of its own (the painted cavity is shaded under the upper lip already; the corpus' open mouths are dim)."""
    return ToothRow.for_skin(skin_colour(image, points), shadow=0.0)


TINT_POWER = 0.3  # how much of the skin's colour the teeth take
CAVITY_RGB = np.array([70, 28, 30], np.float32)  # the cavity's back, for a face of tone 1 (cheeks' grey 200)
TONGUE_RGB = np.array([150, 62, 70], np.float32)
# behind a tooth row the cavity is lighter (x this), as the corpus' open mouths are: they are dim, rarely black.
# Photo-mode FID of open mouths vs the real ones (benchmarks/RESULTS.md, session 7): 48.8 at 1, 45.2 at 2
TEETH_CAVITY = 2.0


def paint_mouth(
    frame: np.ndarray,
    target: np.ndarray,
    inter_ocular: float,
    tone: float,
    tint: np.ndarray | None = None,
    teeth: ToothRow | None = None,
) -> None:
    """Draw the interior in place where the target inner lips are apart; `tint` (from `light_tint`)
    colours the teeth like the light (the dub's fallback uses it; photo mode keeps neutral teeth, which
    the face mesh reads as a wider opening). With `teeth` (photo mode's `--mouth teeth`), the cavity is drawn
    without the flat pale band and that tooth row (render/tooth_row.py) is drawn over it instead."""
    upper = target[UPPER_INNER_LIP, :2].astype(np.float64)
    lower = target[LOWER_INNER_LIP, :2].astype(np.float64)
    gap = float(np.linalg.norm(upper[5] - lower[5]))
    if gap < 0.02 * inter_ocular:
        return
    poly = np.concatenate([upper, lower[-2:0:-1]])
    x0, y0 = np.floor(poly.min(0)).astype(int) - 3
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 3
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return
    cw, ch = (x1 - x0) * _SS, (y1 - y0) * _SS

    def local(pts: np.ndarray) -> np.ndarray:
        return np.round((pts - [x0, y0]) * _SS * 16).astype(np.int32)  # 4 fractional bits

    mask = np.zeros((ch, cw), np.uint8)
    cv2.fillPoly(mask, [local(poly)], 255, cv2.LINE_AA, shift=4)
    if not mask.any():
        return
    # cavity: dark, warmer at the bottom, darkest at the corners
    yy = np.arange(ch, dtype=np.float32)[:, None]  # broadcast rows and columns: no full grids to build
    xx = np.arange(cw, dtype=np.float32)[None, :]
    centre = (poly.mean(0) - [x0, y0]) * _SS
    half_w = max((upper[-1, 0] - upper[0, 0]) * _SS / 2, 1.0)
    radial = np.clip(np.abs(xx - centre[0]) / half_w, 0, 1)
    base = CAVITY_RGB * tone * (1.0 if teeth is None else TEETH_CAVITY)
    img = base[None, None, :] * (1.0 - 0.65 * radial[..., None] ** 1.5)
    # tongue: a soft reddish ellipse rising from the lower lip when the mouth is well open
    if gap > 0.12 * inter_ocular:
        tongue = np.zeros((ch, cw), np.uint8)
        tc = (lower[5] - [x0, y0]) * _SS
        cv2.ellipse(tongue, (int(tc[0]), int(tc[1])), (int(half_w * 0.6), int(gap * _SS * 0.35)), 0, 180, 360, 255, -1)
        tw = cv2.GaussianBlur(tongue, (0, 0), 2.0 * _SS).astype(np.float32)[..., None] / 255.0
        img = img * (1 - 0.8 * tw) + TONGUE_RGB * tone * 0.8 * tw
    # the cavity is darker under the upper lip (it shadows the interior)
    shade = np.clip((yy - centre[1] + gap * _SS * 0.5) / (gap * _SS * 0.6 + 1e-6), 0.55, 1.0)
    img = img * shade[..., None]
    # teeth: follow the upper inner lip, shifted down; lower teeth only when wide open. Lit like the
    # face, dimmer towards the mouth corners.
    corner_dim = (1.0 - 0.35 * radial**2)[..., None]
    teeth_col = np.array([240, 236, 226], np.float32) * min(tone, 1.05) * (1.0 if tint is None else tint)
    tooth_h = min(0.45 * gap, 0.11 * inter_ocular)
    if teeth is None:
        img = _teeth_band(img, upper, +tooth_h, 0.8, teeth_col * corner_dim, local, (ch, cw))
    if teeth is None and gap > 0.15 * inter_ocular:
        img = _teeth_band(
            img, lower, -min(0.25 * gap, 0.06 * inter_ocular), 0.6, teeth_col * 0.8 * corner_dim, local, (ch, cw)
        )
    alpha = cv2.GaussianBlur(mask, (0, 0), 0.7 * _SS).astype(np.float32)[..., None] / 255.0
    small_img = cv2.resize(img, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    small_a = cv2.resize(alpha, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)[..., None]
    layer = None if teeth is None else teeth.layer(target, inter_ocular, (x0, y0, x1, y1))
    if layer is not None:  # drawn into the cavity before the lips clip both: no seam between lip and teeth
        small_img = layer.over(small_img)
    roi = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(roi * (1 - small_a) + small_img * small_a, 0, 255).astype(np.uint8)


def _teeth_band(
    img: np.ndarray,
    lip: np.ndarray,
    offset: float,
    span: float,
    colour: np.ndarray | float,
    local,
    shape: tuple[int, int],
) -> np.ndarray:
    """A band of teeth along `lip`, `offset` px towards the mouth centre, covering `span` of its width."""
    n = len(lip)
    keep = slice(int(round(n * (1 - span) / 2)), n - int(round(n * (1 - span) / 2)))
    edge = lip[keep]
    band = np.concatenate([edge, (edge + [0, offset])[::-1]])
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [local(band)], 255, cv2.LINE_AA, shift=4)
    a = cv2.GaussianBlur(m, (0, 0), 1.0 * _SS).astype(np.float32)[..., None] / 255.0
    # faint gaps between teeth so it does not read as a white bar
    xs = np.arange(shape[1], dtype=np.float32)
    width = max((edge[-1, 0] - edge[0, 0]) * _SS / 8.0, 2.0)
    stripes = 1.0 - 0.12 * np.abs(np.sin(np.pi * (xs - (edge[0, 0] + edge[-1, 0]) * _SS / 2) / width)) ** 16
    return img * (1 - a) + (colour * stripes[None, :, None]) * a
