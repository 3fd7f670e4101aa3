"""`talkinghead train mouth`: the mouth-interior network, trained on the corpus' real open mouths.

Samples are the mouth-centred patches of training/mouth_patches.py; the network learns each real
interior from its inner-lip shape and the face's colours. Loss: L1 of the colour relative to the skin
inside the inner lips (the only pixels the renderer takes), plus L1 of its horizontal and vertical
differences so tooth edges are not averaged away. L1 alone draws the average interior (a flat, lip-
coloured fill: teeth and cavity are where they are only in some mouths), so a second stage (`init` = the
first stage's file, `adv_weight` > 0) adds a small conditional patch discriminator (pix2pix-style, hinge
loss) that judges the interior pasted into the real patch, pushing towards crisp teeth and a dark cavity.
Validation: the L1 terms on held-out clips. Each epoch's figures go to OUT.csv / OUT.png.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from talkinghead.models.mouth import SHAPE_CHANNELS, MouthConfig, MouthNet
from talkinghead.training.config_file import to_toml
from talkinghead.training.curves import write_curves
from talkinghead.training.mouth_patches import collect
from talkinghead.training.train_lips import split_paths
from talkinghead.weights import load_model, resolve, sha256


@dataclass(frozen=True)
class TrainMouthOptions:
    epochs: int = 6
    steps_per_epoch: int = 200
    batch: int = 32
    lr: float = 2e-3
    edge_weight: float = 1.0  # weight of the difference (edge) term
    per_clip: int = 40  # open-mouth frames taken per non-GRID clip
    per_grid_clip: int = 6  # ... per GRID clip (one speaker: fewer each)
    seed: int = 0
    init: str = ""  # start from these mouth weights (name or path; same sizes), "" = random
    adv_weight: float = 0.0  # weight of the adversarial term (0 = L1 only)
    teeth_boost: float = 0.0  # patches that show teeth (teeth_shown) are drawn 1 + this times as often
    config: MouthConfig = MouthConfig()


MIX_SCALE = 0.2  # scale of each candidate's Laplace density (colour / skin units, summed over RGB)


class PatchCritic(nn.Module):
    """Conditional patch discriminator: (interior pasted into the patch, shape maps) -> a map of scores."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        self.net = nn.Sequential(
            sn(nn.Conv2d(3 + 4, width, 4, 2, 1)),
            nn.LeakyReLU(0.2),
            sn(nn.Conv2d(width, 2 * width, 4, 2, 1)),
            nn.LeakyReLU(0.2),
            sn(nn.Conv2d(2 * width, 2 * width, 3, 1, 1)),
            nn.LeakyReLU(0.2),
            sn(nn.Conv2d(2 * width, 1, 3, 1, 1)),
        )

    def forward(self, image: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([torch.log(image.clamp_min(1e-3)), shape], 1))


