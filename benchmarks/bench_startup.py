"""Start-up latency of the command line: `--help`, `--version` and an input error (a mistyped photo path).

Each is run as a fresh process, as a user types it; prints the median and the spread of N runs.
Run: .venv/bin/python benchmarks/bench_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "--help": ["--help"],
    "--version": ["--version"],
    "input error (missing photo)": ["generate", "--face", "no_such_photo.jpg", "--audio", "speech.wav", "-o", "x.mp4"],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    exe = shutil.which("talkinghead", path=str(Path(sys.executable).parent)) or "talkinghead"
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv in CASES.items():
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                subprocess.run([exe, *argv], cwd=tmp, capture_output=True, check=False)
                times.append(time.perf_counter() - t0)
            print(
                f"{name:30s} median {statistics.median(times):.2f} s  (min {min(times):.2f}, max {max(times):.2f}, "
                f"{args.runs} runs)"
            )


if __name__ == "__main__":
    main()
