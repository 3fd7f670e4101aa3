"""Config files and resumable training, on a tiny synthetic cache the test writes (no video, no corpus)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from typer.testing import CliRunner

from talkinghead.cli import app

FPS, RATE = 25.0, 16000


def _clip(path: Path, seed: int, seconds: float = 3.0) -> None:
    """A face whose lower lip and jaw drop with a syllable envelope, and noise speech following the same envelope."""
    from talkinghead.face.indices import MOUTH_JAW
    from talkinghead.weights import load_weights

    rng = np.random.default_rng(seed)
    ref = load_weights("sync").tensors["reference"].numpy()
    face = ref * 150 + np.array([180.0, 150.0, 0.0])
    n = int(seconds * FPS)
    env = np.clip(np.sin(np.arange(n) / FPS * 2 * np.pi * rng.uniform(2, 4) + rng.uniform(0, 6)), 0, None)
    mouth = np.array(MOUTH_JAW)
    lower = mouth[face[mouth, 1] > face[mouth, 1].mean()]
    points = np.repeat(face[None], n, 0).astype(np.float32)
    points[:, lower, 1] += 8.0 * env[:, None]
    points += rng.normal(0, 0.05, points.shape).astype(np.float32)
    hop = int(RATE / FPS)
    audio = rng.normal(0, 1, n * hop) * np.repeat(0.02 + 0.3 * env, hop)
    np.savez_compressed(
        path,
        points=points,
        times=np.arange(n) / FPS,
        fps=np.float64(FPS),
        size=np.array([360, 300]),
        audio=(np.clip(audio, -1, 1) * 32767).astype(np.int16),
    )


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread is faster than two fighting over a busy CPU."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def tiny_cache(tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    cache.mkdir()
    for k, name in enumerate(["train__grid_a", "train__other_b", "val__grid_c"]):
        _clip(cache / f"{name}.npz", k)
    return cache


def _tensors(path: Path) -> dict[str, np.ndarray]:
    with safe_open(str(path), framework="np") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def test_resume_after_interruption_equals_uninterrupted_run(tiny_cache, tmp_path):
    from talkinghead.training.train_lips import TrainLipsOptions, train_lips

    opts = TrainLipsOptions(epochs=2, steps_per_epoch=2, batch=2, seed=5)
    whole = tmp_path / "whole.safetensors"
    train_lips(tiny_cache, whole, opts, command="test", log=lambda s: None)
    assert not whole.with_name(whole.name + ".ckpt").exists()  # deleted when training completes

    class Interrupted(Exception):
        pass

    def stop_after_first_epoch(line: str) -> None:
        if line.startswith("{") and json.loads(line)["epoch"] == 1:
            raise Interrupted

    parts = tmp_path / "parts.safetensors"
    with pytest.raises(Interrupted):
        train_lips(tiny_cache, parts, opts, command="test", log=stop_after_first_epoch)
    ckpt = parts.with_name(parts.name + ".ckpt")
    assert ckpt.exists() and not parts.exists()
    lines: list[str] = []
    train_lips(tiny_cache, parts, opts, command="test", log=lines.append)
    assert any(s.startswith("Resuming") and "after epoch 1 of 2" in s for s in lines)
    assert not ckpt.exists()
    a, b = _tensors(whole), _tensors(parts)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert len(parts.with_suffix(".csv").read_text().strip().splitlines()) == 3  # header + both epochs


def test_config_file_flags_override_and_metadata(tiny_cache, tmp_path):
    cfg = tmp_path / "lips.toml"
    cfg.write_text("epochs = 3\nsteps_per_epoch = 2\nbatch = 4\nseed = 9\nsync_weight = 0.5\n[config]\nwidth = 32\n")
    out = tmp_path / "lips.safetensors"
    res = CliRunner().invoke(
        app, ["train", "lips", "--data", str(tiny_cache), "-o", str(out), "--config", str(cfg), "--epochs", "1"]
    )
    assert res.exit_code == 0, res.output
    with safe_open(str(out), framework="np") as f:
        meta = f.metadata()
    import tomllib

    stored = tomllib.loads(meta["train_config"])
    assert stored["epochs"] == 1  # the flag wins over the file
    assert stored["batch"] == 4 and stored["seed"] == 9 and stored["sync_weight"] == 0.5
    assert stored["config"]["width"] == 32 and json.loads(meta["config"])["width"] == 32
    # the stored config reproduces the run as a config file
    again = tmp_path / "again.toml"
    again.write_text(meta["train_config"])
    from talkinghead.training.config_file import load_options
    from talkinghead.training.train_lips import TrainLipsOptions

    assert load_options(TrainLipsOptions, again, {}) == load_options(TrainLipsOptions, cfg, {"epochs": 1})


@pytest.mark.parametrize(
    "text, message",
    [
        ("epochs = 2\nbatchsize = 4\n", "unknown key batchsize"),
        ("[config]\nwidht = 4\n", "unknown key config.widht"),
        ("epochs = 'two'\n", "epochs must be an integer"),
        ("epochs = \n", "not valid TOML"),
    ],
)
def test_bad_config_is_one_sentence(tiny_cache, tmp_path, text, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    res = CliRunner().invoke(
        app, ["train", "lips", "--data", str(tiny_cache), "-o", str(tmp_path / "x.safetensors"), "--config", str(cfg)]
    )
    said = " ".join(res.output.split())  # rich wraps long lines
    assert res.exit_code == 1
    assert message in said and "Traceback" not in said
    assert not (tmp_path / "x.safetensors").exists()


def test_foreign_checkpoint_is_refused(tiny_cache, tmp_path):
    out = tmp_path / "sync.safetensors"
    (tmp_path / "sync.safetensors.ckpt").write_bytes(b"")
    res = CliRunner().invoke(
        app,
        [
            "train",
            "sync",
            "--data",
            str(tiny_cache),
            "-o",
            str(out),
            "--epochs",
            "1",
            "--steps-per-epoch",
            "1",
            "--config",
            str(Path(__file__).parents[1] / "configs" / "sync.toml"),
        ],
    )
    assert res.exit_code == 1 and "delete it" in " ".join(res.output.split()) and "Traceback" not in res.output
    import torch

    torch.save({"fingerprint": "another run"}, tmp_path / "sync.safetensors.ckpt")
    res = CliRunner().invoke(
        app, ["train", "sync", "--data", str(tiny_cache), "-o", str(out), "--epochs", "1", "--steps-per-epoch", "1"]
    )
    assert res.exit_code == 1 and "other options or data" in " ".join(res.output.split())


def test_sync_loss_is_differentiable_and_weighted(tiny_cache):
    import torch

    from talkinghead.training.mouth_data import reference_shape
    from talkinghead.training.train_lips import Trainer, TrainLipsOptions, load_clips, split_paths

    train_paths, val_paths = split_paths(tiny_cache)
    ref = reference_shape(train_paths)
    clips = load_clips(train_paths, ref)
    trainer = Trainer(clips, load_clips(val_paths, ref), ref, TrainLipsOptions(batch=3, sync_weight=0.5))
    mel, pos, y, m = trainer._sample()
    pred = (y + 0.001 * torch.randn_like(y)).requires_grad_(True)
    loss = trainer.sync_loss(pred, mel, pos, m)
    assert loss.item() > 0
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0  # it can steer the predicted motion
    assert all(p.grad is None for p in trainer.expert.parameters())  # the expert stays frozen
    torch.manual_seed(0)
    trainer.model.eval()  # no dropout: both losses see the same prediction
    with_sync = trainer.loss(mel, pos, y, m)
    plain = Trainer(clips, [], ref, TrainLipsOptions(batch=3, sync_weight=0.0))
    plain.model.load_state_dict(trainer.model.state_dict())
    plain.model.eval()
    coef = trainer.model(mel, pos)
    sync = trainer.sync_loss((coef * trainer.std_t) @ trainer.basis, mel, pos, m)
    torch.testing.assert_close(with_sync, plain.loss(mel, pos, y, m) + 0.5 * sync)
