"""Draws the inside of an open mouth with the learned interior network (models/mouth.py).

The network sees a mouth-centred patch: the outer lip corners on a fixed horizontal line, scaled to a
fixed width, so a 150 px and a 1000 px face ask the same question. Its answer (colour relative to the
face's skin) is lit with the source photo's own skin colour, warped back between the target lips and
blended there exactly like the painted interior (render/mouth_interior.py, kept as the fallback). The
same patch frame is used to cut the training patches from real videos (training/mouth_patches.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from talkinghead.face.indices import (
    INNER_MOUTH_POLYGON,
    LOWER_INNER_LIP,
    LOWER_OUTER_LIP,
    UPPER_INNER_LIP,
    UPPER_OUTER_LIP,
)
from talkinghead.models.mouth import MouthConfig, MouthNet
from talkinghead.render.mouth_interior import CHEEKS
from talkinghead.render.tooth_row import OPEN_GAP, ToothRow, mouth_box, opening_alpha
from talkinghead.weights import WeightsRef, load_model

CORNERS = (61, 291)  # outer lip corners: they fix the patch's position, angle and scale
MOUTH_SPAN = 0.7  # share of the patch width between the corners
CENTRE_Y = 0.4  # the corners' height in the patch (the jaw opens downwards)
_SS = 4  # supersampling of the patch's inside mask (shape_maps; the frame's opening: tooth_row.opening_alpha)


def patch_transform(points: np.ndarray, cfg: MouthConfig) -> np.ndarray:
    """2x3 affine from image pixels to the mouth patch of `points` (478 landmarks)."""
    a = points[CORNERS[0], :2].astype(np.float64)
    b = points[CORNERS[1], :2].astype(np.float64)
    span = max(float(np.linalg.norm(b - a)), 1e-3)
    u = (b - a) / span
    s = MOUTH_SPAN * cfg.patch_w / span
    c = (a + b) / 2
    rot = np.array([[u[0], u[1]], [-u[1], u[0]]]) * s
    t = np.array([cfg.patch_w / 2, CENTRE_Y * cfg.patch_h]) - rot @ c
    return np.concatenate([rot, t[:, None]], 1).astype(np.float32)


def shape_maps(points: np.ndarray, m: np.ndarray, cfg: MouthConfig) -> np.ndarray:
    """(4, H, W) float32 network input: soft inside mask of the inner lips, signed distance to them
    (tanh of px / 4, positive inside), x and y in -1..1."""
    w, h = cfg.patch_w, cfg.patch_h
    poly = points[INNER_MOUTH_POLYGON, :2].astype(np.float64) @ m[:, :2].T.astype(np.float64) + m[:, 2]
    big = np.zeros((h * _SS, w * _SS), np.uint8)
    cv2.fillPoly(big, [np.round(poly * _SS * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    soft = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    hard = (soft > 0.5).astype(np.uint8)
    inside = cv2.distanceTransform(hard, cv2.DIST_L2, 3)
    outside = cv2.distanceTransform(1 - hard, cv2.DIST_L2, 3)
    dist = np.tanh((inside - outside) / 4.0)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([soft, dist, xs / (w - 1) * 2 - 1, ys / (h - 1) * 2 - 1]).astype(np.float32)


def _median_colour(image: np.ndarray, pts: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    xs = np.clip(np.round(pts[:, 0]).astype(int)[:, None] + [-1, 0, 1], 0, w - 1)
    ys = np.clip(np.round(pts[:, 1]).astype(int)[:, None] + [-1, 0, 1], 0, h - 1)
    patches = image[ys[:, :, None], xs[:, None, :]].reshape(-1, 3)  # 3x3 pixels round each point
    return np.median(patches.astype(np.float32), axis=0)


def face_colours(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(6,) float32 colour condition: skin RGB / 255 (cheeks) and log(lip / skin) per channel (the lip
    bodies: halfway between the outer and inner contours)."""
    skin = _median_colour(image, points[CHEEKS, :2])
    body = np.concatenate(
        [
            (points[UPPER_OUTER_LIP[2:-2], :2] + points[UPPER_INNER_LIP[2:-2], :2]) / 2,
            (points[LOWER_OUTER_LIP[2:-2], :2] + points[LOWER_INNER_LIP[2:-2], :2]) / 2,
        ]
    )
    lip = _median_colour(image, body)
    return np.concatenate([skin / 255.0, np.log((lip + 4.0) / (skin + 4.0))]).astype(np.float32)


