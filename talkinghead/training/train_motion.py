"""`talkinghead train motion`: fit the head-motion VAE and the blink hazard on prepared caches.

Data choice (measured with the same tracker, see RESULTS.md): the varied talking speakers (with
speech) and the motion clips (MEAD, LivePortrait, StyleTalk; no audio: their speech cues are zero and
the audio-present flag is 0, so they still teach the prior and the decoder how heads and eyelids move,
about 5 more minutes next to 4 minutes of talking speakers). GRID is left out: one studio speaker who
holds his head ~10x stiller than the others (std 0.3-0.8 deg) and blinks ~50 times a minute; its 45
minutes would drown the 9 minutes of everyone else. Faces are mirrored at random (yaw, roll and x
change sign) to double the pose data.

Validation on the held-out varied speakers: negative ELBO per frame of the pose VAE, the blink
hazard's cross-entropy, and, sampled from the prior on their speech, the ratio of generated to real
pose std per axis.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from talkinghead.models.motion import MotionConfig, MotionModel
from talkinghead.training.data_parallel import is_main, rank_mean, shard
from talkinghead.training.loop import fit
from talkinghead.training.motion_data import FPS, MotionClip, load_motion_clip


@dataclass(frozen=True)
class TrainMotionOptions:
    epochs: int = 12
    steps_per_epoch: int = 100
    batch: int = 32
    window: int = 100  # frames (4 s at 25 fps)
    lr: float = 3e-3
    # fraction of windows drawn from clips without speech; 0.15 measured a higher head-speed/speech
    # correlation on the validation speakers than 0.35 (0.089 vs 0.045, 6 seeds), similar std and jitter
    motion_share: float = 0.15
    recon_sigma: float = 0.3  # std of the Gaussian reconstruction term, in normalised pose units
    seed: int = 0
    config: MotionConfig = field(default_factory=MotionConfig)


def gaussian_kl(mu_q: torch.Tensor, lv_q: torch.Tensor, mu_p: torch.Tensor, lv_p: torch.Tensor) -> torch.Tensor:
    """KL(q || p) of diagonal Gaussians, summed over the last axis."""
    return 0.5 * (lv_p - lv_q + (torch.exp(lv_q) + (mu_q - mu_p) ** 2) / torch.exp(lv_p) - 1).sum(-1)


def since_last(onsets: np.ndarray, prior_gap_s: float = 2.0) -> np.ndarray:
    """Seconds since the last blink onset before each frame (the clip is assumed to start `prior_gap_s` after one)."""
    out = np.zeros(len(onsets), np.float32)
    last = -prior_gap_s * FPS
    for t in range(len(onsets)):
        out[t] = (t - last) / FPS
        if onsets[t]:
            last = t
    return out


class MotionTrainer:
    def __init__(self, train: list[MotionClip], val: list[MotionClip], opts: TrainMotionOptions) -> None:
        self.opts, self.train, self.val = opts, train, val
        torch.manual_seed(opts.seed)
        self.rng = np.random.default_rng(opts.seed)
        self.model = MotionModel(opts.config)
        allpose = np.concatenate([c.pose[c.valid] for c in train])
        self.model.pose_std.copy_(torch.from_numpy(allpose.std(0).astype(np.float32)))
        durs = np.concatenate([c.durations for c in train] + [np.zeros(0)])
        durs = durs if len(durs) else np.array([0.16])  # tiny caches without any blink
        self.model.blink_durations.copy_(
            torch.from_numpy(np.quantile(durs, np.linspace(0.02, 0.98, 32)).astype(np.float32))
        )
        lengths = np.array([len(c.pose) for c in train], np.float64)
        motion = np.array([c.group == "motion" for c in train])
        m_share = opts.motion_share if motion.any() and (~motion).any() else float(motion.all())
        share = np.where(
            motion, m_share / max(lengths[motion].sum(), 1), (1 - m_share) / max(lengths[~motion].sum(), 1)
        )
        self.p = share * lengths / (share * lengths).sum()
        self.since = [since_last(c.onsets) for c in train]
        self.step = 0

    def _batch(
        self, clips: list[MotionClip], since: list[np.ndarray], idx: list[int], starts: list[int], mirror: np.ndarray
    ) -> tuple[torch.Tensor, ...]:
        w = self.opts.window
        d_a = self.opts.config.n_audio
        pose = np.zeros((len(idx), w, 5), np.float32)
        audio = np.zeros((len(idx), w, d_a), np.float32)
        onset = np.zeros((len(idx), w), np.float32)
        sl = np.full((len(idx), w), 5.0, np.float32)
        mask = np.zeros((len(idx), w), np.float32)
        std = self.model.pose_std.cpu().numpy()  # the model may train on a GPU (data_parallel)
        for b, (i, s) in enumerate(zip(idx, starts)):
            c = clips[i]
            seg = slice(s, min(s + w, len(c.pose)))
            n = seg.stop - seg.start
            pose[b, :n] = c.pose[seg] / std
            audio[b, :n] = c.audio[seg]
            audio[b, n:] = c.audio[seg.stop - 1]
            onset[b, :n] = c.onsets[seg]
            sl[b, :n] = since[i][seg]
            mask[b, :n] = c.valid[seg]
        pose[mirror] *= np.array([-1, 1, -1, -1, 1], np.float32)
        return tuple(torch.from_numpy(a) for a in (pose, audio, onset, sl, mask))

    def sample_batch(self) -> tuple[torch.Tensor, ...]:
        o = self.opts
        idx = [int(i) for i in self.rng.choice(len(self.train), size=o.batch, p=self.p)]
        starts = [int(self.rng.integers(0, max(len(self.train[i].pose) - o.window, 0) + 1)) for i in idx]
        return self._batch(self.train, self.since, idx, starts, self.rng.random(o.batch) < 0.5)

    def losses(
        self, pose: torch.Tensor, audio: torch.Tensor, onset: torch.Tensor, since: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        vae = self.model.pose
        c = self.opts.config.chunk
        mu_q, lv_q = vae.posterior(pose, audio)
        z = mu_q + torch.exp(0.5 * lv_q) * torch.randn_like(mu_q) if self.model.training else mu_q
        ac = vae.chunk_audio(audio)
        z_prev = torch.cat([torch.zeros_like(z[:, :1]), z[:, :-1]], 1)
        mu_p, lv_p, _ = vae.prior_params(z_prev, ac)
        rec = vae.decode(z, audio)
        k = z.shape[1]
        m = mask[:, : k * c]
        x = pose[:, : k * c]
        sq = ((rec - x) ** 2).sum(-1)
        # the counts are over the whole batch when the processes share it (rank_mean)
        recon = (m * sq).sum() / (rank_mean(m.sum()) + 1e-6) / (2 * self.opts.recon_sigma**2)
        vm = m[:, 1:] * m[:, :-1]
        dv = (((rec[:, 1:] - rec[:, :-1]) - (x[:, 1:] - x[:, :-1])) ** 2).sum(-1)
        vel = (vm * dv).sum() / (rank_mean(vm.sum()) + 1e-6) / (2 * (self.opts.recon_sigma / 4) ** 2)
        cm = m.reshape(m.shape[0], k, c).amin(-1)
        kl = (cm * gaussian_kl(mu_q, lv_q, mu_p, lv_p)).sum() / (rank_mean(cm.sum()) * c + 1e-6)  # per frame
        logit = self.model.blink(audio, since)
        bce = F.binary_cross_entropy_with_logits(logit, onset, reduction="none")
        bce = (mask * bce).sum() / (rank_mean(mask.sum()) + 1e-6)
        return {"recon": recon, "vel": vel, "kl": kl, "blink": bce}

    def step_loss(self) -> torch.Tensor:
        total = self.opts.epochs * self.opts.steps_per_epoch
        beta = min(1.0, 0.1 + self.step / (0.3 * total))  # KL warm-up
        self.step += 1
        parts = self.losses(*shard(self.sample_batch()))
        return parts["recon"] + parts["vel"] + beta * parts["kl"] + 20.0 * parts["blink"]

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        self.model.eval()
        val = [c for c in self.val if c.group == "varied"] or self.val
        since = [since_last(c.onsets) for c in val]
        sums = {"recon": 0.0, "vel": 0.0, "kl": 0.0, "blink": 0.0}
        n = 0
        ratios = []
        gen = torch.Generator().manual_seed(1234)
        std = self.model.pose_std.numpy()
        for i, c in enumerate(val):
            for s in range(0, max(len(c.pose) - self.opts.window, 0) + 1, self.opts.window):
                parts = self.losses(*self._batch(val, since, [i], [s], np.zeros(1, bool)))
                for key in sums:
                    sums[key] += float(parts[key])
                n += 1
            a = torch.from_numpy(c.audio)[None]
            g = self.model.pose.sample(a, gen)[0].numpy() * std
            ratios.append(g[:, :3].std(0) / (c.pose[: len(g), :3].std(0) + 1e-6))
        self.model.train()
        out = {f"val_{k}": v / max(n, 1) for k, v in sums.items()}
        r = np.mean(ratios, 0)
        out.update({"std_ratio_yaw": float(r[0]), "std_ratio_pitch": float(r[1]), "std_ratio_roll": float(r[2])})
        return out

    def fit(self, log: Callable[[str], None] = print, csv: Path | None = None) -> dict[str, float]:
        o = self.opts
        return fit(
            self.model,
            self.step_loss,
            self.evaluate,
            lambda ev: -(ev["val_recon"] + ev["val_vel"] + ev["val_kl"] + 20.0 * ev["val_blink"]),
            o.epochs,
            o.steps_per_epoch,
            o.lr,
            log,
            csv,
            clip_grad=1.0,
        )

    def natural_blink_rate(self, clips: list[MotionClip]) -> float:
        """Blinks a minute the trained hazard produces (unscaled) on these clips' speech, several draws."""
        from talkinghead.motion.learned import LearnedMotion

        lm = LearnedMotion.__new__(LearnedMotion)
        lm.model, lm.config = self.model, self.opts.config
        count, minutes = 0, 0.0
        for seed in range(3):
            gen = torch.Generator().manual_seed(seed)
            for c in clips:
                count += len(lm._blink_onsets(torch.from_numpy(c.audio)[None], gen, None))
                minutes += len(c.audio) / FPS / 60
        return count / max(minutes, 1e-6)


