"""Media layer: MP4 round trips, exact timing, A/V sync and user-facing errors.

Everything is synthesised in the test (sines, clicks, gradients), so no fixtures are needed.
"""

from __future__ import annotations

import os
import wave
from fractions import Fraction

import av
import numpy as np
import pytest
from clips import x264_threading

from talkinghead.errors import InputError, OutputError
from talkinghead.media import (
    VideoInfo,
    VideoWriter,
    iter_frames,
    load_audio,
    probe_video,
    resample,
)
from talkinghead.media.video_writer import THREADS
from talkinghead.types import Waveform


def _sine(freq: float, seconds: float, rate: int, channels: int = 1, amp: float = 0.5) -> Waveform:
    t = np.arange(int(round(seconds * rate))) / rate
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    if channels > 1:
        # Slightly different channels so a wrong interleave would show up as garbage.
        x = np.stack([x * (1.0 - 0.1 * c) for c in range(channels)], axis=1)
    return Waveform(samples=x, sample_rate=rate)


def _gradient(i: int, h: int, w: int) -> np.ndarray:
    """Smooth, moving content that H.264 reproduces closely at crf 20."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[..., 0] = 255 * xx / (w - 1)
    img[..., 1] = 255 * yy / (h - 1)
    img[..., 2] = 128 + 100 * np.sin(2 * np.pi * (xx / w + i / 25.0))
    return np.clip(img, 0, 255).astype(np.uint8)


def _dominant_freq(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1.0 / rate)[np.argmax(spec)])


def _write_wav(path, samples_int16: np.ndarray, rate: int, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(channels)
        wf.setsampwidth(2)
        wf.setframerate(rate)
        wf.writeframes(samples_int16.astype("<i2").tobytes())


# --------------------------------------------------------------------------- round trips


def test_round_trip_video_and_audio(tmp_path):
    h, w = 96, 128
    out = tmp_path / "talk.mp4"
    frames = [_gradient(i, h, w) for i in range(50)]
    audio = _sine(440.0, 2.0, 44100, channels=2)
    with VideoWriter(out, w, h, fps=25, audio=audio) as vw:
        for f in frames:
            vw.write(f)
        assert vw.frames_written == 50

    info = probe_video(out)
    assert isinstance(info, VideoInfo)
    assert (info.width, info.height) == (w, h)
    assert info.fps == pytest.approx(25.0)
    assert info.n_frames == 50
    assert info.duration == pytest.approx(2.0, abs=1e-3)
    assert info.has_audio

    wav = load_audio(out)  # defaults: 16 kHz mono
    assert wav.sample_rate == 16000
    assert wav.samples.ndim == 1 and wav.samples.dtype == np.float32
    assert wav.duration == pytest.approx(2.0, abs=0.05)
    assert _dominant_freq(wav.samples, 16000) == pytest.approx(440.0, abs=2.0)
    assert np.abs(wav.samples).max() <= 1.0

    native = load_audio(out, sample_rate=None, mono=False)
    assert native.sample_rate == 44100 and native.samples.shape[1] == 2
    assert native.duration == pytest.approx(2.0, abs=0.05)
    # Channel order survives: the test signal's right channel is 0.9x the left.
    ratio = np.abs(native.samples[:, 1]).mean() / np.abs(native.samples[:, 0]).mean()
    assert ratio == pytest.approx(0.9, abs=0.02)

    decoded = list(iter_frames(out))
    assert len(decoded) == 50
    times = np.array([t for t, _ in decoded])
    np.testing.assert_allclose(times, np.arange(50) / 25.0, atol=1e-6)
    for (_, got), want in zip(decoded, frames):
        assert got.shape == (h, w, 3) and got.dtype == np.uint8
        assert np.abs(got.astype(np.int16) - want.astype(np.int16)).mean() < 6


def test_each_threading_encodes_every_frame_in_order(tmp_path):
    h, w = 256, 256  # x264 runs smaller frames on one thread
    frames = [_gradient(i, h, w) for i in range(40)]
    paths = {}
    for threads in THREADS:
        paths[threads] = out = tmp_path / f"threads_{threads}.mp4"
        with VideoWriter(out, w, h, fps=25, threads=threads) as vw:
            for f in frames:
                vw.write(f)
        decoded = [img for _, img in iter_frames(out)]
        assert len(decoded) == len(frames)
        for got, want in zip(decoded, frames):  # in order: a frame encoded by another thread comes back in place
            assert np.abs(got.astype(np.int16) - want.astype(np.int16)).mean() < 6
    assert x264_threading(paths["frames"])["sliced_threads"] == "0"
    assert x264_threading(paths["one"]) == {"threads": "1", "sliced_threads": "0"}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if cores > 1:  # on one core x264 runs one thread either way
        assert int(x264_threading(paths["frames"])["threads"]) > 1
        assert x264_threading(paths["slices"])["sliced_threads"] == "1"
    with pytest.raises(ValueError, match="threads must be one of"):
        VideoWriter(tmp_path / "bad.mp4", w, h, threads="many")
    assert not list(tmp_path.glob("bad*"))  # refused before any file exists


def test_ntsc_frame_rate_is_exact(tmp_path):
    out = tmp_path / "ntsc.mp4"
    frame = _gradient(0, 48, 64)
    with VideoWriter(out, 64, 48, fps=29.97) as vw:
        assert vw.fps == Fraction(30000, 1001)
        for _ in range(300):
            vw.write(frame)

    info = probe_video(out)
    assert info.n_frames == 300
    assert info.fps == pytest.approx(30000 / 1001)
    assert abs(info.duration - 300 / 29.97) < 1 / 29.97
    assert not info.has_audio
    # No drift: the last timestamp is exactly 299 * 1001 / 30000.
    last_t = None
    for last_t, _ in iter_frames(out):
        pass
    assert last_t == pytest.approx(299 * 1001 / 30000, abs=1e-6)


def test_audio_and_video_stay_in_sync(tmp_path):
    fps, rate, seconds = 25, 48000, 3.0
    click_times = [0.52, 1.30, 2.21]
    n_frames = int(seconds * fps)
    audio = np.zeros(int(seconds * rate), np.float32)
    burst = int(0.02 * rate)
    for t in click_times:
        s = int(round(t * rate))
        audio[s : s + burst] = 0.8 * np.sin(2 * np.pi * 1000 * np.arange(burst) / rate)
    white = {int(np.floor(t * fps)) for t in click_times}

    out = tmp_path / "sync.mp4"
    with VideoWriter(out, 64, 48, fps=fps, audio=Waveform(audio, rate)) as vw:
        for i in range(n_frames):
            vw.write(np.full((48, 64, 3), 255 if i in white else 0, np.uint8))

    bright = [t for t, img in iter_frames(out) if img.mean() > 128]
    assert len(bright) == len(click_times)

    wav = load_audio(out, sample_rate=16000)
    env = np.abs(wav.samples)
    threshold = 0.3 * env.max()
    for t_click, t_frame in zip(click_times, bright):
        lo = int((t_click - 0.2) * 16000)
        onset = (lo + int(np.argmax(env[lo:] > threshold))) / 16000
        # The decoded audio is where we put it (AAC priming removed) ...
        assert onset == pytest.approx(t_click, abs=0.005)
        # ... and the picture shows the click in the frame that covers it.
        assert abs(onset - t_frame) < 1 / fps
        assert t_frame <= onset + 1e-6


def test_audio_longer_than_video_is_kept_whole(tmp_path):
    out = tmp_path / "long_audio.mp4"
    with VideoWriter(out, 64, 48, fps=25, audio=_sine(300.0, 1.5, 22050)) as vw:
        for i in range(10):  # 0.4 s of video
            vw.write(_gradient(i, 48, 64))
    wav = load_audio(out, sample_rate=None)
    assert wav.sample_rate == 22050
    assert wav.duration == pytest.approx(1.5, abs=0.03)
    assert probe_video(out).n_frames == 10


def test_unsupported_aac_rate_is_resampled(tmp_path):
    out = tmp_path / "odd_rate.mp4"
    with VideoWriter(out, 64, 48, audio=_sine(440.0, 1.0, 37000)) as vw:
        for i in range(25):
            vw.write(_gradient(i, 48, 64))
    wav = load_audio(out, sample_rate=None)
    assert wav.sample_rate == 48000
    assert wav.duration == pytest.approx(1.0, abs=0.03)
    assert _dominant_freq(wav.samples, 48000) == pytest.approx(440.0, abs=2.0)


def test_rotated_phone_video_is_upright(tmp_path):
    # Phones store portrait video as landscape plus a display matrix; -90 means
    # "turn clockwise to display", like iPhone portrait recordings.
    path = tmp_path / "portrait.mp4"
    img = np.zeros((48, 64, 3), np.uint8)
    img[:8, :8] = 255  # marker in the coded top-left corner
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.set_display_rotation(-90)
        for i in range(3):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)

    info = probe_video(path)
    assert (info.width, info.height) == (48, 64)
    _, frame = next(iter_frames(path))
    assert frame.shape == (64, 48, 3)
    assert frame[:8, -8:].mean() > 200  # clockwise turn moves top-left to top-right
    assert frame[:8, :8].mean() < 50


def test_load_wav_native_rate_and_resampling(tmp_path):
    rate = 44100
    t = np.arange(rate) / rate
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    right = 0.5 * np.sin(2 * np.pi * 440 * t)
    inter = (np.stack([left, right], axis=1) * 32767).astype(np.int16).reshape(-1)
    path = tmp_path / "stereo.wav"
    _write_wav(path, inter, rate, channels=2)

    native = load_audio(path, sample_rate=None, mono=False)
    assert native.sample_rate == rate and native.samples.shape == (rate, 2)
    np.testing.assert_allclose(native.samples[:, 0], left, atol=1e-3)

    mono = load_audio(path)
    assert mono.samples.shape == (16000,)
    # Downmix is a plain mean: in-phase channels keep their level (no +3 dB clipping).
    assert np.abs(mono.samples).max() == pytest.approx(0.5, abs=0.02)
    assert _dominant_freq(mono.samples, 16000) == pytest.approx(440.0, abs=2.0)


def _encode_audio_file(path, container_format: str, codec: str, rate: int) -> None:
    """Write 1 s of 440 Hz stereo with PyAV's own encoders (fixtures would be binary blobs)."""
    sample_fmt = av.codec.Codec(codec, "w").audio_formats[0].name
    t = np.arange(rate) / rate
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    src = av.AudioFrame.from_ndarray(np.stack([x, x]), format="fltp", layout="stereo")
    src.sample_rate = rate
    with av.open(str(path), "w", format=container_format) as c:
        s = c.add_stream(codec, rate=rate)
        s.layout, s.format = "stereo", sample_fmt
        s.codec_context.open()
        frame_size = s.codec_context.frame_size or None
        rs = av.AudioResampler(format=sample_fmt, layout="stereo", rate=rate, frame_size=frame_size)
        for f in rs.resample(src) + rs.resample(None):
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)


