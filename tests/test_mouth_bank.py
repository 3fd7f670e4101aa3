"""The mouth bank: the speaker's own interiors collected from their video and drawn into dubbed mouths.

Synthetic faces (only the inner lips and the nose tip are placed) with a recognisable interior, so each
check knows exactly which pixels must come from where.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from clips import closed_mouth_clip

from talkinghead import dubbing
from talkinghead.face.indices import LOWER_INNER_LIP, UPPER_INNER_LIP
from talkinghead.media import iter_frames
from talkinghead.media.i420 import I420Frame
from talkinghead.render import mouth_bank as mb
from talkinghead.render.mouth_interior import paint_mouth
from talkinghead.render.region import dub_region

SKIN = (200, 145, 120)
IOD = 120.0


def _mouth(cx: float, cy: float, half_w: float, gap: float) -> np.ndarray:
    pts = np.zeros((478, 3), np.float32)
    t = np.linspace(-1, 1, len(UPPER_INNER_LIP))
    pts[UPPER_INNER_LIP, 0] = cx + half_w * t
    pts[UPPER_INNER_LIP, 1] = cy - 0.5 * gap * (1 - t**2)
    pts[LOWER_INNER_LIP, 0] = cx + half_w * t
    pts[LOWER_INNER_LIP, 1] = cy + 0.5 * gap * (1 - t**2)
    pts[1] = (cx, cy - 40, 0)  # nose tip straight above: a frontal face
    return pts


def _real_mouth(pts: np.ndarray, h: int = 200, w: int = 240) -> np.ndarray:
    """A frame whose open mouth holds a 'real' interior: green-grey teeth on top, a blue tongue below
    (colours the painted interior never uses)."""
    img = np.full((h, w, 3), SKIN, np.uint8)
    upper, lower = pts[UPPER_INNER_LIP, :2], pts[LOWER_INNER_LIP, :2]
    mid = (upper + lower) / 2
    top = np.concatenate([upper, mid[::-1]]).astype(np.int32)
    bottom = np.concatenate([mid, lower[::-1]]).astype(np.int32)
    cv2.fillPoly(img, [top], (170, 200, 170))
    cv2.fillPoly(img, [bottom], (40, 60, 150))
    return img


def _interior(pts: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Mask of the inner mouth, eroded away from the lips."""
    poly = np.concatenate([pts[UPPER_INNER_LIP, :2], pts[LOWER_INNER_LIP[-2:0:-1], :2]]).astype(np.int32)
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [poly], 1)
    return cv2.erode(m, np.ones((5, 5), np.uint8)).astype(bool)


def _bank(tmp_path: Path, gaps=(14, 20, 26, 32)) -> mb.MouthBank:
    col = mb.MouthCollector()
    for k, g in enumerate(gaps):
        pts = _mouth(120, 100, 40, g)
        col.add(k, I420Frame.from_rgb(_real_mouth(pts)), pts, IOD)
    col.save(tmp_path / "mouths_00000.npz")
    return mb.MouthBank.load([tmp_path / "mouths_00000.npz"], upto=10**9)


def test_the_filmed_mouth_stays_where_the_new_lips_match_it() -> None:
    """Target lips on (or within a pixel of) the filmed ones: every pixel stays as filmed, where the
    painted interior used to be drawn over the speaker's own teeth."""
    src = _mouth(120, 100, 40, 24)
    frame = _real_mouth(src)
    for jitter in (0.0, 0.5):
        tgt = src.copy()
        tgt[LOWER_INNER_LIP[1:-1], 1] += jitter
        out = frame.copy()
        painter = mb.MouthPainter(mb.MouthBank.empty())
        painter(out, src, tgt, IOD, 0.8)
        assert np.array_equal(out, frame), jitter
        assert painter.used["kept"] == 1
    painted = frame.copy()
    paint_mouth(painted, src, IOD, 0.8)
    assert not np.array_equal(painted, frame)  # what the renderer did before the bank


