"""Streaming (issue 15 part 1): `Animator.stream` / `MotionStream` against the offline path, chunking, silence."""

from __future__ import annotations

import numpy as np
import pytest
from speech import speech_with_pause, synthesize

from talkinghead.config import GenerateOptions
from talkinghead.face.indices import LIP_BOTTOM, LIP_TOP
from talkinghead.motion.stream import LOOKAHEAD_S, MotionStream


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return synthesize("The quick brown fox jumps over the lazy dog, and then it runs away.", "en")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)  # the per-frame work is small: on a busy machine more threads only contend
    yield
    torch.set_num_threads(n)


def run(animator, samples: np.ndarray, sizes, opts: GenerateOptions | None = None, lookahead: float = LOOKAHEAD_S):
    """Motion of `samples` streamed in chunks of the given sizes (cycled), as (mouth, lids, pose)."""
    ms = MotionStream(animator.mouth, animator.head, opts or GenerateOptions(), None, lookahead)
    pieces, i, n = [], 0, 0
    while i < len(samples):
        size = sizes[n % len(sizes)]
        pieces.append(ms.push(samples[i : i + size]))
        i, n = i + size, n + 1
    pieces.append(ms.finish())
    return tuple(np.concatenate([getattr(p, name) for p in pieces]) for name in ("mouth", "lids", "pose"))


def gaps(animator, mouth: np.ndarray) -> np.ndarray:
    idx = list(animator.mouth.geometry.indices)
    return mouth[:, idx.index(LIP_BOTTOM), 1] - mouth[:, idx.index(LIP_TOP), 1]


def test_chunk_sizes_give_the_same_motion(animator, speech):
    a = run(animator, speech, [320])  # 20 ms
    b = run(animator, speech, [16000])  # 1 s
    c = run(animator, speech, [333, 4000, 1111, 7777])  # ragged
    for x, y, z in zip(a, b, c):
        assert x.shape == y.shape == z.shape
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, z)


def test_streamed_mouth_follows_the_offline_mouth(animator, speech):
    opts = GenerateOptions(seed=3)
    mouth, lids, pose = run(animator, speech, [640], opts)
    n = max(1, round(len(speech) / 16000 * opts.fps))
    offline = animator.motion(speech, n, opts)
    assert mouth.shape == offline.mouth.shape and pose.shape == offline.pose.shape and lids.shape == (n,)
    r = np.corrcoef(gaps(animator, mouth), gaps(animator, offline.mouth))[0, 1]
    assert r >= 0.9, r
    # same seed, same stream; another seed, other head motion
    again = run(animator, speech, [640], opts)
    np.testing.assert_array_equal(again[2], pose)
    other = run(animator, speech, [640], GenerateOptions(seed=4))
    assert np.abs(other[2] - pose).max() > 0.1


def test_streamed_head_motion_and_blinks_are_the_offline_ones(animator, speech):
    """One step-by-step sampler for both paths (`motion/learned.py`, `HeadSteps`): the same seed gives the
    same head pose and blinks streamed as offline, at 25 and 30 fps."""
    samples = np.concatenate([speech, np.zeros(8000, np.float32), speech])  # a pause, and > 2 s of cues
    for fps, seed in ((25, 5), (30, 6)):
        opts = GenerateOptions(seed=seed, fps=fps, blinks_per_min=40)  # more blinks, so some happen
        _, lids, pose = run(animator, samples, [320, 1000], opts)
        offline = animator.motion(samples, max(1, round(len(samples) / 16000 * fps)), opts)
        assert pose.shape == offline.pose.shape and lids.shape == offline.lids.shape
        np.testing.assert_allclose(pose, offline.pose, atol=1e-4)
        np.testing.assert_allclose(lids, offline.lids, atol=1e-5)
        assert (lids > 0.5).any() and np.ptp(pose[:, 0]) > 0.5  # blinks and head motion, not two empty tracks


def _two_voices(speech: np.ndarray, seconds: float = 24.0) -> np.ndarray:
    """`seconds` of the English sentence looped, then as long of a German one through another microphone (a
    steep spectral tilt): a long input whose second half has another log-mel mean than its first."""
    other = synthesize("Der schnelle braune Fuchs springt über den faulen Hund und läuft dann weg.", "de")
    other = np.append(other[0], other[1:] - 0.97 * other[:-1])
    other *= 0.3 / np.abs(other).max()
    n = int(seconds * 16000)
    return np.concatenate([np.resize(speech, n), np.resize(other, n)]).astype(np.float32)