def mouth_gap(points: np.ndarray) -> float:
    """Inner-lip gap at the middle, in pixels."""
    return float(np.linalg.norm(points[UPPER_INNER_LIP[5], :2] - points[LOWER_INNER_LIP[5], :2]))


def load_mouth_net(weights: WeightsRef = "mouth") -> MouthNet:
    """The interior network: the shipped one (sha256-checked) or a file from `talkinghead train mouth`."""
    return load_model("mouth", weights).network(MouthNet)


@dataclass
class LearnedMouth:
    """Callable like `paint_mouth` for one source face: `(frame, target, inter_ocular)` draws in place."""

    net: MouthNet
    colours: np.ndarray  # face_colours of the source photo

    @classmethod
    def for_face(cls, image: np.ndarray, points: np.ndarray, weights: WeightsRef = "mouth") -> LearnedMouth:
        return cls(load_mouth_net(weights), face_colours(image, points))

    def interior(self, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The patch's RGB interior (H, W, 3 float32, 0..255) for target landmarks, and its transform."""
        cfg = self.net.cfg
        m = patch_transform(target, cfg)
        shape = torch.from_numpy(shape_maps(target, m, cfg))[None]
        wanted = self.colours if cfg.teeth <= 0 else np.append(self.colours, np.float32(cfg.teeth))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a net this small: more threads only spin (80x the CPU on a busy machine)
        try:
            with torch.inference_mode():
                ratio = self.net(shape, torch.from_numpy(wanted)[None])[0].permute(1, 2, 0).numpy()
        finally:
            torch.set_num_threads(threads)
        skin = self.colours[:3] * 255.0 + 4.0
        return np.clip(ratio * skin - 4.0, 0, 255).astype(np.float32), m

    def __call__(self, frame: np.ndarray, target: np.ndarray, inter_ocular: float) -> None:
        if mouth_gap(target) < OPEN_GAP * inter_ocular:
            return
        box = mouth_box(target, frame.shape[:2])
        if box is None:
            return
        x0, y0, x1, y1 = box
        patch, m = self.interior(target)
        back = cv2.invertAffineTransform(m)
        back[:, 2] -= [x0, y0]
        img = cv2.warpAffine(patch, back, (x1 - x0, y1 - y0), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        img = self.over_interior(np.clip(img, 0, 255), target, inter_ocular, box)
        a = opening_alpha(target, box)[..., None]
        roi = frame[y0:y1, x0:x1].astype(np.float32)
        frame[y0:y1, x0:x1] = np.clip(roi * (1 - a) + img * a, 0, 255).astype(np.uint8)

    def over_interior(
        self, img: np.ndarray, target: np.ndarray, inter_ocular: float, box: tuple[int, int, int, int]
    ) -> np.ndarray:
        """What is drawn over the network's interior before the lips clip it (nothing here; teeth in the hybrid)."""
        return img


@dataclass
class HybridMouth(LearnedMouth):
    """The learned interior (cavity, tongue, shading) with a geometric tooth row over it (render/tooth_row.py):
    the network alone draws no distinct teeth (the corpus rarely shows them), the row alone no cavity."""

    teeth: ToothRow | None = None

    def __post_init__(self) -> None:
        if self.teeth is None:
            self.teeth = ToothRow.for_skin(self.colours[:3] * 255.0)

    @classmethod
    def for_face(cls, image: np.ndarray, points: np.ndarray, weights: WeightsRef = "mouth") -> HybridMouth:
        return cls(load_mouth_net(weights), face_colours(image, points))

    def over_interior(
        self, img: np.ndarray, target: np.ndarray, inter_ocular: float, box: tuple[int, int, int, int]
    ) -> np.ndarray:
        """The teeth replace the interior where they are (then the lips clip both at once: no seam of the
        network's dark under-lip band between lip and teeth)."""
        assert self.teeth is not None
        layer = self.teeth.layer(target, inter_ocular, box)
        return img if layer is None else layer.over(img)
