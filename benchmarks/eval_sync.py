"""Lip sync of generated video vs. the real video, judged by our expert, on the validation clips.

For each clip: the real video's metrics, then a video generated from its first face frame and its own
audio, and the same metrics on that. Prints per clip and a summary: share of clips whose generated
offset is within +-1 frame of the real one, share whose confidence reaches the real one, and the mean of
every metric on real video (the reference values documented in RESULTS.md).
Run: .venv/bin/python benchmarks/eval_sync.py [--grid 20] [--weights path] [--lips whisper]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from talkinghead.metrics.evaluate import evaluate
from talkinghead.metrics.sync import SyncExpert
from talkinghead.pipeline import Animator, generate

sys.path.insert(0, str(Path(__file__).parent))
from eval_lips import CORPUS, first_face_frame
from lips_series import GROUPS, group_of


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", type=int, default=20)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--weights", default="lips", help="lips weights: registered name or a .safetensors path")
    ap.add_argument("--lrcar-every", type=int, default=1, help="use every n-th LRC-AR clip (178 in val)")
    ap.add_argument("--lips", default="standard", help="standard | whisper (the lips model + Whisper readout)")
    ap.add_argument("--corpus", type=Path, default=CORPUS, help="folder of validation clips")
    args = ap.parse_args()
    clips = sorted(args.corpus.glob("*.mp4"))
    grid = [c for c in clips if c.name.startswith("grid")]
    lrcar = [c for c in clips if c.name.startswith("lrcar")][:: args.lrcar_every]
    chosen = (
        grid[:: max(1, len(grid) // args.grid)][: args.grid]
        + lrcar
        + [c for c in clips if not c.name.startswith(("grid", "lrcar"))]
    )
    expert, anim = SyncExpert(), Animator(args.weights)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for k, clip in enumerate(chosen):
            first = first_face_frame(clip)
            if first is None:
                continue
            photo = Path(d) / "first.png"
            cv2.imwrite(str(photo), cv2.cvtColor(first, cv2.COLOR_RGB2BGR))
            real = evaluate(clip, expert=expert)
            made = generate(photo, clip, Path(d) / "gen.mp4", animator=anim, seed=k, lips=args.lips)
            gen = evaluate(made, expert=expert)
            rows.append({"clip": clip.stem, "group": group_of(clip.stem), "real": real, "gen": gen})
            print(
                json.dumps(
                    {
                        "clip": clip.stem,
                        "real_offset": real["sync_offset_frames"],
                        "gen_offset": gen["sync_offset_frames"],
                        "real_conf": round(real["sync_confidence"], 3),
                        "gen_conf": round(gen["sync_confidence"], 3),
                    }
                ),
                flush=True,
            )
    within = np.mean([abs(r["gen"]["sync_offset_frames"] - r["real"]["sync_offset_frames"]) <= 1 for r in rows])
    conf = np.mean([r["gen"]["sync_confidence"] >= r["real"]["sync_confidence"] for r in rows])
    print(
        f"{len(rows)} clips: generated offset within +-1 of real on {100 * within:.0f} %, "
        f"confidence >= real on {100 * conf:.0f} %"
    )
    for g in GROUPS:
        sel = [r for r in rows if r["group"] == g]
        if sel:
            w = np.mean([abs(r["gen"]["sync_offset_frames"] - r["real"]["sync_offset_frames"]) <= 1 for r in sel])
            print(f"  {g:10s} n={len(sel):3d}: generated offset within +-1 of real on {100 * w:.0f} %")
    for who in ("real", "gen"):
        keys = [k for k, v in rows[0][who].items() if isinstance(v, (int, float)) and k not in ("frames", "fps")]
        print(who, {k: round(float(np.nanmean([r[who][k] for r in rows])), 3) for k in keys})
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
