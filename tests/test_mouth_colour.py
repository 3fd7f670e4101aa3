"""Colour of what we paint, measured where a viewer sees it.

A dub converts only the face region of a 4:2:0 frame to RGB and back; a photo-mode video is encoded
from RGB. In both the mouth interior must come out the colour `paint_mouth` asked for, whatever the
frame's colour tags (BT.601 / BT.709, limited / full range). The reference decoder is FFmpeg's own
(swscale via PyAV, told the tags), not our conversion.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from av.video.reformatter import ColorRange, Colorspace

from talkinghead.face.indices import LOWER_INNER_LIP, UPPER_INNER_LIP
from talkinghead.media import VideoWriter
from talkinghead.media.i420 import I420Frame
from talkinghead.render.mouth_interior import paint_mouth

SKIN = (205, 150, 125)
# (name, AVCOL_SPC, AVCOL_RANGE): what real videos carry; 1 = BT.709, 6 = BT.601, range 1 limited, 2 full
TAGS = [("bt601", 6, 1), ("bt709", 1, 1), ("bt709-full", 1, 2), ("bt601-full", 6, 2)]
_SPACE = {1: Colorspace.ITU709, 6: Colorspace.ITU601}
_RANGE = {1: ColorRange.MPEG, 2: ColorRange.JPEG}


def _tagged(w: int, h: int, space: int, rng: int) -> I420Frame:
    vf = av.VideoFrame(w, h, "yuv420p")
    vf.colorspace, vf.color_range = space, rng
    return I420Frame(vf)


def _shown(vf: av.VideoFrame, space: int, rng: int) -> np.ndarray:
    """What a player shows: FFmpeg's conversion told the frame's tags."""
    return vf.reformat(format="rgb24", src_colorspace=_SPACE[space], src_color_range=_RANGE[rng]).to_ndarray()


COLOURS = [
    (255, 255, 255),
    (128, 128, 128),
    (30, 30, 30),
    (240, 236, 226),
    (220, 20, 30),
    (20, 200, 40),
    (30, 40, 220),
    (205, 150, 125),
    (70, 28, 30),
    (0, 220, 220),
]


@pytest.mark.parametrize("name,space,rng", TAGS)
def test_i420_put_is_shown_in_the_colour_asked_for(name: str, space: int, rng: int) -> None:
    """Saturated and grey blocks written with `put` decode (per the tags) to the colour written, and
    `region` reads them back as such."""
    f = _tagged(16 * len(COLOURS), 16, space, rng)
    img = np.concatenate([np.full((16, 16, 3), c, np.uint8) for c in COLOURS], axis=1)
    f.put(img, 0, 0)
    shown = _shown(f.av_frame, space, rng).astype(int)
    back = f.region(0, 0, f.width, f.height).astype(int)
    for k, c in enumerate(COLOURS):
        block = np.s_[4:12, 16 * k + 4 : 16 * k + 12]
        assert np.abs(shown[block].mean((0, 1)) - c).max() <= 3, (name, c, shown[block].mean((0, 1)))
        assert np.abs(back[block].mean((0, 1)) - c).max() <= 3, (name, c, back[block].mean((0, 1)))


@pytest.mark.parametrize("name,space,rng", TAGS)
def test_i420_region_reads_a_decoded_frame_as_a_player_shows_it(name: str, space: int, rng: int) -> None:
    rgb = np.concatenate([np.full((16, 16, 3), c, np.uint8) for c in COLOURS], axis=1)
    vf = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format="yuv420p", dst_colorspace=_SPACE[space], dst_color_range=_RANGE[rng]
    )
    vf.colorspace, vf.color_range = space, rng
    f = I420Frame.from_av(vf)
    got = f.region(0, 0, f.width, f.height).astype(int)
    assert np.abs(got[4:12] - _shown(vf, space, rng)[4:12]).max() <= 2, name
    assert np.abs(f.rgb().astype(int) - got).max() == 0


def test_i420_put_averages_chroma_of_thin_structures() -> None:
    """A band one pixel tall (a tooth edge, a lip line) keeps its share of colour: 4:2:0 averages each
    2x2 block instead of taking the top-left pixel's chroma."""
    img = np.full((16, 16, 3), 150, np.uint8)
    img[0::2] = (200, 60, 60)  # red on even rows only (colours that stay in gamut when their chroma mixes)
    f = _tagged(16, 16, 6, 1)
    f.put(img, 0, 0)
    shown = _shown(f.av_frame, 6, 1).astype(float)
    assert np.abs(shown.mean((0, 1)) - img.mean((0, 1))).max() <= 4, shown.mean((0, 1))


def test_i420_rotation_keeps_pixels_and_tags() -> None:
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:8, :8] = (220, 20, 30)
    vf = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
    )
    vf.colorspace, vf.color_range = 1, 1
    f = I420Frame.from_av(vf, quarter_turns=1)
    assert (f.height, f.width) == (48, 32)
    got = f.region(0, 0, f.width, f.height).astype(int)
    want = np.rot90(_shown(vf, 1, 1), k=1).astype(int)
    assert np.abs(got[-6:-2, 2:6].mean((0, 1)) - (220, 20, 30)).max() <= 3  # np.rot90: top left to bottom left
    assert np.abs(got - want).mean() <= 0.5


