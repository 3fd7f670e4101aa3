"""Articulation style: a few steps of adapting the lips model to the clip's own audio -> mouth pairs.

Few-shot adaptation, bounded so that a few seconds of clip cannot ruin the model:
- only the network's output layer moves (`head`: n_coeffs x width weights + bias), and only by a scale
  and a shift per output coefficient (16 numbers for the shipped model's 8 coefficients; of its ~350k):
  the acoustic features and their timing stay the shared model's, the person's clip only says how much
  of each mouth-motion component (opening, width, rounding...) they show;
- the loss is the clip's real mouth motion (canonical offsets from its own closed mouth, as the model
  was trained on: face/mouth_motion.py) against the prediction as inference makes it (gain and silence
  gate included), plus an L2 pull to the shared layer; the change is also capped (a share of the
  layer's norm); the pull is stronger and the cap lower the less footage there is;
- the last HOLDOUT of the clip's frames is held out: the steps stop when the held-out error has not
  improved for PATIENCE steps, the step with the best held-out error (among those whose held-out lip-gap
  r is no lower than the shared model's, within R_TOL) is kept, and the shared layer is kept unless that error beats
  the shared model's by MIN_GAIN (a silent clip, a face that does not
  speak, or a clip too short for a held-out tail keeps the shared model).
The result fits only the lips network it was fitted from (`fingerprint`); `for_avatar` checks that.
Plain torch, no training package: inference never imports talkinghead.training.
"""

from __future__ import annotations

import copy
import hashlib
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from talkinghead.audio.features import frame_positions
from talkinghead.avatar.file import LipsAdapter
from talkinghead.face.indices import LIP_BOTTOM, LIP_TOP

if TYPE_CHECKING:
    from talkinghead.avatar.file import Avatar
    from talkinghead.motion.mouth import MouthModel

HOLDOUT = 0.25  # share of the clip's frames (its tail) held out to stop the steps and accept the result
STEPS, PATIENCE = 300, 30  # at most STEPS full-batch Adam steps; stop after PATIENCE without held-out progress
LR = 1e-2
PULL = 2.0  # weight of the squared relative change of the layer (the error term is relative too) ...
MAX_CHANGE = 0.3  # ... and the cap on that change (share of the shared layer's norm), both at REF_FRAMES:
REF_FRAMES = 750  # fitted speech frames (30 s at 25 fps); less footage pulls harder (PULL * REF / n) and caps
# the change lower (MAX_CHANGE * sqrt(n / REF)); more footage relaxes the pull, never the cap
MIN_GAIN = 0.02  # the held-out error must drop by at least this share, or the shared layer stays
R_TOL = 0.005  # the held-out lip-gap r may not drop by more than this
MIN_FRAMES = 50  # speech frames with a face needed in the fitted part (and a quarter of it held out)


@dataclass(frozen=True)
class Segment:
    """A stretch of one person talking: its speech and the mouth motion filmed with it."""

    samples: np.ndarray  # 16 kHz mono float32
    fps: float
    offsets: np.ndarray  # (T, n_mouth_points, 2) canonical offsets from the closed mouth (face/mouth_motion.py)
    valid: np.ndarray  # (T,) bool: a face was measured


@dataclass(frozen=True)
class Adaptation:
    adapter: LipsAdapter | None  # None: the shared model stays (see report["reason"])
    report: dict[str, object]  # figures of the fit, kept in the avatar's metadata


