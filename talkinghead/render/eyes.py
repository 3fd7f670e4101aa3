"""Closed eyelids for blinks.

Warping alone cannot close an eye: the iris is squeezed into a thin dark slit, not covered. So the
photo's eye openings are filled once with lid skin (inpainted from the surrounding lid, with a soft
lash line where the lids meet), and each frame blends that closed-eye texture into the warp's source
image in proportion to the lid closure, while the warp moves the lid contour itself.

An avatar (talkinghead/avatar) carries the person's real closed lids, filmed during their own blinks
and normalised to an eye-centred frame (`eye_crop`); given those, the closed texture is their lids,
warped onto this face's eyes and relit, and the inpainted fill is only the fallback.
"""

from __future__ import annotations

import cv2
import numpy as np

from talkinghead.face.indices import (
    LEFT_EYE_CONTOUR,
    LEFT_EYE_CORNERS,
    LEFT_EYE_LOWER,
    RIGHT_EYE_CONTOUR,
    RIGHT_EYE_CORNERS,
    RIGHT_EYE_LOWER,
)

EYE_PX = 48  # eye width (corner to corner) in crop pixels
EX_LO, EX_HI, EY_LO, EY_HI = -0.8, 0.8, -0.55, 0.55  # crop extent, in eye widths
EYE_W, EYE_H = round((EX_HI - EX_LO) * EYE_PX), round((EY_HI - EY_LO) * EYE_PX)
EYES = (LEFT_EYE_CORNERS, (RIGHT_EYE_CORNERS[1], RIGHT_EYE_CORNERS[0]))  # both ordered left to right in the image


def eye_matrix(points: np.ndarray, eye: int) -> np.ndarray:
    """2x3 map from eye-crop pixels to image pixels (origin between the corners, x along them)."""
    a, b = (points[i, :2].astype(np.float64) for i in EYES[eye])
    d = b - a
    width = max(float(np.hypot(*d)), 1e-6)
    ex = d / width
    ey = np.array([-ex[1], ex[0]])
    s = width / EYE_PX
    m = np.zeros((2, 3))
    m[:, 0], m[:, 1] = ex * s, ey * s
    m[:, 2] = (a + b) / 2 + width * (EX_LO * ex + EY_LO * ey)
    return m


