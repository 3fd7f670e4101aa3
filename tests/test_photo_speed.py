"""The fast photo path (issue 16): what it reuses must be exactly what it would have recomputed."""

from __future__ import annotations

import os
import sys
import textwrap

import av
import numpy as np
import pytest
from av.video.reformatter import ColorRange, Colorspace, VideoReformatter
from clips import x264_threading

from talkinghead.media.i420 import I420Frame
from talkinghead.media.still_frames import BackgroundEncoder, StillPlanes, yuv420


def _photo(h: int = 64, w: int = 96) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), np.uint8)


def test_yuv420_matches_the_writers_own_conversion(demo_face):
    from talkinghead.media import fit_size, load_image

    rgb = fit_size(load_image(demo_face), 256)[:256, :256]  # a photo: chroma filters differ on pixel noise
    vf = VideoReformatter().reformat(
        av.VideoFrame.from_ndarray(rgb, format="rgb24"),
        format="yuv420p",
        src_colorspace=Colorspace.ITU601,
        dst_colorspace=Colorspace.ITU601,
        dst_color_range=ColorRange.MPEG,
    )
    ref = I420Frame(vf)
    ours = yuv420(rgb)
    assert np.abs(ours[0].astype(int) - ref.y).max() <= 1
    for chroma, theirs in zip(ours[1:], (ref.u, ref.v)):  # swscale's chroma filter is a little wider
        diff = np.abs(chroma.astype(int) - theirs)
        assert diff.mean() < 0.5 and diff.max() <= 6


def test_still_planes_paste_equals_converting_the_whole_frame():
    photo = _photo()
    box = (20, 10, 60, 42)
    frame = photo.copy()
    frame[10:42, 20:60] = _photo(32, 40)[::-1]  # a changed region
    got = I420Frame(StillPlanes(photo, box).frame(frame[10:42, 20:60]))
    for ours, whole in zip((got.y, got.u, got.v), yuv420(frame)):
        np.testing.assert_array_equal(ours, whole)
    with pytest.raises(ValueError):
        StillPlanes(photo, (1, 10, 60, 42))  # chroma is shared by 2x2 pixels: odd corners are refused


def test_background_encoder_hands_the_writers_error_to_the_caller():
    class Failing:
        def write_yuv(self, vf: av.VideoFrame) -> None:
            raise OSError("disk full")

    encoder = BackgroundEncoder(Failing())  # type: ignore[arg-type]
    encoder.put(av.VideoFrame(16, 16, "yuv420p"))
    with pytest.raises(OSError, match="disk full"):
        encoder.close()


def test_background_encoder_encodes_every_frame_in_order():
    seen: list[int] = []

    class Counting:
        def write_yuv(self, vf: av.VideoFrame) -> None:
            seen.append(int(vf.pts))

    with BackgroundEncoder(Counting(), depth=2) as encoder:  # type: ignore[arg-type]
        for k in range(20):
            vf = av.VideoFrame(16, 16, "yuv420p")
            vf.pts = k
            encoder.put(vf)
    assert seen == list(range(20))


def test_stage_timers_count_only_when_switched_on():
    from talkinghead.media import timers

    timers.reset()
    with timers.stage("test stage"):
        pass
    assert "test stage" not in timers.stage_totals()[0]
    with timers.profiled():
        for _ in range(3):
            with timers.stage("test stage"):
                sum(range(1000))
    wall, cpu = timers.stage_totals()
    assert wall["test stage"] > 0 and cpu["test stage"] >= 0
    assert timers.totals()[("MainThread", "test stage")][2] == 3
    assert timers.ENABLED is False or os.environ.get("TALKINGHEAD_PROFILE")


def test_deferred_import_loads_on_first_use(tmp_path, monkeypatch):
    from talkinghead.lazy import defer_imports

    pkg = tmp_path / "th_deferred_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("LOADED = True\n")
    (pkg / "plot.py").write_text(textwrap.dedent("def draw():\n    return 'drawn'\n"))
    monkeypatch.syspath_prepend(str(tmp_path))
    names = ("th_deferred_pkg", "th_deferred_pkg.plot")
    try:
        defer_imports(names)
        import th_deferred_pkg.plot as plot  # what mediapipe does with matplotlib.pyplot: nothing is run

        assert type(sys.modules["th_deferred_pkg"]).__name__ == "_Deferred"  # not run yet
        assert type(plot).__name__ == "_Deferred"
        assert plot.draw() == "drawn"  # first use: the real modules are imported
        assert type(sys.modules["th_deferred_pkg.plot"]).__name__ == "module"
        import th_deferred_pkg

        assert th_deferred_pkg.LOADED is True
    finally:
        for name in names:
            sys.modules.pop(name, None)


