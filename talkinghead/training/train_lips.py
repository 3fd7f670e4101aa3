"""`talkinghead train lips`: fit the audio -> mouth-motion model on a prepared cache.

Validation reports what the product promises: per-clip Pearson r between the predicted and the real
inner-lip gap, separately for the studio speaker (GRID) and the varied speakers, next to the
loudness baseline every learned model must clearly beat; and what the lip-sync expert says about the
predicted motion against the real motion of the same clip (offset within +-1 frame, confidence).

The frozen lip-sync expert is also an extra loss (`sync_weight`): every 5-frame window of predicted
motion must pick its own 0.2 s of audio among the crop's other frames' audio (InfoNCE with the
expert's own temperature). Regression alone under-articulates, which the expert scores as weak sync.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from talkinghead.audio.features import frame_positions, loudness, mel_slice, normalize
from talkinghead.face.indices import LIP_BOTTOM, LIP_TOP, MOUTH_JAW
from talkinghead.metrics.sync import SyncExpert, similarity_map, sync_from_map
from talkinghead.models.lips import EMBED_SCALES, LipsConfig, LipsNet, model_input
from talkinghead.models.sync import SyncNet
from talkinghead.training.augment import augment
from talkinghead.training.config_file import to_toml
from talkinghead.training.data_parallel import is_main, rank_mean, shard
from talkinghead.training.loop import checkpoint_path, finish, fit
from talkinghead.training.mouth_data import Clip, fit_pca, load_clip, opening_direction, reference_shape

_I13, _I14 = MOUTH_JAW.index(LIP_TOP), MOUTH_JAW.index(LIP_BOTTOM)


@dataclass(frozen=True)
class TrainLipsOptions:
    epochs: int = 15
    steps_per_epoch: int = 200
    batch: int = 32
    crop: int = 32
    lr: float = 2e-3
    varied_share: float = 0.5  # fraction of samples drawn from non-GRID clips
    seed: int = 0
    amplitude: float = 1.3  # gain applied at inference, stored in the file (regression under-predicts motion)
    sync_weight: float = 0.2  # weight of the lip-sync expert's loss (0 = regression only)
    sync_expert: str = "sync"  # registered name or path of the frozen expert used by that loss and validation
    init: str = ""  # start from these lips weights (registered name or path; same sizes and cache), "" = random
    spread: bool = False  # store the real speakers' lip-gap spread: inference scales each clip's motion to it
    config: LipsConfig = LipsConfig()


def split_paths(cache: Path) -> tuple[list[Path], list[Path]]:
    """train/val by the prepared file's top folder name; else a fixed 10 % hold-out."""
    paths = sorted(cache.glob("*.npz"))
    train = [p for p in paths if p.name.startswith("train__")]
    val = [p for p in paths if p.name.startswith("val__")]
    if not train or not val:
        val = paths[::10]
        train = [p for p in paths if p not in set(val)]
    return train, val


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 1e-12 else 0.0


