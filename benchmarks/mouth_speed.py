"""CPU cost of the teeth (painted cavity + tooth row), learned and hybrid (learned + tooth row) mouth interiors
against the painted one, in photo mode at 512x512.

One Animator, the demo face and 60 s of the demo speech (looped); the same motion is rendered with each
interior, alternating, `--runs` times; process CPU seconds (not wall: the machine is shared) per run
and the real-time factor that CPU time allows (audio seconds / CPU seconds, rendering only; encoding
and the models' speech passes are the same for both and measured by bench_speed.py).
Run: .venv/bin/python benchmarks/mouth_speed.py [--runs 3]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from talkinghead.config import GenerateOptions
from talkinghead.media import load_audio
from talkinghead.pipeline import DEMO_AUDIO, DEMO_FACE, Animator


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--modes", default="painted,teeth,learned,hybrid", help="interiors to time, comma-separated")
    args = ap.parse_args()
    speech = load_audio(DEMO_AUDIO, sample_rate=16000).samples
    speech = np.tile(speech, int(np.ceil(args.seconds * 16000 / len(speech))))[: int(args.seconds * 16000)]
    anim = Animator()
    anim.set_source(str(DEMO_FACE), size=512)
    opts = GenerateOptions()
    motion = anim.motion(speech, int(args.seconds * opts.fps), opts)
    cpu: dict[str, list[float]] = {m: [] for m in args.modes.split(",")}
    for _ in range(args.runs):
        for mode in cpu:
            t = time.process_time()
            for _frame in anim.render(motion, replace(opts, mouth=mode)):
                pass
            cpu[mode].append(time.process_time() - t)
    for mode, ts in cpu.items():
        print(
            f"{mode}: render CPU {', '.join(f'{t:.2f}' for t in ts)} s for {args.seconds:.0f} s of speech "
            f"(best {min(ts):.2f} s, {args.seconds / min(ts):.1f}x real time on one core; "
            f"{1000 * min(ts) / len(motion):.2f} ms a frame)"
        )


if __name__ == "__main__":
    main()