@pytest.mark.parametrize(
    "name,container_format,codec,rate",
    [
        ("a.mp3", "mp3", "libmp3lame", 44100),
        ("a.m4a", "ipod", "aac", 48000),
        ("a.flac", "flac", "flac", 22050),
        ("a.opus", "opus", "libopus", 48000),
    ],
)
def test_load_compressed_formats(tmp_path, name, container_format, codec, rate):
    try:
        av.codec.Codec(codec, "w")
    except av.codec.codec.UnknownCodecError:
        pytest.skip(f"this FFmpeg build has no {codec} encoder")
    path = tmp_path / name
    _encode_audio_file(path, container_format, codec, rate)
    wav = load_audio(path)
    assert wav.sample_rate == 16000 and wav.samples.ndim == 1
    assert wav.duration == pytest.approx(1.0, abs=0.03)
    assert _dominant_freq(wav.samples, 16000) == pytest.approx(440.0, abs=2.0)
    native = load_audio(path, sample_rate=None, mono=False)
    assert native.sample_rate == rate and native.samples.shape[1] == 2


def test_resample_helper():
    x = _sine(440.0, 1.0, 44100).samples
    y = resample(x, 44100, 16000)
    assert y.dtype == np.float32 and y.shape == (16000,)
    assert _dominant_freq(y, 16000) == pytest.approx(440.0, abs=2.0)
    same = resample(x, 16000, 16000)
    assert same is not x and np.array_equal(same, x)


