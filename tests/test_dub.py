"""Dubbing: a video made by the product itself gets a new voice; timing, odd inputs and resume.

Every check re-reads the output file: timestamps from the container, mouths with the face mesh,
pixels against the input frames.
"""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from speech import SENTENCES, speech_with_pause, write_wav

from talkinghead import dubbing
from talkinghead.audio.features import loudness
from talkinghead.dubbing import dub
from talkinghead.errors import InputError, NoFaceError
from talkinghead.face.indices import MOUTH_JAW
from talkinghead.face.landmarks import detect_faces
from talkinghead.media import VideoWriter, iter_frames, load_audio, probe_video
from talkinghead.media.timeline import plan_timeline
from talkinghead.metrics.image import psnr
from talkinghead.metrics.mouth import measure_video
from talkinghead.pipeline import generate


@pytest.fixture(scope="module")
def talking(tmp_path_factory, animator, demo_face) -> Path:
    """About 3.5 s of the demo face speaking English, 256 px, 25 fps, made by `generate`."""
    d = tmp_path_factory.mktemp("dub_src")
    samples, _ = speech_with_pause(SENTENCES["en"], "en", pause_s=0.6, lead_s=0.3)
    wav = d / "en.wav"
    write_wav(wav, samples)
    # unmarked: it stands for a real recording. Marked (mouth spared), the mesh's mouth-to-speech correlation of the
    # dub below averages as unmarked over job ids but varies with the job id as much as with the encoder's CRF, and
    # a signed source gives its dub a new job id on every run: not reproducible (RESULTS.md, issue 14, third pass)
    # a still head: the mouth-to-speech check below reads a ~40 px mouth with the face mesh, and on a turning head
    # that reading decides the result more than the dub does (with head motion, seeds 5 and 11 pass, 3 and 7 do not
    # since generate draws its head motion with the streaming sampler; the dub itself is the same)
    return generate(demo_face, wav, d / "talking.mp4", animator=animator, size=256, seed=3, still=True, watermark=False)


@pytest.fixture(scope="module")
def frames(talking) -> list[np.ndarray]:
    return [f for _, f in iter_frames(talking)]


def _speech(tmp_path: Path, lang: str, seconds: float | None = None, name: str = "new.wav") -> Path:
    samples, _ = speech_with_pause(SENTENCES[lang], lang, pause_s=0.5, lead_s=0.2)
    if seconds is not None:
        n = int(seconds * 16000)
        samples = np.resize(samples, n) if n > len(samples) else samples[:n]
    p = tmp_path / name
    write_wav(p, samples)
    return p


def _write(
    path: Path, images: list[np.ndarray], times: list[float] | None = None, fps: float = 25.0, audio=None
) -> Path:
    """Re-encode frames at given timestamps (variable frame rate when `times` is irregular)."""
    tb = Fraction(1, 90000)
    h, w = images[0].shape[:2]
    with VideoWriter(path, w, h, fps=fps, time_base=tb if times is not None else None, audio=audio) as wr:
        for k, img in enumerate(images):
            if times is None:
                wr.write(img)
            else:
                wr.write(img, pts=round(times[k] / tb))
    return path


def _times(path: Path) -> np.ndarray:
    return np.array([t for t, _ in iter_frames(path)])


