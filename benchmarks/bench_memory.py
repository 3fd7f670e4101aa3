"""Peak memory (RSS) of `generate` and `dub` on long speech: it must stay flat with the length (issue 12).

Inputs are synthesised, nothing to download: the shipped demo speech tiled to N minutes; for `dub`, a 10 s
720p talking video made with `generate` from the shipped face (placed on a 1280 x 720 canvas), looped over
the whole speech with `--loop loop`. Each run is a fresh `talkinghead` process whose resident memory (with
its children) is sampled every 0.2 s. Run niced; minutes of audio are given on the command line:
    nice .venv/bin/python benchmarks/bench_memory.py --minutes 10 20 [--mode generate dub] [--size 256]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil


def speech(path: Path, minutes: float) -> Path:
    from scipy.io import wavfile

    from talkinghead.media import load_audio
    from talkinghead.pipeline import DEMO_AUDIO

    w = load_audio(DEMO_AUDIO, sample_rate=None)
    n = int(minutes * 60 * w.sample_rate)
    x = np.tile(w.samples, int(np.ceil(n / len(w.samples))))[:n]
    wavfile.write(path, w.sample_rate, (x * 32767).astype(np.int16))
    return path


def talking_720p(folder: Path) -> Path:
    import cv2

    from talkinghead.media import load_image
    from talkinghead.pipeline import DEMO_FACE, generate

    canvas = np.full((720, 1280, 3), 200, np.uint8)
    canvas[104:616, 384:896] = load_image(DEMO_FACE)
    photo = folder / "face720.png"
    cv2.imwrite(str(photo), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    return generate(photo, speech(folder / "s10.wav", 10 / 60), folder / "talking720.mp4", seed=0)


def peak_rss(cmd: list[str]) -> tuple[float, float, int]:
    """(peak RSS in MB, wall seconds, exit code) of a command and its children."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.2)
    if proc.returncode:
        print(proc.stderr.read().decode()[-2000:], file=sys.stderr)
    return peak / 1e6, time.perf_counter() - t, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, nargs="+", default=[10.0, 20.0])
    ap.add_argument("--mode", nargs="+", default=["generate", "dub"])
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    exe = [sys.executable, "-m", "talkinghead.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        video = talking_720p(d) if "dub" in args.mode else None
        for minutes in args.minutes:
            audio = speech(d / f"s{minutes:g}.wav", minutes)
            for mode in args.mode:
                from talkinghead.pipeline import DEMO_FACE

                if mode == "generate":
                    cmd = exe + [
                        "generate",
                        "--face",
                        str(DEMO_FACE),
                        "--audio",
                        str(audio),
                        "--size",
                        str(args.size),
                        "-o",
                        str(d / "g.mp4"),
                        "-q",
                    ]
                else:
                    cmd = exe + [
                        "dub",
                        "--video",
                        str(video),
                        "--audio",
                        str(audio),
                        "--loop",
                        "loop",
                        "-o",
                        str(d / "d.mp4"),
                        "-q",
                    ]
                mb, secs, rc = peak_rss(cmd)
                label = f"generate --size {args.size}" if mode == "generate" else "dub 1280x720 --loop loop"
                print(f"{label}, {minutes:g} min of speech: peak RSS {mb:.0f} MB, {secs:.0f} s, exit {rc}", flush=True)


if __name__ == "__main__":
    main()
