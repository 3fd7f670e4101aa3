"""Moves the mouth and jaw of a video frame to new landmark positions, in place, at full resolution.

Dubbing changes only the lower face, so unlike `MeshWarper` (built once per photo) this warp is built
per frame from that frame's own landmarks: a Delaunay mesh over the face points plus a ring of fixed
points around the face, displacement interpolated on a coarse grid and applied with one remap of the
region the moving triangles cover. Everything outside those triangles keeps its exact original
pixels, so there is no pasted patch and no seam to feather or colour-match.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
from scipy.spatial import Delaunay

from talkinghead.face.indices import FACE_OVAL, LOWER_INNER_LIP, LOWER_OUTER_LIP, UPPER_INNER_LIP, UPPER_OUTER_LIP
from talkinghead.render.warp import backward_displacement

_LIPS = sorted(set(UPPER_INNER_LIP + LOWER_INNER_LIP + UPPER_OUTER_LIP + LOWER_OUTER_LIP))


def _ring(points: np.ndarray, scale: float) -> np.ndarray:
    oval = points[FACE_OVAL, :2].astype(np.float64)
    centre = oval.mean(0)
    return centre + (oval - centre) * scale


def warp_mouth(
    frame: np.ndarray, source: np.ndarray, target: np.ndarray, inter_ocular: float
) -> tuple[int, int, int, int] | None:
    """Warp `frame` so the landmarks at `source` (478, 2+) land on `target`; only moved points matter.

    Returns the box (x0, y0, x1, y1) of the pixels that may have changed, None when nothing moved."""
    h, w = frame.shape[:2]
    maps = mouth_warp_maps(source, target, inter_ocular, w, h)
    if maps is None:
        return None
    (x0, y0, x1, y1), xy = maps
    frame[y0:y1, x0:x1] = cv2.remap(frame, xy, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return x0, y0, x1, y1


def mouth_warp_maps(
    source: np.ndarray, target: np.ndarray, inter_ocular: float, w: int, h: int
) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """The warp of `warp_mouth` for a w x h image as the box that may change (even corners in an even-sized
    image) and its cv2.remap map, (h, w, 2) float32: where each pixel of the box takes its colour from, in image
    coordinates; None when nothing moved."""
    warp = mouth_warp_offsets(source, target, inter_ocular, w, h)
    if warp is None:
        return None
    (x0, y0, x1, y1), offsets, (ox, oy) = warp
    shift = np.array([x0 - ox, y0 - oy], np.float32)
    return (x0, y0, x1, y1), cv2.add(_pixel_grid(w, h)[y0:y1, x0:x1], offsets - shift)


def mouth_warp_offsets(
    source: np.ndarray, target: np.ndarray, inter_ocular: float, w: int, h: int
) -> tuple[tuple[int, int, int, int], np.ndarray, tuple[int, int]] | None:
    """`mouth_warp_maps` as a dub applies it to the 4:2:0 planes (I420Frame.remap_offsets, no RGB): the box
    (x0, y0, x1, y1), the map as offsets (cv2.WARP_RELATIVE_MAP, (y1 - y0, x1 - x0, 2) float32) and their origin
    (ox, oy), both even: box pixel (x, y) takes its colour from (ox + x - x0, oy + y - y0) + offsets, in image
    coordinates. The origin lies up-left of the box by the largest displacement (clipped to the image), so the
    image from the origin on holds every pixel the warp reads; offsets relative to it need no per-pixel grid and
    no pass to add one. None when nothing moved."""
    src = source[:, :2].astype(np.float64)
    disp = target[:, :2].astype(np.float64) - src
    moving = np.abs(disp).max(1) > 0.05
    if not moving.any():
        return None
    ring = _ring(src, 1.35)
    ctrl = np.concatenate([src, ring])
    d = np.concatenate([disp, np.zeros_like(ring)])
    tri = Delaunay(ctrl)
    moves = np.concatenate([moving, np.zeros(len(ring), bool)])
    hot = np.flatnonzero(moves[tri.simplices].any(1))  # only these triangles have a non-zero displacement
    verts = ctrl[np.unique(tri.simplices[hot])]
    step = int(np.clip(round(inter_ocular / 24), 2, 8))
    x0, y0 = np.floor(verts.min(0)).astype(int) - 2 * step
    x1, y1 = np.ceil(verts.max(0)).astype(int) + 2 * step
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    gw, gh = (x1 - x0) // step + 2, (y1 - y0) // step + 2
    field = _grid_field(tri, d, hot, (x0, y0), step, (gh, gw))
    dw, dh = (gw - 1) * step + 1, (gh - 1) * step + 1  # the field resized to pixels covers the box
    dense = cv2.resize(field, (dw, dh), interpolation=cv2.INTER_LINEAR)
    # The map covers the box widened to even corners (4:2:0 chroma covers 2x2 pixels, so I420Frame.remap moves
    # the box as it is); an added row or column stays where it is (zero displacement).
    ex0, ey0, ex1, ey1 = x0 // 2 * 2, y0 // 2 * 2, min((x1 + 1) // 2 * 2, w), min((y1 + 1) // 2 * 2, h)
    ox, oy = x0 - ex0, y0 - ey0
    # the origin: up-left by the largest displacement (a backward step reads the field, never beyond its maximum)
    margin = 2 * int(np.ceil(float(np.abs(field).max()) / 2)) + 2
    org = max(ex0 - margin, 0), max(ey0 - margin, 0)
    shift = np.array([ex0 - org[0], ey0 - org[1]], np.float32)
    back = np.empty((oy + dh, ox + dw, 2), np.float32)  # the offsets: shift minus the backward displacement
    back[:oy], back[:, :ox] = shift, shift
    # the backward displacement d(x - d(x)): at the grid nodes and resized, which is exact enough where the
    # field is smooth; pixel by pixel where it bends sharply, between the lips (which a dub opens and closes)
    _coarse_backward(field, back[oy:, ox:], shift)
    lips = np.concatenate([src[_LIPS], target[_LIPS, :2].astype(np.float64)]) - (x0, y0)
    lx0, ly0 = np.maximum(np.floor(lips.min(0)).astype(int) - 2 * step, 0)
    lx1, ly1 = np.minimum(np.ceil(lips.max(0)).astype(int) + 2 * step, (x1 - x0, y1 - y0))
    if lx1 > lx0 and ly1 > ly0:
        back[oy + ly0 : oy + ly1, ox + lx0 : ox + lx1] = shift - backward_displacement(dense, (lx0, ly0, lx1, ly1))
    return (int(ex0), int(ey0), int(ex1), int(ey1)), back[: ey1 - ey0, : ex1 - ex0], (int(org[0]), int(org[1]))


@lru_cache(maxsize=2)
def _pixel_grid(w: int, h: int) -> np.ndarray:
    """(h, w, 2) float32: each pixel's own (x, y), the identity map (made once per frame size)."""
    grid = np.empty((h, w, 2), np.float32)
    grid[..., 0] = np.arange(w, dtype=np.float32)
    grid[..., 1] = np.arange(h, dtype=np.float32)[:, None]
    grid.flags.writeable = False
    return grid


