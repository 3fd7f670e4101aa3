"""Mouth-opening correlation of generated video with the real speaker, on the validation clips.

For each clip in ../shared/data/talking/val: its first frame is the photo and its own audio the speech;
the generated video's inner-lip gap (re-measured with the face mesh) is correlated (Pearson, per clip)
with the real video's, next to a baseline that opens the mouth with audio loudness. The whole mouth
shape is compared too: mouth-width correlation, LMD (lip-contour landmark distance in the canonical frame,
each track relative to its own closed mouth, % of the inter-ocular distance) and the amplitude ratio
(std of the generated gap / the real one). Clips are grouped as in lips_series.py (GRID, the five old
unseen speakers, LRC-AR, third pass). Also prints the blink rate. Needs the corpus.
Run: .venv/bin/python benchmarks/eval_lips.py [--grid 20] [--lrcar-every 1] [--weights path] [--lips whisper]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from talkinghead.audio.features import loudness
from talkinghead.media import iter_frames, load_audio, probe_video
from talkinghead.metrics.mouth import count_blinks, measure_video
from talkinghead.pipeline import Animator, generate

sys.path.insert(0, str(Path(__file__).parent))
from lips_series import GROUPS, clip_metrics, group_of

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "talking" / "val"


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 0 else 0.0


def first_face_frame(clip: Path, max_frames: int = 25) -> np.ndarray | None:
    """The clip's first frame with a face (some clips open on a blank frame)."""
    from talkinghead.face.landmarks import detect_faces

    for k, (_, frame) in enumerate(iter_frames(clip)):
        if k >= max_frames:
            return None
        if detect_faces(frame):
            return frame
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", type=int, default=20, help="how many GRID clips (all non-GRID clips are used)")
    ap.add_argument("--weights", default="lips")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--lip-strength", type=float, default=1.0)
    ap.add_argument("--lips", default="standard", help="standard | whisper (the lips model + Whisper readout)")
    ap.add_argument("--lrcar-every", type=int, default=1, help="use every n-th LRC-AR clip (178 in val)")
    ap.add_argument("--corpus", type=Path, default=CORPUS, help="folder of validation clips")
    args = ap.parse_args()
    clips = sorted(args.corpus.glob("*.mp4"))
    if not clips:
        raise SystemExit(f"corpus not found at {args.corpus}")
    grid = [c for c in clips if c.name.startswith("grid")]
    other = [c for c in clips if not c.name.startswith(("grid", "lrcar"))]
    other += [c for c in clips if c.name.startswith("lrcar")][:: args.lrcar_every]
    chosen = grid[:: max(1, len(grid) // args.grid)][: args.grid] + other
    anim = Animator(args.weights)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for k, clip in enumerate(chosen):
            info = probe_video(clip)
            first = first_face_frame(clip)
            if first is None:
                print(json.dumps({"clip": clip.stem, "skipped": "no face in its first second"}), flush=True)
                continue
            photo = Path(d) / "first.png"
            cv2.imwrite(str(photo), cv2.cvtColor(first, cv2.COLOR_RGB2BGR))
            out = generate(
                photo, clip, Path(d) / "gen.mp4", animator=anim, seed=k, lip_strength=args.lip_strength, lips=args.lips
            )
            gen = measure_video(out)
            real = measure_video(clip)
            # compare at the generated frame times (25 fps) by interpolating the real track
            real_m = np.interp(gen.times, real.times, real.mouth)
            speech = load_audio(clip).samples
            loud = loudness(speech, len(gen.times), 25.0)
            blinks, durs = count_blinks(gen.eyes, 25.0)
            shape = shape_metrics(gen, real, anim.mouth.geometry.reference, speech)
            row = {
                "clip": clip.stem,
                "grid": clip.name.startswith("grid"),
                "group": group_of(clip.stem),
                **shape,
                "fps": info.fps,
                "r": pearson(gen.mouth, real_m),
                "r_loudness": pearson(loud, real_m),
                "blinks": blinks,
                "seconds": len(gen.times) / 25.0,
                "blinks_per_min": blinks / (len(gen.times) / 25.0) * 60,
                "gen_mouth_p90": float(np.nanpercentile(gen.mouth, 90)),
                "real_mouth_p90": float(np.nanpercentile(real_m, 90)),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    rows = [r for r in rows if "r" in r]
    for g in GROUPS:
        sel = [r for r in rows if r["group"] == g]
        if sel:
            m = {k: float(np.mean([r[k] for r in sel])) for k in ("r", "r_loudness", "r_width", "lmd", "amp")}
            print(
                f"{g:15s} n={len(sel):3d}  r={m['r']:.3f}  loudness baseline r={m['r_loudness']:.3f}  "
                f"width r={m['r_width']:.3f}  LMD={m['lmd']:.2f}  amplitude={m['amp']:.2f}"
            )
    for name, sel in (
        ("GRID", [r for r in rows if r["grid"]]),
        ("other speakers", [r for r in rows if not r["grid"]]),
        ("all", rows),
    ):
        if sel:
            print(
                f"{name:15s} n={len(sel):3d}  r={np.mean([r['r'] for r in sel]):.3f}  "
                f"loudness baseline r={np.mean([r['r_loudness'] for r in sel]):.3f}  "
                f"blinks/min={60 * sum(r['blinks'] for r in sel) / sum(r['seconds'] for r in sel):.1f} (pooled)"
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def shape_metrics(gen, real, reference: np.ndarray, speech: np.ndarray) -> dict:
    """Width r, LMD and amplitude of the generated mouth vs the real one, on the generated frames' times."""
    from talkinghead.face.mouth_motion import mouth_offsets

    idx = np.abs(real.times[None, :] - gen.times[:, None]).argmin(axis=1)  # the nearest real frame
    g_off, g_ok, _ = mouth_offsets(gen.points, reference)
    r_off, r_ok, _ = mouth_offsets(real.points[idx], reference)
    ok = g_ok & r_ok
    if ok.sum() < 10:
        return {"r_width": float("nan"), "lmd": float("nan"), "amp": float("nan")}
    m = clip_metrics(g_off, r_off, ok, speech, 25.0)
    return {"r_width": m["r_width"], "lmd": m["lmd"], "amp": m["amp"]}


if __name__ == "__main__":
    main()
