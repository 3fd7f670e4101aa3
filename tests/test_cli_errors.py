"""Every user mistake gets one clear sentence, a non-zero exit, no traceback and no output file."""

from __future__ import annotations

import wave
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from talkinghead.cli import app

runner = CliRunner()


def _run(args: list[str]):
    return runner.invoke(app, args, catch_exceptions=True)


@pytest.fixture()
def speech(wav_file):
    t = np.arange(16000 * 2) / 16000
    return wav_file((0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32))


def _assert_clean_failure(result, out: Path, *needles: str) -> None:
    text = result.output
    assert result.exit_code == 1, text
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in text
    for n in needles:
        assert n.lower() in text.lower(), text
    assert not out.exists()
    if out.parent.exists():
        assert not [p for p in out.parent.iterdir() if p.suffix == ".mp4" or "partial" in p.name]


def test_no_face(tmp_path, speech):
    img = tmp_path / "wall.png"
    cv2.imwrite(str(img), np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1)))
    out = tmp_path / "o" / "out.mp4"
    out.parent.mkdir()
    _assert_clean_failure(
        _run(["generate", "--face", str(img), "--audio", str(speech), "-o", str(out), "-q"]), out, "no face"
    )


def test_face_index_out_of_range(tmp_path, speech, demo_face):
    out = tmp_path / "o" / "out.mp4"
    out.parent.mkdir()
    _assert_clean_failure(
        _run(["generate", "--face", str(demo_face), "--audio", str(speech), "-o", str(out), "--face-index", "3", "-q"]),
        out,
        "face-index",
    )


def test_several_faces_animates_largest(tmp_path, speech, demo_face):
    from talkinghead.face.landmarks import detect_faces
    from talkinghead.media import load_image

    face = load_image(demo_face)
    canvas = np.full((600, 1000, 3), 230, np.uint8)
    canvas[44:556, 20:532] = face
    canvas[200:456, 700:956] = cv2.resize(face, (256, 256))
    faces = detect_faces(canvas)
    assert len(faces) == 2 and faces[0].area > faces[1].area
    img = tmp_path / "two.jpg"
    cv2.imwrite(str(img), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    out = tmp_path / "two.mp4"
    res = _run(["generate", "--face", str(img), "--audio", str(speech), "-o", str(out), "-q", "--face-index", "1"])
    assert res.exit_code == 0, res.output
    assert out.exists()


def _bad_audio(kind: str, tmp_path, wav_file) -> Path:
    if kind == "unreadable":
        p = tmp_path / "speech.wav"
        p.write_text("this is not audio")
    elif kind == "empty":
        p = tmp_path / "empty.wav"
        with wave.open(str(p), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
    else:
        p = wav_file(np.zeros(16000 * 2, np.float32), "silent.wav")
    return p


@pytest.mark.parametrize("kind, needle", [("unreadable", "speech.wav"), ("empty", "empty.wav"), ("silent", "silent")])
def test_bad_audio(kind, needle, tmp_path, demo_face, wav_file):
    audio = _bad_audio(kind, tmp_path, wav_file)
    out = tmp_path / "o" / "out.mp4"
    out.parent.mkdir()
    _assert_clean_failure(
        _run(["generate", "--face", str(demo_face), "--audio", str(audio), "-o", str(out), "-q"]), out, needle
    )


def test_unsupported_face_file(tmp_path, speech):
    doc = tmp_path / "face.jpg"
    doc.write_bytes(b"%PDF-1.4 not an image")
    out = tmp_path / "o" / "out.mp4"
    out.parent.mkdir()
    _assert_clean_failure(
        _run(["generate", "--face", str(doc), "--audio", str(speech), "-o", str(out), "-q"]), out, "face.jpg"
    )


def test_missing_face_file(tmp_path, speech):
    out = tmp_path / "out.mp4"
    _assert_clean_failure(
        _run(["generate", "--face", str(tmp_path / "nope.jpg"), "--audio", str(speech), "-o", str(out), "-q"]),
        out,
        "does not exist",
    )


def test_unwritable_output(tmp_path, speech, demo_face):
    out = tmp_path / "missing-folder" / "out.mp4"
    _assert_clean_failure(
        _run(["generate", "--face", str(demo_face), "--audio", str(speech), "-o", str(out), "-q"]), out
    )


def test_output_must_be_mp4(tmp_path, speech, demo_face):
    out = tmp_path / "out.avi"
    _assert_clean_failure(
        _run(["generate", "--face", str(demo_face), "--audio", str(speech), "-o", str(out), "-q"]), out, ".mp4"
    )


def test_existing_output_survives_a_failed_run(tmp_path, demo_face, wav_file):
    out = tmp_path / "keep.mp4"
    out.write_bytes(b"precious")
    silent = wav_file(np.zeros(16000, np.float32), "silent.wav")
    res = _run(["generate", "--face", str(demo_face), "--audio", str(silent), "-o", str(out), "-q"])
    assert res.exit_code == 1
    assert out.read_bytes() == b"precious"


def test_demo_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = _run(["demo", "-q"])
    assert res.exit_code == 0, res.output
    from talkinghead.media import probe_video

    info = probe_video(tmp_path / "demo.mp4")
    assert info.has_audio and info.width == 512 and abs(info.fps - 25) < 1e-6