def test_running_mel_mean_is_the_whole_inputs(speech):
    """Past the old 30 s window, the stream's log-mel mean is still `normalize`'s over everything so far (flat
    memory: a histogram of frame energies with per-bin sums), not the last 30 s'."""
    from talkinghead.audio.features import log_mel, normalize
    from talkinghead.audio.running import HISTORY_S, RunningMel, SampleBuffer

    samples = _two_voices(speech)
    buffer = SampleBuffer()
    mel = RunningMel(buffer)
    buffer.push(samples)
    buffer.finished = True
    mel.extend(mel.available(len(samples)))
    full = log_mel(samples)
    whole = full[0] - normalize(full)[0]
    recent = full[-int(HISTORY_S * 100) :]
    window = recent[0] - normalize(recent)[0]
    assert np.abs(window - whole).max() > 1.0  # the input is one where the two differ
    assert np.abs(mel.mean_at(mel.count - 1) - whole).max() < 0.1


def test_streamed_mouth_agrees_with_offline_after_a_change_of_voice(animator, speech):
    """`generate` normalises by the whole input's log-mel mean and scales by its lip-gap spread; the stream's
    cumulative statistics reach them, so after 24 s of one voice and 24 s of another they agree (the 30 s window
    before gave r 0.91 over the last 16 s here)."""
    samples = _two_voices(speech)
    mouth, _, _ = run(animator, samples, [16000], GenerateOptions(still=True))
    offline = animator.mouth.predict(samples, len(mouth), 25.0)
    late = slice(len(mouth) - 400, len(mouth))  # the last 16 s
    r = np.corrcoef(gaps(animator, mouth)[late], gaps(animator, offline)[late])[0, 1]
    assert r >= 0.95, r


def test_mouth_closes_after_speech_and_head_keeps_moving(animator):
    samples, _ = speech_with_pause(["Hello there, how are you today?"], "en", lead_s=0.3)
    loud = np.flatnonzero(np.abs(samples) > 1e-3)
    end = loud[-1] / 16000
    samples = np.concatenate([samples, np.zeros(3 * 16000, np.float32)])
    mouth, _, pose = run(animator, samples, [320])
    t = np.arange(len(mouth)) / 25.0
    opening = np.abs(mouth).max(axis=(1, 2))
    assert opening[(t > end - 1.0) & (t < end)].max() > 0.01  # it was talking
    assert opening[t >= end + 0.2].max() < 1e-3  # closed within 200 ms of the speech stopping
    silent = pose[t >= end + 0.5]
    assert np.ptp(silent[:, :3], axis=0).max() > 0.2  # degrees: idle head motion in silence


def test_animator_stream_yields_frames_as_audio_arrives(animator, demo_face, speech):
    from talkinghead.pipeline import Animator

    anim = Animator.__new__(Animator)
    anim.__dict__.update(animator.__dict__)  # the session's models, its own face
    anim.set_source(demo_face, size=128)
    taken = []

    def chunks():
        for i in range(0, 16000 * 2, 640):
            taken.append(i)
            yield speech[i : i + 640]

    frames = anim.stream(chunks(), GenerateOptions(seed=1))
    first = next(frames)
    assert first.shape == (128, 128, 3) and first.dtype == np.uint8
    assert len(taken) <= 5  # 40 ms chunks: frame 0 needs 100 ms of audio, not the whole clip
    rest = list(frames)
    assert 1 + len(rest) == 50


def test_stream_refuses_what_it_cannot_do(animator):
    from talkinghead.errors import InputError

    with pytest.raises(InputError):
        MotionStream(animator.mouth, animator.head, GenerateOptions(), None, lookahead=0.0)
    with pytest.raises(InputError):
        MotionStream(animator.mouth, animator.head, GenerateOptions(pose_from="x.mp4"), None)


def _wav_stream(samples: np.ndarray, rate: int, channels: int) -> bytes:
    """A WAV as streaming TTS engines write it: float32, data size unknown (0xFFFFFFFF)."""
    import struct

    data = np.repeat(samples[:, None], channels, axis=1).astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * 4 * channels, 4 * channels, 32)
    return b"RIFF\xff\xff\xff\xffWAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data\xff\xff\xff\xff" + data


