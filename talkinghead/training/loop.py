"""The epoch loop both trainers share: AdamW + one-cycle schedule, validation after every epoch,
curves written as it goes, and the best epoch's weights kept (small data overfits late)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

from talkinghead.training.curves import write_curves


def fit(model: torch.nn.Module, step_loss: Callable[[], torch.Tensor], validate: Callable[[], dict[str, float]],
        score: Callable[[dict[str, float]], float], epochs: int, steps_per_epoch: int, lr: float,
        log: Callable[[str], None] = print, csv: Path | None = None, clip_grad: float | None = None) -> dict[str, float]:
    """Train `model` in place; returns the best epoch's validation figures (its weights are loaded)."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.15)
    rows: list[dict[str, float]] = []
    best: dict[str, float] = {}
    best_state = None
    for epoch in range(epochs):
        model.train()
        t0, run = time.time(), 0.0
        for _ in range(steps_per_epoch):
            loss = step_loss()
            opt.zero_grad()
            loss.backward()
            if clip_grad is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            opt.step()
            sched.step()
            run += loss.item()
        ev = validate()
        rows.append({"epoch": epoch + 1, "loss": run / steps_per_epoch, **ev, "seconds": time.time() - t0})
        log(json.dumps(rows[-1]))
        s = score(ev)
        if not best or s > best["score"]:
            best = {"score": s, "epoch": epoch + 1, **ev}
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if csv is not None:
            write_curves(rows, csv)
    if best_state is not None:
        model.load_state_dict(best_state)
    return best
