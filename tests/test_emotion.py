"""--emotion: expression offsets learned from the labelled MEAD clips move the face their way."""

from __future__ import annotations

import numpy as np
import pytest
from speech import SENTENCES, speech_with_pause
from typer.testing import CliRunner

from talkinghead.cli import app
from talkinghead.face.indices import inter_ocular
from talkinghead.face.track import track_video
from talkinghead.pipeline import generate


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    from speech import write_wav

    p = tmp_path_factory.mktemp("emo") / "speech.wav"
    samples, _ = speech_with_pause(SENTENCES["fr"][:1], "fr")
    write_wav(p, samples)
    return p


def _measure(video) -> dict[str, float]:
    track = track_video(video)
    pts = track.points[track.found]
    iod = np.array([inter_ocular(p) for p in pts])
    width = np.linalg.norm(pts[:, 291, :2] - pts[:, 61, :2], axis=1) / iod
    brow_to_eye = (pts[:, [159, 386], 1].mean(1) - pts[:, [105, 334], 1].mean(1)) / iod
    return {"mouth_width": float(np.median(width)), "brow_height": float(np.median(brow_to_eye))}


@pytest.mark.slow
def test_emotions_move_the_face_their_way(animator, demo_face, speech, tmp_path):
    m = {}
    for emo in ("neutral", "happy", "surprised"):
        out = generate(
            demo_face,
            speech,
            tmp_path / f"{emo}.mp4",
            animator=animator,
            seed=3,
            still=True,
            emotion=emo,
            blinks_per_min=0,
        )
        m[emo] = _measure(out)
    assert m["happy"]["mouth_width"] > m["neutral"]["mouth_width"] + 0.03, m
    assert m["surprised"]["brow_height"] > m["neutral"]["brow_height"] + 0.02, m


def test_unknown_emotion_is_a_clear_error(demo_face, speech, tmp_path):
    out = tmp_path / "x.mp4"
    res = CliRunner().invoke(
        app, ["generate", "--face", str(demo_face), "--audio", str(speech), "-o", str(out), "--emotion", "bored", "-q"]
    )
    assert res.exit_code == 1 and "Unknown emotion 'bored'" in res.output and not out.exists()
