"""CPU time of photo mode's motion child (`motion_process.predict_pieces`): the mouth of the whole clip, then the
head motion and blinks frame by frame on the running cues, on 30 s and 10 min of the corpus's speech.

Each checkout runs in its own fresh process (torch on one thread, as the child), one warm-up then `--runs` timed
calls (`time.process_time`), and saves the motion it predicted; with `--code` the other checkout (an export of
an older commit) is measured the same way, alternately, and the two motions are compared bit for bit
(`np.array_equal` on mouth, lids and pose).
Run: .venv/bin/python benchmarks/bench_motion_child.py [--code BEFORE] [--runs 5] [--rounds 2] [--speech DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "data" / "speech"
LENGTHS = {"30 s": 30, "10 min": 600}

# run in the measured checkout's own process: argv = checkout, speech .npy, seconds, runs, output .npz
_CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, torch
torch.set_num_threads(1)
import talkinghead
from talkinghead.config import GenerateOptions
from talkinghead.motion.learned import LearnedMotion
from talkinghead.motion.mouth import MouthModel
from talkinghead.motion_process import predict_pieces
assert talkinghead.__file__.startswith(sys.argv[1]), talkinghead.__file__
speech = np.load(sys.argv[2])[: int(sys.argv[3]) * 16000]
n = int(round(len(speech) / 16000 * 25))
mouth, head, opts = MouthModel("lips"), LearnedMotion("motion"), GenerateOptions(size=512, seed=0)
parts = list(predict_pieces(mouth, head, speech, n, opts))
times = []
for _ in range(int(sys.argv[4])):
    t = time.process_time()
    list(predict_pieces(mouth, head, speech, n, opts))
    times.append(time.process_time() - t)
np.savez(sys.argv[5], **{k: np.concatenate([getattr(p, k) for p in parts]) for k in ("mouth", "lids", "pose")})
print(json.dumps(times))
"""


def corpus_speech(folder: Path, seconds: int) -> np.ndarray:
    """The corpus's speech files in name order, end to end, cut to `seconds`."""
    from talkinghead.media.inputs import load_speech

    parts, total = [], 0
    for path in sorted(folder.glob("*.flac")):
        parts.append(load_speech(path)[1])
        total += len(parts[-1])
        if total >= seconds * 16000:
            break
    if total < seconds * 16000:
        raise SystemExit(f"{folder} holds less than {seconds} s of speech")
    return np.concatenate(parts)[: seconds * 16000]


def measure(code: Path, speech: Path, seconds: int, runs: int, out: Path) -> list[float]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(code), str(speech), str(seconds), str(runs), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--code", type=Path, help="another checkout to measure and compare with (e.g. an older export)")
    ap.add_argument("--runs", type=int, default=5, help="timed calls per process")
    ap.add_argument("--rounds", type=int, default=2, help="fresh processes per checkout, alternating")
    ap.add_argument("--speech", type=Path, default=SPEECH, help="the corpus's speech folder")
    args = ap.parse_args()
    if not args.speech.is_dir():
        raise SystemExit(f"needs the corpus's speech at {args.speech}")
    codes = {"this": ROOT} | ({"other": args.code.resolve()} if args.code else {})
    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        speech = Path(tmp) / "speech.npy"
        np.save(speech, corpus_speech(args.speech, max(LENGTHS.values())))
        for label, seconds in LENGTHS.items():
            medians: dict[str, list[float]] = {name: [] for name in codes}
            for _ in range(args.rounds):
                for name, code in codes.items():
                    times = measure(code, speech, seconds, args.runs, Path(tmp) / f"{name}.npz")
                    medians[name].append(statistics.median(times))
            for name, code in codes.items():
                spread = ", ".join(f"{m:.3f}" for m in medians[name])
                print(f"{label:7s} {name:5s} ({code}): median {statistics.median(medians[name]):.3f} s CPU ({spread})")
            if args.code:
                a, b = np.load(Path(tmp) / "this.npz"), np.load(Path(tmp) / "other.npz")
                same = all(np.array_equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a.files)
                print(f"{label:7s} motion identical to the other checkout's: {same}")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
