"""Closed eyelids for blinks.

Warping alone cannot close an eye: the iris is squeezed into a thin dark slit, not covered. So the
photo's eye openings are filled once with lid skin (inpainted from the surrounding lid, with a soft
lash line where the lids meet), and each frame blends that closed-eye texture into the warp's source
image in proportion to the lid closure, while the warp moves the lid contour itself.
"""

from __future__ import annotations

import cv2
import numpy as np

from talkinghead.face.indices import LEFT_EYE_CONTOUR, LEFT_EYE_LOWER, RIGHT_EYE_CONTOUR, RIGHT_EYE_LOWER


class EyeCloser:
    """Holds the open and closed eye textures of one photo and a working copy to blend into."""

    def __init__(self, image: np.ndarray, points: np.ndarray, inter_ocular: float) -> None:
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
        self.box = (max(0, xs.min() - pad), max(0, ys.min() - pad), min(w, xs.max() + pad + 1), min(h, ys.max() + pad + 1))
        x0, y0, x1, y1 = self.box
        roi = np.ascontiguousarray(image[y0:y1, x0:x1])
        m = mask[y0:y1, x0:x1]
        closed = cv2.inpaint(roi, m, max(3, 2 * grow), cv2.INPAINT_TELEA).astype(np.float32)
        # inpainting pulls in lashes and liner, which reads as a dark smudge (and as an open eye to a
        # landmark model): pull the fill towards the lid skin around the eye, keeping some texture
        ring = cv2.dilate(m, np.ones((6 * grow + 1, 6 * grow + 1), np.uint8)) & ~cv2.dilate(
            m, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
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
            cv2.polylines(lash, [np.round(line * 4).astype(np.int32)], False, 255,
                          max(1, int(round(0.035 * inter_ocular))), cv2.LINE_AA, shift=2)
        la = cv2.GaussianBlur(lash, (0, 0), 0.6 + 0.01 * inter_ocular).astype(np.float32)[..., None] / 255.0
        self.closed = (closed * (1 - 0.45 * la)).astype(np.float32)
        self.open = roi.astype(np.float32)
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