def teeth_score(targets: np.ndarray, shapes: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """(N,) brightest tenth (P90 luma) of the upper third of each opening / the face's skin luma: above 1
    the patch shows teeth brighter than the skin, as tests/test_learned_mouth.py asks of the drawn ones.
    The upper third is taken per column (the top third of that column's inside pixels)."""
    inside = shapes[:, 0].astype(np.float32) > 0.5
    below = np.cumsum(inside, axis=1)  # inside pixels at or above each row, per column
    band = inside & (below <= np.ceil(inside.sum(1, keepdims=True) / 3))
    luma = targets.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    skin = _skin_luma(colours)
    out = np.zeros(len(targets), np.float32)
    for i in range(len(targets)):
        v = luma[i][band[i]]
        out[i] = np.percentile(v, 90) / skin[i] if v.size else 0.0
    return out


def cavity_score(targets: np.ndarray, shapes: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """(N,) darkest tenth (P10 luma) of each opening / the skin luma (the test's dark cavity: below 0.5)."""
    inside = shapes[:, 0].astype(np.float32) > 0.5
    luma = targets.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    skin = _skin_luma(colours)
    return np.array(
        [np.percentile(v[m], 10) / s if m.any() else 1.0 for v, m, s in zip(luma, inside, skin)], np.float32
    )


def teeth_shown(targets: np.ndarray, shapes: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """(N,) bool: the patch shows teeth brighter than the skin under the upper lip and a cavity darker than
    half of it (886 of the corpus' 21,359 open-mouth patches, from 146 clips)."""
    return (teeth_score(targets, shapes, colours) > 1.0) & (cavity_score(targets, shapes, colours) < 0.5)


def _skin_luma(colours: np.ndarray) -> np.ndarray:
    return np.maximum(colours[:, :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) * 255, 1.0)


def to_tensors(d: dict[str, np.ndarray], teeth_input: bool = False) -> dict[str, torch.Tensor]:
    """Network inputs, target ratio to the skin and loss weights of a set of patches; `teeth_input`: whether
    each patch shows teeth and a dark cavity (`teeth_shown`, 0 or 1) joins its colours."""
    shapes = torch.from_numpy(d["shapes"].astype(np.float32))
    colours = torch.from_numpy(d["colours"].astype(np.float32))
    if teeth_input:
        shown = teeth_shown(d["targets"], d["shapes"], d["colours"]).astype(np.float32)
        colours = torch.cat([colours, torch.from_numpy(shown)[:, None]], 1)
    skin = colours[:, :3, None, None] * 255.0 + 4.0  # (the teeth input, if any, comes after)
    target = (torch.from_numpy(d["targets"].astype(np.float32)).permute(0, 3, 1, 2) + 4.0) / skin
    # weight: the inside mask grown by 1 px (the renderer's soft edge reaches that far)
    soft = d["shapes"][:, 0].astype(np.float32)
    grown = np.stack([cv2.dilate(s, np.ones((3, 3), np.uint8)) for s in soft])
    return {"shapes": shapes, "colours": colours, "target": target, "weight": torch.from_numpy(grown)[:, None]}


def flip(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Mirror the patches left-right (the x coordinate channel changes sign)."""
    out = {k: v.flip(-1) if v.dim() == 4 else v for k, v in batch.items()}
    shapes = out["shapes"].clone()
    shapes[:, 2] = -shapes[:, 2]
    out["shapes"] = shapes
    return out


def loss_terms(net: MouthNet, b: dict[str, torch.Tensor], edge_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(total loss, mean |error| of the drawn ratio inside the lips). One colour per pixel: L1 plus L1 of the
    horizontal and vertical differences. Candidates (components > 1): the negative log-likelihood of the real
    colour under the mixture of Laplace densities (scale MIX_SCALE, times it so it reads like an L1), plus
    the same difference term on the drawn interior."""
    w, t = b["weight"], b["target"]
    norm = w.sum() * 3 + 1e-6
    if net.cfg.components > 1:
        logits, cols = net.mixture(b["shapes"], b["colours"])
        dist = (cols - t[:, None]).abs().sum(2)  # (B, K, H, W): L1 of each candidate over the channels
        nll = -torch.logsumexp(torch.log_softmax(logits, 1) - dist / MIX_SCALE, 1)
        fit = (nll * w[:, 0]).sum() / (w.sum() + 1e-6) * MIX_SCALE / 3
        pred = (torch.softmax(logits * net.cfg.sharpness, 1)[:, :, None] * cols).sum(1)
    else:
        pred = net(b["shapes"], b["colours"])
        fit = None
    l1 = ((pred - t).abs() * w).sum() / norm
    dx = ((pred.diff(dim=-1) - t.diff(dim=-1)).abs() * w[..., 1:]).sum() / norm
    dy = ((pred.diff(dim=-2) - t.diff(dim=-2)).abs() * w[..., 1:, :]).sum() / norm
    return (l1 if fit is None else fit) + edge_weight * (dx + dy), l1


def start_from(net: MouthNet, init: str) -> None:
    """Load `init`'s weights into `net`. A one-colour file can start a mixture: the shared layers are
    copied and every candidate starts as its colour, shifted darker or brighter (so they differ); a file
    without the teeth input can start one with it."""
    start = load_model("mouth", init).network(MouthNet)
    free = ("components", "sharpness", "teeth")
    same = {f: v for f, v in vars(start.cfg).items() if f not in free}
    if same != {f: v for f, v in vars(net.cfg).items() if f not in free}:
        raise ValueError(f"init weights {init} have other sizes than this run's config.")
    state = start.state_dict()
    first = state["enc1.0.weight"]
    if first.shape[1] < net.cfg.colour_channels + SHAPE_CHANNELS:  # a new teeth input: starts unused (zero)
        state["enc1.0.weight"] = torch.cat([first, torch.zeros_like(first[:, :1])], 1)
    if start.cfg.components == net.cfg.components:
        net.load_state_dict(state)
        return
    if start.cfg.components != 1:
        raise ValueError(
            f"init weights {init} have {start.cfg.components} candidates, this run's config another number."
        )
    net.load_state_dict({k: v for k, v in state.items() if not k.startswith("out.")}, strict=False)
    k = net.cfg.components
    weight, bias = net.out.weight, net.out.bias
    assert bias is not None
    with torch.no_grad():
        weight[:k] *= 0.1
        bias[:k] = 0.0
        weight[k:] = state["out.weight"].repeat(k, 1, 1, 1)
        shift = torch.linspace(-1.5, 1.0, k).repeat_interleave(3)
        bias[k:] = state["out.bias"].repeat(k) + shift


def train_mouth(
    cache: Path,
    videos: Path,
    out: Path,
    opts: TrainMouthOptions,
    command: str,
    patches: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    """Cut patches (or reuse the scratch file `patches`), train, write `out` (safetensors) with metadata."""
    from safetensors.torch import save_file

    torch.manual_seed(opts.seed)
    out.parent.mkdir(parents=True, exist_ok=True)  # each epoch's curves are written there
    train_paths, val_paths = split_paths(cache)
    if patches is not None and patches.is_file():
        data = dict(np.load(patches))
        log(f"reusing {len(data['targets'])} patches from {patches}")
    else:
        data = collect(train_paths + val_paths, videos, opts.config, opts.per_clip, opts.per_grid_clip, opts.seed, log)
        if patches is not None:
            np.savez(patches, **data)
    is_val = np.isin(data["clip"], np.arange(len(train_paths), len(train_paths) + len(val_paths)))
    teeth_input = opts.config.teeth > 0
    train = to_tensors({k: v[~is_val] for k, v in data.items()}, teeth_input)
    val = to_tensors({k: v[is_val] for k, v in data.items()}, teeth_input)
    n = len(train["target"])
    log(f"{n} training patches, {len(val['target'])} validation patches")
    teeth = teeth_shown(*(data[k][~is_val] for k in ("targets", "shapes", "colours")))
    p = 1.0 + opts.teeth_boost * teeth
    p = p / p.sum()
    log(f"teeth and a dark cavity shown in {float(np.mean(teeth)):.1%} of the training patches")
    net = MouthNet(opts.config)
    if opts.init:
        start_from(net, opts.init)
    critic = PatchCritic() if opts.adv_weight > 0 else None
    c_optim = torch.optim.Adam(critic.parameters(), lr=opts.lr, betas=(0.5, 0.999)) if critic is not None else None
    optim = torch.optim.AdamW(net.parameters(), lr=opts.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, opts.lr, total_steps=opts.epochs * opts.steps_per_epoch)
    rng = np.random.default_rng(opts.seed)
    rows: list[dict[str, float]] = []
    best: dict[str, float] = {}
    best_state: dict[str, torch.Tensor] = {}
    t0 = time.time()
    for epoch in range(1, opts.epochs + 1):
        net.train()
        losses = []
        for _ in range(opts.steps_per_epoch):
            idx = torch.from_numpy(
                rng.choice(n, opts.batch, p=p) if opts.teeth_boost else rng.integers(0, n, opts.batch)
            )
            b = {k: v[idx] for k, v in train.items()}
            if rng.random() < 0.5:
                b = flip(b)
            loss, _ = loss_terms(net, b, opts.edge_weight)
            if critic is not None and c_optim is not None:
                pred = net(b["shapes"], b["colours"])
                m = b["shapes"][:, :1]
                fake = b["target"] * (1 - m) + pred * m
                d_loss = (
                    torch.relu(1 - critic(b["target"], b["shapes"])).mean()
                    + torch.relu(1 + critic(fake.detach(), b["shapes"])).mean()
                )
                c_optim.zero_grad()
                d_loss.backward()
                c_optim.step()
                loss = loss - opts.adv_weight * critic(fake, b["shapes"]).mean()
            optim.zero_grad()
            loss.backward()
            optim.step()
            sched.step()
            losses.append(float(loss.detach()))
        net.eval()
        with torch.no_grad():
            parts = [
                loss_terms(net, {k: v[i : i + 256] for k, v in val.items()}, opts.edge_weight)
                for i in range(0, len(val["target"]), 256)
            ]
        row = {
            "epoch": float(epoch),
            "loss": float(np.mean(losses)),
            "val_loss": float(np.mean([float(p[0]) for p in parts])),
            "val_l1": float(np.mean([float(p[1]) for p in parts])),
            "seconds": time.time() - t0,
        }
        rows.append(row)
        write_curves(rows, out.with_suffix(".csv"))
        log(", ".join(f"{k} {v:.4g}" for k, v in row.items()))
        # L1 alone: the best validation epoch; with the critic, the last (L1 would pick the blurriest)
        if not best or row["val_loss"] < best["val_loss"] or critic is not None:
            best = {"epoch": row["epoch"], "val_loss": row["val_loss"], "val_l1": row["val_l1"]}
            best_state = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "config": json.dumps(opts.config.to_dict()),
        "command": command,
        "validation": json.dumps(best),
        "format": "talkinghead-mouth-1",  # a newer config (candidates, teeth input) is refused by its keys
        "train_config": to_toml(opts),
    }
    if opts.init:
        meta["init_sha256"] = sha256(resolve(opts.init))
    tmp = out.with_name(out.name + ".tmp")
    save_file({f"model.{k}": v for k, v in best_state.items()}, str(tmp), metadata=meta)
    tmp.replace(out)
    return best