class Trainer:
    def __init__(self, train: list[Clip], val: list[Clip], reference: np.ndarray, opts: TrainLipsOptions) -> None:
        self.opts = opts
        self.train, self.val, self.reference = train, val, reference
        cfg = opts.config
        varied = np.array([c.varied for c in train])
        share = np.where(
            varied, opts.varied_share / max(varied.sum(), 1), (1 - opts.varied_share) / max((~varied).sum(), 1)
        )
        self.sample_p = share / share.sum()
        self.comps, self.std = fit_pca(train, cfg.n_coeffs, weights=self.sample_p * len(train))
        self.open_dir = opening_direction(train)
        torch.manual_seed(opts.seed)
        self.rng = np.random.default_rng(opts.seed)
        self.model = LipsNet(cfg)
        if opts.init:
            self._load_init(opts.init)
        self.basis = torch.from_numpy(self.comps)  # (K, M*2)
        self.std_t = torch.from_numpy(self.std)
        self.expert = SyncExpert(opts.sync_expert).net
        self.expert.requires_grad_(False)
        self._expert_gpu: SyncNet | None = None
        if opts.sync_weight > 0 and not cfg.use_mel:
            raise ValueError("The sync loss needs log-mel input; use sync_weight = 0 with embedding-only features.")
        self._real_sync: dict[str, tuple[int, float]] = {}

    def _load_init(self, name: str) -> None:
        """Fine-tuning: the start weights must share this run's sizes and PCA basis (i.e. the same cache)."""
        from talkinghead.weights import load_model

        loaded = load_model("lips", name)
        w = loaded.weights
        mine = json.loads(json.dumps(self.opts.config.to_dict()))
        if {**mine, **json.loads(w.metadata["config"])} != mine:  # older files omit keys added later at defaults
            raise ValueError(f"init weights {name} have other model sizes than this run's config.")
        comps = w.tensors["pca_components"].numpy()
        if comps.shape != self.comps.shape or not np.allclose(np.abs(comps), np.abs(self.comps), atol=1e-4):
            raise ValueError(f"init weights {name} were trained on another cache (their mouth-motion basis differs).")
        self.comps, self.std = comps, w.tensors["pca_std"].numpy()  # its exact basis, so its head still fits
        self.model.load_state_dict(loaded.network(type(self.model)).state_dict())

    def _sample(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        cfg, o = self.opts.config, self.opts
        margin = max(cfg.radius + cfg.delay + 1, self.expert.cfg.mel_window // 2 + 1)
        mels, pos, ys, ms = [], [], [], []
        for _ in range(o.batch):
            c = self.train[self.rng.choice(len(self.train), p=self.sample_p)]
            mel = normalize(augment(c.mel, self.rng))
            n = len(c.valid)
            start = int(self.rng.integers(0, max(n - o.crop, 0) + 1))
            p = frame_positions(o.crop, c.fps, first=start)
            lo = int(p[0]) - margin
            seg = mel_slice(mel, lo, int(p[-1]) + margin + 1)
            if cfg.n_embed:
                keep = self.rng.random() > 0.15 or not cfg.use_mel  # sometimes hide it, so the mel path keeps learning
                emb = mel_slice(c.emb * EMBED_SCALES[cfg.embedding], lo, int(p[-1]) + margin + 1, fill=0.0) * keep  # type: ignore[arg-type,operator]
                seg = np.concatenate([seg, emb], axis=1) if cfg.use_mel else emb
            mels.append(seg)
            pos.append(p - lo)
            idx = np.arange(start, start + o.crop).clip(0, n - 1)
            ys.append(c.offsets[idx].reshape(o.crop, -1))
            ms.append(c.valid[idx] & (np.arange(start, start + o.crop) < n))
        length = max(len(m) for m in mels)
        mel_b = np.stack([np.concatenate([m, np.repeat(m[-1:], length - len(m), 0)]) for m in mels])
        return (
            torch.from_numpy(mel_b),
            torch.from_numpy(np.stack(pos)),
            torch.from_numpy(np.stack(ys)),
            torch.from_numpy(np.stack(ms).astype(np.float32)),
        )

    def loss(self, mel: torch.Tensor, pos: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        coef = self.model(mel, pos)  # normalised coefficients
        std, basis = self.std_t.to(mel.device), self.basis.to(mel.device)  # the batch's device (a GPU: data_parallel)
        pred = (coef * std) @ basis  # (B, T, M*2) offsets
        target_coef = (y @ basis.T) / std
        w = m[..., None]
        n_valid = rank_mean(w.sum())  # over the whole batch when the processes share it
        l_pos = (w * (pred - y).abs()).sum() / (n_valid * y.shape[-1] + 1e-6)
        l_coef = (w * (coef - target_coef).abs()).sum() / (n_valid * coef.shape[-1] + 1e-6)
        vm = (m[:, 1:] * m[:, :-1])[..., None]
        dv = (pred[:, 1:] - pred[:, :-1]) - (y[:, 1:] - y[:, :-1])
        l_vel = (vm * dv.abs()).sum() / (rank_mean(vm.sum()) * y.shape[-1] + 1e-6)
        loss = 20 * l_pos + 0.5 * l_coef + 20 * l_vel
        if self.opts.sync_weight > 0:
            loss = loss + self.opts.sync_weight * self.sync_loss(pred, mel[..., : self.opts.config.n_mels], pos, m)
        return loss

    def sync_loss(self, pred: torch.Tensor, mel: torch.Tensor, pos: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """InfoNCE of the frozen expert: each window of predicted motion against every frame's audio in
        its crop, the true frame being the positive. Differentiable w.r.t. `pred` (B, T, M*2)."""
        net, b, t, dev = self._expert_on(pred.device), pred.shape[0], pred.shape[1], pred.device
        vw, aw = net.cfg.video_window, net.cfg.mel_window
        with torch.no_grad():
            idx = (pos[:, :, None] + torch.arange(-(aw // 2), aw - aw // 2, device=dev)).clamp(0, mel.shape[1] - 1)
            windows = mel[torch.arange(b, device=dev)[:, None, None], idx]  # (B, T, aw, n_mels)
            a = net.embed_audio(windows.reshape(b * t, aw, -1)).reshape(b, t, -1)
        mouth = (pred * self.opts.amplitude).unfold(1, vw, 1).transpose(2, 3)  # (B, T-vw+1, vw, M*2)
        v = net.embed_mouth(mouth.reshape(-1, vw, pred.shape[-1])).reshape(b, mouth.shape[1], -1)
        logits = net.log_scale.exp() * torch.einsum("bwd,btd->bwt", v, a)
        target = torch.arange(mouth.shape[1], device=dev) + vw // 2
        ce = F.cross_entropy(logits.reshape(-1, t), target.repeat(b), reduction="none").reshape(b, -1)
        ok = m.unfold(1, vw, 1).prod(-1)  # every frame of the window has a face
        return (ce * ok).sum() / (rank_mean(ok.sum()) + 1e-6)

    def _expert_on(self, device: torch.device) -> SyncNet:
        """The frozen expert on `device`: a copy there when training on a GPU (validation uses the CPU one)."""
        if device.type == "cpu":
            return self.expert
        if self._expert_gpu is None or next(self._expert_gpu.parameters()).device != device:
            self._expert_gpu = copy.deepcopy(self.expert).to(device)
        return self._expert_gpu

    @torch.no_grad()
    def predict(self, clip: Clip, n_frames: int, fps: float) -> np.ndarray:
        self.model.eval()
        pos = torch.from_numpy(frame_positions(n_frames, fps))[None]
        cfg = self.opts.config
        emb = clip.emb if cfg.n_embed else None
        feats = model_input(normalize(clip.mel), emb, cfg.use_mel, EMBED_SCALES[cfg.embedding])
        coef = self.model(torch.from_numpy(feats)[None], pos)[0]
        return ((coef * self.std_t) @ self.basis).numpy().reshape(n_frames, len(MOUTH_JAW), 2)

    def evaluate(self) -> dict[str, float]:
        rs: dict[str, list[float]] = {
            "grid": [],
            "varied": [],
            "grid_loud": [],
            "varied_loud": [],
            "sync_within1": [],
            "sync_conf_ge_real": [],
            "sync_conf": [],
            "sync_conf_real": [],
        }
        for c in self.val:
            n = len(c.valid)
            pred = self.predict(c, n, c.fps)
            gap = pred[:, _I14, 1] - pred[:, _I13, 1]
            v = c.valid
            key = "varied" if c.varied else "grid"
            rs[key].append(pearson(gap[v], c.opening[v]))
            rs[key + "_loud"].append(pearson(loudness(c.samples, n, c.fps)[v], c.opening[v]))
            mel = normalize(c.mel)
            if c.name not in self._real_sync:
                real = sync_from_map(similarity_map(self.expert, mel, c.offsets, c.fps), v)
                self._real_sync[c.name] = (real.offset_frames, real.confidence)
            real_offset, real_conf = self._real_sync[c.name]
            gen = sync_from_map(similarity_map(self.expert, mel, pred * self.opts.amplitude, c.fps), v)
            rs["sync_within1"].append(float(abs(gen.offset_frames - real_offset) <= 1))
            rs["sync_conf_ge_real"].append(float(gen.confidence >= real_conf))
            rs["sync_conf"].append(gen.confidence)
            rs["sync_conf_real"].append(real_conf)
        return {k: float(np.mean(v)) if v else float("nan") for k, v in rs.items()}

    def fit(
        self,
        log: Callable[[str], None] = print,
        csv: Path | None = None,
        checkpoint: Path | None = None,
        fingerprint: str = "",
    ) -> dict[str, float]:
        o = self.opts
        return fit(
            self.model,
            lambda: self.loss(*shard(self._sample())),
            self.evaluate,
            lambda ev: 0.5 * (ev["grid"] + ev["varied"]) if not np.isnan(ev["varied"]) else ev["grid"],
            o.epochs,
            o.steps_per_epoch,
            o.lr,
            log,
            csv,
            clip_grad=1.0,
            checkpoint=checkpoint,
            rng=self.rng,
            fingerprint=fingerprint,
        )

    def tensors(self) -> dict[str, torch.Tensor]:
        """Everything inference needs, to be saved in one safetensors file."""
        out = {f"model.{k}": v.detach().contiguous() for k, v in self.model.state_dict().items()}
        out["reference"] = torch.from_numpy(self.reference.astype(np.float32))
        out["pca_components"] = self.basis.contiguous()
        out["pca_std"] = self.std_t.contiguous()
        out["open_direction"] = torch.from_numpy(self.open_dir)
        out["mouth_indices"] = torch.tensor(MOUTH_JAW, dtype=torch.int64)
        return out


def real_spread(clips: list[Clip]) -> float:
    """Median over the varied (non-GRID) clips of the std of the real lip gap while speaking (canonical units):
    the articulation amplitude inference gives each clip (MouthModel, `spread` metadata)."""
    from talkinghead.motion.mouth import speech_gate

    stds = []
    for c in clips:
        ok = c.valid & (speech_gate(c.samples, len(c.valid), c.fps) > 0.5)
        if c.varied and ok.sum() >= 10:
            stds.append(float((c.offsets[ok, _I14, 1] - c.offsets[ok, _I13, 1]).std()))
    return float(np.median(stds)) if stds else 0.0


def load_clips(paths: list[Path], reference: np.ndarray, embedding: bool | str = False) -> list[Clip]:
    return [c for c in (load_clip(p, reference, embedding) for p in paths) if c is not None]


def train_lips(
    cache: Path, out: Path, opts: TrainLipsOptions, command: str, log: Callable[[str], None] = print
) -> dict[str, float]:
    """Train from a prepared cache and write `out` (safetensors) with its metadata."""
    from safetensors.torch import save_file

    train_paths, val_paths = split_paths(cache)
    reference = reference_shape(train_paths)
    emb = opts.config.embedding if opts.config.n_embed > 0 else False
    train, val = load_clips(train_paths, reference, emb), load_clips(val_paths, reference, emb)
    log(f"{len(train)} training clips ({sum(c.varied for c in train)} varied), {len(val)} validation clips")
    trainer = Trainer(train, val, reference, opts)
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
    meta = {
        "config": json.dumps(opts.config.to_dict()),
        "command": command,
        "validation": json.dumps(best),
        "format": "talkinghead-lips-1",
        "amplitude": str(opts.amplitude),
        "train_config": to_toml(opts),
    }
    if opts.spread:
        meta["spread"] = f"{real_spread(train):.6f}"
    if opts.init:
        from talkinghead.weights import resolve

        meta["init_sha256"] = sha256(resolve(opts.init))
    save_file(trainer.tensors(), str(out), metadata=meta)
    finish(ckpt)
    return best


def sha256(path: Path) -> str:
    from talkinghead.weights import sha256 as file_sha

    return file_sha(path)


def run_fingerprint(opts: object, paths: list[Path]) -> str:
    """What makes two runs the same run: every option and the prepared files (names and sizes)."""
    files = "\n".join(f"{p.name}:{p.stat().st_size}" for p in paths)
    return hashlib.sha256((to_toml(opts) + files).encode()).hexdigest()
