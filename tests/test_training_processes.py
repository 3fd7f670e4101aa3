"""Training across processes (what `torchrun --nproc-per-node 2 talkinghead train ...` does), on CPU with gloo:
two processes give the losses and weights of one process with the same global batch, only rank 0 writes and
logs, and a run interrupted after its first epoch resumes from rank 0's checkpoint."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from test_training_resume import _clip

WORLD = 2
LIPS = "epochs = 2\nsteps_per_epoch = 2\nbatch = 4\nseed = 3\nsync_weight = 0.2\n[config]\nwidth = 32\ndropout = 0.0\n"
SYNC = "epochs = 1\nsteps_per_epoch = 2\nbatch = 4\nseed = 3\n"


class Interrupted(Exception):
    pass


def _commands(cache: Path, out: Path, tmp: Path) -> dict[str, list[str]]:
    data = ["--data", str(cache)]
    return {
        "sync": ["train", "sync", *data, "-o", str(out / "sync.safetensors"), "--config", str(tmp / "sync.toml")],
        "lips": ["train", "lips", *data, "-o", str(out / "lips.safetensors"), "--config", str(tmp / "lips.toml")],
        "uneven": ["train", "sync", *data, "-o", str(out / "x.safetensors"), "--config", str(tmp / "uneven.toml")],
        "foreign": ["train", "sync", *data, "-o", str(out / "y.safetensors"), "--config", str(tmp / "sync.toml")],
    }


def _worker(rank: int, port: int, cache: Path, tmp: Path) -> None:
    """One process of the group, as torchrun would start it: the environment names its place."""
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    import safetensors.torch

    from talkinghead.cli import app
    from talkinghead.training import data_parallel as dp
    from talkinghead.training import loop

    def record(what: str) -> None:
        with open(tmp / "writes.txt", "a") as f:
            f.write(f"{what} {rank}\n")

    # who writes checkpoints and weights; and a way to stop every process right after the first checkpoint
    stop = {"now": False}
    real_save, real_gather, real_file = loop._save_checkpoint, dp.gather_objects, safetensors.torch.save_file

    def save(path, state):
        record("checkpoint")
        real_save(path, state)
        if stop["now"]:
            raise Interrupted

    def gather(obj):
        out = real_gather(obj)
        if stop["now"] and rank > 0:  # rank 0 stops once it has saved
            raise Interrupted
        return out

    def save_file(*args, **kwargs):
        record("weights")
        real_file(*args, **kwargs)

    loop._save_checkpoint, dp.gather_objects, safetensors.torch.save_file = save, gather, save_file
    commands = _commands(cache, tmp / "two", tmp)
    said = io.StringIO()
    codes = []
    with contextlib.redirect_stderr(said), dp.processes():
        assert dp.world_size() == WORLD and dp.rank() == rank
        codes.append(app(commands["uneven"], standalone_mode=False) or 0)
        codes.append(app(commands["foreign"], standalone_mode=False) or 0)
        codes.append(app(commands["sync"], standalone_mode=False) or 0)
        stop["now"] = True
        with pytest.raises(Interrupted):
            app(commands["lips"], standalone_mode=False)
        stop["now"] = False
        (tmp / f"interrupted{rank}").write_text(str((tmp / "two" / "lips.safetensors.ckpt").exists()))
        codes.append(app(commands["lips"], standalone_mode=False) or 0)  # resumes
    (tmp / f"said{rank}.txt").write_text(said.getvalue())
    (tmp / f"codes{rank}.json").write_text(json.dumps(codes))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tensors(path: Path) -> dict[str, np.ndarray]:
    with safe_open(str(path), framework="np") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def _rows(csv: Path, keys: list[str]) -> np.ndarray:
    """The curve's columns `keys`, one row per epoch."""
    lines = csv.read_text().strip().splitlines()
    names = lines[0].split(",")
    return np.array([[float(row.split(",")[names.index(k)]) for k in keys] for row in lines[1:]])


