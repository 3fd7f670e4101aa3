"""Re-render a face's mouth inside a decoded 4:2:0 frame, converting only the box around it.

A dubbed frame differs from the input only round the mouth and jaw. The warp moves pixels in the
planes themselves (luma at full resolution, chroma at its own), so the large region a big face's jaw
sweeps is never converted to RGB and back; only the box round the mouth (and the cheeks whose light it
reads) is converted for the painter, and only the box it drew goes back, widened to even corners
because each chroma sample covers 2x2 pixels. Every other pixel stays exactly as decoded.
"""

from __future__ import annotations

import numpy as np

from talkinghead.face.indices import inter_ocular
from talkinghead.media.i420 import I420Frame
from talkinghead.media.timers import stage
from talkinghead.render.mouth_bank import MouthPainter, reach
from talkinghead.render.mouth_interior import cheek_pixels, tone_of
from talkinghead.render.mouth_warp import mouth_warp_offsets


def dub_region(frame: I420Frame, source: np.ndarray, target: np.ndarray, tone: float, painter: MouthPainter) -> None:
    """Move the mouth and jaw of `frame` from `source` to `target` landmarks (478, 3 pixels) in place and
    draw the mouth interior with `painter` (the speaker's own mouths, or painted lit by `tone` from
    `cheek_tone`)."""
    iod = inter_ocular(source)
    with stage("warp"):
        warp = mouth_warp_offsets(source, target, iod, frame.width, frame.height)
    if warp is None:
        return
    frame.remap_offsets(*warp)  # in the planes: the warp needs no RGB
    # the interior: only the box round the mouth (and the cheeks) is converted, and only what was drawn goes back
    x0, y0, x1, y1 = frame.clip(*reach(target))
    rgb = frame.region(x0, y0, x1, y1)
    shift = np.array([x0, y0, 0], np.float32)
    with stage("interior (mouth bank)"):
        box = painter(rgb, source - shift, target - shift, iod, tone)
    if box is None:
        return
    bx0, by0, bx1, by1 = even_box(box, rgb.shape[1], rgb.shape[0])
    frame.put(np.ascontiguousarray(rgb[by0:by1, bx0:bx1]), x0 + bx0, y0 + by0)


def even_box(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) widened outwards to even corners, kept within width x height."""
    return (box[0] // 2 * 2, box[1] // 2 * 2, min(width, (box[2] + 1) // 2 * 2), min(height, (box[3] + 1) // 2 * 2))


def cheek_tone(frame: I420Frame, points: np.ndarray) -> float:
    """Skin brightness of the face (lights the painted mouth interior): `face_tone`'s pixels, the only ones
    converted to RGB (a 600 px face's cheek box would be ~100 000)."""
    return tone_of(frame.pixels(*cheek_pixels(points, frame.width, frame.height)))
