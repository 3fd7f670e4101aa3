"""A geometric tooth row, drawn over the painted cavity (photo mode's default, `--mouth teeth`, through
render/mouth_interior.py's `paint_mouth(..., teeth=...)`) or over the learned interior (`--mouth hybrid`).

The learned network (render/learned_mouth.py) draws a believable cavity but no distinct teeth: the corpus'
open mouths rarely show them (4 %), so it paints their average. Teeth are a shape prior it cannot learn
from that data, so they are drawn here from the target lips: an upper row tucked under the upper inner
lip and following its curve (a lower row along the lower lip when the mouth is wide open), as tall as a
share of the opening, with teeth laid out on a dental arch (narrower towards the corners, as a real arch
turns away), faint gaps between them, shading that is brighter at the top edge and darker towards the
cavity and the corners, soft anti-aliased edges, and clipped to the opening so the lips occlude it.
Sizes are fractions of the inter-ocular distance, so a 150 px and a 1000 px face get the same teeth.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from talkinghead.face.indices import INNER_MOUTH_POLYGON, LOWER_INNER_LIP, UPPER_INNER_LIP

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
OFF_WHITE = np.array([240.0, 236.0, 226.0], np.float32)  # warm enamel under white light
TINT_POWER = 0.2  # how much of the skin's colour (taken as the light's) the teeth take
# Visible crown widths from the midline, in inter-ocular distances (central incisor 8.5 mm, lateral
# 6.5, canine 7.5, premolars 7; inter-ocular ≈ 62 mm), and the arch's radius: projected, teeth narrow
# towards the corners.
UPPER_EDGES = np.cumsum([0.137, 0.105, 0.121, 0.113, 0.113])
LOWER_EDGES = np.cumsum([0.087, 0.095, 0.111, 0.113, 0.113])
ARCH_RADIUS = 0.42
UPPER_HEIGHT = (0.45, 0.14)  # visible upper crowns: this share of the middle gap, at most this x inter-ocular
LOWER_HEIGHT = (0.3, 0.08)  # lower crowns, shown only when the gap exceeds LOWER_FROM x inter-ocular
LOWER_FROM = 0.15
LOWER_LIGHT = np.array([0.85, 0.82, 0.77], np.float32)  # the lower row is in the upper jaw's shade, warmer
MIN_PX = 3.5  # least height of the upper row, in pixels
CAVITY_SHADOW = 0.6  # darkening of the opening below the upper teeth (they and the lip shade the cavity)
SHADOW_RGB = np.array([0.85, 1.0, 1.0], np.float32)  # the shade is warm: light in a mouth comes back off red tissue
SLIT_SHARE = 0.95  # share of a narrow opening the upper teeth fill: slightly parted lips show the teeth's edges,
SLIT_GAP = 0.15  # up to this gap (x inter-ocular); a dark slit would read as closed lips (to the face mesh too)
SUPERSAMPLE = 2  # a small row is drawn at this many cells a pixel each way, then averaged down (soft, even gaps)
SUPERSAMPLE_BELOW = 32  # mouths at least this wide (px) are drawn at one cell a pixel (photo mode's speed)
OPEN_GAP = 0.02  # inner-lip gap (x inter-ocular) below which no interior and no teeth are drawn (as painted)


def tooth_colour(skin_rgb: np.ndarray) -> np.ndarray:
    """RGB (0..255) of the teeth's lit top edge for a face whose cheeks are `skin_rgb` (0..255): a warm
    off-white tinted by the light (the skin's hue, weakly) and brighter than the skin, relatively more so
    on a dark skin (enamel reflects far more than dark skin under the same light)."""
    skin = np.maximum(np.asarray(skin_rgb, np.float32), 1.0)
    tint = (skin / skin.max()) ** TINT_POWER
    colour = OFF_WHITE * tint
    skin_luma = float(skin @ LUMA)
    want = float(np.clip(255.0 * (skin_luma / 255.0) ** 0.5, 1.25 * skin_luma, 248.0))
    return np.minimum(colour * want / float(colour @ LUMA), 255.0).astype(np.float32)


def row_heights(gap: float, inter_ocular: float) -> tuple[float, float]:
    """Heights (px, at the middle) of the upper and lower rows for an inner-lip gap of `gap` px (0: no row)."""
    share, cap = UPPER_HEIGHT
    slit = float(np.clip(1.0 - gap / (SLIT_GAP * inter_ocular), 0.0, 1.0))
    share += (SLIT_SHARE - share) * slit
    # at least a few pixels where the face is tiny (150 px images: 12 px between the eyes), where a
    # true-to-scale row would be a sub-pixel line that the lips' soft edge greys out
    upper = max(min(share * gap, cap * inter_ocular), min(MIN_PX, 0.5 * gap))
    if gap <= LOWER_FROM * inter_ocular:
        return upper, 0.0
    share, cap = LOWER_HEIGHT
    lower = min(share * gap, cap * inter_ocular, 0.67 * gap - upper)  # a third of the opening left to the cavity
    return upper, lower if lower >= 1.5 else 0.0  # a thinner lower row is a grey line, not teeth


def _arch_edges(edges: np.ndarray, inter_ocular: float) -> np.ndarray:
    """Projected x (px from the midline, one side) of the tooth boundaries laid on the arch."""
    r = ARCH_RADIUS * inter_ocular
    return r * np.sin(np.minimum(edges * inter_ocular / r, np.pi / 2))


def _smooth(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


@dataclass
class ToothRow:
    """Callable like `paint_mouth`: `(frame, target, inter_ocular)` draws the teeth in place."""

    colour: np.ndarray  # tooth_colour of the source face
    # darkening of the interior under the row: the learned interior's fill needs it (CAVITY_SHADOW); the painted
    # cavity is shaded under the upper lip already (0: the corpus' open mouths are dim, not black)
    shadow: float = CAVITY_SHADOW

    @classmethod
    def for_skin(cls, skin_rgb: np.ndarray, shadow: float = CAVITY_SHADOW) -> ToothRow:
        return cls(tooth_colour(skin_rgb), shadow)

    def __call__(self, frame: np.ndarray, target: np.ndarray, inter_ocular: float) -> None:
        """Draw the row (and the cavity's shade) over whatever fills the opening, clipped to the inner lips."""
        box = mouth_box(target, frame.shape[:2])
        if box is None:
            return
        layer = self.layer(target, inter_ocular, box)
        if layer is None:
            return
        x0, y0, x1, y1 = box
        inside = opening_alpha(target, box)[..., None]
        roi = frame[y0:y1, x0:x1].astype(np.float32)
        frame[y0:y1, x0:x1] = np.clip(roi * (1 - inside) + layer.over(roi) * inside, 0, 255).astype(np.uint8)

    def layer(self, target: np.ndarray, inter_ocular: float, box: tuple[int, int, int, int]) -> TeethLayer | None:
        """The row over the pixel box (x0, y0, x1, y1), not yet clipped to the opening; None when closed.

        Drawn in the mouth's own frame (columns along the corners' line, rows across it), where everything that
        depends on the position along the row (lip curves, tooth gaps, taper) is one value per column, at twice
        the resolution, then averaged down and turned into the box with one affine warp (photo mode draws it on
        every open frame: ~0.2 ms at 512 px)."""
        upper = target[UPPER_INNER_LIP, :2].astype(np.float64)
        lower = target[LOWER_INNER_LIP, :2].astype(np.float64)
        gap = float(np.linalg.norm(upper[5] - lower[5]))
        if gap < OPEN_GAP * inter_ocular:
            return None
        x0, y0, x1, y1 = box
        # mouth frame: s along the corners' line (0 at the middle), t across it (down, towards the chin)
        a, b = upper[0], upper[-1]
        half = max(float(np.linalg.norm(b - a)) / 2, 1.0)
        u = (b - a) / (2 * half)
        v = np.array([-u[1], u[0]])
        centre = (a + b) / 2
        us, ut = (upper - centre) @ u, (upper - centre) @ v
        ls, lt = (lower - centre) @ u, (lower - centre) @ v
        s0, s1 = min(us.min(), ls.min()) - 1.0, max(us.max(), ls.max()) + 1.0
        t0, t1 = min(ut.min(), lt.min()) - 1.0, max(ut.max(), lt.max()) + 1.0
        k = SUPERSAMPLE if s1 - s0 < SUPERSAMPLE_BELOW else 1
        n_s, n_t = max(int(np.ceil(s1 - s0)), 1), max(int(np.ceil(t1 - t0)), 1)  # output cells (about a pixel)
        s = (s0 + (np.arange(n_s * k) + 0.5) / k).astype(np.float32)  # columns
        t = (t0 + (np.arange(n_t * k) + 0.5) / k).astype(np.float32)[:, None]  # rows
        t_up = np.interp(s, us[np.argsort(us)], ut[np.argsort(us)]).astype(np.float32)
        t_low = np.interp(s, ls[np.argsort(ls)], lt[np.argsort(ls)]).astype(np.float32)
        xn = np.abs(s) / np.float32(half)
        rgb = np.zeros((len(t), len(s), 3), np.float32)
        alpha = np.zeros((len(t), len(s)), np.float32)
        shadow = np.zeros((len(t), len(s)), np.float32)
        upper_h, lower_h = row_heights(gap, inter_ocular)
        rows = [(t_up, +1.0, upper_h, UPPER_EDGES, np.ones(3, np.float32), 1.0)]
        if lower_h > 0:
            rows.append((t_low, -1.0, lower_h, LOWER_EDGES, LOWER_LIGHT, 0.5))
        taper = np.sqrt(np.clip(1.0 - (xn / 0.92) ** 2.5, 0.0, 1.0))  # the visible row narrows to the corners
        opening = np.maximum(t_low - t_up, 0.0)
        for t_lip, sign, row_h, edges, light, lines in rows:
            height = np.minimum(row_h * taper, 0.6 * opening)  # leave a cavity at the corners
            bounds = np.concatenate([[0.0], _arch_edges(edges, inter_ocular)])
            near = np.min(np.abs(np.abs(s)[:, None] - bounds.astype(np.float32)), axis=1)  # px to the nearest gap
            true_w = np.float32(0.009 * inter_ocular) * (1.0 + xn)
            gap_w = np.maximum(true_w, 0.5)  # a line under half a pixel is drawn fainter, not thinner
            lines_here = lines * true_w / gap_w
            notch = np.exp(-((near / (2.5 * gap_w)) ** 2)) * lines_here
            edge_h = height * (1.0 - 0.18 * notch)  # incisal corners rounded: the edge rises at each gap
            dark_line = 1.0 - 0.22 * lines_here * np.exp(-((near / gap_w) ** 2))  # the gap itself, darker inside
            deeper = 0.3 * lines_here * np.exp(-((near / gap_w) ** 2))
            depth = sign * (t - t_lip)  # px from the lip into the mouth (rows x columns)
            d = np.clip(depth / np.maximum(edge_h, 1e-3), 0.0, 1.0)
            soft = max(0.7, 0.06 * row_h)
            a_row = _smooth((edge_h - depth) / soft + 0.5) * (height > 0.5 / k)
            a_row *= _smooth((depth + 0.03 * inter_ocular) / soft)  # starts under the lip (hidden by it)
            fall = 0.25 * min(row_h / 6.0, 1.0)  # no shading to speak of on a 3 px row
            shade = (1.0 - fall * _smooth((d - 0.35) / 0.65)) * (1.0 - 0.4 * xn**2) * (dark_line - deeper * d)
            rgb += (self.colour * light) * (shade * a_row)[..., None] - rgb * a_row[..., None]
            if sign > 0:  # the cavity under the upper row: darkest just under it
                r = np.clip((t - t_up - height) / np.maximum(opening - height, 1e-3), 0.0, 1.0)
                shadow = self.shadow * (1.0 - 0.4 * r)
            alpha += a_row * (1 - alpha)
        if not alpha.any():
            return None
        # k x k cells averaged into one; cell (j, i) -> box pixel: its centre is centre + s u + t v in the image,
        # whose pixel centres are at +0.5
        grid = np.concatenate([rgb * alpha[..., None], alpha[..., None], (shadow * (1.0 - alpha))[..., None]], 2)
        grid = grid.reshape(n_t, k, n_s, k, 5).mean(axis=(1, 3))
        origin = centre - [x0 + 0.5, y0 + 0.5] + (s0 + 0.5) * u + (t0 + 0.5) * v
        m = np.array([[u[0], v[0], origin[0]], [u[1], v[1], origin[1]]])
        out = cv2.warpAffine(grid, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        return TeethLayer(premult=out[..., :3], alpha=out[..., 3:4], dim=1.0 - out[..., 4:5] * SHADOW_RGB)


@dataclass
class TeethLayer:
    """The row over a box: premultiplied colour, its coverage, and the shade it casts on what is behind."""

    premult: np.ndarray  # (h, w, 3) float32
    alpha: np.ndarray  # (h, w, 1)
    dim: np.ndarray  # (h, w, 3): factor for the interior behind the teeth (the cavity's shade)

    def over(self, interior: np.ndarray) -> np.ndarray:
        """The teeth over `interior` (h, w, 3 float32), shaded."""
        return interior * self.dim * (1 - self.alpha) + self.premult


def mouth_box(target: np.ndarray, shape: tuple[int, ...], pad: int = 3) -> tuple[int, int, int, int] | None:
    """Pixel box (x0, y0, x1, y1) round the inner lips within an image of `shape`; None if under 3 px."""
    poly = target[INNER_MOUTH_POLYGON, :2].astype(np.float64)
    h, w = shape[:2]
    x0, y0 = np.maximum(np.floor(poly.min(0)).astype(int) - pad, 0)
    x1, y1 = np.minimum(np.ceil(poly.max(0)).astype(int) + pad, [w, h])
    if x1 - x0 < 3 or y1 - y0 < 3:
        return None
    return int(x0), int(y0), int(x1), int(y1)


def opening_alpha(target: np.ndarray, box: tuple[int, int, int, int], ss: int = 2) -> np.ndarray:
    """(h, w) float32 soft inside mask of the inner lips over `box`: where an interior shows, the lips hide it."""
    x0, y0, x1, y1 = box
    poly = target[INNER_MOUTH_POLYGON, :2].astype(np.float64)
    mask = np.zeros(((y1 - y0) * ss, (x1 - x0) * ss), np.uint8)
    cv2.fillPoly(mask, [np.round((poly - [x0, y0]) * ss * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    alpha = cv2.GaussianBlur(mask, (0, 0), 0.7 * ss)
    return cv2.resize(alpha, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