def fingerprint(model: MouthModel) -> str:
    """Short hash of the lips network and its motion basis: an adapted layer fits only this network."""
    h = hashlib.sha256()
    for name, t in sorted(model.net.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    for t in (model.basis, model.std):
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def with_head(model: MouthModel, adapter: LipsAdapter) -> MouthModel:
    """A copy of `model` whose output layer is the adapted one (the shared model is left untouched)."""
    out = copy.copy(model)
    out.net = copy.deepcopy(model.net)
    with torch.no_grad():
        out.net.head.weight.copy_(torch.from_numpy(np.asarray(adapter.weight, np.float32)))
        out.net.head.bias.copy_(torch.from_numpy(np.asarray(adapter.bias, np.float32)))
    out.gain_reference = model  # the gain the adapter was fitted under (_pairs): the shared model's
    return out


def for_avatar(model: MouthModel, avatar: Avatar) -> tuple[MouthModel, Avatar]:
    """The lips model and avatar to animate with: its adapted layer when it was fitted from `model`.

    Version 1 avatars (no adaptation) keep their gain, as when they were built. An avatar adapted from
    other lips weights (a retrained model) gets the shared model and gain 1, with a warning: its layer and
    gain were fitted to another network's output."""
    articulation = avatar.meta.get("articulation") or {}
    if avatar.version < 2 or "lips" not in articulation:
        return model, avatar
    if articulation["lips"] != fingerprint(model):
        warnings.warn(
            "This avatar's articulation was fitted to other lips weights, so it is not used; rebuild the "
            "avatar with `talkinghead avatar` to adapt it to these.",
            stacklevel=2,
        )
        return model, replace(avatar, style=replace(avatar.style, lip_gain=1.0), lips=None)
    return (with_head(model, avatar.lips) if avatar.lips is not None else model), avatar


def _pairs(model: MouthModel, seg: Segment) -> tuple[torch.Tensor, ...]:
    """Output-layer inputs (T, width), inference's per-frame scale (T,), targets (T, M*2), valid (T,)."""
    net, n = model.net, len(seg.valid)
    seen: list[torch.Tensor] = []
    hook = net.head.register_forward_hook(lambda _m, args, _o: seen.append(args[0]))
    try:
        with torch.no_grad():
            pos = torch.from_numpy(frame_positions(n, seg.fps))
            coef = net(model.network_input(seg.samples)[None], pos[None])[0]
    finally:
        hook.remove()
    out = ((coef * model.std) @ model.basis).numpy().reshape(n, -1, 2)
    scale = torch.from_numpy(model.scale(out, seg.samples, seg.fps).astype(np.float32))
    y = torch.from_numpy(np.asarray(seg.offsets, np.float32).reshape(n, -1))
    return seen[0][0].detach(), scale, y, torch.from_numpy(np.asarray(seg.valid, bool))


def adapt_lips(model: MouthModel, segments: list[Segment]) -> Adaptation:
    """Fit the output layer to the segments' audio -> mouth pairs (bounded; see the module docstring)."""
    pairs = [_pairs(model, s) for s in segments]
    z, scale, y, valid = (torch.cat([p[i] for p in pairs]) for i in range(4))
    # consecutive-frame pairs inside one segment (the velocity term must not jump between segments)
    ends = np.cumsum([len(s.valid) for s in segments])
    joined = torch.ones(len(valid) - 1 if len(valid) else 0, dtype=torch.bool)
    joined[torch.from_numpy(ends[:-1] - 1)] = False
    speech = valid & (scale > 0.5 * scale.max().clamp(min=1e-9))  # frames where the mouth should move
    cut = int(len(valid) * (1 - HOLDOUT))
    fit, held = torch.zeros_like(speech), torch.zeros_like(speech)
    fit[:cut], held[cut:] = speech[:cut], speech[cut:]
    idx = list(model.geometry.indices)
    top, bottom = idx.index(LIP_TOP), idx.index(LIP_BOTTOM)
    basis = model.std[:, None] * model.basis  # coefficients -> offsets
    w0, b0 = model.net.head.weight.detach().clone(), model.net.head.bias.detach().clone()
    norm0 = float(torch.sqrt((w0**2).sum() + (b0**2).sum()))

    def predict(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return ((z @ w.T + b) @ basis) * scale[:, None]

    def error(p: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """Mean squared position error plus mean squared velocity error over frames `m`."""
        pos = ((p - y) ** 2).mean(1)[m].mean()
        both = m[1:] & m[:-1] & joined
        vel = (((p[1:] - p[:-1]) - (y[1:] - y[:-1])) ** 2).mean(1)[both]
        return pos + (vel.mean() if len(vel) else 0.0)

    def gap_r(p: torch.Tensor, m: torch.Tensor) -> float:
        a = (p[:, 2 * bottom + 1] - p[:, 2 * top + 1])[m].numpy()
        b = (y[:, 2 * bottom + 1] - y[:, 2 * top + 1])[m].numpy()
        a, b = a - a.mean(), b - b.mean()
        d = float(np.sqrt((a * a).sum() * (b * b).sum()))
        return round(float((a * b).sum()) / d, 4) if d > 1e-12 else 0.0

    report: dict[str, object] = {"frames_fitted": int(fit.sum()), "frames_held_out": int(held.sum())}
    if fit.sum() < MIN_FRAMES or held.sum() < MIN_FRAMES // 4:
        return Adaptation(None, {**report, "reason": "too little speech with a visible face to adapt"})
    with torch.no_grad():
        p0 = predict(w0, b0)
        fit0, held0 = float(error(p0, fit)), float(error(p0, held))
    r0 = gap_r(p0, held)
    n_fit = float(fit.sum())
    pull, cap = PULL * REF_FRAMES / n_fit, MAX_CHANGE * min(1.0, float(np.sqrt(n_fit / REF_FRAMES)))
    # per output coefficient: a scale (1 + u) of its weights and bias and a shift c; linear in (u, c), so the
    # change of the layer is too, and the cap is a plain rescaling of (u, c)
    u = torch.zeros(len(b0), requires_grad=True)
    c = torch.zeros(len(b0), requires_grad=True)

    def layer(u: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (1 + u)[:, None] * w0, (1 + u) * b0 + c

    def change(u: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Squared distance of the layer from the shared one."""
        w, b = layer(u, c)
        return ((w - w0) ** 2).sum() + ((b - b0) ** 2).sum()

    opt = torch.optim.Adam([u, c], lr=LR)
    best = (held0, 0, w0, b0)
    progress = (held0, 0)  # the held-out error's best so far, whatever its r: the steps go on while it falls
    steps = 0
    for steps in range(1, STEPS + 1):
        opt.zero_grad()
        loss = error(predict(*layer(u, c)), fit) / max(fit0, 1e-9) + pull * change(u, c) / norm0**2
        loss.backward()
        opt.step()
        with torch.no_grad():
            now = float(change(u, c)) ** 0.5
            if now > cap * norm0:  # the cap: back onto the ball round the shared layer
                u.mul_(cap * norm0 / now)
                c.mul_(cap * norm0 / now)
            w, b = layer(u, c)
            p = predict(w, b)
            h = float(error(p, held))
        if h < best[0] and gap_r(p, held) >= r0 - R_TOL:  # a smaller error by moving less in time is no progress
            best = (h, steps, w.clone(), b.clone())
        if h < progress[0]:
            progress = (h, steps)
        elif steps - progress[1] >= PATIENCE:
            break
    h_best, at, wb, bb = best
    with torch.no_grad():
        p1 = predict(wb, bb)
        rel = float(torch.sqrt(((wb - w0) ** 2).sum() + ((bb - b0) ** 2).sum())) / norm0
    report.update(
        steps=steps,
        best_step=at,
        change=round(rel, 4),
        cap=round(cap, 4),
        held_out_error_shared=float(f"{held0:.4g}"),
        held_out_error_adapted=float(f"{h_best:.4g}"),
        held_out_r_shared=r0,
        held_out_r_adapted=gap_r(p1, held),
    )
    if h_best > (1 - MIN_GAIN) * held0:
        return Adaptation(None, {**report, "reason": "the held-out tail was not predicted better: shared model kept"})
    adapter = LipsAdapter(wb.numpy().astype(np.float32), bb.numpy().astype(np.float32), fingerprint(model))
    return Adaptation(adapter, {**report, "reason": "adapted"})