# ------------------------------------------------------------------------------------------ painted mouth


def _mouth(cx: float, cy: float, half_w: float, gap: float) -> np.ndarray:
    """Landmarks with only the inner lips set: an open mouth centred at (cx, cy)."""
    pts = np.zeros((478, 3), np.float32)
    t = np.linspace(-1, 1, len(UPPER_INNER_LIP))
    pts[UPPER_INNER_LIP, 0] = cx + half_w * t
    pts[UPPER_INNER_LIP, 1] = cy - 0.5 * gap * (1 - t**2)
    pts[LOWER_INNER_LIP, 0] = cx + half_w * t
    pts[LOWER_INNER_LIP, 1] = cy + 0.5 * gap * (1 - t**2)
    return pts


def _decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        cc = c.streams.video[0].codec_context
        space = 6 if int(cc.colorspace) not in _SPACE else int(cc.colorspace)
        rng = 1 if int(cc.color_range) not in _RANGE else int(cc.color_range)
        return _shown(next(c.decode(video=0)), space, rng)


def _interior_error(asked: np.ndarray, shown: np.ndarray, before: np.ndarray) -> dict[str, float]:
    """Largest channel error of the mean colour of teeth and cavity (edges eroded away)."""
    changed = (np.abs(asked.astype(int) - before).sum(2) > 30).astype(np.uint8)
    core = cv2.erode(changed, np.ones((5, 5), np.uint8)) > 0
    bright = asked.astype(int).sum(2)
    errs = {}
    for part, m in (("teeth", core & (bright > 330)), ("cavity", core & (bright < 150))):
        assert m.sum() > 40, part
        errs[part] = float(np.abs(shown[m].astype(float).mean(0) - asked[m].astype(float).mean(0)).max())
    return errs


@pytest.mark.parametrize("name,space,rng", TAGS)
def test_painted_interior_colour_in_dub_and_photo_mode(tmp_path: Path, name: str, space: int, rng: int) -> None:
    """The same interior painted in photo mode (RGB frames to the writer) and in a dub (a 4:2:0
    region round trip into a frame with these tags) is shown in the colour painted."""
    w, h = 320, 240
    pts = _mouth(161, 121, 70, 44)
    before = np.full((h, w, 3), SKIN, np.uint8)
    asked = before.copy()
    paint_mouth(asked, pts, 200.0, 1.0)

    photo = tmp_path / "photo.mp4"
    with VideoWriter(photo, w, h, fps=25, crf=12) as wr:
        for _ in range(3):
            wr.write(asked)
    photo_err = _interior_error(asked, _decode(photo), before)

    frame = _tagged(w, h, space, rng)
    frame.put(before, 0, 0)
    x0, y0, x1, y1 = frame.clip(61, 61, 263, 183)
    rgb = frame.region(x0, y0, x1, y1)
    paint_mouth(rgb, pts - np.array([x0, y0, 0], np.float32), 200.0, 1.0)
    frame.put(rgb, x0, y0)
    dub = tmp_path / "dub.mp4"
    with VideoWriter(dub, w, h, fps=25, crf=12, time_base=None, colors=(rng, space, space, space)) as wr:
        for _ in range(3):
            vf = av.VideoFrame(w, h, "yuv420p")
            for k, p in enumerate((frame.y, frame.u, frame.v)):
                np.frombuffer(vf.planes[k], np.uint8).reshape(-1, vf.planes[k].line_size)[
                    : p.shape[0], : p.shape[1]
                ] = p
            wr.write_yuv(vf)
    dub_err = _interior_error(asked, _decode(dub), before)
    assert max(photo_err.values()) <= 5, ("photo", name, photo_err)
    assert max(dub_err.values()) <= 5, ("dub", name, dub_err)


@pytest.mark.parametrize("skin,warm", [((205, 150, 125), True), ((140, 140, 140), False)])
def test_painted_teeth_take_the_colour_of_the_light(skin, warm: bool) -> None:
    """Teeth lit like the face (the dub's painted fallback): cream next to warm skin (a neutral grey
    there reads as cyan), neutral next to neutral skin."""
    from talkinghead.render.mouth_interior import CHEEKS, light_tint

    pts = _mouth(161, 121, 70, 44)
    pts[CHEEKS, :2] = [[100, 60], [220, 60], [90, 90], [230, 90], [110, 170], [210, 170]]
    before = np.full((240, 320, 3), skin, np.uint8)
    img = before.copy()
    paint_mouth(img, pts, 200.0, 1.0, light_tint(before, pts))
    changed = cv2.erode((np.abs(img.astype(int) - before).sum(2) > 30).astype(np.uint8), np.ones((5, 5), np.uint8))
    teeth = img[(changed > 0) & (img.astype(int).sum(2) > 330)].astype(float).mean(0)
    if warm:
        assert teeth[0] > teeth[1] > teeth[2] and teeth[2] / teeth[0] < 0.9, teeth
    else:
        assert teeth[2] / teeth[0] > 0.9, teeth