def test_regions_are_the_only_pixels_that_change(animator, demo_face):
    from talkinghead.config import GenerateOptions
    from talkinghead.media import load_audio
    from talkinghead.pipeline import DEMO_AUDIO

    source = animator.set_source(demo_face, size=256)
    opts = GenerateOptions(seed=5)
    motion = animator.motion(load_audio(DEMO_AUDIO).samples[: 16000 * 2], 12, opts)
    x0, y0, x1, y1 = animator.changed_box()
    assert x0 % 2 == 0 and y0 % 2 == 0 and x1 % 2 == 0 and y1 % 2 == 0
    frames = list(animator.render(motion, opts))
    regions = list(animator.render_regions(motion, opts))
    photo = source.image
    moved = 0
    for frame, region in zip(frames, regions):
        np.testing.assert_array_equal(frame[y0:y1, x0:x1], region)
        outside = frame.copy()
        outside[y0:y1, x0:x1] = photo[y0:y1, x0:x1]
        np.testing.assert_array_equal(outside, photo)
        moved += int(np.abs(region.astype(int) - photo[y0:y1, x0:x1]).max() > 10)
    assert moved >= 6  # the face does move inside the box


def _speech_file(wav_file, seconds: float = 2.0):
    from talkinghead.media import load_audio
    from talkinghead.pipeline import DEMO_AUDIO

    return wav_file(load_audio(DEMO_AUDIO).samples[: int(16000 * seconds)])