# --------------------------------------------------------------------------- user errors


def _video_without_audio(path) -> None:
    with VideoWriter(path, 64, 48) as vw:
        for i in range(5):
            vw.write(_gradient(i, 48, 64))


def test_load_audio_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_audio(tmp_path / "nope.wav")

    fake = tmp_path / "notes.wav"
    fake.write_text("this is not audio\n" * 20)
    with pytest.raises(InputError, match="notes.wav"):
        load_audio(fake)

    silent = tmp_path / "silent.mp4"
    _video_without_audio(silent)
    with pytest.raises(InputError, match="has no audio track"):
        load_audio(silent)

    empty = tmp_path / "empty.wav"
    _write_wav(empty, np.zeros(0, np.int16), 16000)
    with pytest.raises(InputError, match="contains no audio"):
        load_audio(empty)

    with pytest.raises(InputError):
        load_audio(tmp_path)  # a folder


def test_probe_and_iter_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        probe_video(tmp_path / "nope.mp4")
    with pytest.raises(InputError, match="does not exist"):
        iter_frames(tmp_path / "nope.mp4")  # raises at the call, not at first next()

    wav = tmp_path / "voice.wav"
    _write_wav(wav, (np.ones(1600) * 1000).astype(np.int16), 16000)
    with pytest.raises(InputError, match="has no video track"):
        probe_video(wav)

    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(InputError, match="junk.mp4"):
        probe_video(junk)


