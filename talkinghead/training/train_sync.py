"""`talkinghead train sync`: the lip-sync expert, trained contrastively on prepared clips.

Each step pairs 5 frames of real mouth motion with the same clip's audio at the true time and at every
shift up to +-15 frames (plus the other batch items' audio), and asks the expert to pick the true one
(InfoNCE). Validation reports what the metric is for: on 2 s windows of the validation clips, how often
the offset found by searching -15..+15 is within +-1 frame of the truth (0).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from talkinghead.audio.features import normalize
from talkinghead.metrics.sync import MAX_SHIFT, audio_windows, mouth_windows, similarity_map, sync_from_map
from talkinghead.models.sync import SyncConfig, SyncNet
from talkinghead.training.augment import augment
from talkinghead.training.config_file import to_toml
from talkinghead.training.data_parallel import gather_rows, is_main, shard
from talkinghead.training.loop import checkpoint_path, finish, fit
from talkinghead.training.mouth_data import Clip, reference_shape
from talkinghead.training.train_lips import load_clips, run_fingerprint, split_paths


@dataclass(frozen=True)
class TrainSyncOptions:
    epochs: int = 8
    steps_per_epoch: int = 150
    batch: int = 48
    lr: float = 2e-3
    varied_share: float = 0.5
    seed: int = 0
    # weight of the frozen-mouth term: a mouth that does not move (a still photo, a frozen video) must not
    # prefer any audio shift, so `eval` gives it no sync confidence
    static_weight: float = 0.0
    config: SyncConfig = SyncConfig()


def offset_accuracy(net: SyncNet, clips: list[Clip], window: int = 50, hop: int = 25) -> dict[str, float]:
    """Share of 2 s windows whose best offset is within +-1 frame of 0, per group; mean confidence."""
    hits: dict[str, list[float]] = {"grid": [], "varied": []}
    conf: list[float] = []
    for c in clips:
        sims = similarity_map(net, normalize(c.mel), c.offsets, c.fps)
        n = sims.shape[1]
        for a in range(0, max(n - window, 0) + 1, hop):
            v = c.valid[a : a + window]
            if v.mean() < 0.8:
                continue
            r = sync_from_map(sims[:, a : a + window], v)
            hits["varied" if c.varied else "grid"].append(float(abs(r.offset_frames) <= 1))
            conf.append(r.confidence)
    return {
        "acc_grid": float(np.mean(hits["grid"])) if hits["grid"] else float("nan"),
        "acc_varied": float(np.mean(hits["varied"])) if hits["varied"] else float("nan"),
        "windows": float(len(hits["grid"]) + len(hits["varied"])),
        "confidence": float(np.mean(conf)),
    }


class SyncTrainer:
    def __init__(self, train: list[Clip], val: list[Clip], opts: TrainSyncOptions) -> None:
        self.train, self.val, self.opts = train, val, opts
        varied = np.array([c.varied for c in train])
        share = np.where(
            varied, opts.varied_share / max(varied.sum(), 1), (1 - opts.varied_share) / max((~varied).sum(), 1)
        )
        self.p = share / share.sum()
        self.rng = np.random.default_rng(opts.seed)
        torch.manual_seed(opts.seed)
        self.net = SyncNet(opts.config)

    def _sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, s = self.opts.config, MAX_SHIFT
        mouths, audios = [], []  # type: ignore[var-annotated]
        while len(mouths) < self.opts.batch:
            c = self.train[self.rng.choice(len(self.train), p=self.p)]
            n = len(c.valid)
            if n < 2 * cfg.video_window:
                continue
            t = int(self.rng.integers(2, n - 2))
            if not c.valid[max(t - 2, 0) : t + 3].all():
                continue
            mel = normalize(augment(c.mel, self.rng))
            m = mouth_windows(c.offsets, np.array([t]), cfg.video_window)[0]
            mouths.append(m + self.rng.normal(0, 0.003, m.shape).astype(np.float32))
            audios.append(audio_windows(mel, t + np.arange(-s, s + 1), c.fps, cfg.mel_window))
        return torch.from_numpy(np.stack(mouths)).float(), torch.from_numpy(np.stack(audios)).float()

    def loss(self, mouth: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        b, k = audio.shape[:2]
        v = self.net.embed_mouth(mouth)  # (B, D)
        a = self.net.embed_audio(audio.reshape(b * k, *audio.shape[2:])).reshape(b, k, -1)
        scale = self.net.log_scale.exp()
        shifts = scale * torch.einsum("bd,bkd->bk", v, a)  # own clip at every shift
        aligned, first = gather_rows(a[:, MAX_SHIFT])  # (B, D): every item's true audio, all processes'
        others = scale * v @ aligned.T  # (b, B); each row's own item is the positive again
        dev = audio.device  # the batch's (a GPU: data_parallel)
        own = torch.arange(aligned.shape[0], device=dev)[None] == (first + torch.arange(b, device=dev))[:, None]
        others = others.masked_fill(own, float("-inf"))
        logits = torch.cat([shifts, others], dim=1)
        loss = F.cross_entropy(logits, torch.full((b,), MAX_SHIFT, dtype=torch.long, device=dev))
        if self.opts.static_weight > 0:
            # the centre frame held for the whole window: its similarities over the shifts should be flat
            still = mouth[:, mouth.shape[1] // 2 : mouth.shape[1] // 2 + 1].expand_as(mouth)
            flat = scale * torch.einsum("bd,bkd->bk", self.net.embed_mouth(still), a)
            uniform = torch.full_like(flat, 1.0 / k)
            loss = loss + self.opts.static_weight * (F.cross_entropy(flat, uniform) - float(np.log(k)))
        return loss

    def fit(
        self,
        log: Callable[[str], None] = print,
        csv: Path | None = None,
        checkpoint: Path | None = None,
        fingerprint: str = "",
    ) -> dict[str, float]:
        o = self.opts
        return fit(
            self.net,
            lambda: self.loss(*shard(self._sample())),
            lambda: offset_accuracy(self.net, self.val),
            lambda ev: float(np.nanmean([ev["acc_grid"], ev["acc_varied"]])),
            o.epochs,
            o.steps_per_epoch,
            o.lr,
            log,
            csv,
            checkpoint=checkpoint,
            rng=self.rng,
            fingerprint=fingerprint,
        )


def train_sync(
    cache: Path, out: Path, opts: TrainSyncOptions, command: str, log: Callable[[str], None] = print
) -> dict[str, float]:
    """Train the expert from a prepared cache and write `out` (safetensors) with its metadata."""
    from safetensors.torch import save_file

    train_paths, val_paths = split_paths(cache)
    reference = reference_shape(train_paths)
    train, val = load_clips(train_paths, reference), load_clips(val_paths, reference)
    log(f"{len(train)} training clips, {len(val)} validation clips")
    trainer = SyncTrainer(train, val, opts)
    ckpt = checkpoint_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    best = trainer.fit(
        log=log,
        csv=out.with_suffix(".csv"),
        checkpoint=ckpt,
        fingerprint=run_fingerprint(opts, train_paths + val_paths),
    )
    if not is_main():  # under torchrun, rank 0 writes the file
        return best
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in trainer.net.state_dict().items()}
    tensors["reference"] = torch.from_numpy(reference.astype(np.float32))
    meta = {
        "config": json.dumps(opts.config.to_dict()),
        "command": command,
        "validation": json.dumps(best),
        "format": "talkinghead-sync-1",
        "train_config": to_toml(opts),
    }
    save_file(tensors, str(out), metadata=meta)
    finish(ckpt)
    return best