def test_a_wider_gap_than_filmed_is_not_kept() -> None:
    """Lips that barely move but part twice as far as filmed: the gap would hold lip pixels the warp
    stretched, so the interior is drawn, not kept."""
    src, tgt = _mouth(120, 100, 40, 2.0), _mouth(120, 100, 40, 4.0)
    assert mb.keep_filmed(src, tgt) == 0.0
    assert mb.keep_filmed(src, src) == 1.0
    assert 0.0 < mb.keep_filmed(_mouth(120, 100, 40, 20.0), _mouth(120, 100, 40, 23.0)) < 1.0


def test_dub_frame_keeps_original_mouth_pixels_where_the_shape_matches() -> None:
    """Through the dub's 4:2:0 path: the jaw moves a little (chin points), the inner lips do not; the
    interior comes back as decoded, not repainted."""
    src = _mouth(120, 100, 40, 24)
    img = _real_mouth(src)
    # a face oval and chin for the warp to hold on to
    from talkinghead.face.indices import FACE_OVAL

    ang = np.linspace(0, 2 * np.pi, len(FACE_OVAL), endpoint=False)
    src[FACE_OVAL, 0] = 120 + 70 * np.cos(ang)
    src[FACE_OVAL, 1] = 90 + 85 * np.sin(ang)
    src[[33, 133, 263, 362], :2] = [[80, 60], [105, 60], [160, 60], [135, 60]]
    tgt = src.copy()
    chin = FACE_OVAL[len(FACE_OVAL) // 2 - 2 : len(FACE_OVAL) // 2 + 3]
    tgt[chin, 1] += 1.5
    frame = I420Frame.from_rgb(img)
    before = frame.region(0, 0, frame.width, frame.height)
    dub_region(frame, src, tgt, 0.8, mb.MouthPainter(mb.MouthBank.empty()))
    after = frame.region(0, 0, frame.width, frame.height)
    inner = _interior(src, img.shape[:2])
    assert np.abs(after[inner].astype(int) - before[inner]).max() <= 2


def test_open_mouth_is_drawn_from_the_speakers_own_interior(tmp_path: Path) -> None:
    bank = _bank(tmp_path)
    assert 1 <= len(bank) <= 4
    src = _mouth(120, 100, 40, 4)  # filmed nearly closed
    tgt = _mouth(120, 100, 40, 22)  # dubbed open
    out = np.full((200, 240, 3), SKIN, np.uint8)
    painter = mb.MouthPainter(bank)
    painter(out, src, tgt, IOD, 0.8)
    assert painter.used["bank"] == 1
    inner = _interior(tgt, out.shape[:2])
    upper_half = inner & (np.arange(200)[:, None] < 100)
    lower_half = inner & (np.arange(200)[:, None] > 101)
    # the speaker's teeth and tongue, where they were, not the painted white band and red tongue
    assert np.abs(out[upper_half].mean(0) - (170, 200, 170)).max() < 20, out[upper_half].mean(0)
    assert np.abs(out[lower_half].mean(0) - (40, 60, 150)).max() < 25, out[lower_half].mean(0)


def test_cross_fade_between_entries_over_frames(tmp_path: Path) -> None:
    """A target opening that moves between two entries never jumps to the new one in one frame."""
    bank = _bank(tmp_path, gaps=(12, 34))
    painter = mb.MouthPainter(bank)
    src = _mouth(120, 100, 40, 2)
    steps = []
    for g in (13, 13, 33, 33, 33, 33, 33, 33, 33):
        out = np.full((200, 240, 3), SKIN, np.uint8)
        painter(out, src, _mouth(120, 100, 40, g), IOD, 0.8)
        steps.append(dict(painter._weights))
    first, jump = steps[1], steps[2]
    moved_to = max(steps[-1], key=steps[-1].get)
    assert first.get(moved_to, 0.0) < 0.5 and 0.2 < jump.get(moved_to, 0.0) < 0.95
    assert steps[-1][moved_to] > 0.9


def test_no_open_mouth_falls_back_to_the_painted_interior(tmp_path: Path) -> None:
    col = mb.MouthCollector()
    for k in range(20):
        pts = _mouth(120, 100, 40, 0.5)
        col.add(k, I420Frame.from_rgb(_real_mouth(pts)), pts, IOD)
    col.save(tmp_path / "mouths_00000.npz")
    bank = mb.MouthBank.load([tmp_path / "mouths_00000.npz"], upto=100)
    assert len(bank) == 0
    src, tgt = _mouth(120, 100, 40, 1), _mouth(120, 100, 40, 26)
    out = np.full((200, 240, 3), SKIN, np.uint8)
    want = out.copy()
    paint_mouth(want, tgt, IOD, 0.8, mb.light_tint(want, tgt))
    painter = mb.MouthPainter(bank)
    painter(out, src, tgt, IOD, 0.8)
    assert painter.used["painted"] == 1
    assert np.array_equal(out, want)


def test_bank_is_bounded_and_only_uses_frames_before_the_limit(tmp_path: Path) -> None:
    col = mb.MouthCollector()
    rng = np.random.default_rng(0)
    for k in range(300):
        pts = _mouth(120, 100, 40, float(rng.uniform(0, 34)))
        col.add(k, _real_mouth(pts), pts, IOD)
    col.save(tmp_path / "mouths_00000.npz")
    with np.load(tmp_path / "mouths_00000.npz") as z:
        n, idx = len(z["index"]), z["index"].copy()
    assert 3 <= n <= 12  # one per opening bin, not one per frame
    full = mb.MouthBank.load([tmp_path / "mouths_00000.npz"], upto=300)
    early = mb.MouthBank.load([tmp_path / "mouths_00000.npz"], upto=int(np.median(idx)))
    assert len(early) < len(full) == n
    again = mb.MouthBank.load([tmp_path / "mouths_00000.npz"], upto=int(np.median(idx)))
    assert np.array_equal(early.crop, again.crop)
    loader = mb.BankLoader(tmp_path)  # as a dub renders: the limit grows segment by segment
    assert np.array_equal(loader.upto(int(np.median(idx))).crop, early.crop)
    assert np.array_equal(loader.upto(300).feat, full.feat) and np.array_equal(loader.upto(300).crop, full.crop)


@pytest.mark.parametrize("opens", [False, True])
def test_dub_of_a_clip_uses_the_bank_only_when_the_speaker_opens_their_mouth(
    tmp_path: Path, demo_face, animator, wav_file, opens, monkeypatch
) -> None:
    """End to end: a still clip (mouth never open) is dubbed with the painted interior; a talking clip
    with its own mouths."""
    from speech import SENTENCES, speech_with_pause

    from talkinghead.pipeline import generate

    samples, _ = speech_with_pause(SENTENCES["en"], "en", pause_s=0.3, lead_s=0.2)
    wav = wav_file(samples[: 16000 * 2])
    if opens:
        src = generate(demo_face, wav, tmp_path / "src.mp4", animator=animator, size=256, seed=1)
    else:  # the demo photo smiles with parted lips: closed for a still clip
        src = closed_mouth_clip(tmp_path / "src.mp4", animator, 40)
    painters: list[mb.MouthPainter] = []

    class Spy(mb.MouthPainter):
        def __init__(self, bank: mb.MouthBank) -> None:
            super().__init__(bank)
            painters.append(self)

    monkeypatch.setattr(dubbing, "MouthPainter", Spy)
    report = dubbing.dub(src, wav, tmp_path / "out.mp4")
    assert report.dubbed > 0 and len(list(iter_frames(report.path))) == report.frames
    used = {k: sum(p.used[k] for p in painters) for k in ("kept", "bank", "painted")}
    if opens:
        assert used["bank"] > 0 and all(len(p.bank) > 0 for p in painters)
    else:
        assert used["bank"] == 0 and used["painted"] > 0 and all(len(p.bank) == 0 for p in painters)
