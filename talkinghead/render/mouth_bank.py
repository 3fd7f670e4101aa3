"""The speaker's own mouth interiors (teeth, tongue, cavity), collected from the video being dubbed.

A painted interior replaces the person's real teeth with a generic band. The video itself shows their
mouth open many times, so while tracking we keep a bounded bank of those interiors, each normalised to
a mouth-centred frame (origin between the inner lip corners, x along the corners, unit = mouth width)
and indexed by shape (opening, width relative to the eyes) and coarse head turn. A dubbed frame's
open mouth is then drawn from the closest real interiors, stretched between the target's inner lips,
matched to the frame's lighting and blended over time; where the new lips are close to the filmed ones
the filmed pixels stay; the painted interior remains the fallback when the bank has nothing close.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from talkinghead.face.indices import LOWER_INNER_LIP, UPPER_INNER_LIP
from talkinghead.render.mouth_interior import CHEEKS, light_tint, paint_mouth

MOUTH_PX = 96  # mouth width (corner to corner) in bank pixels
X_LO, X_HI, Y_LO, Y_HI = -0.75, 0.75, -0.55, 0.65  # crop extent, in mouth widths
CROP_W, CROP_H = round((X_HI - X_LO) * MOUTH_PX), round((Y_HI - Y_LO) * MOUTH_PX)
XS = np.linspace(-0.5, 0.5, 33)  # where the inner-lip curves are sampled
MIN_OPEN = 0.06  # openings (in mouth widths) below this show no interior worth keeping
_OPEN_BIN, _WIDTH_BIN, _YAW_BIN = 0.05, 0.12, 0.08
_SCALE = np.array([0.05, 0.12, 0.08])  # feature distances in these units...
MAX_DIST = 2.5  # ...beyond which an entry is not "close"
KEEP_BELOW, REPLACE_ABOVE = 0.015, 0.05  # mean inner-lip move (mouth widths): keep the filmed mouth / replace it
OPEN_KEEP, OPEN_REPLACE = 0.1, 0.3  # ...and relative change of the opening
_NOSE = 1
_RIM = 0.1  # share of the entry's opening next to each lip left out


def mouth_axes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Origin, 2x2 rotation (rows: x and y axes) and width of the mouth-centred frame."""
    a, b = points[UPPER_INNER_LIP[0], :2].astype(np.float64), points[UPPER_INNER_LIP[-1], :2].astype(np.float64)
    d = b - a
    width = float(np.hypot(*d))
    ex = d / max(width, 1e-6)
    return (a + b) / 2, np.array([ex, [-ex[1], ex[0]]]), max(width, 1e-6)


def _normalise(pts: np.ndarray, origin: np.ndarray, rot: np.ndarray, width: float) -> np.ndarray:
    return (pts[..., :2].astype(np.float64) - origin) @ rot.T / width


