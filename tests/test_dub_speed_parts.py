"""The parts of the dub path made faster for large faces (issue 16): they must give the same pictures."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
from clips import smooth_rgb

from talkinghead.face.indices import LOWER_INNER_LIP, UPPER_INNER_LIP
from talkinghead.media import timers
from talkinghead.media.i420 import I420Frame
from talkinghead.render.mouth_bank import MouthBank, MouthPainter, keep_filmed
from talkinghead.render.mouth_interior import light_tint, paint_mouth


def test_warped_rgb_is_as_true_as_converting_first_then_warping():
    """The face tracker's reduced input, read from the planes, shows the picture as faithfully as
    converting the whole frame to RGB and warping that (what the tracker did before)."""
    rgb = smooth_rgb(240, 320, seed=3)
    frame = I420Frame.from_rgb(rgb)
    for m in (
        np.array([[0.4, 0, 10.0], [0, 0.4, -7.0]], np.float32),  # a reduced copy, partly outside the frame
        np.array([[1.5, 0, -40.0], [0, 1.5, -30.0]], np.float32),  # an enlarged one
    ):

        def warp(img: np.ndarray, m: np.ndarray = m) -> np.ndarray:
            return cv2.warpAffine(img, m, (96, 96), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

        truth, before = warp(rgb).astype(int), warp(frame.rgb())
        got = frame.warped_rgb(m, (96, 96))
        assert got.shape == (96, 96, 3) and got.dtype == np.uint8
        assert np.abs(got - truth).mean() <= np.abs(before - truth).mean() + 0.1
        assert np.abs(got - truth).mean() < 1.5 and np.abs(got.astype(int) - before).mean() < 1.5


def _mouth_points(cx: float, cy: float, width: float, gap: float) -> np.ndarray:
    """478 landmarks with only the inner lips placed (an open mouth), the rest at the mouth centre."""
    pts = np.zeros((478, 3), np.float32)
    pts[:, 0], pts[:, 1] = cx, cy
    xs = np.linspace(-width / 2, width / 2, len(UPPER_INNER_LIP))
    bulge = 1 - (2 * xs / width) ** 2
    pts[UPPER_INNER_LIP, 0], pts[UPPER_INNER_LIP, 1] = cx + xs, cy - gap / 2 * bulge
    pts[LOWER_INNER_LIP, 0], pts[LOWER_INNER_LIP, 1] = cx + xs, cy + gap / 2 * bulge
    return pts


def test_painted_fallback_changes_the_same_pixels_as_blending_the_whole_region():
    rgb = smooth_rgb(200, 260, seed=1)
    target = _mouth_points(130, 110, 60, 24)
    for gap, keep in ((2, 0.0), (21, None)):  # replaced outright; a filmed mouth nearly as open: blended
        source = _mouth_points(130, 110, 60, gap)
        keep = keep_filmed(source, target) if keep is None else keep
        painted = rgb.copy()
        paint_mouth(painted, target, 70.0, 1.0, light_tint(rgb, target))
        # the renderer before: blend the painted copy over the whole region
        want = np.clip(rgb * keep + painted * (1 - keep) + 0.5, 0, 255).astype(np.uint8) if keep else painted
        got = rgb.copy()
        MouthPainter(MouthBank.empty())(got, source, target, 70.0, 1.0)
        assert np.array_equal(got, want)
        assert (got != rgb).any()
    assert 0 < keep < 1


def test_stage_timers_are_exclusive_per_thread_and_off_by_default(monkeypatch):
    assert isinstance(timers.stage("x"), type(timers._OFF)) or timers.ENABLED
    monkeypatch.setattr(timers, "ENABLED", True)
    timers.reset()

    def work() -> None:
        with timers.stage("outer"):
            time.sleep(0.05)
            with timers.stage("inner"):
                time.sleep(0.1)

    t = threading.Thread(target=work, name="worker")
    start = time.perf_counter()
    t.start()
    t.join()
    elapsed = time.perf_counter() - start
    got = timers.totals()
    outer_wall, _, outer_calls = got["worker", "outer"]
    inner_wall, _, inner_calls = got["worker", "inner"]
    assert outer_calls == inner_calls == 1
    assert outer_wall >= 0.05 and inner_wall >= 0.1
    assert outer_wall + inner_wall <= elapsed  # the nested stage is not counted twice
    assert "inner" in timers.report()
    timers.reset()
    assert timers.totals() == {}


def test_planes_remap_moves_luma_and_chroma_like_the_picture_and_keeps_the_rest():
    """A two-channel map (x, y per pixel) moves the planes of its box as cv2.remap moves the RGB picture;
    pixels outside the box, and the row/column an odd box is widened by, keep their values exactly."""
    rgb = smooth_rgb(120, 160, seed=5)
    for box in ((40, 30, 120, 90), (41, 31, 119, 89)):
        x0, y0, x1, y1 = box
        gx, gy = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
        xy = np.dstack([gx + 4.0, gy - 2.0])  # each pixel takes its colour 4 px right and 2 px up
        frame = I420Frame.from_rgb(rgb)
        before = frame.planes.copy()
        frame.remap(box, xy)
        got = frame.region(0, 0, 160, 120).astype(int)
        want = I420Frame.from_rgb(rgb).region(0, 0, 160, 120).astype(int)
        want[y0:y1, x0:x1] = want[y0 - 2 : y1 - 2, x0 + 4 : x1 + 4]
        inner = np.s_[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2]  # chroma at the box edge mixes moved and kept samples
        assert np.abs(got[inner] - want[inner]).max() <= 1
        ex0, ey0, ex1, ey1 = x0 // 2 * 2, y0 // 2 * 2, (x1 + 1) // 2 * 2, (y1 + 1) // 2 * 2
        outside = np.ones((120, 160), bool)
        outside[ey0:ey1, ex0:ex1] = False
        assert np.array_equal(frame.y[outside], before[:120][outside])
        if box[0] % 2:  # the column the odd box was widened by stays as decoded
            assert np.array_equal(frame.y[ey0:ey1, ex0], before[ey0:ey1, ex0])


def test_planes_moved_by_offsets_are_those_moved_by_the_map():
    """The dub's warp as offsets from an origin up-left of the box (cv2.WARP_RELATIVE_MAP) moves the planes as the
    same warp given as a map of image coordinates does, also where pixels are read from above and left of the box
    and where the origin is clipped to the frame's corner (the frame's own border then reflects)."""
    rgb = smooth_rgb(120, 160, seed=7)
    for box, origin in (((40, 30, 120, 90), (30, 20)), ((4, 2, 64, 52), (0, 0))):
        x0, y0, x1, y1 = box
        gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        xy = np.dstack([gx - 6.3 + 0.05 * (gy - y0), gy - 5.7 + 0.04 * (gx - x0)])  # reads up-left, beyond the box
        offsets = xy - np.dstack([gx - x0 + origin[0], gy - y0 + origin[1]])
        want, got = I420Frame.from_rgb(rgb), I420Frame.from_rgb(rgb)
        want.remap(box, xy)
        got.remap_offsets(box, np.ascontiguousarray(offsets), origin)
        for a, b in ((got.y, want.y), (got.u, want.u), (got.v, want.v)):
            d = np.abs(a.astype(int) - b)
            assert d.max() <= 1 and (d > 0).mean() < 0.01


def test_dub_warp_map_is_the_per_pixel_one_between_the_lips_and_close_to_it_elsewhere(monkeypatch):
    """The backward step is taken at the grid nodes except round the lips: against a map taken pixel by pixel
    everywhere, the lips box is identical and the rest within a fraction of a pixel (a mouth being closed)."""
    import cv2

    from talkinghead.face.indices import LOWER_INNER_LIP, LOWER_OUTER_LIP, UPPER_INNER_LIP, inter_ocular
    from talkinghead.face.landmarks import detect_faces
    from talkinghead.media import fit_size, load_image
    from talkinghead.pipeline import DEMO_FACE
    from talkinghead.render import mouth_warp
    from talkinghead.render.warp import backward_displacement

    img = fit_size(load_image(DEMO_FACE), 512)
    p = detect_faces(img)[0].points
    up, lo = p[UPPER_INNER_LIP[5], 1], p[LOWER_INNER_LIP[5], 1]
    lower = np.array(LOWER_INNER_LIP + LOWER_OUTER_LIP)
    t = p.copy()
    t[lower, 1] -= lo - up  # close the mouth: the lower lip up onto the upper one
    h, w = img.shape[:2]
    (x0, y0, x1, y1), got = mouth_warp.mouth_warp_maps(p, t, inter_ocular(p), w, h)

    def per_pixel(field: np.ndarray, out: np.ndarray, shift: np.ndarray) -> None:
        dense = cv2.resize(field, (out.shape[1], out.shape[0]), interpolation=cv2.INTER_LINEAR)
        out[:] = shift - backward_displacement(dense, (0, 0, out.shape[1], out.shape[0]))

    monkeypatch.setattr(mouth_warp, "_coarse_backward", per_pixel)
    box, want = mouth_warp.mouth_warp_maps(p, t, inter_ocular(p), w, h)
    assert box == (x0, y0, x1, y1) and x0 % 2 == 0 and y0 % 2 == 0 and x1 % 2 == 0 and y1 % 2 == 0
    lips = np.concatenate([p[mouth_warp._LIPS, :2], t[mouth_warp._LIPS, :2]])
    lx0, ly0 = (np.ceil(lips.min(0)).astype(int) - (x0, y0)).tolist()
    lx1, ly1 = (np.floor(lips.max(0)).astype(int) - (x0, y0)).tolist()
    assert np.array_equal(got[ly0:ly1, lx0:lx1], want[ly0:ly1, lx0:lx1])
    off = np.hypot(*(got - want).transpose(2, 0, 1))
    assert 0 < off.max() < 0.75 and off.mean() < 0.02


def test_a_deferred_dubber_starts_with_the_models_geometry_and_loads_the_model_on_first_use(monkeypatch):
    """`th.dub` without a Dubber starts tracking with the geometry read from the lips file (no torch) and loads
    the model inside the dub, beside tracking; `import talkinghead.dubbing` itself does not import torch."""
    import subprocess
    import sys

    code = "import sys, talkinghead.dubbing; assert 'torch' not in sys.modules, 'dubbing imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)

    import talkinghead.motion.mouth as lips_model
    from talkinghead.dubbing import Dubber

    loads: list[object] = []
    real = lips_model.MouthModel
    monkeypatch.setattr(lips_model, "MouthModel", lambda *a, **k: loads.append(a) or real(*a, **k))
    deferred = Dubber.deferred()
    geometry = deferred.geometry
    assert loads == [], "no model loaded before the dub needs it"
    model = deferred.mouth
    assert len(loads) == 1 and deferred.mouth is model
    for name in ("reference", "indices", "open_direction"):
        np.testing.assert_array_equal(getattr(geometry, name), getattr(model.geometry, name))


def test_background_close_puts_each_file_in_place_one_at_a_time_and_hands_its_error_to_wait(tmp_path):
    """A dub's segment writers close on a thread (x264 drains beside the next segment): a file is in place once
    the next close starts or `wait` returns, and a close's error is raised by the next `wait`."""
    import pytest

    from talkinghead.errors import OutputError
    from talkinghead.media import probe_video
    from talkinghead.media.video_writer import BackgroundClose, VideoWriter

    closing = BackgroundClose()
    paths = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for k, path in enumerate(paths):
        writer = VideoWriter(path, 64, 48, fps=25)
        for i in range(3 + k):
            writer.write(smooth_rgb(48, 64, seed=i))
        closing.close(writer)
        assert k == 0 or paths[0].is_file()  # the first close was waited for before the second began
    closing.wait()
    assert [probe_video(p).n_frames for p in paths] == [3, 4]

    def fail() -> None:
        raise OutputError("Finishing the video failed.")

    writer = VideoWriter(tmp_path / "c.mp4", 64, 48, fps=25)
    writer.write(smooth_rgb(48, 64, seed=9))
    writer.close = fail  # type: ignore[method-assign]
    closing.close(writer)
    with pytest.raises(OutputError):
        closing.wait()
    closing.wait()  # the error is handed over once
    writer.abort()
