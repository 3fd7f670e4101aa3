"""The epoch loop both trainers share: AdamW + one-cycle schedule, validation after every epoch,
curves written as it goes, and the best epoch's weights kept (small data overfits late).

Resumable: after every epoch the whole training state (model, optimiser, schedule, both random
generators, the curve and the best epoch so far) is written to a checkpoint (temp file + rename, so an
interruption never leaves a torn one). A run that finds a checkpoint of the same run (same fingerprint:
options and data) continues after its last finished epoch and ends with exactly the weights an
uninterrupted run would have; the checkpoint is deleted when training completes.

Under torchrun the processes split each batch (`data_parallel`): rank 0 validates, logs, writes the
curves and checkpoints, and reads the checkpoint on resuming and sends it to the others (so only rank 0
needs to see the output folder).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from talkinghead.errors import TalkingHeadError
from talkinghead.training import data_parallel as dp
from talkinghead.training.curves import write_curves


class CheckpointMismatch(TalkingHeadError):
    """A checkpoint exists beside the output but belongs to a run with other options or data."""


def _save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_name(path.name + ".partial")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path: Path, fingerprint: str) -> dict | None:
    if not path.exists():
        return None
    try:
        state = torch.load(path, weights_only=False, map_location="cpu")
    except Exception as exc:  # a checkpoint we cannot read is as good as none, but say so
        raise CheckpointMismatch(f"Checkpoint {path} cannot be read ({exc}); delete it to start afresh.") from None
    if state.get("fingerprint") != fingerprint:
        raise CheckpointMismatch(
            f"Checkpoint {path} belongs to a run with other options or data; "
            "delete it to start afresh, or rerun with the same options to resume."
        )
    return state


def _read_on_main(path: Path, fingerprint: str) -> dict | None:
    """Rank 0 reads the checkpoint; every process gets its contents, or raises its refusal."""
    state, refusal = None, None
    if dp.is_main():
        try:
            state = _load_checkpoint(path, fingerprint)
        except CheckpointMismatch as exc:
            refusal = exc
    state, refusal = dp.from_main((state, refusal))
    if refusal is not None:
        raise refusal
    return state


def fit(
    model: torch.nn.Module,
    step_loss: Callable[[], torch.Tensor],
    validate: Callable[[], dict[str, float]],
    score: Callable[[dict[str, float]], float],
    epochs: int,
    steps_per_epoch: int,
    lr: float,
    log: Callable[[str], None] = print,
    csv: Path | None = None,
    clip_grad: float | None = None,
    checkpoint: Path | None = None,
    rng: np.random.Generator | None = None,
    fingerprint: str = "",
) -> dict[str, float]:
    """Train `model` in place; returns the best epoch's validation figures (its weights are loaded).

    `rng` is the trainer's sampling generator, saved and restored with the checkpoint so a resumed run
    draws the same batches as an uninterrupted one. `step_loss` runs inside `data_parallel.training_step`:
    across processes it returns this process's share of the loss (see `data_parallel`).
    """
    dp.prepare(model)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.15)
    rows: list[dict[str, float]] = []
    best: dict[str, float] = {}
    best_state = None
    start = 0
    state = _read_on_main(checkpoint, fingerprint) if checkpoint is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        rngs = state.get("torch_rng_ranks") or [state["torch_rng"]]  # one per process when saved by several
        if dp.rank() < len(rngs):
            torch.set_rng_state(rngs[dp.rank()])
        if rng is not None:
            rng.bit_generator.state = state["numpy_rng"]
        rows, best, best_state, start = state["rows"], state["best"], state["best_state"], state["epoch"]
        if dp.is_main():
            log(f"Resuming from {checkpoint} after epoch {start} of {epochs}")
    for epoch in range(start, epochs):
        model.train()
        t0, run = time.time(), 0.0
        for _ in range(steps_per_epoch):
            with dp.training_step():
                loss = step_loss()
            opt.zero_grad()
            loss.backward()
            dp.average_gradients(model.parameters())
            if clip_grad is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            opt.step()
            sched.step()
            run += loss.item()
        run = dp.mean_over_ranks(run)
        ev = dp.from_main(_on_cpu(model, validate) if dp.is_main() else None)
        rows.append({"epoch": epoch + 1, "loss": run / steps_per_epoch, **ev, "seconds": time.time() - t0})
        s = score(ev)
        if not best or s > best["score"]:
            best = {"score": s, "epoch": epoch + 1, **ev}
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if checkpoint is not None and epoch + 1 < epochs:
            rngs = dp.gather_objects(torch.get_rng_state())  # every process's, so each resumes its own
            if dp.is_main():
                _save_checkpoint(
                    checkpoint,
                    {
                        "fingerprint": fingerprint,
                        "epoch": epoch + 1,
                        "model": model.state_dict(),
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(),
                        "torch_rng": torch.get_rng_state(),
                        "numpy_rng": rng.bit_generator.state if rng is not None else None,
                        "rows": rows,
                        "best": best,
                        "best_state": best_state,
                        **({"torch_rng_ranks": rngs} if len(rngs) > 1 else {}),
                    },
                )
        if dp.is_main():
            if csv is not None:
                write_curves(rows, csv)
            log(json.dumps(rows[-1]))
    model.cpu()  # what follows (writing the weights) reads them on the CPU
    if best_state is not None:
        model.load_state_dict(best_state)
    return best


def _on_cpu(model: torch.nn.Module, validate: Callable[[], dict[str, float]]) -> dict[str, float]:
    """Validation runs on the CPU (the trainers' numpy-side code), the model moved there and back when it
    trains on a GPU."""
    dev = next(model.parameters()).device
    if dev.type == "cpu":
        return validate()
    model.cpu()
    try:
        return validate()
    finally:
        model.to(dev)


def checkpoint_path(out: Path) -> Path:
    """Where the checkpoint of a run writing `out` lives: beside it, `OUT.ckpt`."""
    return out.with_name(out.name + ".ckpt")


def finish(checkpoint: Path) -> None:
    """Delete a completed run's checkpoint (called once its weights are written)."""
    checkpoint.unlink(missing_ok=True)
