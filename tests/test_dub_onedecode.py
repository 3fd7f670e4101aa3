"""A dub decodes its video once: the tracker's hand-off of decoded frames, and the watermark spared round each
frame's own mouth (the renderer follows the tracker a few frames behind; tests/test_dub.py runs whole dubs)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from talkinghead.dub_track import FrameHandoff
from talkinghead.provenance.watermark import TILE, MovingSpareEmbedder, Spare, WatermarkEmbedder, tile


def test_handoff_is_bounded_gives_frames_in_order_and_lets_a_waiting_tracker_go_on_close():
    h = FrameHandoff(3)
    for i in range(3):
        h.put(i, f"frame {i}")  # type: ignore[arg-type]
    put_done = threading.Event()

    def tracker() -> None:
        h.put(3, "frame 3")  # type: ignore[arg-type]
        put_done.set()

    t = threading.Thread(target=tracker, daemon=True)
    t.start()
    time.sleep(0.2)
    assert not put_done.is_set() and len(h) == 3, "a full hand-off must make the tracker wait"
    assert h.take(1) == "frame 1"  # frame 0 dropped (the renderer moved past it), frame 1 taken: room again
    assert put_done.wait(2) and len(h) == 2
    assert h.take(1) is None, "a frame is handed over once"
    assert h.take(3) == "frame 3" and h.most == 3 and h.handed == 2
    h.put(4, "frame 4")  # type: ignore[arg-type]
    h.put(5, "frame 5")  # type: ignore[arg-type]
    assert h.take(2) is None and len(h) == 2, "a frame never handed over (a resumed job's) is not waited for"
    h.put(6, "frame 6")  # type: ignore[arg-type]
    blocked = threading.Thread(target=h.put, args=(7, "frame 7"), daemon=True)
    blocked.start()
    time.sleep(0.1)
    assert blocked.is_alive()
    h.close()
    blocked.join(2)
    assert not blocked.is_alive(), "close must release a tracker waiting for room"
    assert len(h) == 0 and h.take(6) is None
    h.put(8, "frame 8")  # type: ignore[arg-type]  # after close: dropped at once, never waits
    assert len(h) == 0


def test_handoff_drops_its_oldest_frames_below_drop_before_and_waits_from_there():
    """While the first segment waits for CHUNK + RADIUS tracked frames the tracker must not wait on a full hand-off:
    below `drop_before` the oldest frame is pushed out (the renderer decodes it again); from there on it waits."""
    h = FrameHandoff(3, drop_before=6)
    for i in range(6):
        h.put(i, f"frame {i}")  # type: ignore[arg-type]  # never waits
    assert len(h) == 3 and h.dropped == 3 and h.take(0) is None, "the oldest were pushed out"
    blocked = threading.Thread(target=h.put, args=(6, "frame 6"), daemon=True)
    blocked.start()
    time.sleep(0.1)
    assert blocked.is_alive(), "from drop_before on, a full hand-off makes the tracker wait"
    assert h.take(3) == "frame 3"
    blocked.join(2)
    assert (
        not blocked.is_alive()
        and h.dropped == 3
        and [h.take(i) for i in (4, 5, 6)] == ["frame 4", "frame 5", "frame 6"]
    )


def _plain_mark(w: int, h: int, job: int, boost: float) -> np.ndarray:
    return np.tile(tile(job), (-(-h // TILE), -(-w // TILE)))[:h, :w].astype(np.float32) * np.float32(boost)


@pytest.mark.parametrize("boost", [1.0, 1.07])
def test_moving_spare_leaves_each_frames_mouth_unmarked_and_the_rest_static(boost):
    w, h, job = 640, 360, 0x5A17C3
    rng = np.random.default_rng(1)
    grey = rng.integers(20, 236, (h, w), dtype=np.uint8)
    mark = MovingSpareEmbedder(w, h, job, boost)
    full = _plain_mark(w, h, job, boost)
    spares = [Spare(200.4, 150.2, 300.7, 220.9, 30.0), Spare(260.0, 170.5, 371.2, 251.3, 24.5)]
    outs = []
    for spare in spares:
        buf = np.zeros((h, w + 64), np.uint8)  # a plane with padded rows, as a decoded frame has
        y = buf[:, :w]
        y[:] = grey
        mark.spare = spare
        mark(y)
        snap = MovingSpareEmbedder.snapped(spare)  # widened outwards to a grid: the box changes less often
        assert snap.x0 <= spare.x0 and snap.y0 <= spare.y0 and snap.x1 >= spare.x1 and snap.y1 >= spare.y1
        fy, fx = snap.fades(np.arange(w), np.arange(h))
        gain = 1 - fy[:, None] * fx[None, :]
        expected = np.clip(grey.astype(np.int32) + np.rint(full * gain), 0, 255)
        assert np.array_equal(y, expected), "the mark is the static one times the separable fade"
        inside = (slice(int(np.ceil(spare.y0)), int(spare.y1) + 1), slice(int(np.ceil(spare.x0)), int(spare.x1) + 1))
        assert np.array_equal(y[inside], grey[inside]), "the mouth's own box must be left unmarked"
        assert (y != grey).mean() > 0.5
        outs.append(y.copy())
    # outside both boxes and their ramps, every frame carries the very same (static) pattern
    far = np.ones((h, w), bool)
    for spare in spares:
        x0, y0, x1, y1 = MovingSpareEmbedder.snapped(spare).outer_box(w, h)
        far[y0:y1, x0:x1] = False
    assert far.mean() > 0.7 and np.array_equal(outs[0][far], outs[1][far])
    nudged = Spare(spares[1].x0 + 1, spares[1].y0 + 1.5, spares[1].x1 - 2, spares[1].y1, spares[1].ramp)
    y = grey.copy()
    mark.spare = nudged  # a mouth that moved a little, inside the same grid cells: the very same mark
    mark(y)
    assert np.array_equal(y, outs[1])
    small = Spare(spares[1].x0 + 20, spares[1].y0 + 20, spares[1].x0 + 40, spares[1].y0 + 40, spares[1].ramp)
    y = grey.copy()
    mark.spare = small  # inside the last box, but much smaller: a box of its own (the mouth is not marked either way)
    mark(y)
    assert not np.array_equal(y, outs[1]) and np.array_equal(y[far], outs[1][far])
    mark.spare = None
    y = grey.copy()
    mark(y)
    assert np.array_equal(y, np.clip(grey.astype(np.int32) + np.rint(full), 0, 255)), "no face: the whole mark"
    if boost == 1.0:  # without a spare and a boost it is the photo mode's mark, pixel for pixel
        ref = grey.copy()
        WatermarkEmbedder(w, h, job)(ref)
        assert np.array_equal(y, ref)


def test_boost_keeps_the_frames_mark_energy_like_the_photo_rule():
    w, h = 480, 320
    spare = Spare(150.0, 100.0, 260.0, 180.0, 40.0)
    fy, fx = MovingSpareEmbedder.snapped(spare).fades(np.arange(w), np.arange(h))
    gain = 1 - fy[:, None].astype(np.float64) * fx[None, :]
    brute = min(1.15, 1 / np.sqrt(np.mean(gain**2)))
    assert MovingSpareEmbedder.boost_for(w, h, spare) == pytest.approx(brute, rel=1e-6)
    assert 1.0 < brute <= 1.15 and MovingSpareEmbedder.boost_for(w, h, None) == 1.0