def split(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """Validation = the val__ clips of `prepare`'s train/val layout; else every 10th clip."""
    val = [p for p in paths if p.name.startswith("val__")] or paths[::10]
    return [p for p in paths if p not in set(val)], val


def train_motion(
    caches: list[Path], out: Path, opts: TrainMotionOptions, command: str, log: Callable[[str], None] = print
) -> dict[str, float]:
    """Train from prepared caches (talking clips with speech, motion clips without) and write `out`.

    Runs on one torch thread (small GRUs: extra threads only contend; measured 0.35 s vs > 2 s a step on 2
    busy cores); the caller's thread count is restored afterwards."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_motion(caches, out, opts, command, log)
    finally:
        torch.set_num_threads(saved)


def _train_motion(
    caches: list[Path], out: Path, opts: TrainMotionOptions, command: str, log: Callable[[str], None]
) -> dict[str, float]:
    from safetensors.torch import save_file

    from talkinghead.weights import load_weights

    reference = load_weights("lips").tensors["reference"].numpy()
    paths = sorted(p for cache in caches for p in cache.glob("*.npz") if "grid" not in p.name)  # see module doc
    train_p, val_p = split(paths)
    clips = {p: load_motion_clip(p, reference) for p in paths}
    train = [c for p in train_p if (c := clips[p]) is not None and c.group != "grid"]
    val = [c for p in val_p if (c := clips[p]) is not None and c.group != "grid"]
    if not train or not val:
        raise ValueError("need training clips and validation clips (val__*) outside GRID")
    log(
        f"{len(train)} training clips ({sum(c.group == 'varied' for c in train)} with speech, "
        f"{len(train) - sum(c.group == 'varied' for c in train)} motion-only), {len(val)} validation clips"
    )
    trainer = MotionTrainer(train, val, opts)
    out.parent.mkdir(parents=True, exist_ok=True)
    best = trainer.fit(log=log, csv=out.with_suffix(".csv"))
    if not is_main():  # under torchrun, rank 0 writes the file
        return best
    talking = [c for c in train if c.group == "varied"]  # calibration on training speakers only
    rate = trainer.natural_blink_rate(talking)
    log(f"natural blink rate on the training speakers' speech: {rate:.1f} a minute")
    meta = {
        "config": json.dumps(opts.config.to_dict()),
        "command": command,
        "validation": json.dumps(best),
        "format": "talkinghead-motion-1",
        "blinks_per_min": f"{rate:.3f}",
    }
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in trainer.model.state_dict().items()}
    save_file(tensors, str(out), metadata=meta)
    return best
