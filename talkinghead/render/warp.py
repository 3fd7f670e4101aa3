"""Dense mesh warp of the source photo to target landmarks, at full resolution.

The displacement of each landmark (target - source) is interpolated over a triangulation of the
*source* points, so barycentric weights for a coarse pixel grid are computed once per photo and each
frame costs one sparse product, one resize and one remap of the head region. Two rings of control
points bound the effect: an inner ring that follows the head rigidly (hair, ears move with the face)
and an outer ring that stays put, so the warp fades to exactly zero and the background is untouched —
no seam to hide.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import sparse
from scipy.spatial import Delaunay

from talkinghead.face.canonical import umeyama
from talkinghead.face.indices import FACE_OVAL, RIGID

_GRID = 4  # pixels between grid nodes where the displacement is evaluated exactly


def backward_displacement(dense: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """For a forward displacement field, the displacement to undo at each pixel of `box` (x0, y0, x1, y1 in the
    field's own pixels), (y1 - y0, x1 - x0, 2): a pixel x takes its colour from x minus it.

    `dense` (h, w, 2) is the displacement known at *source* positions. One fixed-point step evaluates the field
    near x - d(x) instead of at x, which is exact enough for smooth, small displacements."""
    x0, y0, x1, y1 = box
    bx = np.arange(x0, x1, dtype=np.float32)[None, :]
    by = np.arange(y0, y1, dtype=np.float32)[:, None]
    own = dense[y0:y1, x0:x1]
    return cv2.remap(dense, bx - own[..., 0], by - own[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], 1)


def _similarity_2d(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix of the least-squares 2-D similarity src -> dst."""
    s3 = np.concatenate([src, np.zeros((len(src), 1))], 1)
    d3 = np.concatenate([dst, np.zeros((len(dst), 1))], 1)
    sim = umeyama(s3, d3)
    m = sim.scale * sim.rotation[:2, :2]
    return np.concatenate([m, sim.translation[:2, None]], 1)


class MeshWarper:
    """Warps one source image; build once per photo, call `warp` per frame."""

    def __init__(self, image: np.ndarray, points: np.ndarray) -> None:
        self.image = image
        h, w = image.shape[:2]
        p = points[:, :2].astype(np.float64)
        oval = p[FACE_OVAL]
        cx, cy = oval[:, 0].mean(), oval[:, 1].mean()
        rx = (oval[:, 0].max() - oval[:, 0].min()) / 2
        ry = (oval[:, 1].max() - oval[:, 1].min()) / 2
        self.n_face = len(p)
        self.head_ring = _ellipse(cx, cy - 0.1 * ry, 1.5 * rx, 1.45 * ry, 24)
        outer = _ellipse(cx, cy, 2.6 * rx, 2.3 * ry, 32)
        x0, y0 = outer.min(0) - 2
        x1, y1 = outer.max(0) + 2
        corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]])
        self.src_ctrl = np.concatenate([p, self.head_ring, outer, corners])
        self.n_moving = self.n_face + len(self.head_ring)
        # region of interest, clipped to the image
        self.x0, self.y0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
        self.x1, self.y1 = min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1)))
        gx = np.arange(self.x0, self.x1 + _GRID, _GRID, dtype=np.float64)
        gy = np.arange(self.y0, self.y1 + _GRID, _GRID, dtype=np.float64)
        self.grid_shape = (len(gy), len(gx))
        grid = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
        self.weights = self._barycentric(grid)
        rw, rh = self.x1 - self.x0, self.y1 - self.y0
        self.roi_size = (rw, rh)
        # Per frame the field is known at the grid nodes and is resized to (at least) the ROI. cv2.resize
        # puts node k at pixel p_k = (k + 0.5) * dense / nodes - 0.5, and pixel p reads node coordinate
        # (p + 0.5) * nodes / dense - 0.5: the backward step is evaluated at the nodes only, then resized.
        (gh, gw), g = self.grid_shape, _GRID
        self.dense_size = ((gw - 1) * g + 1, (gh - 1) * g + 1)
        self._scale = (gw / self.dense_size[0], gh / self.dense_size[1])
        px = (np.arange(gw, dtype=np.float32) + 0.5) / self._scale[0] - 0.5
        py = (np.arange(gh, dtype=np.float32) + 0.5) / self._scale[1] - 0.5
        self._node_px = np.stack(np.meshgrid(px, py), -1)  # (gh, gw, 2) ROI-local pixel of each node

    def _barycentric(self, grid: np.ndarray) -> sparse.csr_matrix:
        tri = Delaunay(self.src_ctrl)
        simplex = tri.find_simplex(grid)
        inside = simplex >= 0
        rows, cols, vals = [], [], []
        t = tri.transform[simplex[inside]]
        b = np.einsum("nij,nj->ni", t[:, :2], grid[inside] - t[:, 2])
        bary = np.concatenate([b, 1 - b.sum(1, keepdims=True)], 1)
        verts = tri.simplices[simplex[inside]]
        idx = np.flatnonzero(inside)
        for k in range(3):
            rows.append(idx)
            cols.append(verts[:, k])
            vals.append(bary[:, k])
        return sparse.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(grid), len(self.src_ctrl))
        )

    def control_displacement(self, target: np.ndarray) -> np.ndarray:
        """Displacement of every control point: face points as given, head ring rigidly with the face."""
        t = target[:, :2].astype(np.float64)
        m = _similarity_2d(self.src_ctrl[RIGID], t[RIGID])
        ring = self.head_ring @ m[:, :2].T + m[:, 2]
        d = np.zeros_like(self.src_ctrl)
        d[: self.n_face] = t - self.src_ctrl[: self.n_face]
        d[self.n_face : self.n_moving] = ring - self.head_ring
        return d

    def backward_offsets(self, target: np.ndarray) -> np.ndarray:
        """(rh, rw, 2) float32 offsets for cv2.remap with cv2.WARP_RELATIVE_MAP: ROI pixel (x, y) takes its colour
        from (x0 + x, y0 + y) + its offset (the offset: minus the backward displacement there).

        The fixed-point step of `backward_displacement` (d at x - d(x)) is taken at the grid nodes, where the field
        is exact, and only its result is resized to full resolution: one resize per frame, and no pixel grid to
        add (the relative map), instead of a resize, a remap of the field and four subtractions per pixel."""
        d = self.control_displacement(target)
        disp = (self.weights @ d).astype(np.float32).reshape(*self.grid_shape, 2)
        sx, sy = self._scale
        at = self._node_px - disp  # ROI-local pixel where each node's source lies, then in node coordinates
        ux = (at[..., 0] + 0.5) * sx - 0.5
        uy = (at[..., 1] + 0.5) * sy - 0.5
        d2 = cv2.remap(disp, ux, uy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        rw, rh = self.roi_size
        return cv2.resize(-d2, self.dense_size, interpolation=cv2.INTER_LINEAR)[:rh, :rw]

    def warp_region(self, target: np.ndarray, source: np.ndarray | None = None) -> np.ndarray:
        """Only the ROI (y0:y1, x0:x1) of `warp`'s frame, a new array: the pixels outside never change.
        (The offsets are relative to the ROI's corner, so the image is read from there on; the ROI's edges do not
        move, as the outer ring and the corners are fixed, so no read crosses that corner's edges.)"""
        src = self.image if source is None else source
        flags = cv2.INTER_LINEAR | cv2.WARP_RELATIVE_MAP
        offsets = self.backward_offsets(target)
        return cv2.remap(src[self.y0 :, self.x0 :], offsets, None, flags, borderMode=cv2.BORDER_REFLECT)

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1): the region `warp` may change."""
        return self.x0, self.y0, self.x1, self.y1

    def warp(self, target: np.ndarray, out: np.ndarray | None = None, source: np.ndarray | None = None) -> np.ndarray:
        """The source warped so its landmarks land on `target` (478, 2+) pixels; full frame, RGB uint8.

        `source` replaces the photo for this frame (same size; e.g. with blinking eyes blended in).
        """
        src = self.image if source is None else source
        frame = src.copy() if out is None else out
        if out is not None:
            frame[:] = src
        frame[self.y0 : self.y1, self.x0 : self.x1] = self.warp_region(target, src)
        return frame
