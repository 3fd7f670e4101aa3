"""Variants of the Whisper readout of `--lips whisper` and its average with the lips model, on the val series.

Needs the `[whisper]` extra and a prepared cache. The readout is the one `talkinghead train whisper-readout` fits
(training/whisper_readout.py: ridge from the Whisper-base states at each video frame onto the lips model's PCA
coefficients of the real mouth motion, training clips only); here its variants are fitted in one pass over the
training clips and compared on the validation clips like lips_series.py does (gate and spread gain applied to the
combined motion, i.e. what the product animates):
  context   video frames each side whose states join the frame's own (0, 1, 2)
  weights   varied5: varied speakers' frames x5 (the shipped rule); balanced: the same total weight for the varied
            speakers, shared equally by their identities (the MANIFEST's identity column; LRC-AR has 33)
  centred   states minus the clip's own mean state (a per-clip speaker/channel normalisation), train and val alike
  share     the lips model's weight in the average (0 = the readout alone, 1 = the lips model alone)
  per-source spread: each source scaled to the real speakers' spread before averaging (then the usual gain)
With --centring, instead: which mean state the centred readout (context 0, varied x5) subtracts, in fitting and on
the validation clips: the clip's own (shipped), or for short clips (< 2.5 s: the 1.2 s LRC-AR word clips, LRS2,
LRW) the mean over all clips of the same identity in the same split (the MANIFEST's identity column), or that for
every clip with an identity (GRID too). A 1.2 s clip's own mean holds much of its word; the identity's mean is
what the product subtracts from a longer recording of one speaker. Two more variants with the clip's own mean:
`cmvn` (each channel also divided by its std over the clip) and `mel` (the lips model's clip-normalised log-mel
at the frame and 2 video frames each side joined to the state, scaled to the states' spread).
Encoder states are cached as float16 .npy in --states (scratch, not in the cache).
Run: python benchmarks/whisper_readout.py --cache cache/talking --states /tmp/whisper_states [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
from lips_series import GROUPS, clip_metrics, group_of

from talkinghead.audio.features import frame_positions, log_mel, normalize
from talkinghead.models.whisper_readout import frame_features
from talkinghead.motion.mouth import MouthModel, speech_gate
from talkinghead.training.mouth_data import load_clip
from talkinghead.training.whisper_readout import clip_states, solve

MANIFEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "MANIFEST.tsv"
MAX_CONTEXT = 2
SHORT_S = 2.5  # clips shorter than this are centred by their identity's mean in the `identity-short` mode
CENTRINGS = ("clip", "identity-short", "identity-all")


def identities(manifest: Path) -> dict[str, str]:
    """Clip stem -> identity, from the corpus manifest (empty when absent)."""
    if not manifest.exists():
        return {}
    with manifest.open() as f:
        return {Path(r["path"]).stem: r["identity"] for r in csv.DictReader(f, delimiter="\t") if r["identity"]}


def sub_block(n_ctx: int) -> np.ndarray:
    """Indices of the context-`n_ctx` features inside the MAX_CONTEXT features (and the bias)."""
    d = 512
    keep = [np.arange((MAX_CONTEXT + k) * d, (MAX_CONTEXT + k + 1) * d) for k in range(-n_ctx, n_ctx + 1)]
    return np.concatenate([*keep, [(2 * MAX_CONTEXT + 1) * d]])


def centring_means(items: list, ident: dict[str, str], mode: str) -> list[np.ndarray]:
    """The mean state each clip of `items` ((path, clip, states) of one split) subtracts under `mode`."""

    def key(path: Path, clip) -> str | None:
        name = ident.get(path.stem.split("__")[-1])
        if name is None or mode == "clip" or (mode == "identity-short" and len(clip.valid) / clip.fps >= SHORT_S):
            return None
        return name

    sums: dict[str, tuple[np.ndarray, int]] = {}
    for path, clip, states in items:
        k = key(path, clip)
        if k is not None:
            acc, n = sums.get(k, (np.zeros(states.shape[1]), 0))
            sums[k] = (acc + states.astype(np.float64).sum(0), n + len(states))
    return [
        (sums[k][0] / sums[k][1] if (k := key(path, clip)) is not None else states.astype(np.float64).mean(0))
        for path, clip, states in items
    ]


def mel_context(samples: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """(n_frames, 5 * 80) the clip-normalised log-mel (the lips model's input) at each video frame and 2 each side."""
    mel = normalize(log_mel(samples))
    pos, last = frame_positions(n_frames, fps), len(mel) - 1
    return np.concatenate([mel[np.clip(pos + 4 * k, 0, last)] for k in range(-2, 3)], axis=1)


def variant_features(item, mean: np.ndarray, kind: str, mel_scale: float) -> np.ndarray:
    """Readout features of a clip: its states minus `mean` (and, for `cmvn`, over the clip's per-channel std);
    for `mel`, with the log-mel context (times `mel_scale`) joined before the bias."""
    _, c, states = item
    x = states.astype(np.float32) - mean.astype(np.float32)
    if kind == "cmvn":
        x = x / np.maximum(x.std(0), 1e-3)
    f = frame_features(x, len(c.valid), c.fps)
    if kind == "mel":
        f = np.concatenate([f[:, :-1], mel_scale * mel_context(c.samples, len(c.valid), c.fps), f[:, -1:]], axis=1)
    return f


# (fitting centring, kind) -> the validation centrings it is scored with
VARIANTS = {
    ("clip", ""): CENTRINGS[:2],
    ("identity-short", ""): CENTRINGS[:2],
    ("identity-all", ""): CENTRINGS[:2],
    ("clip", "cmvn"): ("clip",),
    ("clip", "mel"): ("clip",),
}


def centring(args, model, ident: dict[str, str]) -> dict:
    """Readouts fitted with each variant of the training features, scored on the validation series."""
    basis, std = model.basis.double().numpy(), model.std.double().numpy()
    train, val = [], []
    for path in sorted(args.cache.glob("*.npz")):
        clip = load_clip(path, model.geometry.reference)
        if clip is not None:
            item = (path, clip, clip_states(path, clip, args.states).astype(np.float16))
            (val if path.name.startswith("val__") else train).append(item)
    print(f"{len(train)} training clips, {len(val)} validation clips", flush=True)
    # the log-mel context scaled to the centred states' per-channel spread, so one ridge strength suits both
    sample = train[:: max(1, len(train) // 100)]
    spread_w = np.mean([(s.astype(np.float32) - s.astype(np.float32).mean(0)).std(0).mean() for _, _, s in sample])
    spread_m = np.mean([mel_context(c.samples, len(c.valid), c.fps).std(0).mean() for _, c, _ in sample])
    mel_scale = float(spread_w / spread_m)
    readouts = {}
    for mode, kind in VARIANTS:
        xtx = xty = None
        for item, mean in zip(train, centring_means(train, ident, mode), strict=True):
            c = item[1]
            v = c.valid
            x = variant_features(item, mean, kind, mel_scale)[v].astype(np.float64)
            y = c.offsets[v].reshape(int(v.sum()), -1).astype(np.float64) @ basis.T / std
            w = 5.0 if c.varied else 1.0
            xtx = w * x.T @ x if xtx is None else xtx + w * x.T @ x
            xty = w * x.T @ y if xty is None else xty + w * x.T @ y
        for alpha in args.alphas:
            readouts[(mode, kind, alpha)] = solve(xtx, xty, alpha)
        print(f"fitted: centring {mode} {kind}", flush=True)
    nets = [(model.raw(c.samples, len(c.valid), c.fps), speech_gate(c.samples, len(c.valid), c.fps)) for _, c, _ in val]
    means = {m: centring_means(val, ident, m) for m in CENTRINGS[:2]}
    results = {}
    for (mode, kind), val_modes in VARIANTS.items():
        for val_mode in val_modes:
            feats = [
                variant_features(item, mean, kind, mel_scale) for item, mean in zip(val, means[val_mode], strict=True)
            ]
            for alpha in args.alphas:
                readout = readouts[(mode, kind, alpha)]
                for share in args.shares:
                    rows = []
                    for (_, c, _), (net, gate), f in zip(val, nets, feats, strict=True):
                        n = len(c.valid)
                        out = share * net + (1 - share) * ((f @ readout * std) @ basis).reshape(n, -1, 2)
                        out = out * (model.gain(model.lip_gaps(out[gate > 0.5])) * gate)[:, None, None]
                        rows.append(
                            {"group": group_of(c.name), **clip_metrics(out, c.offsets, c.valid, c.samples, c.fps)}
                        )
                    unseen = [r for r in rows if r["group"] != "grid"]
                    res = {g: round(float(np.mean([r["r"] for r in rows if r["group"] == g])), 3) for g in GROUPS}
                    res.update(
                        {
                            f"unseen_{k}": round(float(np.mean([r[k] for r in unseen])), 3)
                            for k in ("r", "r_width", "lmd", "amp")
                        }
                    )
                    label = f"fit centring={mode}{' ' + kind if kind else ''} val centring={val_mode} "
                    label += f"alpha={alpha:g} lips_share={share:g}"
                    print(label, res, flush=True)
                    results[label] = res
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--weights", default="lips")
    ap.add_argument("--states", type=Path, default=Path("/tmp/whisper_states"), help="scratch folder for states")
    ap.add_argument("--manifest", type=Path, default=MANIFEST)
    ap.add_argument("--alphas", type=float, nargs="+", default=[1000.0])
    ap.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.4, 0.5, 0.6, 1.0])
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--centring", action="store_true", help="compare the centring variants (see above)")
    args = ap.parse_args()
    args.states.mkdir(parents=True, exist_ok=True)
    model = MouthModel(args.weights)
    if args.centring:
        ident = identities(args.manifest)
        if not ident:
            raise SystemExit(f"--centring needs the corpus manifest's identities; {args.manifest} is missing or empty")
        results = centring(args, model, ident)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
        return
    basis, std = model.basis.double().numpy(), model.std.double().numpy()
    ident = identities(args.manifest)
    train, val = [], []
    for path in sorted(args.cache.glob("*.npz")):
        clip = load_clip(path, model.geometry.reference)
        if clip is not None:
            (val if path.name.startswith("val__") else train).append((path, clip))
    # per-frame weights of the two schemes
    varied_frames = sum(int(c.valid.sum()) for _, c in train if c.varied)
    per_ident: dict[str, int] = {}
    for path, c in train:
        if c.varied:
            key = ident.get(path.stem.split("__")[-1], path.stem)
            per_ident[key] = per_ident.get(key, 0) + int(c.valid.sum())
    print(f"{len(train)} training clips, {len(per_ident)} varied identities, {len(val)} validation clips", flush=True)

    def weight(scheme: str, path: Path, c) -> float:
        if not c.varied:
            return 1.0
        if scheme == "varied5":
            return 5.0
        key = ident.get(path.stem.split("__")[-1], path.stem)
        return 5.0 * varied_frames / (len(per_ident) * per_ident[key])

    normal: dict[tuple[str, bool], list[np.ndarray]] = {}
    for path, c in train:
        v = c.valid
        states = clip_states(path, c, args.states)
        y = c.offsets[v].reshape(int(v.sum()), -1).astype(np.float64) @ basis.T / std
        for centred in (False, True):
            s = states - states.mean(0) if centred else states
            x = frame_features(s, len(v), c.fps, MAX_CONTEXT)[v].astype(np.float64)
            xtx, xty = x.T @ x, x.T @ y
            for scheme in ("varied5", "balanced"):
                w = weight(scheme, path, c)
                acc = normal.setdefault((scheme, centred), [np.zeros_like(xtx), np.zeros_like(xty)])
                acc[0] += w * xtx
                acc[1] += w * xty
    print("normal equations done", flush=True)
    # validation: the lips model's motion (before gain), gate, Whisper features, once per clip
    vals = []
    for path, c in val:
        n = len(c.valid)
        states = clip_states(path, c, args.states)
        feats = {
            centred: frame_features(states - states.mean(0) if centred else states, n, c.fps, MAX_CONTEXT)
            for centred in (False, True)
        }
        vals.append((c, model.raw(c.samples, n, c.fps), speech_gate(c.samples, n, c.fps), feats))
    results = {}
    for (scheme, centred), (xtx, xty) in normal.items():
        for n_ctx in (0, 1, 2):
            if centred and n_ctx:
                continue
            keep = sub_block(n_ctx)
            for alpha in args.alphas:
                readout = solve(xtx[np.ix_(keep, keep)], xty[keep], alpha * (2 * n_ctx + 1))
                for per_source in (False, True):
                    for share in args.shares if not per_source else [s for s in args.shares if 0 < s < 1]:
                        rows = []
                        for c, net, gate, feats in vals:
                            n = len(c.valid)
                            lin = ((feats[centred][:, keep] @ readout * std) @ basis).reshape(n, -1, 2)
                            speech = gate > 0.5
                            if per_source:
                                a = model.gain(model.lip_gaps(net[speech]))
                                b = model.gain(model.lip_gaps(lin[speech]))
                                out = share * a * net + (1 - share) * b * lin
                            else:
                                out = share * net + (1 - share) * lin
                            out = out * (model.gain(model.lip_gaps(out[speech])) * gate)[:, None, None]
                            rows.append(
                                {"group": group_of(c.name), **clip_metrics(out, c.offsets, c.valid, c.samples, c.fps)}
                            )
                        key = (
                            f"{scheme}{' centred' if centred else ''} context={n_ctx} alpha={alpha:g} "
                            f"lips_share={share:g}{' per-source spread' if per_source else ''}"
                        )
                        unseen = [r for r in rows if r["group"] != "grid"]
                        res = {
                            g: round(float(np.mean([r["r"] for r in rows if r["group"] == g])), 3)
                            for g in GROUPS
                            if any(r["group"] == g for r in rows)
                        }
                        res.update(
                            {
                                f"unseen_{k}": round(float(np.mean([r[k] for r in unseen])), 3)
                                for k in ("r", "r_width", "lmd", "amp")
                            }
                        )
                        print(key, res, flush=True)
                        results[key] = res
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
