"""prepare -> train lips -> load, end to end on two tiny videos the product makes itself."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from speech import SENTENCES, speech_with_pause
from typer.testing import CliRunner

from talkinghead.cli import app


@pytest.mark.slow
def test_prepare_train_and_load(tmp_path, animator, demo_face, wav_file):
    from talkinghead.motion.mouth import MouthModel
    from talkinghead.pipeline import generate

    samples, _ = speech_with_pause(SENTENCES["de"][:1], "de")
    videos = tmp_path / "videos" / "speaker1"
    videos.mkdir(parents=True)
    generate(demo_face, wav_file(samples), videos / "a.mp4", animator=animator, size=192, seed=0)
    shutil.copy(videos / "a.mp4", videos / "b.mp4")
    (videos / "broken.mp4").write_bytes(b"not a video")
    cache = tmp_path / "cache"
    runner = CliRunner()
    res = runner.invoke(app, ["prepare", str(tmp_path / "videos"), "-o", str(cache), "--workers", "1", "-q"])
    assert res.exit_code == 0, res.output
    assert "2 prepared" in res.output and "1 failed" in res.output
    # a rerun skips what is done (resumable)
    res = runner.invoke(app, ["prepare", str(tmp_path / "videos"), "-o", str(cache), "--workers", "1", "-q"])
    assert "0 prepared, 2 already done" in res.output
    out = tmp_path / "lips.safetensors"
    res = runner.invoke(
        app, ["train", "lips", "--data", str(cache), "-o", str(out), "--epochs", "1", "--steps-per-epoch", "2"]
    )
    assert res.exit_code == 0, res.output
    assert out.with_suffix(".csv").exists() and out.with_suffix(".png").stat().st_size > 1000
    model = MouthModel(str(out))
    pred = model.predict(samples, 50, 25.0)
    assert pred.shape == (50, len(model.geometry.indices), 2) and np.isfinite(pred).all()

    sync_out = tmp_path / "sync.safetensors"
    res = runner.invoke(
        app, ["train", "sync", "--data", str(cache), "-o", str(sync_out), "--epochs", "1", "--steps-per-epoch", "2"]
    )
    assert res.exit_code == 0, res.output
    from talkinghead.metrics.sync import SyncExpert

    assert SyncExpert(str(sync_out)).reference.shape == (478, 3)

    motion_out = tmp_path / "motion.safetensors"
    threads = torch.get_num_threads()
    res = runner.invoke(
        app, ["train", "motion", "--data", str(cache), "-o", str(motion_out), "--epochs", "1", "--steps-per-epoch", "2"]
    )
    assert res.exit_code == 0, res.output
    assert torch.get_num_threads() == threads, "training must not change the caller's thread count"
    from talkinghead.motion.learned import LearnedMotion

    pose, lids = LearnedMotion(str(motion_out)).sample(samples, 50, 25.0, np.random.default_rng(0))
    assert pose.shape == (50, 5) and lids.shape == (50,) and np.isfinite(pose).all()

    # the trained models work in one command each; a file of another kind is refused with a sentence
    def render(video, *weights: str):
        cmd = ["generate", "--face", str(demo_face), "--audio", str(wav_file(samples)), "-o", str(video)]
        return runner.invoke(app, [*cmd, "--size", "128", *weights, "-q"])

    video = tmp_path / "trained.mp4"
    res = render(video, "--lips-weights", str(out), "--motion-weights", str(motion_out))
    assert res.exit_code == 0 and video.stat().st_size > 1000, res.output
    res = runner.invoke(app, ["eval", str(video), "--sync-weights", str(sync_out), "--json"])
    assert res.exit_code == 0 and '"sync_confidence"' in res.output, res.output
    res = render(tmp_path / "wrong.mp4", "--lips-weights", str(sync_out))
    assert res.exit_code == 1 and "not a lips model (their format is sync)" in res.output, res.output
    assert not (tmp_path / "wrong.mp4").exists()