def _in_fresh_process(code: str, *args: object) -> None:
    """Run `code` in a new interpreter: the motion process forks, as the command line does, from a process that has
    not loaded torch, mediapipe or x264 (forking this test process, with their native threads running, once left a
    child that died without a word)."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the motion process needs os.fork")
def test_motion_process_predicts_the_animators_motion(animator, wav_file, tmp_path):
    import torch

    from talkinghead.config import GenerateOptions
    from talkinghead.media.inputs import load_speech
    from talkinghead.weights import lips_geometry

    path = _speech_file(wav_file)
    opts = GenerateOptions(seed=5, blinks_per_min=40.0)
    _in_fresh_process(
        """
        import sys
        from talkinghead.config import GenerateOptions
        from talkinghead.motion_process import MotionProcess

        child = MotionProcess.start(sys.argv[1], GenerateOptions(seed=5, blinks_per_min=40.0))
        assert child is not None
        import numpy as np  # after the fork: its BLAS starts a thread of its own
        with child:
            pieces = list(child.pieces(50))
        np.savez(sys.argv[2], lengths=[len(p) for p in pieces], **{
            name: np.concatenate([getattr(p, name) for p in pieces]) for name in ("mouth", "lids", "pose")
        })
        assert "torch" not in sys.modules, "the parent imported torch"
        """,
        path,
        tmp_path / "pieces.npz",
    )
    pieces = np.load(tmp_path / "pieces.npz")
    assert pieces["lengths"].tolist() == [25, 25]  # a second of frames per message
    wave, speech = load_speech(path)
    assert round(wave.duration * opts.fps) == 50
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the child (and the command line) runs the models
    try:
        ours = animator.motion(speech, 50, opts)
    finally:
        torch.set_num_threads(threads)
    for name in ("mouth", "lids", "pose"):
        np.testing.assert_array_equal(pieces[name], getattr(ours, name))
    assert np.abs(ours.mouth).max() > 0 and np.abs(ours.pose).max() > 0  # it did move
    geometry = lips_geometry()  # what the parent reads from the file, without torch
    for name in ("reference", "indices", "open_direction"):
        np.testing.assert_array_equal(getattr(geometry, name), getattr(animator.mouth.geometry, name))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="native threads are counted through /proc")
def test_motion_process_is_not_forked_beside_a_native_thread(wav_file):
    """A thread Python does not track (a native pool's: OpenMP, OpenCV, mediapipe) also stops the fork: the
    command line run in-process by a program that had used torch once crashed its child with signal 11."""
    _in_fresh_process(
        """
        import _thread, sys, time
        from talkinghead.config import GenerateOptions
        from talkinghead.motion_process import MotionProcess

        alone = MotionProcess.start(sys.argv[1], GenerateOptions())
        assert alone is not None
        alone.close()
        _thread.start_new_thread(time.sleep, (30,))  # an OS thread that threading.active_count() does not see
        time.sleep(0.1)
        assert MotionProcess.start(sys.argv[1], GenerateOptions()) is None
        """,
        _speech_file(wav_file, 1.0),
    )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the motion process needs os.fork")
def test_motion_process_raises_the_childs_error_and_close_reaps_it(wav_file, tmp_path):
    bad = tmp_path / "lips.safetensors"
    bad.write_bytes(b"not a safetensors file")
    _in_fresh_process(
        """
        import os, sys
        from talkinghead.config import GenerateOptions
        from talkinghead.errors import InputError
        from talkinghead.motion_process import MotionProcess

        child = MotionProcess.start(sys.argv[1], GenerateOptions(), lips_weights=sys.argv[2])
        assert child is not None
        try:
            list(child.pieces(25))
            raise AssertionError("the child's error was not raised")
        except InputError as exc:
            assert "not a readable safetensors file" in str(exc), exc
        running = MotionProcess.start(sys.argv[1], GenerateOptions())
        assert running is not None
        pid = running._pid
        assert pid is not None
        running.close()  # before it answered: killed and reaped, no zombie left
        try:
            os.waitpid(pid, os.WNOHANG)
            raise AssertionError("the child was not reaped")
        except ChildProcessError:
            pass
        """,
        _speech_file(wav_file, 1.0),
        bad,
    )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the motion process needs os.fork")
def test_generate_renders_the_motion_process_motion_without_torch(wav_file, demo_face, tmp_path):
    """The command line's way (motion from a forked child, the parent never imports torch) gives the same
    frames as the models loaded in-process, on one torch thread as the command line loads them."""
    script = textwrap.dedent(
        """
        import sys
        import torch  # noqa: F401 (only to compare: the in-process way)
        from talkinghead.config import GenerateOptions
        from talkinghead.pipeline import Animator, generate

        def animator():
            torch.set_num_threads(1)
            return Animator()

        generate(sys.argv[1], sys.argv[2], sys.argv[3], GenerateOptions(size=320, seed=3), animator=animator)
        """
    )
    child_script = textwrap.dedent(
        """
        import sys
        from talkinghead.config import GenerateOptions
        from talkinghead.motion_process import MotionProcess
        opts = GenerateOptions(size=320, seed=3)
        child = MotionProcess.start(sys.argv[2], opts)
        assert child is not None
        from talkinghead.pipeline import generate

        generate(sys.argv[1], sys.argv[2], sys.argv[3], opts, animator=child)
        assert "torch" not in sys.modules, "the parent imported torch"
        """
    )
    import subprocess

    speech = _speech_file(wav_file, 1.2)
    outs = []
    for name, code in (("threads", script), ("child", child_script)):
        out = tmp_path / f"{name}.mp4"
        subprocess.run([sys.executable, "-c", code, str(demo_face), str(speech), str(out)], check=True, timeout=300)
        with av.open(str(out)) as c:
            outs.append([f.to_ndarray(format="yuv420p") for f in c.decode(video=0)])
    assert len(outs[0]) == len(outs[1]) == 30
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_photo_mode_encodes_on_one_x264_thread(animator, demo_face, wav_file, tmp_path):
    """Photo mode encodes on its encoder thread, where x264 runs alone: the renderer has the other core."""
    from talkinghead.config import GenerateOptions
    from talkinghead.pipeline import generate

    out = generate(
        demo_face, _speech_file(wav_file, 0.4), tmp_path / "photo.mp4", GenerateOptions(size=320), animator=animator
    )
    assert x264_threading(out) == {"threads": "1", "sliced_threads": "0"}
