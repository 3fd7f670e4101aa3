"""End-to-end speed: 512x512 photo + 60 s of speech -> MP4, on this machine's CPU.

Prints frames per second, real-time factor (audio seconds per wall second; > 1 is faster than real
time) and peak resident memory. Run: .venv/bin/python benchmarks/bench_speed.py [--seconds 60] [--lips whisper]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from talkinghead.media import load_audio
from talkinghead.pipeline import DEMO_AUDIO, DEMO_FACE, Animator, generate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--lips", default="standard", help="standard | whisper (loads Whisper-base first, timed apart)")
    args = ap.parse_args()
    import wave

    speech = load_audio(DEMO_AUDIO).samples
    reps = int(np.ceil(args.seconds * 16000 / len(speech)))
    long = np.tile(speech, reps)[: int(args.seconds * 16000)]
    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "speech.wav"
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes((np.clip(long, -1, 1) * 32767).astype("<i2").tobytes())
        t0 = time.perf_counter()
        anim = Animator()
        if args.lips == "whisper":  # Whisper-base and the readout, loaded once per process like the models
            from talkinghead.audio.whisper import _model
            from talkinghead.models.whisper_readout import load_readout

            tw = time.perf_counter()
            _model(), load_readout()
            print(f"whisper load        {time.perf_counter() - tw:6.2f} s (included in model load)")
        t1 = time.perf_counter()
        out = generate(DEMO_FACE, wav, Path(d) / "out.mp4", animator=anim, size=args.size, seed=0, lips=args.lips)
        t2 = time.perf_counter()
        n = int(round(args.seconds * 25))
        print(f"photo {args.size}x{args.size}, speech {args.seconds:.0f} s, {n} frames at 25 fps")
        print(f"model load          {t1 - t0:6.2f} s")
        print(
            f"generate (end2end)  {t2 - t1:6.2f} s  -> {n / (t2 - t1):6.1f} frames/s, "
            f"real-time factor {args.seconds / (t2 - t1):.2f}x"
        )
        print(f"peak RSS            {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:6.0f} MB")
        print(f"output size         {out.stat().st_size / 1e6:6.2f} MB")


if __name__ == "__main__":
    main()
