"""Each defect issue 12 found, as a test that failed before its fix (the battery keeps them closed)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from battery_kit import (
    PRECIOUS,
    assert_user_error,
    assert_video,
    leftovers,
    portrait_face,
    run_cli,
    tone_speech,
    write_exif_jpeg,
    write_float_wav,
    write_pcm,
    write_rgb,
    write_video,
)

from talkinghead.pipeline import DEMO_FACE


@pytest.fixture()
def speech(tmp_path) -> Path:
    return write_pcm(tmp_path / "speech.wav", tone_speech(1.0), 16000)


@pytest.fixture(scope="module")
def talking(tmp_path_factory, animator) -> Path:
    """A 1 s talking video (one face) made from the demo face, for the dub cases."""
    from talkinghead.pipeline import generate

    d = tmp_path_factory.mktemp("talking")
    write_pcm(d / "s.wav", tone_speech(1.0), 16000)
    return generate(DEMO_FACE, d / "s.wav", d / "talking.mp4", animator=animator, size=128, seed=1)


def _gen(face, audio, out, *extra):
    return run_cli(["generate", "--face", face, "--audio", audio, "-o", out, "-q", "--size", "64", *extra])


# ------------------------------------------------------------------------------------------ tracebacks


def test_nan_samples_in_a_float_wav_are_not_a_traceback(tmp_path):
    x = tone_speech(1.0)
    x[1000:1200] = np.nan
    x[5000] = np.inf
    nan_wav = write_float_wav(tmp_path / "nan.wav", x, 16000)
    from talkinghead.media import load_audio

    assert np.isfinite(load_audio(nan_wav).samples).all()
    out = tmp_path / "out.mp4"
    res = _gen(DEMO_FACE, nan_wav, out)
    assert res.exit_code == 0, res.output
    assert_video(out, 1.0)


def test_all_nan_wav_is_called_silent(tmp_path):
    nan_wav = write_float_wav(tmp_path / "nan.wav", np.full(16000, np.nan, np.float32), 16000)
    out = tmp_path / "out.mp4"
    assert_user_error(_gen(DEMO_FACE, nan_wav, out), out, "silent")


@pytest.mark.skipif(os.name != "posix", reason="permissions")
def test_dub_into_a_folder_it_cannot_write(tmp_path, talking, speech, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    out = locked / "dubbed.mp4"
    if os.geteuid() == 0:  # root writes anywhere: make the folder refuse the way a read-only one does
        real_mkdir = Path.mkdir

        def refuse(self, *a, **k):
            if self.parent == locked:
                raise PermissionError(13, "Permission denied", str(self))
            return real_mkdir(self, *a, **k)

        monkeypatch.setattr(Path, "mkdir", refuse)
    else:
        locked.chmod(0o555)
    try:
        assert_user_error(run_cli(["dub", "--video", talking, "--audio", speech, "-o", out, "-q"]), out, "cannot write")
    finally:
        locked.chmod(0o755)


def test_output_name_too_long(tmp_path, speech):
    out = tmp_path / ("x" * 300 + ".mp4")
    assert_user_error(_gen(DEMO_FACE, speech, out), out, "too long")
    out = tmp_path / ("y" * 240 + ".mp4")  # fits alone, not with the hidden partial file next to it
    assert_user_error(_gen(DEMO_FACE, speech, out), out, "too long")


@pytest.mark.parametrize(
    "flag, value, needle",
    [
        ("--fps", "nan", "from 1 to 120"),
        ("--fps", "0.5", "from 1 to 120"),
        ("--fps", "inf", "from 1 to 120"),
        ("--seed", "-1", "0 or more"),
        ("--lip-strength", "nan", "from 0 to 3"),
        ("--size", "20", "64 to 4096"),
        ("--pose-scale", "-1", "from 0 to 3"),
        ("--blink-rate", "nan", "0 to 60"),
        ("--face-index", "-1", "0"),
        ("--emotion-strength", "9", "0 to 2"),
    ],
)
def test_option_values_one_sentence_exit_1(tmp_path, speech, flag, value, needle):
    out = tmp_path / "out.mp4"
    s = assert_user_error(_gen(DEMO_FACE, speech, out, flag, value), out, flag, needle)
    assert "must be" in s


def test_python_api_refuses_what_the_cli_refuses(tmp_path, speech):
    from talkinghead.errors import InputError
    from talkinghead.pipeline import generate

    for bad in ({"seed": -1}, {"fps": float("nan")}, {"fps": 0.5}, {"lip_strength": float("nan")}):
        with pytest.raises(InputError):
            generate(DEMO_FACE, speech, tmp_path / "o.mp4", **bad)
    assert not (tmp_path / "o.mp4").exists()


# ------------------------------------------------------------------------------------------ one exit rule


@pytest.mark.parametrize(
    "args",
    [
        ["dub", "--video", "{talking}", "--audio", "{speech}", "--crf", "99"],
        ["dub", "--video", "{talking}", "--audio", "{speech}", "--lip-strength", "nan"],
        ["generate", "--face", "{face}"],  # missing --audio
        ["generate", "--face", "{face}", "--audio", "{speech}", "--no-such-flag"],
        ["generate", "--face", "{face}", "--audio", "{speech}", "--size", "big"],
        ["no-such-command"],
        ["prepare", "{speech}", "-o", "{tmp}/c", "--workers", "0"],
    ],
)
def test_every_usage_error_exits_1_with_one_sentence(tmp_path, talking, speech, args):
    fill = {"talking": str(talking), "speech": str(speech), "face": str(DEMO_FACE), "tmp": str(tmp_path)}
    out = tmp_path / "never.mp4"
    assert_user_error(
        run_cli(
            [a.format(**fill) for a in args] + ["-o", str(out)]
            if args[0] in ("generate", "dub")
            else [a.format(**fill) for a in args]
        ),
        out,
    )


# ------------------------------------------------------------------------------------------ huge photos


def test_decompression_bomb_is_refused_from_its_header(tmp_path, speech):
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    bomb = tmp_path / "bomb.png"  # 30000 x 30000 declared, a few bytes of data
    bomb.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )
    out = tmp_path / "out.mp4"
    t = time.perf_counter()
    assert_user_error(_gen(bomb, speech, out), out, "too large", "megapixels")
    assert time.perf_counter() - t < 5


def test_large_photo_is_capped_with_a_note(tmp_path, speech):
    from talkinghead.media.image import MAX_SIDE, fit_size

    img = np.zeros((5000, 4500, 3), np.uint8)
    assert max(fit_size(img, None).shape[:2]) == MAX_SIDE
    assert fit_size(img, 128).shape[:2] == (128, 116)


@pytest.mark.slow
def test_8000_pixel_photo_finishes_at_the_cap(tmp_path, speech):
    big = write_rgb(tmp_path / "big.jpg", cv2.resize(cv2.imread(str(DEMO_FACE))[..., ::-1], (8000, 8000)))
    out = tmp_path / "big.mp4"
    t = time.perf_counter()
    res = run_cli(["generate", "--face", big, "--audio", speech, "-o", out])
    assert res.exit_code == 0, res.output
    assert "4096 pixels on its longer side" in " ".join(res.stderr.split())
    assert_video(out, 1.0, (4096, 4096))
    assert time.perf_counter() - t < 120


# ------------------------------------------------------------------------------------------ leftovers


def test_stale_partial_of_a_killed_run_is_swept(tmp_path, speech):
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "out.mp4"
    stale = tmp_path / f".out.mp4.partial-{dead.pid}-deadbeef.mp4"
    stale.write_bytes(b"half a video")
    legacy = tmp_path / ".out.mp4.partial-0badf00d.mp4"  # before the pid was in the name: swept by age
    legacy.write_bytes(b"old")
    os.utime(legacy, (time.time() - 7200, time.time() - 7200))
    alive = tmp_path / f".out.mp4.partial-{os.getppid()}-cafecafe.mp4"  # a live writer's: never touched
    alive.write_bytes(b"being written")
    other = tmp_path / f".other.mp4.partial-{dead.pid}-deadbeef.mp4"  # another output's: not ours to judge
    other.write_bytes(b"x")
    res = _gen(DEMO_FACE, speech, out)
    assert res.exit_code == 0, res.output
    assert not stale.exists() and not legacy.exists() and alive.exists() and other.exists()


def test_dub_of_a_video_that_can_never_succeed_leaves_no_work_folder(tmp_path, talking, speech):
    data = bytearray(talking.read_bytes())
    for i in np.random.default_rng(0).integers(len(data) // 3, len(data), 200):
        data[i] ^= 0xFF  # header fine, frames damaged: decoding fails part way, after the work folder exists
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(data))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(talking.read_bytes()[:2000])
    still = write_rgb(tmp_path / "still.png", portrait_face())  # an image given as a video
    for video in (broken, cut, still):
        out = tmp_path / f"{video.stem}_dubbed.mp4"
        res = run_cli(["dub", "--video", video, "--audio", speech, "-o", out, "-q"])
        if res.exit_code == 0:  # a readable prefix may dub fine: then it is a success with nothing left
            assert_video(out, 1.0)
        else:
            assert_user_error(res, out)
        assert leftovers(out) == []


# ------------------------------------------------------------------------------------------ wrong results


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation):
    from PIL import Image, ImageOps

    from talkinghead.media import load_image

    stored = portrait_face()
    path = write_exif_jpeg(tmp_path / "phone.jpg", stored, orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    got = load_image(path)
    assert got.shape == expected.shape
    assert np.abs(got.astype(int) - expected.astype(int)).mean() < 3


def test_phone_photo_comes_out_upright(tmp_path, speech):
    upright = portrait_face()  # 384 wide, 512 high
    path = write_exif_jpeg(tmp_path / "phone.jpg", np.ascontiguousarray(np.rot90(upright, 1)), 6)
    out = tmp_path / "out.mp4"
    res = run_cli(["generate", "--face", path, "--audio", speech, "-o", out, "-q", "--size", "128"])
    assert res.exit_code == 0, res.output
    assert_video(out, 1.0, (96, 128))


def test_dub_face_point_outside_the_frame(tmp_path, talking, speech):
    out = tmp_path / "d.mp4"
    assert_user_error(
        run_cli(["dub", "--video", talking, "--audio", speech, "-o", out, "-q", "--face", "99,99999"]),
        out,
        "outside the video",
        "128x128",
    )


def test_dub_face_number_that_is_not_there(tmp_path, talking, speech):
    out = tmp_path / "d.mp4"
    s = assert_user_error(
        run_cli(["dub", "--video", talking, "--audio", speech, "-o", out, "-q", "--face", "5"]), out, "face number 5"
    )
    assert "10 px" not in s


def test_face_folder_is_called_a_folder(tmp_path, speech):
    out = tmp_path / "o.mp4"
    assert_user_error(_gen(tmp_path, speech, out), out, "is a folder")


def test_stereo_whose_channels_cancel_is_not_silent(tmp_path):
    from talkinghead.media.inputs import load_speech

    x = tone_speech(1.0)
    wav = write_pcm(tmp_path / "cancel.wav", np.stack([x, -x], axis=1), 16000)
    full, speech = load_speech(wav)
    assert full.channels == 2 and np.abs(speech).max() > 0.2
    out = tmp_path / "o.mp4"
    res = _gen(DEMO_FACE, wav, out)
    assert res.exit_code == 0, res.output
    assert_video(out, 1.0)


def test_odd_sized_video_keeps_every_pixel(tmp_path, speech):
    from talkinghead.media import iter_frames, probe_video

    face = cv2.resize(portrait_face(), (641, 481))
    frames = [face] * 25
    video = write_video(tmp_path / "odd.mp4", frames, pix_fmt="yuv444p")
    assert (probe_video(video).width, probe_video(video).height) == (641, 481)
    out = tmp_path / "dubbed.mp4"
    res = run_cli(["dub", "--video", video, "--audio", speech, "-o", out, "-q"])
    assert res.exit_code == 0, res.output
    assert_video(out, 1.0, (641, 481))
    first = next(iter(iter_frames(out)))[1]
    assert first.shape == (481, 641, 3)
    assert np.abs(first[-1].astype(int) - face[-1].astype(int)).mean() < 12  # the last row is the picture's


# ------------------------------------------------------------------------------------------ messages


def test_eval_of_a_photo_says_it_is_an_image(tmp_path):
    res = run_cli(["eval", DEMO_FACE])
    assert_user_error(res, tmp_path / "none.mp4", "single image, not a video")


def test_eval_reference_of_another_size_is_refused(tmp_path, talking):
    other = write_video(tmp_path / "other.mp4", [np.zeros((96, 160, 3), np.uint8)] * 10)
    assert_user_error(run_cli(["eval", talking, "--reference", other]), tmp_path / "none.mp4", "does not match")


def test_generate_ctrl_c_explains_and_exits_130(tmp_path, speech, monkeypatch):
    import talkinghead.pipeline as pipeline

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "generate", interrupted)
    out = tmp_path / "o.mp4"
    res = _gen(DEMO_FACE, speech, out)
    assert res.exit_code == 130
    assert "Interrupted" in res.stderr and "Traceback" not in res.output
    assert not out.exists()


def test_existing_output_untouched_by_a_failed_run(tmp_path, speech):
    out = tmp_path / "keep.mp4"
    out.write_bytes(PRECIOUS)
    assert_user_error(_gen(DEMO_FACE, speech, out, "--fps", "nan"), out, existing=PRECIOUS)
    assert_user_error(_gen(tmp_path / "nope.jpg", speech, out), out, existing=PRECIOUS)


# ------------------------------------------------------------------------------------------ memory


def test_speech_cues_of_long_speech_take_flat_memory_and_the_same_values(monkeypatch):
    """1 h of speech reached 6.7 GB in `generate`: the per-frame loudness (one float64 cumsum of the whole
    clip) and the pitch autocorrelation (one FFT block for the whole clip). Both now run in blocks, with the
    same values as one pass."""
    import tracemalloc

    from talkinghead.audio import features

    rng = np.random.default_rng(0)
    x = (0.2 * rng.standard_normal(16000 * 240) * (np.sin(np.arange(16000 * 240) / 4000) > 0)).astype(np.float32)
    n = 240 * 25
    features.log_mel(x[:4000])  # filterbank cache
    tracemalloc.start()
    cues = features.prosody(x, n, 25.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 160e6, peak / 1e6  # one pass over 4 min took 400 MB, growing with the length
    # the same values as one block and as the plain formula
    monkeypatch.setattr(features, "_FRAMES_BLOCK", 10**9)
    monkeypatch.setattr(features, "_SAMPLES_BLOCK", 1 << 16)
    assert np.array_equal(features.prosody(x, n, 25.0), cues)
    edges = (np.arange(n + 1) * 640.0).astype(np.int64).clip(0, len(x))
    energy = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
    mean = (energy[edges[1:]] - energy[edges[:-1]]) / 640.0
    assert np.array_equal(features.loudness(x, n, 25.0), (10 * np.log10(mean + 1e-10)).astype(np.float32))


def test_generate_frames_unchanged_for_a_short_clip(tmp_path, animator):
    """The memory fix changes no value: a seeded short clip renders the same frames as one unblocked pass."""
    from talkinghead.audio import features
    from talkinghead.config import GenerateOptions

    speech = tone_speech(2.0)
    animator.set_source(DEMO_FACE, size=96)
    opts = GenerateOptions(seed=5)
    a = [f for f in animator.frames(speech, 50, opts)]
    old = features._FRAMES_BLOCK, features._SAMPLES_BLOCK
    try:
        features._FRAMES_BLOCK, features._SAMPLES_BLOCK = 7, 1000  # many small blocks
        b = [f for f in animator.frames(speech, 50, opts)]
    finally:
        features._FRAMES_BLOCK, features._SAMPLES_BLOCK = old
    assert all(np.array_equal(p, q) for p, q in zip(a, b))


def test_ctrl_c_before_a_command_starts_work_explains_too(tmp_path, talking, speech, monkeypatch):
    import talkinghead.media.heap as heap

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(heap, "tune_allocator", interrupted)
    out = tmp_path / "d.mp4"
    res = run_cli(["dub", "--video", talking, "--audio", speech, "-o", out, "-q"])
    assert res.exit_code == 130 and "Interrupted" in res.stderr, (res.exit_code, res.output)
    assert not out.exists() and leftovers(out) == []


def test_render_takes_motion_in_pieces(animator):
    """`Animator.render` streams consecutive Motion pieces (the shape a streaming caller feeds it) and gives
    the same frames as the whole Motion."""
    from talkinghead.config import GenerateOptions
    from talkinghead.types import Motion

    animator.set_source(DEMO_FACE, size=64)
    opts = GenerateOptions(seed=2)
    whole = animator.motion(tone_speech(1.0), 25, opts)
    pieces = [
        Motion(whole.mouth[a : a + 10], whole.lids[a : a + 10], whole.pose[a : a + 10], whole.fps)
        for a in range(0, 25, 10)
    ]
    a = list(animator.render(whole, opts))
    b = list(animator.render(iter(pieces), opts))
    assert len(a) == len(b) == 25 and all(np.array_equal(p, q) for p, q in zip(a, b))