def test_writer_rejects_missing_directory(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        VideoWriter(tmp_path / "missing" / "out.mp4", 64, 48)


def test_writer_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        VideoWriter(tmp_path / "fps.mp4", 64, 48, fps=0)
    with VideoWriter(tmp_path / "odd.mp4", 63, 47) as vw:  # odd sizes are kept (4:4:4), never cropped
        assert vw.pix_fmt == "yuv444p"
        vw.write(np.zeros((47, 63, 3), np.uint8))
    assert (probe_video(tmp_path / "odd.mp4").width, probe_video(tmp_path / "odd.mp4").height) == (63, 47)
    with VideoWriter(tmp_path / "shape.mp4", 64, 48) as vw:
        with pytest.raises(ValueError):
            vw.write(np.zeros((48, 64, 4), np.uint8))
        with pytest.raises(ValueError):
            vw.write(np.zeros((48, 64, 3), np.float32))
        vw.write(np.zeros((48, 64, 3), np.uint8))
    assert sorted(os.listdir(tmp_path)) == ["odd.mp4", "shape.mp4"]


def test_exception_inside_with_leaves_nothing(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(target, 64, 48, audio=_sine(440, 1.0, 16000)) as vw:
        for i in range(10):
            vw.write(_gradient(i, 48, 64))
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []

    # An existing file at the target is not clobbered by a failed write either.
    target.write_bytes(b"previous")
    with pytest.raises(RuntimeError), VideoWriter(target, 64, 48) as vw:
        vw.write(_gradient(0, 48, 64))
        raise RuntimeError("boom")
    assert target.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["out.mp4"]


def test_abort_discards_partial_file(tmp_path):
    vw = VideoWriter(tmp_path / "a.mp4", 64, 48)
    vw.write(_gradient(0, 48, 64))
    vw.abort()
    assert os.listdir(tmp_path) == []


def test_our_veryfast_adds_its_measured_x264_options_and_other_presets_are_x264s_own():
    from talkinghead.media.video_writer import x264_options

    assert x264_options("veryfast", 18) == {
        "crf": "18",
        "preset": "veryfast",
        "x264-params": "me=dia:partitions=i8x8,i4x4",
    }
    assert x264_options("slow", 23) == {"crf": "23", "preset": "slow"}
    # a caller's own options come after the preset's, so they win (photo mode's subme=1)
    assert x264_options("veryfast", 20, "subme=1")["x264-params"] == "me=dia:partitions=i8x8,i4x4:subme=1"
    assert x264_options("slow", 20, "subme=1")["x264-params"] == "subme=1"


def test_photo_mode_encodes_with_its_own_x264_setting(tmp_path, monkeypatch):
    """generate hands PHOTO_X264 to its writer (the setting its benchmark floor uses too)."""
    import talkinghead.pipeline as pipeline
    from talkinghead.config import PHOTO_X264
    from talkinghead.media import video_writer

    seen: list[dict[str, str]] = []
    real = video_writer.x264_options
    monkeypatch.setattr(video_writer, "x264_options", lambda *a: seen.append(real(*a)) or real(*a))
    pipeline.generate(pipeline.DEMO_FACE, pipeline.DEMO_AUDIO, tmp_path / "p.mp4", size=64, seed=0)
    assert seen and seen[0]["x264-params"].endswith(PHOTO_X264)
