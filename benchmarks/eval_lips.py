"""Mouth-opening correlation of generated video with the real speaker, on the validation clips.

For each clip in ../shared/data/talking/val: its first frame is the photo and its own audio the speech;
the generated video's inner-lip gap (re-measured with the face mesh) is correlated (Pearson, per clip)
with the real video's, next to a baseline that opens the mouth with audio loudness. Also prints the
blink rate and how far the mouth closes in pauses. Needs the corpus; prints nothing useful without it.
Run: .venv/bin/python benchmarks/eval_lips.py [--grid 20] [--weights path]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np

from talkinghead.audio.features import loudness
from talkinghead.media import iter_frames, load_audio, probe_video
from talkinghead.metrics.mouth import count_blinks, measure_video
from talkinghead.pipeline import Animator, generate

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
    args = ap.parse_args()
    clips = sorted(CORPUS.glob("*.mp4"))
    if not clips:
        raise SystemExit(f"corpus not found at {CORPUS}")
    grid = [c for c in clips if c.name.startswith("grid")]
    other = [c for c in clips if not c.name.startswith("grid")]
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
            out = generate(photo, clip, Path(d) / "gen.mp4", animator=anim, seed=k, lip_strength=args.lip_strength)
            gen = measure_video(out)
            real = measure_video(clip)
            # compare at the generated frame times (25 fps) by interpolating the real track
            real_m = np.interp(gen.times, real.times, real.mouth)
            speech = load_audio(clip).samples
            loud = loudness(speech, len(gen.times), 25.0)
            blinks, durs = count_blinks(gen.eyes, 25.0)
            row = {"clip": clip.stem, "grid": clip.name.startswith("grid"), "fps": info.fps,
                   "r": pearson(gen.mouth, real_m), "r_loudness": pearson(loud, real_m),
                   "blinks": blinks, "seconds": len(gen.times) / 25.0,
                   "blinks_per_min": blinks / (len(gen.times) / 25.0) * 60,
                   "gen_mouth_p90": float(np.nanpercentile(gen.mouth, 90)),
                   "real_mouth_p90": float(np.nanpercentile(real_m, 90))}
            rows.append(row)
            print(json.dumps(row), flush=True)
    rows = [r for r in rows if "r" in r]
    for name, sel in (("GRID", [r for r in rows if r["grid"]]), ("other speakers", [r for r in rows if not r["grid"]]),
                      ("all", rows)):
        if sel:
            print(f"{name:15s} n={len(sel):3d}  r={np.mean([r['r'] for r in sel]):.3f}  "
                  f"loudness baseline r={np.mean([r['r_loudness'] for r in sel]):.3f}  "
                  f"blinks/min={60 * sum(r['blinks'] for r in sel) / sum(r['seconds'] for r in sel):.1f} (pooled)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
