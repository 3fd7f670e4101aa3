"""Lips models on the prepared validation clips, as motion series (no rendering): fast model selection.

For each validation clip of a `talkinghead prepare` cache, a lips model predicts mouth motion from the
clip's own audio (`MouthModel.predict`, gate and gain included, i.e. what the product animates) and it
is compared with the real speaker's tracked mouth in the canonical frame:
  r        Pearson r of the inner-lip gap (predicted vs real), per clip
  r_width  Pearson r of the mouth width (outer corners), per clip
  lmd      mean distance of the lip-contour points (predicted vs real offsets), % of the inter-ocular distance
  amp      std of the predicted gap / std of the real gap (articulation amplitude, 1 = the speaker's)
  r_loud   the loudness baseline: Pearson r of the audio level with the real gap
Clips are grouped: GRID, the five old unseen speakers, the LRC-AR presenters, the third-pass speakers.
Rendered-video figures (what a viewer sees) come from eval_lips.py; this script ranks models in minutes.
Run: python benchmarks/lips_series.py --cache CACHE [--weights lips other.safetensors ...] [--lips whisper]
     [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from talkinghead.audio.features import loudness
from talkinghead.face.indices import (
    LIP_BOTTOM,
    LIP_TOP,
    LOWER_INNER_LIP,
    LOWER_OUTER_LIP,
    MOUTH_JAW,
    UPPER_INNER_LIP,
    UPPER_OUTER_LIP,
)

GROUPS = ("grid", "old five", "lrc-ar", "third pass")
_I13, _I14 = MOUTH_JAW.index(LIP_TOP), MOUTH_JAW.index(LIP_BOTTOM)
_LEFT, _RIGHT = MOUTH_JAW.index(61), MOUTH_JAW.index(291)
_CONTOUR = [
    MOUTH_JAW.index(i) for i in sorted(set(UPPER_INNER_LIP + LOWER_INNER_LIP + UPPER_OUTER_LIP + LOWER_OUTER_LIP))
]


def group_of(name: str) -> str:
    """Which validation group a prepared clip (cache file stem) belongs to."""
    stem = name.split("__")[-1]
    if stem.startswith("grid"):
        return "grid"
    if stem.startswith("lrcar"):
        return "lrc-ar"
    if stem.startswith(("lrs2yst", "lrw_", "multivsr", "grw", "astorfi")):
        return "third pass"
    return "old five"


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 1e-12 else 0.0


def clip_metrics(pred: np.ndarray, offsets: np.ndarray, valid: np.ndarray, samples: np.ndarray, fps: float) -> dict:
    """Compare predicted offsets (T, len(MOUTH_JAW), 2) with the real ones on the frames with a face."""
    v = valid
    gap_p = pred[v, _I14, 1] - pred[v, _I13, 1]
    gap_r = offsets[v, _I14, 1] - offsets[v, _I13, 1]
    wid_p = pred[v, _RIGHT, 0] - pred[v, _LEFT, 0]
    wid_r = offsets[v, _RIGHT, 0] - offsets[v, _LEFT, 0]
    lmd = np.linalg.norm(pred[v][:, _CONTOUR] - offsets[v][:, _CONTOUR], axis=-1).mean()
    loud = loudness(samples, len(valid), fps)[v]
    return {
        "r": pearson(gap_p, gap_r),
        "r_width": pearson(wid_p, wid_r),
        "lmd": float(100 * lmd),
        "amp": float(gap_p.std() / max(gap_r.std(), 1e-9)),
        "r_loud": pearson(loud, gap_r),
    }


def summarise(rows: list[dict], label: str) -> str:
    lines = [f"{label}"]
    for g in GROUPS:
        sel = [r for r in rows if r["group"] == g]
        if sel:
            m = {k: float(np.mean([r[k] for r in sel])) for k in ("r", "r_width", "lmd", "amp", "r_loud")}
            lines.append(
                f"  {g:10s} n={len(sel):3d}  r={m['r']:.3f}  r_width={m['r_width']:.3f}  "
                f"lmd={m['lmd']:.2f}  amp={m['amp']:.2f}  (loudness r={m['r_loud']:.3f})"
            )
    varied = [r for r in rows if r["group"] != "grid"]
    if varied:
        lines.append(
            f"  {'varied':10s} n={len(varied):3d}  r={np.mean([r['r'] for r in varied]):.3f}  "
            f"(clip mean over old five + LRC-AR + third pass)"
        )
    return "\n".join(lines)


def load_val(cache: Path, reference: np.ndarray):
    from talkinghead.training.mouth_data import load_clip

    clips = [load_clip(p, reference) for p in sorted(cache.glob("val__*.npz"))]
    return [c for c in clips if c is not None]


def main() -> None:
    from talkinghead.motion.mouth import MouthModel

    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, required=True, help="folder written by `talkinghead prepare`")
    ap.add_argument("--weights", nargs="+", default=["lips"], help="registered names or .safetensors paths")
    ap.add_argument("--lips", default="standard", help="standard | whisper (the lips model + Whisper readout)")
    ap.add_argument("--readout", default="whisper-readout", help="with --lips whisper: the readout file")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    out = {}
    for name in args.weights:
        model = MouthModel(name)
        model.readout = args.readout
        clips = load_val(args.cache, model.geometry.reference)
        rows = []
        for c in clips:
            pred = model.predict(c.samples, len(c.valid), c.fps, args.lips)
            rows.append(
                {
                    "clip": c.name.split("__")[-1],
                    "group": group_of(c.name),
                    **clip_metrics(pred, c.offsets, c.valid, c.samples, c.fps),
                }
            )
        print(summarise(rows, str(name)), flush=True)
        out[str(name)] = rows
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
