"""Dubbing speed and memory at full HD on this machine's CPU.

Builds a 1920x1080 source of the requested length (the built-in face, talking, 720 px tall in the
middle of the frame over a blurred copy of itself; a 10 s clip played back and forth, with its speech
looped), then dubs it with the same speech in a child process and reports wall time, real-time factor
(video seconds per wall second; >= 1 is real time) and the child's peak resident memory.
Run: .venv/bin/python benchmarks/bench_dub.py [--minutes 1] [--fps 25]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from talkinghead.media import VideoWriter, iter_frames, load_audio
from talkinghead.pipeline import DEMO_AUDIO, DEMO_FACE, generate
from talkinghead.types import Waveform

W, H = 1920, 1080


def build_source(folder: Path, minutes: float, fps: float) -> Path:
    clip = generate(DEMO_FACE, DEMO_AUDIO, folder / "clip.mp4", size=720, fps=fps, seed=0)
    faces = [f for _, f in iter_frames(clip)]
    speech = load_audio(DEMO_AUDIO).samples
    n = int(round(minutes * 60 * fps))
    sound = Waveform(np.resize(speech, int(minutes * 60 * 16000)).astype(np.float32), 16000)
    order = np.concatenate([np.arange(len(faces)), np.arange(len(faces) - 2, 0, -1)])
    canvas = []
    for f in faces:
        bg = cv2.GaussianBlur(cv2.resize(f, (W, H)), (0, 0), 25)
        y0, x0 = (H - f.shape[0]) // 2, (W - f.shape[1]) // 2
        bg[y0 : y0 + f.shape[0], x0 : x0 + f.shape[1]] = f
        canvas.append(bg)
    src = folder / "source_1080p.mp4"
    with VideoWriter(src, W, H, fps=fps, audio=sound, crf=20, preset="superfast") as w:
        for k in range(n):
            w.write(canvas[order[k % len(order)]])
    return src


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--keep", type=Path, default=None, help="reuse/keep the built source at this path")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        src = args.keep if args.keep and args.keep.exists() else build_source(folder, args.minutes, args.fps)
        if args.keep and not args.keep.exists():
            src.replace(args.keep)
            src = args.keep
        out = folder / "dubbed.mp4"
        # as the CLI does: the library leaves glibc's allocator alone (media/heap.py)
        code = (
            f"from talkinghead.media.heap import tune_allocator; tune_allocator(); "
            f"from talkinghead.dubbing import dub; r = dub({str(src)!r}, {str(src)!r}, "
            f"{str(out)!r}); print(r.summary()); "
            # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork + exec, so the child would report this
            # process's own peak (all the source frames it built) when that is higher
            "print('peak', next(int(l.split()[1]) for l in open('/proc/self/status') "
            "if l.startswith('VmHWM')) // 1024)"
        )
        t0 = time.perf_counter()
        run = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        lines = run.stdout.strip().splitlines()
        print(lines[0])
        peak = float(lines[-1].split()[1])
        seconds = args.minutes * 60
        print(f"source {W}x{H} at {args.fps:g} fps, {seconds:.0f} s ({int(round(seconds * args.fps))} frames)")
        print(
            f"dub (end to end, incl. model load) {wall:7.1f} s -> {seconds * args.fps / wall:5.1f} frames/s, "
            f"real-time factor {seconds / wall:.2f}x"
        )
        print(f"peak RSS of the dub process        {peak:7.0f} MB")


if __name__ == "__main__":
    main()
