"""A linear Whisper readout (ridge) of mouth motion, and its average with a lips model, on the val series.

Needs the `[whisper]` extra and a prepared cache. For every clip, Whisper-base encoder states (cached as .npy
in --states, not in the cache) are read at each video frame (two 20 ms states averaged) and regressed, with
a bias and the varied speakers' frames weighted x5, onto the lips model's own PCA coefficients of the real
mouth motion (closed form, training clips only). On the validation clips the readout, the lips model and
their average (`--shares`: the lips model's share) are compared like lips_series.py does (gate and the file's
spread gain applied to the combined motion). Nothing here ships; it measures whether the ensemble wins.
Run: python benchmarks/whisper_readout.py --cache cache/talking [--weights lips] [--alphas 100 1000 10000]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from lips_series import clip_metrics, group_of

from talkinghead.audio.features import frame_positions
from talkinghead.motion import mouth as mouth_mod
from talkinghead.training.mouth_data import Clip, load_clip


def frame_features(clip: Clip, states: np.ndarray) -> np.ndarray:
    """(T, 513): the Whisper state at each video frame's time, averaged with the next 20 ms one, and a bias."""
    pos = np.clip(frame_positions(len(clip.valid), clip.fps), 0, len(states) - 1)
    nxt = np.clip(pos + 2, 0, len(states) - 1)
    return np.concatenate([(states[pos] + states[nxt]) / 2, np.ones((len(pos), 1), np.float32)], 1)


def main() -> None:
    from talkinghead.audio.whisper import whisper_states

    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--weights", default="lips")
    ap.add_argument("--states", type=Path, default=Path("/tmp/whisper_states"), help="scratch folder for states")
    ap.add_argument("--alphas", type=float, nargs="+", default=[100.0, 1000.0, 10000.0])
    ap.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.5, 0.7, 1.0])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    args.states.mkdir(parents=True, exist_ok=True)
    model = mouth_mod.MouthModel(args.weights)
    basis, std = model.basis.numpy(), model.std.numpy()
    xs, ys, ws, val = [], [], [], []
    for path in sorted(args.cache.glob("*.npz")):
        clip = load_clip(path, model.geometry.reference)
        if clip is None:
            continue
        side = args.states / f"{clip.name}.npy"
        if not side.exists():
            np.save(side, whisper_states(clip.samples).astype(np.float16))
        feats = frame_features(clip, np.load(side).astype(np.float32))
        if path.name.startswith("val__"):
            val.append((clip, feats))
            continue
        v = clip.valid
        xs.append(feats[v])
        ys.append(clip.offsets[v].reshape(int(v.sum()), -1) @ basis.T / std)
        ws.append(np.full(int(v.sum()), 5.0 if clip.varied else 1.0))
    x, y, w = np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)
    xtx, xty = (x * w[:, None]).T @ x, (x * w[:, None]).T @ y
    # the lips model's own motion, gated but before its gain, once per clip
    nets = []
    for clip, _ in val:
        gain = mouth_mod.MouthModel._gain
        mouth_mod.MouthModel._gain = lambda self, out, gate: 1.0  # type: ignore[method-assign]
        nets.append(model.predict(clip.samples, len(clip.valid), clip.fps))
        mouth_mod.MouthModel._gain = gain  # type: ignore[method-assign]
    results = {}
    for alpha in args.alphas:
        readout = np.linalg.solve(xtx + alpha * np.eye(len(xtx)), xty)
        for share in args.shares:
            rows = []
            for (clip, feats), net in zip(val, nets):
                n = len(clip.valid)
                gate = mouth_mod.speech_gate(clip.samples, n, clip.fps)
                lin = ((feats @ readout) * std @ basis).reshape(n, -1, 2) * gate[:, None, None]
                out = share * net + (1 - share) * lin
                out = out * model._gain(out, gate)
                rows.append(
                    {
                        "group": group_of(clip.name),
                        **clip_metrics(out, clip.offsets, clip.valid, clip.samples, clip.fps),
                    }
                )
            key = f"alpha={alpha:g} lips_share={share:g}"
            unseen = [r for r in rows if r["group"] != "grid"]
            res = {
                g: round(float(np.mean([r["r"] for r in rows if r["group"] == g])), 3)
                for g in sorted({r["group"] for r in rows})
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
