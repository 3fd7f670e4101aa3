"""`talkinghead eval` on hand-checkable cases built from the product's own output."""

from __future__ import annotations

import json

import pytest
from speech import SENTENCES, speech_with_pause
from typer.testing import CliRunner

from talkinghead.cli import app
from talkinghead.media import VideoWriter, iter_frames, load_audio
from talkinghead.metrics.evaluate import evaluate
from talkinghead.metrics.sync import SyncExpert


@pytest.fixture(scope="module")
def expert():
    return SyncExpert()


@pytest.fixture(scope="module")
def talking(tmp_path_factory, animator, demo_face):
    """A 6-7 s talking video made by the product, and its frames."""
    from speech import write_wav

    from talkinghead.pipeline import generate

    d = tmp_path_factory.mktemp("eval")
    samples, _ = speech_with_pause(SENTENCES["en"], "en", pause_s=0.5)
    write_wav(d / "speech.wav", samples)
    video = generate(demo_face, d / "speech.wav", d / "talk.mp4", animator=animator, size=256, seed=2, still=True)
    frames = [f for _, f in iter_frames(video)]
    return d, video, frames


def _rewrite(path, frames, audio_path):
    h, w = frames[0].shape[:2]
    with VideoWriter(path, w, h, fps=25.0, audio=load_audio(audio_path, sample_rate=None)) as wr:
        for f in frames:
            wr.write(f)
    return path


@pytest.mark.slow
def test_video_against_itself_is_perfect(talking, expert):
    d, video, _ = talking
    r = evaluate(video, reference=video, expert=expert)
    assert r["psnr"] == 100.0 and r["ssim"] > 0.999 and r["ms_ssim"] > 0.999
    assert r["lmd"] < 1e-6 and r["fld"] < 1e-6
    from talkinghead.metrics import quality

    # fid / lpips come with the [quality] extra (tests/test_quality.py); without it they are null
    assert "fid" in r and "lpips" in r
    if not quality.fid_available():
        assert r["fid"] is None
    if not quality.lpips_available():
        assert r["lpips"] is None
    else:
        assert r["lpips"] < 1e-6
    assert abs(r["sync_offset_frames"]) <= 1
    assert r["sync_confidence"] > 0.05


@pytest.mark.slow
@pytest.mark.parametrize("k", [3, -4])
def test_delayed_video_gives_its_offset(talking, expert, k):
    d, video, frames = talking
    shifted = [frames[0]] * k + frames[:-k] if k > 0 else frames[-k:] + [frames[-1]] * (-k)
    r = evaluate(_rewrite(d / f"shift{k}.mp4", shifted, d / "speech.wav"), expert=expert)
    assert abs(r["sync_offset_frames"] - k) <= 1, r["sync_offset_frames"]


@pytest.mark.slow
def test_other_audio_and_frozen_video_have_less_confidence(talking, expert, wav_file):
    d, video, frames = talking
    true = evaluate(video, expert=expert)
    other, _ = speech_with_pause(SENTENCES["de"], "de", pause_s=0.5)
    wrong = evaluate(video, audio=wav_file(other, "other.wav"), expert=expert)
    assert wrong["sync_confidence"] < 0.6 * true["sync_confidence"]
    frozen = evaluate(_rewrite(d / "frozen.mp4", [frames[0]] * len(frames), d / "speech.wav"), expert=expert)
    assert frozen["sync_confidence"] < 0.3 * true["sync_confidence"]


@pytest.mark.slow
def test_eval_cli_json(talking):
    d, video, _ = talking
    res = CliRunner().invoke(app, ["eval", str(video), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output.strip().splitlines()[-1])
    for key in ("sync_offset_frames", "sync_confidence", "blink_rate_per_min", "pose_std_deg", "pose_jitter_deg"):
        assert key in data
    assert data["pose_std_deg"] < 0.5  # made with --still