def _coarse_backward(field: np.ndarray, out: np.ndarray, shift: np.ndarray) -> None:
    """Write into `out` (dh, dw, 2) `shift` minus the backward displacement d(x - d(x)) of the node field resized
    to it, with the fixed-point step taken at the nodes and only its result resized (as `MeshWarper.backward_offsets`):
    cv2.resize puts node k at pixel (k + 0.5) * dw / gw - 0.5, and pixel p reads node (p + 0.5) * gw / dw - 0.5."""
    (gh, gw), (dh, dw) = field.shape[:2], out.shape[:2]
    sx, sy = gw / dw, gh / dh
    px = ((np.arange(gw, dtype=np.float32) + 0.5) / sx - 0.5)[None, :]
    py = ((np.arange(gh, dtype=np.float32) + 0.5) / sy - 0.5)[:, None]
    ux = (px - field[..., 0] + 0.5) * sx - 0.5
    uy = (py - field[..., 1] + 0.5) * sy - 0.5
    d2 = cv2.remap(field, ux, uy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    cv2.resize(shift - d2, (dw, dh), dst=out, interpolation=cv2.INTER_LINEAR)


def _grid_field(
    tri: Delaunay, d: np.ndarray, hot: np.ndarray, origin: tuple[int, int], step: int, shape: tuple[int, int]
) -> np.ndarray:
    """Piecewise-linear displacement on a grid (node (i, j) at origin + step * (j, i)).

    Nodes are assigned to triangles by testing the nodes of each moving triangle's bounding box
    (exact, and far cheaper per frame than a point-location search over the whole grid).
    """
    g = (tri.points - origin) / step
    corners = tri.simplices[hot]
    pts = g[corners]  # (K, 3, 2)
    lo = np.clip(np.ceil(pts.min(1) - 1e-9), 0, None).astype(int)
    hi = np.minimum(np.floor(pts.max(1) + 1e-9).astype(int), [shape[1] - 1, shape[0] - 1])
    ext = np.maximum(hi - lo + 1, 0)
    n = ext[:, 0] * ext[:, 1]
    tri_of = np.repeat(np.arange(len(hot)), n)
    if len(tri_of) == 0:
        return np.zeros((*shape, 2), np.float32)
    first = np.repeat(np.cumsum(n) - n, n)
    r = np.arange(len(tri_of)) - first  # index within its triangle's box
    w_box = ext[tri_of, 0]
    node = np.stack([lo[tri_of, 0] + r % w_box, lo[tri_of, 1] + r // w_box], 1)
    w = _barycentric(g, corners[tri_of], node.astype(np.float64))
    inside = w.min(1) >= -1e-6
    node, w, tri_of = node[inside], w[inside], tri_of[inside]
    field = np.zeros((*shape, 2), np.float32)
    field[node[:, 1], node[:, 0]] = np.einsum("nk,nkc->nc", w, d[corners[tri_of]])
    return field


def _barycentric(g: np.ndarray, corners: np.ndarray, node: np.ndarray) -> np.ndarray:
    """(n, 3) barycentric coordinates of `node` (n, 2) in triangles `corners` (n, 3) of points `g`."""
    a, b, c = g[corners[:, 0]], g[corners[:, 1]], g[corners[:, 2]]
    e1, e2, r = b - a, c - a, node - a
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    det = np.where(np.abs(det) < 1e-12, 1e-12, det)
    u = (r[:, 0] * e2[:, 1] - r[:, 1] * e2[:, 0]) / det
    v = (e1[:, 0] * r[:, 1] - e1[:, 1] * r[:, 0]) / det
    return np.stack([1 - u - v, u, v], 1)