def _upper(img: np.ndarray) -> np.ndarray:
    return img[: img.shape[0] * 2 // 5]  # forehead and eyes: never touched by a dub


def test_another_voice_moves_the_mouth_and_nothing_else(talking, frames, tmp_path):
    new = _speech(tmp_path, "de", seconds=probe_video(talking).duration - 0.2)
    report = dub(talking, new, tmp_path / "out.mp4", watermark=False)  # the mouth measure below, as for the source
    assert report.frames == len(frames) and report.dubbed >= len(frames) - 1
    assert b"sliced_threads=0" in report.path.read_bytes()  # x264 encoded on frame threads (its options, in the stream)
    out = [f for _, f in iter_frames(report.path)]
    assert len(out) == len(frames)
    nose = int(detect_faces(frames[0])[0].points[1, 1])  # rows above the nose tip are never re-rendered
    worst = min(psnr(a[:nose], b[:nose]) for a, b in zip(frames, out))
    assert worst > 37, f"upper face must be untouched but for re-encoding (PSNR {worst:.1f} dB)"
    dubbed = measure_video(report.path).mouth
    original = measure_video(talking).mouth
    db = loudness(load_audio(new).samples, len(dubbed), 25.0)
    env = np.clip(db - (db.max() - 45), 0, None)
    r_new = np.corrcoef(np.nan_to_num(dubbed, nan=np.nanmedian(dubbed)), env)[0, 1]
    r_old = np.corrcoef(
        np.nan_to_num(dubbed, nan=np.nanmedian(dubbed)), np.nan_to_num(original, nan=np.nanmedian(original))
    )[0, 1]
    assert r_new > 0.35, f"the dubbed mouth must follow the new speech (r={r_new:.2f})"
    assert r_new > r_old + 0.1, f"...more than the original mouth (new {r_new:.2f}, original {r_old:.2f})"


@pytest.mark.parametrize("fps", [23.976, 29.97, 60.0, "vfr"])
def test_any_frame_rate_keeps_input_timestamps(fps, frames, tmp_path):
    n = 40
    if fps == "vfr":
        steps = np.random.default_rng(1).uniform(1 / 50, 1 / 15, n - 1)
        times = list(np.concatenate([[0.0], np.cumsum(steps)]))
        src = _write(tmp_path / "in.mp4", frames[:n], times, fps=25)
    else:
        src = _write(tmp_path / "in.mp4", frames[:n], [k / fps for k in range(n)], fps=fps)
    t_in = _times(src)
    audio = _speech(tmp_path, "fr", seconds=float(t_in[-1]) * 0.8)
    report = dub(src, audio, tmp_path / "out.mp4")
    t_out = _times(report.path)
    assert len(t_out) == len(t_in)
    assert np.abs(t_out - t_in).max() < 1e-3, "every frame keeps its own timestamp"
    assert report.dubbed + report.passed_through["after the new speech"] == n
    assert report.dubbed >= 0.8 * n - 2


@pytest.mark.parametrize("loop", ["pingpong", "loop", "freeze"])
def test_audio_longer_than_video(loop, frames, tmp_path):
    src = _write(tmp_path / "in.mp4", frames[:20])
    audio = _speech(tmp_path, "es", seconds=2.0)
    report = dub(src, audio, tmp_path / "out.mp4", loop=loop)
    info = probe_video(report.path)
    assert abs(info.duration - 2.0) <= 0.05 and info.n_frames == 50
    plan = plan_timeline(np.arange(20) * 512, 1 / 12800, 2.0, loop)
    out = [f for _, f in iter_frames(report.path)]
    src_frames = [f for _, f in iter_frames(src)]
    for k in (25, 38, 49):  # each output frame shows the planned input frame
        errors = [np.abs(_upper(out[k]).astype(int) - _upper(s)).mean() for s in src_frames]
        assert np.argmin(errors) == plan.source[k] or errors[plan.source[k]] <= min(errors) + 0.5


def test_audio_shorter_keep_and_trim(frames, tmp_path):
    orig_sound = load_audio(_speech(tmp_path, "en", name="orig.wav"))
    src = _write(tmp_path / "in.mp4", frames[:75], audio=orig_sound)  # 3 s with its own sound
    audio = _speech(tmp_path, "de", seconds=1.2)
    kept = dub(src, audio, tmp_path / "keep.mp4", rest="keep")
    assert probe_video(kept.path).n_frames == 75
    sound = load_audio(kept.path).samples
    assert abs(len(sound) / 16000 - 3.0) < 0.1
    tail, want = sound[int(1.6 * 16000) : int(2.8 * 16000)], orig_sound.samples[int(1.6 * 16000) : int(2.8 * 16000)]
    assert np.corrcoef(tail, want)[0, 1] > 0.9, "after the new speech the original sound continues"
    trimmed = dub(src, audio, tmp_path / "trim.mp4", rest="trim")
    assert abs(probe_video(trimmed.path).duration - 1.2) <= 0.05


def test_faceless_frames_pass_through(frames, tmp_path):
    images = [f.copy() for f in frames[:40]]
    for k in range(10, 20):  # a cutaway: ten frames of a plain wall
        images[k][:] = 128
    src = _write(tmp_path / "in.mp4", images)
    report = dub(src, _speech(tmp_path, "en", seconds=1.5), tmp_path / "out.mp4")
    assert report.passed_through["no face"] == 10
    assert report.dubbed >= 28
    out = [f for _, f in iter_frames(report.path)]
    src_frames = [f for _, f in iter_frames(src)]
    assert all(psnr(out[k], src_frames[k]) > 40 for k in range(10, 20))


def test_two_faces_auto_picks_the_speaker_and_a_point_picks_the_other(frames, tmp_path):
    still = frames[0][:, ::-1]  # the same face, mirrored and silent
    images = [np.concatenate([f, still], 1) for f in frames[:50]]
    src = _write(tmp_path / "in.mp4", images)
    audio = _speech(tmp_path, "de", seconds=1.8)
    src_frames = [f for _, f in iter_frames(src)]
    w = images[0].shape[1] // 2
    lips = detect_faces(frames[0])[0].points[MOUTH_JAW, :2]
    x0, y0 = lips.min(0).astype(int)
    x1, y1 = lips.max(0).astype(int)

    def changed(path: Path) -> tuple[float, float]:
        """Change of each face's mouth region in the frames where it changes most (90th percentile over
        frames: re-encoding alone changes every frame a little; a dub that keeps the speaker's own teeth
        changes the mouth less on average). The right face is the mirror image."""
        out = [f for _, f in iter_frames(path)]
        left = np.percentile(
            [np.abs(a[y0:y1, x0:x1].astype(int) - b[y0:y1, x0:x1]).mean() for a, b in zip(out, src_frames)], 90
        )
        r0, r1 = 2 * w - x1, 2 * w - x0
        right = np.percentile(
            [np.abs(a[y0:y1, r0:r1].astype(int) - b[y0:y1, r0:r1]).mean() for a, b in zip(out, src_frames)], 90
        )
        return left, right

    left, right = changed(dub(src, audio, tmp_path / "auto.mp4").path)
    assert left > 2 * right, f"auto must dub the speaking (left) face: change left {left:.3f}, right {right:.3f}"
    left, right = changed(dub(src, audio, tmp_path / "point.mp4", face=f"{w + w // 2},{w // 2}").path)
    assert right > 2 * left, f"--face x,y must dub the face there: change left {left:.3f}, right {right:.3f}"


# warm < chunk: mouths_NNNNNa.npz; the renderer stops `at` a frame where tracking can already have ended
@pytest.mark.parametrize("chunk, warm, at, finished", [(16, 64, 40, 2), (32, 8, 50, 1)])
def test_interrupted_dub_resumes_to_the_same_video(frames, tmp_path, monkeypatch, chunk, warm, at, finished):
    monkeypatch.setattr(dubbing, "CHUNK", chunk)
    monkeypatch.setattr(dubbing, "WARM", warm)
    src = _write(tmp_path / "in.mp4", frames[:60])
    audio = _speech(tmp_path, "en", seconds=2.2)
    whole = dub(src, audio, tmp_path / "whole.mp4")

    tracked = [0]

    def stop_midway(stage: str, done: int, total: int) -> None:
        if stage == "Tracking the face":
            tracked[0] = done
        if stage == "Rendering" and done == at:
            # the renderer follows the tracker a few frames behind (dubbing.WARM): the interruption waits for the
            # tracking to end (its hand-off has room for the last frames), as the landmarks of frames tracked again
            # after a resume are not bit-identical (mediapipe's own tracking state starts afresh)
            deadline = time.monotonic() + 30
            while tracked[0] < 60 and time.monotonic() < deadline:
                time.sleep(0.01)
            raise KeyboardInterrupt

    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        dub(src, audio, out, progress=stop_midway)
    assert not out.exists()
    work = tmp_path / ".out.mp4.dub"
    assert len(list(work.glob("video_*.mp4"))) == finished  # segments 0-15, 16-31 (or 0-31) finished
    assert (work / "mouths_00001a.npz").is_file() == (warm < chunk)
    done: list[str] = []
    report = dub(src, audio, out, progress=lambda s, d, t: done.append(s))
    assert report.resumed and "Tracking the face" not in done, "a resumed job must not track again"
    assert not (tmp_path / ".out.mp4.dub").exists()
    a = [f for _, f in iter_frames(whole.path)]
    b = [f for _, f in iter_frames(report.path)]
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def _count_decodes(monkeypatch, unbounded: list[bool] | None = None) -> tuple[list[int], list]:
    """Patch the dub's own decoder to count the frames it decodes and its hand-off to be recorded (holding every
    frame while `unbounded[0]`): (decoded, hand-offs), filled as dubs run."""
    from talkinghead.dub_track import FrameHandoff
    from talkinghead.media.frame_fetch import FrameFetcher

    decoded: list[int] = []
    handoffs: list[FrameHandoff] = []

    class CountingFetcher(FrameFetcher):  # the renderer's decoder
        def _decoded(self):  # type: ignore[no-untyped-def]
            for frame in super()._decoded():
                decoded.append(1)
                yield frame

    class Handoff(FrameHandoff):
        def __init__(self, capacity: int, drop_before: int = 0) -> None:
            super().__init__(10**6 if unbounded and unbounded[0] else capacity, drop_before)
            handoffs.append(self)

    monkeypatch.setattr(dubbing, "FrameFetcher", CountingFetcher)
    monkeypatch.setattr(dubbing, "FrameHandoff", Handoff)
    return decoded, handoffs


def test_a_dub_decodes_each_frame_once_holding_few(frames, tmp_path, monkeypatch):
    """The renderer draws on the frames the tracker decoded (a bounded hand-off), never decoding them again."""
    monkeypatch.setattr(dubbing, "CHUNK", 16)
    monkeypatch.setattr(dubbing, "WARM", 16)  # a hand-off of 21 frames holds the first segment's 16 + RADIUS: no drops
    decoded, handoffs = _count_decodes(monkeypatch)
    src = _write(tmp_path / "in.mp4", frames[:60])
    report = dub(src, _speech(tmp_path, "en", seconds=2.0), tmp_path / "out.mp4")  # shorter: every frame in order
    assert report.frames == 60 and report.dubbed > 50
    (h,) = handoffs
    assert h.handed == 60 and not decoded, f"{len(decoded)} frames decoded a second time by the renderer"
    assert h.most <= h.capacity == 16 + 3 + 2  # WARM (at most CHUNK) + the smoothing radius + 2
    # longer speech: the input itself is handed over, the loops after its end (ping-pong) are decoded again by the
    # renderer, from the keyframe before them (this clip has one) once per segment
    decoded.clear()
    report = dub(src, _speech(tmp_path, "en", seconds=3.0), tmp_path / "loop.mp4")
    assert report.frames == 75 and handoffs[-1].handed == 60 and 0 < len(decoded) <= 2 * 60


def test_the_first_segment_sees_its_own_frames_as_a_two_pass_dub_does(frames, tmp_path, monkeypatch):
    """The first segment's closed-lip gap and skin tone come from frames [0, CHUNK + RADIUS) and its mouth bank from
    its own frames, as when the renderer ran a whole segment behind the tracker; the frames the hand-off could not
    hold meanwhile are decoded again, and render the very same pixels as handed-over ones."""
    from talkinghead.dub_track import TrackJob
    from talkinghead.face.smooth import RADIUS

    chunk, warm = 32, 8
    monkeypatch.setattr(dubbing, "CHUNK", chunk)
    monkeypatch.setattr(dubbing, "WARM", warm)
    unbounded = [False]
    decoded, handoffs = _count_decodes(monkeypatch, unbounded)
    begun: list[tuple[int, int, int | None, float, float]] = []
    tracks: list = []

    class Tracker(TrackJob):
        def result(self):  # type: ignore[no-untyped-def]
            tracks.append(super().result())
            return tracks[-1]

    begin = dubbing._Renderer._begin

    def spy(self, s, track, stats_upto, bank_upto=None):  # type: ignore[no-untyped-def]
        seg = begin(self, s, track, stats_upto, bank_upto)
        begun.append((s, stats_upto, bank_upto, seg.closed, seg.tone))
        return seg

    monkeypatch.setattr(dubbing, "TrackJob", Tracker)
    monkeypatch.setattr(dubbing._Renderer, "_begin", spy)
    src = _write(tmp_path / "in.mp4", frames[:60])
    audio = _speech(tmp_path, "en", seconds=2.0)  # shorter: every input frame in order, two segments
    dub(src, audio, tmp_path / "out.mp4")
    (h,), (track,) = handoffs, tracks
    assert h.capacity == warm + RADIUS + 2 < chunk + RADIUS
    assert h.dropped == chunk + RADIUS - h.capacity and h.handed == 60 - h.dropped
    assert h.dropped <= len(decoded) < h.dropped + 8, "only the dropped frames are decoded again"
    ok = track.status[: chunk + RADIUS] == 0
    gaps, tones = track.gaps[: chunk + RADIUS][ok], track.tones[: chunk + RADIUS][ok]
    assert ok.sum() > 30
    s, stats_upto, bank_upto, closed, tone = begun[0]
    assert (s, stats_upto, bank_upto) == (0, chunk + RADIUS, chunk), "gap and tone to CHUNK + RADIUS, bank: its own"
    assert closed == float(np.percentile(gaps, 10)) and tone == float(np.median(tones))
    assert [b[:3] for b in begun[1:]] == [(1, chunk + warm, None)], "a later segment follows the tracker"

    unbounded[0], decoded[:] = True, []  # every frame held: none decoded again, the same pixels
    dub(src, audio, tmp_path / "held.mp4")
    assert handoffs[-1].dropped == 0 and handoffs[-1].handed == 60 and not decoded
    a = [f for _, f in iter_frames(tmp_path / "out.mp4")]
    b = [f for _, f in iter_frames(tmp_path / "held.mp4")]
    assert len(a) == len(b) == 60 and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_an_interrupt_while_the_tracker_waits_for_room_leaves_no_thread_behind(frames, tmp_path, monkeypatch):
    import threading

    monkeypatch.setattr(dubbing, "CHUNK", 16)
    src = _write(tmp_path / "in.mp4", frames[:60])

    def stop_early(stage: str, done: int, total: int) -> None:
        if stage == "Rendering" and done == 3:
            time.sleep(0.5)  # the tracker fills the hand-off (21 frames) and waits for room
            raise KeyboardInterrupt

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        dub(src, _speech(tmp_path, "en", seconds=2.0), tmp_path / "out.mp4", progress=stop_early)
    assert time.monotonic() - t0 < 30
    assert not [t for t in threading.enumerate() if t.name == "talkinghead-track"], "the tracker must have ended"
    assert not (tmp_path / "out.mp4").exists()


def test_bad_inputs_fail_cleanly(frames, tmp_path):
    audio = _speech(tmp_path, "en", seconds=1.0)
    wall = _write(tmp_path / "wall.mp4", [np.full_like(frames[0], 90)] * 10)
    out = tmp_path / "out.mp4"
    with pytest.raises(NoFaceError):
        dub(wall, audio, out)
    assert not out.exists() and not any(p.name.startswith(".out") for p in tmp_path.iterdir())
    src = _write(tmp_path / "in.mp4", frames[:10])
    with pytest.raises(InputError, match="--loop"):
        dub(src, audio, out, loop="bounce")
    with pytest.raises(InputError, match="overwrite"):
        dub(src, audio, src)
    with pytest.raises(InputError, match="--face"):
        dub(src, audio, out, face="left")
    assert not out.exists()
