"""Direct tests of the pieces a dub is made of, which test_dub.py only reaches through `dub()`.

All inputs are made here (numpy arrays, tiny videos written with PyAV); nothing needs the corpus and
only the Dubber test runs a model.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from clips import smooth_rgb
from speech import SENTENCES, speech_with_pause, write_wav

import talkinghead as th
from talkinghead.face import choice as choice_mod
from talkinghead.face.follow import FaceChoice
from talkinghead.face.indices import LEFT_IRIS, LIP_BOTTOM, LIP_TOP, RIGHT_IRIS
from talkinghead.face.landmarks import DetectedFace
from talkinghead.face.smooth import runs, smooth_points
from talkinghead.media import VideoWriter, load_audio
from talkinghead.media.frame_fetch import FrameFetcher
from talkinghead.media.i420 import I420Frame
from talkinghead.media.soundtrack import splice_soundtrack
from talkinghead.media.timeline import plan_timeline
from talkinghead.render.region import even_box
from talkinghead.types import Waveform

# ------------------------------------------------------------------------------------------ frame fetching


def _numbered_video(path: Path, n: int = 60, gop: int = 8, times: list[float] | None = None) -> Path:
    """Frame k is a flat grey of luma 20 + 3k (told apart after encoding), with a keyframe every `gop`
    frames and B-frames, so fetching backwards and jumping both need real seeks."""
    with av.open(os.fspath(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.gop_size = gop
        s.options = {"crf": "5", "preset": "veryfast", "bf": "2", "sc_threshold": "0"}
        tb = Fraction(1, 90000)
        s.codec_context.time_base = tb
        for k in range(n):
            f = av.VideoFrame(64, 48, "yuv420p")
            for p, v in zip(f.planes, (20 + 3 * k, 128, 128)):
                p.update(np.full(p.buffer_size, v, np.uint8))
            f.pts = round((times[k] if times is not None else k / 25) / tb)
            f.time_base = tb
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)
    return path


def _number(frame: I420Frame) -> int:
    return int(round((float(frame.y.mean()) - 20) / 3))


@pytest.fixture(scope="module")
def numbered(tmp_path_factory) -> Path:
    return _numbered_video(tmp_path_factory.mktemp("fetch") / "numbered.mp4")


def test_scan_lists_every_frame_and_resumes_after_a_pts(numbered):
    with FrameFetcher(numbered) as fetch:
        scanned = [(p, _number(f)) for p, f in fetch.scan()]
        assert [k for _, k in scanned] == list(range(60))
        pts = [p for p, _ in scanned]
        assert pts == sorted(pts)
        after = [_number(f) for _, f in fetch.scan(pts[37])]  # a second scan seeks back
    assert after == list(range(38, 60))


@pytest.mark.parametrize("block", [4, 24])
def test_frames_pingpong_backwards_and_jumps(numbered, block):
    order = list(range(60)) + list(range(58, -1, -1)) + list(range(1, 30))  # ping-pong
    order += [50, 51, 5, 6, 7, 59, 0, 33, 33, 12]  # jumps both ways (resuming), a repeat
    with FrameFetcher(numbered, block=block) as fetch:
        fetch.index([p for p, _ in fetch.scan()])
        got = [_number(f) for f in fetch.frames(order)]
    assert got == order


def test_frames_after_an_index_that_grows(numbered):
    """Rendering while tracking: the index grows chunk by chunk and the decoder keeps its place."""
    with FrameFetcher(numbered) as fetch:
        pts = [p for p, _ in fetch.scan()]
        fetch.index(pts[:20])
        first = [_number(f) for f in fetch.frames(range(0, 20))]
        fetch.index(pts[:45])
        second = [_number(f) for f in fetch.frames(range(20, 45))]
        fetch.index(pts)
        third = [_number(f) for f in fetch.frames([59, 58, 10])]
    assert first == list(range(20)) and second == list(range(20, 45)) and third == [59, 58, 10]


def test_frames_of_a_variable_rate_video(tmp_path):
    steps = np.random.default_rng(4).uniform(1 / 60, 1 / 12, 39)
    times = list(np.concatenate([[0.0], np.cumsum(steps)]))
    path = _numbered_video(tmp_path / "vfr.mp4", n=40, gop=6, times=times)
    with FrameFetcher(path, block=5) as fetch:
        scanned = list(fetch.scan())
        fetch.index([p for p, _ in scanned])
        got = [_number(f) for f in fetch.frames(list(range(39, -1, -1)))]
        tb = float(fetch.time_base)
    assert got == list(range(39, -1, -1))
    assert np.abs(np.array([p for p, _ in scanned]) * tb - np.array(times)).max() < 1e-3


def test_fetched_frames_are_writable_copies(numbered):
    with FrameFetcher(numbered) as fetch:
        fetch.index([p for p, _ in fetch.scan()])
        a = next(fetch.frames([3]))
        a.y[:] = 0  # a dub paints into fetched frames; the decoder's own pictures must not change
        b = next(fetch.frames([4, 3]))
        again = list(fetch.frames([3]))[0]
    assert _number(b) == 4 and _number(again) == 3


# ------------------------------------------------------------------------------------------ I420 regions


def test_clip_gives_even_corners_inside_the_frame():
    frame = I420Frame.from_rgb(smooth_rgb(51, 67))  # odd sizes: padded to even (the writer crops them back)
    assert (frame.width, frame.height) == (68, 52)
    assert frame.clip(3.7, 5.2, 20.1, 30.9) == (2, 4, 22, 32)
    assert frame.clip(-10, -3.5, 500, 400) == (0, 0, 68, 52)
    x0, y0, x1, y1 = frame.clip(80, 60, 90, 70)  # wholly outside: an empty box, never an inverted one
    assert x1 == x0 and y1 == y0 and frame.region(x0, y0, x1, y1).shape == (0, 0, 3)
    for box in [(3.7, 5.2, 20.1, 30.9), (-10, -3.5, 500, 400), (11, 13, 12, 14)]:
        x0, y0, x1, y1 = frame.clip(*box)
        assert x0 % 2 == y0 % 2 == x1 % 2 == y1 % 2 == 0


def test_region_put_round_trip_changes_only_the_box():
    rgb = smooth_rgb(50, 66)
    frame = I420Frame.from_rgb(rgb)
    before = frame.planes
    x0, y0, x1, y1 = frame.clip(13.4, 7.9, 41.2, 29.5)
    region = frame.region(x0, y0, x1, y1)
    assert region.shape == (y1 - y0, x1 - x0, 3)
    assert np.abs(region.astype(int) - rgb[y0:y1, x0:x1]).mean() < 3  # the same pixels, through YUV

    frame.put(region, x0, y0)  # unchanged RGB back: the planes barely move (one more YUV round trip)
    assert np.abs(frame.planes.astype(int) - before).max() <= 2

    frame.put(np.full_like(region, (200, 40, 90)), x0, y0)
    after = frame.planes
    y_changed = np.argwhere(after[:50] != before[:50])
    assert y_changed[:, 0].min() >= y0 and y_changed[:, 0].max() < y1
    assert y_changed[:, 1].min() >= x0 and y_changed[:, 1].max() < x1
    uv_before = before[50:].reshape(2, 25, 33)
    uv_after = after[50:].reshape(2, 25, 33)
    outside = np.ones((25, 33), bool)
    outside[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = False
    assert np.array_equal(uv_before[:, outside], uv_after[:, outside]), "chroma outside the box is untouched"
    assert np.abs(frame.region(x0, y0, x1, y1).astype(int) - (200, 40, 90)).max() <= 3


def test_region_at_the_borders_and_from_the_cached_rgb():
    frame = I420Frame.from_rgb(smooth_rgb(50, 66, seed=2))
    corner = frame.clip(55.3, 41.0, 80.0, 70.0)
    planes_view = frame.region(*corner)
    assert planes_view.shape == (50 - 40, 66 - 54, 3)
    whole = frame.rgb()  # once the whole frame was converted (face search), regions come from it
    x0, y0, x1, y1 = corner
    assert np.array_equal(frame.region(*corner), whole[y0:y1, x0:x1])
    assert np.abs(frame.region(*corner).astype(int) - planes_view).max() <= 1
    frame.put(np.zeros_like(planes_view), x0, y0)  # a put invalidates the cached RGB
    assert frame.region(*corner).max() <= 3
    assert frame.region(10, 10, 10, 10).shape == (0, 0, 3)


def test_pixels_and_cheek_tone_convert_as_the_whole_frame_does():
    from talkinghead.render.mouth_interior import CHEEKS, face_tone
    from talkinghead.render.region import cheek_tone

    frame = I420Frame.from_rgb(smooth_rgb(50, 66, seed=3))
    xs, ys = np.array([0, 7, 33, 65, 64]), np.array([0, 9, 21, 49, 48])
    assert np.array_equal(frame.pixels(xs, ys), frame.rgb()[ys, xs])  # the same conversion, pixel by pixel
    rng = np.random.default_rng(0)
    points = rng.uniform(-5, 70, (478, 3)).astype(np.float32)  # some cheek points off the frame: clipped
    points[CHEEKS[0], :2] = (-3.0, 60.0)
    assert cheek_tone(frame, points) == face_tone(frame.rgb(), points)


def test_even_box_widens_outwards_and_stays_inside():
    assert even_box((3, 5, 9, 11), 40, 30) == (2, 4, 10, 12)
    assert even_box((0, 0, 40, 30), 40, 30) == (0, 0, 40, 30)
    assert even_box((37, 27, 39, 29), 39, 29) == (36, 26, 39, 29)  # clipped by an odd region size


# ------------------------------------------------------------------------------------------ timeline

TB = 1 / 12800  # 512 ticks a frame at 25 fps


def test_timeline_audio_exactly_as_long_as_the_video_reuses_nothing():
    pts = np.arange(20) * 512
    for loop in ("pingpong", "loop", "freeze"):
        for rest in ("keep", "trim"):
            plan = plan_timeline(pts, TB, 20 * 512 * TB, loop, rest)
            assert np.array_equal(plan.source, np.arange(20)) and np.array_equal(plan.pts, pts)
            assert plan.end_pts == 20 * 512


@pytest.mark.parametrize(
    "loop,expected",
    [
        ("pingpong", [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2]),
        ("loop", [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2]),
        ("freeze", [0, 1, 2, 3, 3, 3, 3, 3, 3, 3, 3]),
    ],
)
def test_timeline_reuses_frames_when_the_audio_is_longer(loop, expected):
    plan = plan_timeline(np.arange(4) * 512 + 1000, TB, 11 * 512 * TB, loop)  # first pts need not be 0
    assert plan.source.tolist() == expected
    assert np.array_equal(plan.pts, np.arange(11) * 512) and plan.end_pts == 11 * 512


def test_timeline_keep_and_trim_when_the_audio_is_shorter():
    pts = np.arange(30) * 512
    kept = plan_timeline(pts, TB, 10.5 * 512 * TB, rest="keep")
    assert len(kept) == 30 and kept.end_pts == 30 * 512
    cut = plan_timeline(pts, TB, 10.5 * 512 * TB, rest="trim")
    assert cut.source.tolist() == list(range(11))  # frame 10 starts before the audio ends
    assert cut.end_pts == round(10.5 * 512)
    tiny = plan_timeline(pts, TB, 0.001, rest="trim")
    assert len(tiny) == 1 and tiny.end_pts >= 1  # never an empty video


def test_timeline_of_a_one_frame_video():
    for loop in ("pingpong", "loop", "freeze"):
        plan = plan_timeline(np.array([7000]), TB, 0.2, loop)
        assert set(plan.source.tolist()) == {0}
        assert len(plan) == 5 and plan.end_pts == 5 * 512  # 40 ms a frame when there is no step to copy


def test_timeline_reused_frames_keep_their_own_durations():
    pts = np.array([0, 300, 900, 1000, 1700])  # variable frame rate
    plan = plan_timeline(pts, TB, 5000 * TB, "pingpong")
    steps = np.diff(np.append(plan.pts, plan.end_pts))
    durations = np.append(np.diff(pts), 700)
    assert np.array_equal(steps, durations[plan.source]), "each shown frame lasts as long as in the input"
    assert plan.source.tolist()[:9] == [0, 1, 2, 3, 4, 3, 2, 1, 0]
    frozen = plan_timeline(pts, TB, 5000 * TB, "freeze")
    assert np.diff(frozen.pts)[4] == 700, "the last input frame keeps its own duration"
    assert set(np.diff(frozen.pts)[5:].tolist()) == {int(np.median(np.diff(pts)))}, "then the typical step"
    assert plan.end_pts >= 5000 and plan.end_pts - durations.max() < 5000


# ------------------------------------------------------------------------------------------ smoothing


def _face(x: float, y: float, jitter: np.random.Generator) -> np.ndarray:
    """(478, 3) points spread like a face 60 px between the eyes, centred at x, y, with tracker noise."""
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(-60, 60, 478), rng.uniform(-70, 70, 478), rng.uniform(-10, 10, 478)])
    pts[LEFT_IRIS[0], :2], pts[RIGHT_IRIS[0], :2] = (-30, -20), (30, -20)
    pts += jitter.normal(0, 0.8, pts.shape)
    return (pts + (x, y, 0)).astype(np.float32)


def test_runs_split_at_missing_faces_and_at_cuts():
    jitter = np.random.default_rng(1)
    pts = np.stack([_face(100, 100, jitter) for _ in range(30)])
    pts[8] = np.nan  # no face
    pts[20:] += (200, 0, 0)  # a cut to another shot: the face jumps by 3+ eye distances
    assert runs(pts) == [(0, 8), (9, 20), (20, 30)]
    smooth = smooth_points(pts)
    assert np.isnan(smooth[8]).all()
    centre, raw = smooth[:, :, 0].mean(1), pts[:, :, 0].mean(1)
    here, there = np.nanmean(raw[:20]), raw[20:].mean()  # about 200 px apart
    assert abs(centre[19] - here) < 0.5 and abs(centre[20] - there) < 0.5, "nothing is averaged across a cut"
    assert abs(centre[7] - here) < 0.5 and abs(centre[9] - here) < 0.5
    inner = slice(11, 18)  # noise is reduced within a run
    assert np.std(np.diff(smooth[inner], axis=0)) < 0.6 * np.std(np.diff(pts[inner], axis=0))


def test_single_frame_runs_are_kept_as_they_are():
    jitter = np.random.default_rng(2)
    pts = np.stack([_face(100, 100, jitter) for _ in range(5)])
    pts[[1, 3]] = np.nan
    smooth = smooth_points(pts)
    assert runs(pts) == [(0, 1), (2, 3), (4, 5)]
    assert np.array_equal(smooth, pts, equal_nan=True)


# ------------------------------------------------------------------------------------------ soundtrack


def _video_with_sound(path: Path, seconds: float, sound: Waveform | None) -> Path:
    n = int(round(seconds * 25))
    with VideoWriter(path, 32, 32, fps=25, audio=sound) as w:
        for _ in range(n):
            w.write(np.full((32, 32, 3), 100, np.uint8))
    return path


def test_soundtrack_continues_with_the_videos_own_sound(tmp_path):
    t = np.arange(48000) / 16000
    orig = Waveform(
        (0.5 * np.sin(2 * np.pi * 330 * t) * (1 + np.sin(2 * np.pi * 1.5 * t)) / 2).astype(np.float32), 16000
    )
    video = _video_with_sound(tmp_path / "v.mp4", 3.0, orig)
    plan = plan_timeline(np.arange(75) * 512, TB, 1.0, rest="keep")
    new = Waveform(np.random.default_rng(0).uniform(-0.3, 0.3, 16000).astype(np.float32), 16000)
    sound = splice_soundtrack(new, video, plan, TB, "keep")
    assert sound.sample_rate == 16000 and abs(sound.duration - 3.0) < 1e-3
    assert np.array_equal(sound.samples[:16000], new.samples), "the new speech comes first, untouched"
    decoded = load_audio(video).samples
    tail, want = sound.samples[20000:44000], decoded[20000:44000]
    assert np.corrcoef(tail, want)[0, 1] > 0.95, "then the video's own sound at its own time"

    assert splice_soundtrack(new, video, plan, TB, "trim") is new
    long_enough = Waveform(np.zeros(48000, np.float32) + 0.1, 16000)
    assert splice_soundtrack(long_enough, video, plan, TB, "keep") is long_enough


def test_soundtrack_of_a_silent_video_and_a_stereo_speech(tmp_path):
    video = _video_with_sound(tmp_path / "mute.mp4", 2.0, None)
    plan = plan_timeline(np.arange(50) * 512, TB, 0.5, rest="keep")
    stereo = Waveform(np.full((24000, 2), 0.2, np.float32), 48000)
    sound = splice_soundtrack(stereo, video, plan, TB, "keep")
    assert sound.samples.shape == (96000, 2)
    assert np.array_equal(sound.samples[:24000], stereo.samples) and not sound.samples[24000:].any()


# ------------------------------------------------------------------------------------------ face choice


class _Frame:
    def rgb(self) -> np.ndarray:
        return np.zeros((4, 4, 3), np.uint8)


def _detected(cx: float, size: float) -> DetectedFace:
    box = (cx - size / 2, 50 - size / 2, cx + size / 2, 50 + size / 2)
    return DetectedFace(np.zeros((478, 3), np.float32), box, 1.0)


def _fake_faces(monkeypatch, faces_from: int, faces: list[DetectedFace], moving: dict[float, float]):
    """detect_faces finds `faces` from frame `faces_from` on; a follower of the face at x opens its
    mouth by `moving[x]` (a sine amplitude) over time."""
    seen = {"k": 0}

    def detect(_rgb):
        seen["k"] += 1
        return faces if (seen["k"] - 1) * choice_mod.DETECT_EVERY >= faces_from else []

    class Follower:
        def __init__(self, choice: FaceChoice) -> None:
            self.amp, self.t, self.closed = moving[choice.point[0]], 0, False

        def __call__(self, _frame):
            self.t += 1
            p = np.zeros((478, 3), np.float32)
            p[LEFT_IRIS[0], 0], p[RIGHT_IRIS[0], 0] = 0, 50
            p[LIP_BOTTOM, 1] = 5 + self.amp * np.sin(self.t / 2)
            p[LIP_TOP, 1] = 0
            return p

        def close(self) -> None:
            self.closed = True

    monkeypatch.setattr(choice_mod, "detect_faces", detect)
    monkeypatch.setattr(choice_mod, "FaceFollower", Follower)
    return [_Frame() for _ in range(400)]


def test_auto_choice_picks_the_face_whose_mouth_moves(monkeypatch):
    faces = [_detected(100, 80), _detected(300, 60)]  # largest first, as detect_faces orders them
    frames = _fake_faces(monkeypatch, 20, faces, {100.0: 0.2, 300.0: 6.0})
    point, scores = choice_mod.speaking_face(frames)
    assert point == faces[1].center and scores[1] > scores[0]


def test_auto_choice_takes_the_largest_when_no_mouth_clearly_moves_more(monkeypatch):
    faces = [_detected(100, 80), _detected(300, 60)]
    frames = _fake_faces(monkeypatch, 0, faces, {100.0: 5.0, 300.0: 5.5})
    point, _ = choice_mod.speaking_face(frames)
    assert point == faces[0].center


def test_auto_choice_has_nothing_to_choose_with_one_face_or_none(monkeypatch):
    frames = _fake_faces(monkeypatch, 0, [_detected(100, 80)], {100.0: 3.0})
    assert choice_mod.speaking_face(frames) is None
    frames = _fake_faces(monkeypatch, 10**6, [], {})
    assert choice_mod.speaking_face(frames) is None


# ------------------------------------------------------------------------------------------ Dubber


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory, animator, demo_face) -> Path:
    """1.2 s of the demo face speaking, 256 px (made by `generate`, no corpus)."""
    d = tmp_path_factory.mktemp("dubber")
    samples, _ = speech_with_pause(SENTENCES["en"], "en", pause_s=0.3, lead_s=0.2)
    write_wav(d / "a.wav", samples[: int(1.2 * 16000)])
    return th.generate(demo_face, d / "a.wav", d / "clip.mp4", animator=animator, size=256, seed=1)


def test_a_dubber_loads_the_model_once_for_many_videos(short_clip, tmp_path, monkeypatch):
    import talkinghead.motion.mouth as lips_model  # dubbing imports it when a Dubber loads the model

    built: list[object] = []
    real = lips_model.MouthModel

    def counting(*args, **kwargs):
        built.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(lips_model, "MouthModel", counting)
    import talkinghead.media.heap as heap

    monkeypatch.setattr(heap, "_done", False)
    pinned: list[str] = []
    monkeypatch.setattr(heap.ctypes.util, "find_library", lambda name: pinned.append(name))
    samples, _ = speech_with_pause(SENTENCES["de"], "de", pause_s=0.3, lead_s=0.1)
    write_wav(tmp_path / "new.wav", samples[:16000])

    with pytest.raises(th.InputError, match="--loop"):
        th.dub(short_clip, tmp_path / "new.wav", tmp_path / "bad.mp4", loop="bounce")
    assert built == [], "a bad input fails before any model is loaded"

    d = th.Dubber()
    first = d.dub(short_clip, tmp_path / "new.wav", tmp_path / "one.mp4")
    second = d.dub(short_clip, tmp_path / "new.wav", tmp_path / "two.mp4", loop="freeze")
    third = th.dub(short_clip, tmp_path / "new.wav", tmp_path / "three.mp4", dubber=d)
    assert len(built) == 1, "one Dubber, one model load"
    assert first.dubbed > 0 and first.frames == second.frames == third.frames
    assert all(r.path.is_file() for r in (first, second, third))
    th.dub(short_clip, tmp_path / "new.wav", tmp_path / "four.mp4")
    assert len(built) == 2, "th.dub without a Dubber loads its own"
    assert pinned == [] and not heap._done, "the library leaves the process allocator alone"


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = _video_with_sound(tmp_path / "masked.mp4", 0.2, None)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no partial file left behind"