def lip_curves(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower inner lip heights at XS, in the mouth frame (y grows downwards)."""
    o, r, w = mouth_axes(points)
    out = []
    for idx in (UPPER_INNER_LIP, LOWER_INNER_LIP):
        q = _normalise(points[idx], o, r, w)
        x = np.maximum.accumulate(q[:, 0])
        out.append(np.interp(XS, x + np.arange(len(x)) * 1e-6, q[:, 1]))
    up, lo = out
    return up, np.maximum(lo, up)


def features(points: np.ndarray, inter_ocular: float) -> np.ndarray:
    """(opening, width / eye distance, head turn): what a bank entry is looked up by."""
    o, r, w = mouth_axes(points)
    up, lo = lip_curves(points)
    yaw = float(_normalise(points[_NOSE], o, r, w)[0])
    return np.array([float((lo - up)[len(XS) // 2]), w / max(inter_ocular, 1e-6), yaw])


def _crop_matrix(points: np.ndarray) -> np.ndarray:
    """2x3 map from crop pixels to image pixels."""
    o, r, w = mouth_axes(points)
    s = w / MOUTH_PX
    m = np.zeros((2, 3))
    m[:, 0], m[:, 1] = r[0] * s, r[1] * s
    m[:, 2] = o + w * (X_LO * r[0] + Y_LO * r[1])
    return m


def footprint(points: np.ndarray) -> tuple[float, float, float, float]:
    """Image box the crop of this mouth covers."""
    m = _crop_matrix(points)
    c = np.array([[0, 0, 1], [CROP_W, 0, 1], [0, CROP_H, 1], [CROP_W, CROP_H, 1]], np.float64) @ m.T
    return float(c[:, 0].min()), float(c[:, 1].min()), float(c[:, 0].max()), float(c[:, 1].max())


def extract(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The mouth-centred crop (CROP_H, CROP_W, 3) of `image` (points in image coordinates)."""
    return cv2.warpAffine(
        image,
        _crop_matrix(points),
        (CROP_W, CROP_H),
        flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def _interior_mask(up: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Crop-sized mask of the inner mouth polygon (bool)."""
    poly = np.concatenate([np.stack([XS, up], 1), np.stack([XS, lo], 1)[::-1]])
    px = np.round(((poly - [X_LO, Y_LO]) * MOUTH_PX) * 16).astype(np.int32)
    m = np.zeros((CROP_H, CROP_W), np.uint8)
    cv2.fillPoly(m, [px], 1, cv2.LINE_8, shift=4)
    return m.astype(bool)


def _surround(crop: np.ndarray, up: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Mean colour of lips and skin round the interior: the lighting reference of a crop."""
    inside = cv2.dilate(_interior_mask(up, lo).astype(np.uint8), np.ones((5, 5), np.uint8))
    return np.array(cv2.mean(crop, mask=1 - inside)[:3], np.float32)


def _key(f: np.ndarray) -> tuple[int, int, int]:
    return int(f[0] // _OPEN_BIN), int(f[1] // _WIDTH_BIN), int(np.round(f[2] / _YAW_BIN))


class MouthCollector:
    """Keeps, per shape bin, the sharpest open mouth seen since the last `save` (tracking side)."""

    def __init__(self) -> None:
        self._best: dict[tuple[int, int, int], tuple] = {}

    def add(self, index: int, frame, points: np.ndarray, inter_ocular: float) -> None:
        """Offer frame `index` (an I420Frame or an RGB array) with its landmarks."""
        f = features(points, inter_ocular)
        if f[0] < MIN_OPEN:
            return
        x0, y0, x1, y1 = footprint(points)
        if isinstance(frame, np.ndarray):
            img, off = frame, np.zeros(2)
        else:  # only the box round the mouth is converted to RGB
            bx = frame.clip(x0, y0, x1 + 1, y1 + 1)
            if bx[2] - bx[0] < 8 or bx[3] - bx[1] < 8:
                return
            img, off = frame.region(*bx), np.array([bx[0], bx[1]], np.float64)
        local = points[:, :2] - off
        crop = extract(img, local)
        up, lo = lip_curves(local)
        inner = _interior_mask(up, lo)
        if inner.sum() < 20:
            return
        grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        sharp = float(cv2.Laplacian(grey, cv2.CV_32F)[inner].var())
        score = sharp - 400.0 * abs(f[2])  # sharp and frontal first
        key = _key(f)
        old = self._best.get(key)
        if old is None or score > old[0]:
            self._best[key] = (score, index, crop, up, lo, f, _surround(crop, up, lo))

    def bank(self) -> MouthBank:
        """What was kept, as a bank (an avatar holds it in memory rather than in chunk files)."""
        if not self._best:
            return MouthBank.empty()
        items = [self._best[k] for k in sorted(self._best)]
        return MouthBank(
            *(
                np.stack([it[j] for it in items]).astype(t)
                for j, t in ((2, np.uint8), (3, np.float32), (4, np.float32), (5, np.float32), (6, np.float32))
            )
        )

    def save(self, path: Path) -> None:
        """Write what was kept (atomically) and start afresh: one file per tracked chunk."""
        items = [self._best[k] for k in sorted(self._best)]
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(
            tmp,
            score=np.array([i[0] for i in items], np.float64).reshape(-1),
            index=np.array([i[1] for i in items], np.int64).reshape(-1),
            crop=np.array([i[2] for i in items], np.uint8).reshape(-1, CROP_H, CROP_W, 3),
            up=np.array([i[3] for i in items], np.float32).reshape(-1, len(XS)),
            lo=np.array([i[4] for i in items], np.float32).reshape(-1, len(XS)),
            feat=np.array([i[5] for i in items], np.float32).reshape(-1, 3),
            surround=np.array([i[6] for i in items], np.float32).reshape(-1, 3),
        )
        tmp.replace(path)
        self._best.clear()


class MouthBank:
    """The entries of several collector files, best per shape bin, from frames before a fixed limit."""

    def __init__(
        self, crop: np.ndarray, up: np.ndarray, lo: np.ndarray, feat: np.ndarray, surround: np.ndarray
    ) -> None:
        self.crop, self.up, self.lo, self.feat, self.surround = crop, up, lo, feat, surround

    def __len__(self) -> int:
        return len(self.feat)

    @staticmethod
    def empty() -> MouthBank:
        return MouthBank(
            np.zeros((0, CROP_H, CROP_W, 3), np.uint8),
            *(np.zeros((0, n), np.float32) for n in (len(XS), len(XS), 3, 3)),
        )

    @staticmethod
    def load(files: list[Path], upto: int) -> MouthBank:
        """Entries of frames [0, upto) only, so a segment renders the same whether the job ran through
        or was resumed."""
        return BankLoader(files).upto(upto)

    def nearest(self, feat: np.ndarray, n: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """Indices and scaled distances of up to n entries within MAX_DIST of `feat`."""
        if not len(self):
            return np.zeros(0, int), np.zeros(0)
        d = np.sqrt((((self.feat - feat) / _SCALE) ** 2).sum(1))
        order = np.argsort(d, kind="stable")[:n]
        order = order[d[order] <= MAX_DIST]
        return order, d[order]


class BankLoader:
    """Merges collector files as rendering advances: the limit only grows within a job, so each entry
    is looked at once and only winning crops are kept in memory (one per shape bin)."""

    def __init__(self, files: list[Path] | Path) -> None:
        self._source = files  # a list of files, or the work folder whose mouths_*.npz to read
        self._limit = 0
        self._seen: dict[Path, int] = {}  # file -> how many of its entries (index order) were merged
        self._best: dict[tuple[int, int, int], tuple] = {}

    def upto(self, limit: int) -> MouthBank:
        if limit < self._limit:
            self._seen, self._best = {}, {}
        self._limit = limit
        if isinstance(self._source, list):
            files = self._source
        else:  # not a file still being written (the tracker saves while the renderer loads)
            files = [f for f in self._source.glob("mouths_*.npz") if not f.name.endswith(".tmp.npz")]
        for f in sorted(files):
            with np.load(f) as z:
                index = z["index"]
                order = np.argsort(index, kind="stable")
                done, todo = self._seen.get(f, 0), int(np.searchsorted(index[order], limit))
                if todo <= done:
                    continue
                fresh = order[done:todo]
                crops = z["crop"]
                for i in fresh:
                    feat = z["feat"][i]
                    k, cand = _key(feat), (float(z["score"][i]), -int(index[i]))
                    if k not in self._best or cand > self._best[k][0]:
                        self._best[k] = (cand, crops[i].copy(), z["up"][i], z["lo"][i], feat, z["surround"][i])
                self._seen[f] = todo
        if not self._best:
            return MouthBank.empty()
        items = [self._best[k] for k in sorted(self._best)]
        return MouthBank(*(np.stack([it[j] for it in items]) for j in range(1, 6)))


def _polygon_alpha(target: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Anti-aliased inner-mouth mask of `target` in `box`, float (h, w, 1)."""
    x0, y0, x1, y1 = box
    poly = np.concatenate([target[UPPER_INNER_LIP, :2], target[LOWER_INNER_LIP[-2:0:-1], :2]]).astype(np.float64)
    m = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(m, [np.round((poly - [x0, y0]) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    return cv2.GaussianBlur(m, (0, 0), 0.7).astype(np.float32)[..., None] / 255.0


def keep_filmed(source: np.ndarray, target: np.ndarray) -> float:
    """How much of the filmed interior to keep (1 all, 0 none): only where the new inner lips lie on the
    filmed ones and the filmed mouth is as open, so what is kept is the real interior and not lip
    pixels the warp stretched into a wider gap."""
    _, _, width = mouth_axes(target)
    idx = UPPER_INNER_LIP + LOWER_INNER_LIP
    moved = float(np.linalg.norm(target[idx, :2] - source[idx, :2], axis=1).mean()) / width
    near = np.clip((REPLACE_ABOVE - moved) / (REPLACE_ABOVE - KEEP_BELOW), 0.0, 1.0)
    o_src = float(np.linalg.norm(source[UPPER_INNER_LIP[5], :2] - source[LOWER_INNER_LIP[5], :2]))
    o_tgt = float(np.linalg.norm(target[UPPER_INNER_LIP[5], :2] - target[LOWER_INNER_LIP[5], :2]))
    change = abs(o_tgt - o_src) / max(o_tgt, MIN_OPEN * width)
    same = np.clip((OPEN_REPLACE - change) / (OPEN_REPLACE - OPEN_KEEP), 0.0, 1.0)
    return float(near * same)


def reach(target: np.ndarray) -> tuple[float, float, float, float]:
    """Image box (x0, y0, x1, y1) of every pixel a painter reads or writes for `target`: the mouth-centred
    crop its lighting is measured in, the inner mouth it draws, and the cheeks whose light tints painted teeth."""
    boxes = [footprint(target)]
    for pts in (target[UPPER_INNER_LIP + LOWER_INNER_LIP, :2], target[CHEEKS, :2]):
        lo, hi = pts.min(0), pts.max(0)
        boxes.append((float(lo[0]) - 4, float(lo[1]) - 4, float(hi[0]) + 5, float(hi[1]) + 5))
    b = np.array(boxes)
    return float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())


class _MouthGrid:
    """Per-pixel mouth coordinates of a target box, shared by every entry drawn into it: position
    along the mouth (as a place between two XS samples) and height between the inner lips."""

    def __init__(self, target: np.ndarray, box: tuple[int, int, int, int]) -> None:
        x0, y0, x1, y1 = box
        o, r, width = mouth_axes(target)
        gx, gy = np.meshgrid(
            np.arange(x0, x1, dtype=np.float32) - np.float32(o[0]),
            np.arange(y0, y1, dtype=np.float32) - np.float32(o[1]),
        )
        r = (r / width).astype(np.float32)
        xh = gx * r[0, 0] + gy * r[0, 1]
        yh = gx * r[1, 0] + gy * r[1, 1]
        pos = (np.clip(xh, XS[0], XS[-1]) - XS[0]) / (XS[1] - XS[0])
        self.i0 = np.minimum(pos.astype(np.int32), len(XS) - 2)
        self.f = pos - self.i0
        up_t, lo_t = lip_curves(target)
        ut, lt = self.sample(up_t), self.sample(lo_t)
        v = np.clip((yh - ut) / np.maximum(lt - ut, 1e-3), -0.3, 1.3)
        self.v = _RIM + v * (1 - 2 * _RIM)
        self.mx = ((xh - X_LO) * MOUTH_PX).astype(np.float32)

    def sample(self, curve: np.ndarray) -> np.ndarray:
        c = curve.astype(np.float32)
        return c[self.i0] * (1 - self.f) + c[self.i0 + 1] * self.f


class MouthPainter:
    """Draws dubbed open mouths from a bank; one per rendered segment (its smoothing starts afresh)."""

    def __init__(self, bank: MouthBank, smoothing: float = 0.6) -> None:
        self.bank, self.smoothing = bank, smoothing
        self._weights: dict[int, float] = {}
        self.used = {"kept": 0, "bank": 0, "painted": 0}

    def __call__(
        self, rgb: np.ndarray, source: np.ndarray, target: np.ndarray, inter_ocular: float, tone: float
    ) -> tuple[int, int, int, int] | None:
        """Draw the interior for `target` into `rgb` (already warped from `source`), in place; returns the box
        (x0, y0, x1, y1) of the pixels it changed, None if none. `rgb` needs to hold `reach(target)`."""
        upper, lower = target[UPPER_INNER_LIP, :2], target[LOWER_INNER_LIP, :2]
        if float(np.linalg.norm(upper[5] - lower[5])) < 0.02 * inter_ocular:
            self._weights.clear()
            return None
        keep = keep_filmed(source, target)
        if keep >= 1.0:
            self.used["kept"] += 1
            return None
        h, w = rgb.shape[:2]
        poly = np.concatenate([upper, lower])
        x0, y0 = np.maximum(np.floor(poly.min(0)).astype(int) - 3, 0)
        x1, y1 = np.minimum(np.ceil(poly.max(0)).astype(int) + 3, [w, h])
        if x1 - x0 < 3 or y1 - y0 < 3:
            return None
        feat = features(target, inter_ocular)
        order, dist = self.bank.nearest(feat)
        if not len(order):
            self._weights.clear()
            painted = rgb.copy()
            paint_mouth(painted, target, inter_ocular, tone, light_tint(rgb, target))
            # paint_mouth draws only within this box (its polygon's, 3 px wider): blend just there
            roi, new = rgb[y0:y1, x0:x1], painted[y0:y1, x0:x1]
            roi[:] = np.clip(roi * keep + new * (1 - keep) + 0.5, 0, 255).astype(np.uint8) if keep else new
            self.used["painted"] += 1
            return int(x0), int(y0), int(x1), int(y1)
        weights = self._blend(order, dist)
        interior = np.zeros((y1 - y0, x1 - x0, 3), np.float32)
        surround_now = self._surround_now(rgb, target)
        grid = _MouthGrid(target, (x0, y0, x1, y1))
        for i, wt in weights.items():
            interior += wt * self._warp_entry(i, grid, surround_now)
        alpha = _polygon_alpha(target, (x0, y0, x1, y1)) * (1.0 - keep)
        roi = rgb[y0:y1, x0:x1].astype(np.float32)
        rgb[y0:y1, x0:x1] = np.clip(roi * (1 - alpha) + interior * alpha + 0.5, 0, 255).astype(np.uint8)
        self.used["bank"] += 1
        return int(x0), int(y0), int(x1), int(y1)

    def _blend(self, order: np.ndarray, dist: np.ndarray) -> dict[int, float]:
        """Soft weights of the closest entries, smoothed over frames so a switch is a cross-fade."""
        new = np.exp(-0.5 * dist**2)
        new = new / new.sum()
        s = self.smoothing if self._weights else 0.0
        merged = {int(i): (1 - s) * float(v) for i, v in zip(order, new)}
        for i, v in self._weights.items():
            merged[i] = merged.get(i, 0.0) + s * v
        merged = {i: v for i, v in merged.items() if v > 0.05}
        total = sum(merged.values())
        self._weights = {i: v / total for i, v in sorted(merged.items())}
        return self._weights

    def _surround_now(self, rgb: np.ndarray, target: np.ndarray) -> np.ndarray:
        crop = extract(rgb, target)
        up, lo = lip_curves(target)
        return _surround(crop, up, lo)

    def _warp_entry(self, i: int, grid: _MouthGrid, surround_now: np.ndarray) -> np.ndarray:
        """Entry i stretched between the target's inner lips (each column of the mouth maps upper lip
        to upper lip and lower to lower), relit by the ratio of the surroundings' colours."""
        ue, le = grid.sample(self.bank.up[i]), grid.sample(self.bank.lo[i])
        # the tracked inner lip lies a little inside the lip: sample the entry's interior without its rim
        my = ((ue + grid.v * (le - ue) - Y_LO) * MOUTH_PX).astype(np.float32)
        out = cv2.remap(self.bank.crop[i], grid.mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        gain = np.clip(surround_now / np.maximum(self.bank.surround[i], 1.0), 0.6, 1.6)
        return out.astype(np.float32) * gain