def test_two_processes_train_like_one(tmp_path):
    from typer.testing import CliRunner

    from talkinghead.cli import app

    cache = tmp_path / "cache"
    cache.mkdir()
    for k, name in enumerate(["train__grid_a", "train__other_b", "val__grid_c"]):
        _clip(cache / f"{name}.npz", k)
    (tmp_path / "lips.toml").write_text(LIPS)
    (tmp_path / "sync.toml").write_text(SYNC)
    (tmp_path / "uneven.toml").write_text(SYNC.replace("batch = 4", "batch = 3"))

    (tmp_path / "two").mkdir()
    torch.save({"fingerprint": "another run"}, tmp_path / "two" / "y.safetensors.ckpt")
    torch.multiprocessing.spawn(_worker, args=(_free_port(), cache, tmp_path), nprocs=WORLD)

    said = [(tmp_path / f"said{r}.txt").read_text() for r in range(WORLD)]
    assert [json.loads((tmp_path / f"codes{r}.json").read_text()) for r in range(WORLD)] == [[1, 1, 0, 0]] * WORLD
    assert all("batch of 3 does not split evenly over 2 processes" in " ".join(s.split()) for s in said)
    assert all("belongs to a run with other options or data" in " ".join(s.split()) for s in said)  # rank 0 read it
    writes = (tmp_path / "writes.txt").read_text().split("\n")
    assert sorted(w for w in writes if w) == ["checkpoint 0", "weights 0", "weights 0"]  # sync, lips; rank 0 only
    assert (tmp_path / "interrupted0").read_text() == "True"  # the interrupted run left rank 0's checkpoint
    assert not (tmp_path / "two" / "lips.safetensors.ckpt").exists()  # the resumed run finished and removed it
    assert "Resuming" in said[0] and "after epoch 1 of 2" in said[0] and "Best validation" in said[0]
    assert "Resuming" not in said[1] and '"epoch"' not in said[1] and "Best validation" not in said[1]

    one = tmp_path / "one"
    runner = CliRunner()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, args in _commands(cache, one, tmp_path).items():
            if name in ("sync", "lips"):
                res = runner.invoke(app, args)
                assert res.exit_code == 0, res.output
    finally:
        torch.set_num_threads(before)

    # the training loss of every epoch and the continuous validation figures (counts such as "offset within one
    # frame" can flip on a near tie after two steps on synthetic data)
    for name, keys in (("sync", ["loss", "confidence"]), ("lips", ["loss", "grid", "sync_conf"])):
        a, b = _rows(one / f"{name}.csv", keys), _rows(tmp_path / "two" / f"{name}.csv", keys)
        assert a.shape == b.shape == (1 if name == "sync" else 2, len(keys))
        np.testing.assert_allclose(b[:, 0], a[:, 0], rtol=2e-3, err_msg=f"{name} loss")  # measured within 3e-5
        np.testing.assert_allclose(b[:, 1:], a[:, 1:], atol=1e-3, err_msg=f"{name} validation")  # measured 4e-5
        w1, w2 = _tensors(one / f"{name}.safetensors"), _tensors(tmp_path / "two" / f"{name}.safetensors")
        assert w1.keys() == w2.keys()
        # all weights together: single parameters whose exact gradient is 0 (a conv bias before batch norm) differ
        # by up to lr per step, since Adam scales their rounding noise to full steps; measured 6e-4 (sync), 6e-5 (lips)
        floats = [k for k in w1 if w1[k].dtype.kind == "f"]
        x, y = (np.concatenate([w[k].ravel() for k in floats]) for w in (w1, w2))
        assert np.linalg.norm(y - x) / np.linalg.norm(x) < 5e-3, name


def test_backend_and_device_follow_cuda(monkeypatch):
    """nccl and the GPU torchrun's LOCAL_RANK names where CUDA is available, gloo and the CPU elsewhere (the
    GPU side is checked as logic only: this machine's torch has no CUDA)."""
    import torch.distributed as dist

    from talkinghead.training import data_parallel as dp

    cpu = torch.device("cpu")
    assert dp.choose_backend(True, 1) == ("nccl", torch.device("cuda", 1))
    assert dp.choose_backend(False, 1) == ("gloo", cpu)
    assert dp.choose_backend(True, 0, "cpu") == ("gloo", cpu)
    with pytest.raises(ValueError, match="no CUDA"):
        dp.choose_backend(False, 0, "cuda")
    with pytest.raises(ValueError, match="cpu or cuda"):
        dp.choose_backend(True, 0, "gpu")

    # what `processes` does with the choice, the process group and CUDA replaced by recorders
    calls: list[tuple] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", d)))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend: calls.append(("init", backend)))
    monkeypatch.setattr(dist, "barrier", lambda **kw: calls.append(("barrier", kw)))
    monkeypatch.setattr(dist, "destroy_process_group", lambda: calls.append(("destroy",)))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.delenv("TALKINGHEAD_TRAIN_DEVICE", raising=False)
    with dp.processes():
        assert dp.device() == torch.device("cuda", 1)
    assert calls == [
        ("set_device", torch.device("cuda", 1)),
        ("init", "nccl"),
        ("barrier", {"device_ids": [1]}),
        ("destroy",),
    ]
    assert dp.device() == cpu  # back to the CPU on leaving
    calls.clear()
    monkeypatch.setenv("TALKINGHEAD_TRAIN_DEVICE", "cpu")
    with dp.processes():
        assert dp.device() == cpu
        # a batch goes to the process's device (here the CPU: the tensors stay as they are)
        x = torch.zeros(2, 3)
        assert dp.shard((x,))[0].device == cpu
    assert calls == [("init", "gloo"), ("barrier", {}), ("destroy",)]