def test_pcm_chunks_reads_raw_and_wav_streams(speech):
    import io

    from talkinghead.errors import InputError
    from talkinghead.media.pcm_stream import pcm_chunks

    raw = (speech * 32767).astype("<i2").tobytes()
    got = np.concatenate(list(pcm_chunks(io.BytesIO(raw), "s16le", 16000)))
    np.testing.assert_allclose(got, speech, atol=1e-4)
    t = np.arange(22050) / 22050
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    got = np.concatenate(list(pcm_chunks(io.BytesIO(_wav_stream(tone, 22050, 2)))))
    assert abs(len(got) - 16000) <= 2  # 1 s, resampled to 16 kHz, channels averaged
    ref = (0.5 * np.sin(2 * np.pi * 440 * np.arange(len(got)) / 16000)).astype(np.float32)
    assert np.abs(got - ref).max() < 0.02
    with pytest.raises(InputError):
        list(pcm_chunks(io.BytesIO(b""), "s16le"))
    with pytest.raises(InputError):
        list(pcm_chunks(io.BytesIO(b"RIFF\x00\x00\x00\x00WAVEdata"), "s16le"))


def test_generate_reads_audio_from_a_pipe(tmp_path, demo_face, speech):
    import av
    from typer.testing import CliRunner

    from talkinghead.cli import app

    out = tmp_path / "piped.mp4"
    pcm = (speech[: 16000 * 2] * 32767).astype("<i2").tobytes()
    r = CliRunner().invoke(
        app, ["generate", "--face", str(demo_face), "--audio", "-", "--size", "128", "-o", str(out), "-q"], input=pcm
    )
    assert r.exit_code == 0, r.output
    with av.open(str(out)) as c:
        assert c.streams.video[0].frames == 50 and len(c.streams.audio) == 1
        assert "synthetic" in c.metadata.get("talkinghead", "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["piped.mp4"]  # no partial files left
    r = CliRunner().invoke(
        app, ["generate", "--face", str(demo_face), "--audio", "-", "--audio-format", "u8", "-o", str(out)]
    )
    assert r.exit_code == 1 and "s16le or f32le" in r.output


def test_stream_priors_belong_to_the_shipped_lips_model(animator):
    """The lip-gap prior is the shipped lips model's: retraining it needs `scripts/stream_priors.py` rerun (a
    stream with another model falls back to its own running spread)."""
    from talkinghead.audio.running import stream_priors
    from talkinghead.motion.stream import _gap_prior, lips_fingerprint

    priors = stream_priors()
    assert len(priors["mel_mean"]) == 80 and 0.01 < priors["gap_std"] < 0.5
    assert priors["lips_fingerprint"] == lips_fingerprint(animator.mouth), "rerun scripts/stream_priors.py"
    assert _gap_prior(animator.mouth) == priors["gap_std"]


def test_recorded_stream_leaves_the_mouth_unmarked(tmp_path):
    """A stream's MP4 (`stream_to_file`, and the server's `record`) fades the watermark out round the photo's
    mouth, as `generate` does (`mouth_spare`): flat grey frames come back flat there and marked elsewhere."""
    from types import SimpleNamespace

    from talkinghead.face.indices import LEFT_IRIS, LOWER_OUTER_LIP, RIGHT_IRIS, UPPER_OUTER_LIP
    from talkinghead.media.video_reader import iter_frames
    from talkinghead.provenance.stamp import mouth_spare
    from talkinghead.stream_record import stream_to_file

    side = 320
    pts = np.full((478, 3), 160.0)
    pts[LEFT_IRIS[0], 0], pts[RIGHT_IRIS[0], 0] = 110.0, 210.0  # 100 px between the eyes
    lips = UPPER_OUTER_LIP + LOWER_OUTER_LIP
    pts[lips, :2] = np.linspace([130.0, 200.0], [190.0, 225.0], len(lips))
    grey = np.full((side, side, 3), 128, np.uint8)
    fake = SimpleNamespace(
        source=SimpleNamespace(image=grey, points=pts),
        stream=lambda chunks, opts: (grey.copy() for _ in chunks),
    )
    out = stream_to_file(fake, [np.zeros(640, np.float32)] * 25, tmp_path / "s.mp4", GenerateOptions(), [])
    y = np.stack([f[..., 1].astype(float) for _, f in iter_frames(out)])  # green ~ luma on grey
    s = mouth_spare(pts)
    assert s is not None
    inside = y[:, int(s.y0) + 8 : int(s.y1) - 8, int(s.x0) + 8 : int(s.x1) - 8]
    outside = np.concatenate(
        [y[:, : int(s.y0) - 40].reshape(len(y), -1), y[:, int(s.y1) + 40 :].reshape(len(y), -1)], 1
    )
    assert np.abs(outside - 128).mean() > 0.5, "the mark is there outside the mouth"
    assert np.abs(inside - 128).mean() < 0.25 * np.abs(outside - 128).mean(), "and faded out round the mouth"
