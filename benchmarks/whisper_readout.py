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

from talkinghead.models.whisper_readout import frame_features
from talkinghead.motion.mouth import MouthModel, speech_gate
from talkinghead.training.mouth_data import load_clip
from talkinghead.training.whisper_readout import clip_states, solve

MANIFEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "MANIFEST.tsv"
MAX_CONTEXT = 2


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--weights", default="lips")
    ap.add_argument("--states", type=Path, default=Path("/tmp/whisper_states"), help="scratch folder for states")
    ap.add_argument("--manifest", type=Path, default=MANIFEST)
    ap.add_argument("--alphas", type=float, nargs="+", default=[1000.0])
    ap.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.4, 0.5, 0.6, 1.0])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    args.states.mkdir(parents=True, exist_ok=True)
    model = MouthModel(args.weights)
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