def eye_crop(image: np.ndarray, points: np.ndarray, eye: int) -> np.ndarray:
    """The eye-centred crop (EYE_H, EYE_W, 3) of eye 0 (left in the image) or 1 of `image`."""
    return cv2.warpAffine(
        image,
        eye_matrix(points, eye),
        (EYE_W, EYE_H),
        flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


class EyeCloser:
    """Holds the open and closed eye textures of one photo and a working copy to blend into."""

    def __init__(
        self, image: np.ndarray, points: np.ndarray, inter_ocular: float, lids: np.ndarray | None = None
    ) -> None:
        """`lids`: optional (2, EYE_H, EYE_W, 3) uint8 crops of this person's closed eyes (`eye_crop`)."""
        self.image = image
        self.work = image.copy()  # the warp's source: the photo with eyes blended per frame
        h, w = image.shape[:2]
        pts = points[:, :2]
        mask = np.zeros((h, w), np.uint8)
        for contour in (LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR):
            cv2.fillPoly(mask, [np.round(pts[contour]).astype(np.int32)], 255)
        grow = max(1, int(round(0.04 * inter_ocular)))
        mask = cv2.dilate(mask, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            self.box = None
            return
        pad = 3 * grow + 2
        self.box = (
            max(0, xs.min() - pad),
            max(0, ys.min() - pad),
            min(w, xs.max() + pad + 1),
            min(h, ys.max() + pad + 1),
        )
        x0, y0, x1, y1 = self.box
        roi = np.ascontiguousarray(image[y0:y1, x0:x1])
        m = mask[y0:y1, x0:x1]
        closed = cv2.inpaint(roi, m, max(3, 2 * grow), cv2.INPAINT_TELEA).astype(np.float32)
        # inpainting pulls in lashes and liner, which reads as a dark smudge (and as an open eye to a
        # landmark model): pull the fill towards the lid skin around the eye, keeping some texture
        ring = cv2.dilate(m, np.ones((6 * grow + 1, 6 * grow + 1), np.uint8)) & ~cv2.dilate(
            m, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)
        )
        around = roi[ring > 0].astype(np.float32)
        if len(around):
            lum = around.mean(axis=1)
            skin = np.median(around[lum >= np.percentile(lum, 50)], axis=0)
            inside = (m > 0)[..., None]
            closed = np.where(inside, 0.35 * closed + 0.65 * (skin * 0.94), closed)
        # lashes: a soft darker line along the lower lid, where the closed lids meet
        lash = np.zeros(m.shape, np.uint8)
        for lower, corners in ((LEFT_EYE_LOWER, (33, 133)), (RIGHT_EYE_LOWER, (263, 362))):
            line = np.concatenate([pts[[corners[0]]], pts[lower[1:-1]], pts[[corners[1]]]]) - [x0, y0]
            line[:, 1] -= 0.02 * inter_ocular
            cv2.polylines(
                lash,
                [np.round(line * 4).astype(np.int32)],
                False,
                255,
                max(1, int(round(0.035 * inter_ocular))),
                cv2.LINE_AA,
                shift=2,
            )
        la = cv2.GaussianBlur(lash, (0, 0), 0.6 + 0.01 * inter_ocular).astype(np.float32)[..., None] / 255.0
        self.closed = (closed * (1 - 0.45 * la)).astype(np.float32)
        self.open = roi.astype(np.float32)
        if lids is not None:
            self.closed = _filmed_lids(lids, pts - [x0, y0], self.open, self.closed, ring)
        self.alpha = cv2.GaussianBlur(m, (0, 0), max(1.0, grow)).astype(np.float32)[..., None] / 255.0
        self._last = 0.0

    def source_for(self, closure: float) -> np.ndarray:
        """The photo with its eyes `closure` (0 open .. 1 shut) closed; reuses one buffer."""
        a = float(np.clip((closure - 0.3) / 0.55, 0.0, 1.0))
        a = a * a * (3 - 2 * a)
        if self.box is None or (a == 0.0 and self._last == 0.0):
            return self.work
        x0, y0, x1, y1 = self.box
        w = self.alpha * a
        self.work[y0:y1, x0:x1] = np.clip(self.open * (1 - w) + self.closed * w + 0.5, 0, 255).astype(np.uint8)
        self._last = a
        return self.work


def _filmed_lids(
    lids: np.ndarray, pts: np.ndarray, open_roi: np.ndarray, fallback: np.ndarray, ring: np.ndarray
) -> np.ndarray:
    """The filmed closed eyes warped onto this face's eyes (points local to the eye box), relit so the
    skin round the eyes matches; the inpainted `fallback` stays wherever the crops do not reach."""
    h, w = open_roi.shape[:2]
    out = fallback.copy()
    for eye in (0, 1):
        m = eye_matrix(pts, eye)
        warped = cv2.warpAffine(lids[eye], m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        valid = cv2.warpAffine(np.full(lids[eye].shape[:2], 255, np.uint8), m, (w, h), flags=cv2.INTER_LINEAR)
        valid = cv2.erode(valid, np.ones((3, 3), np.uint8)).astype(np.float32)[..., None] / 255.0
        warped = warped.astype(np.float32)
        near = (ring > 0) & (valid[..., 0] > 0.99)
        if near.sum() >= 8:  # light: the ratio of the surroundings' colours, as for the mouth bank
            gain = np.clip(open_roi[near].mean(0) / np.maximum(warped[near].mean(0), 1.0), 0.6, 1.6)
            warped *= gain
        out = out * (1 - valid) + warped * valid
    return out.astype(np.float32)
