"""End-to-end speed: 512x512 photo + 60 s of speech -> MP4, on this machine's CPU.

Prints frames per second, real-time factor (audio seconds per wall second; > 1 is faster than real
time) and peak resident memory. Run: .venv/bin/python benchmarks/bench_speed.py [--seconds 60] [--lips whisper]

With `--avatar FILE` (made by `talkinghead avatar`) the same speech animates the avatar and then, as a photo, the
avatar's own reference frame (same face, same size): issue 11 asks avatar rendering to be as fast as photo mode.
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
    ap.add_argument("--avatar", type=Path, default=None, help="an avatar file: timed against its reference as a photo")
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
        n = int(round(args.seconds * 25))
        load = time.perf_counter() - t0
        if args.avatar is not None:
            _avatar_vs_photo(anim, args.avatar, wav, Path(d), args)
        t1 = time.perf_counter()
        out = generate(DEMO_FACE, wav, Path(d) / "out.mp4", animator=anim, size=args.size, seed=0, lips=args.lips)
        t2 = time.perf_counter()
        print(f"photo {args.size}x{args.size}, speech {args.seconds:.0f} s, {n} frames at 25 fps")
        print(f"model load          {load:6.2f} s")
        print(
            f"generate (end2end)  {t2 - t1:6.2f} s  -> {n / (t2 - t1):6.1f} frames/s, "
            f"real-time factor {args.seconds / (t2 - t1):.2f}x"
        )
        print(f"peak RSS            {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:6.0f} MB")
        print(f"output size         {out.stat().st_size / 1e6:6.2f} MB")


def _avatar_vs_photo(anim: Animator, avatar: Path, wav: Path, d: Path, args: argparse.Namespace) -> None:
    """The avatar, then its reference frame as a photo, twice each in turns (the first run of each warms up)."""
    import cv2

    from talkinghead.avatar.file import load_avatar

    photo = d / "reference.png"
    cv2.imwrite(str(photo), cv2.cvtColor(load_avatar(avatar).reference, cv2.COLOR_RGB2BGR))
    times: dict[str, list[float]] = {"avatar": [], "photo": []}
    for _ in range(2):
        for kind in ("avatar", "photo"):
            t = time.perf_counter()
            src = dict(face=None, avatar=avatar) if kind == "avatar" else dict(face=photo)
            generate(audio=wav, out=d / f"{kind}.mp4", animator=anim, size=args.size, seed=0, **src)  # type: ignore[arg-type]
            times[kind].append(time.perf_counter() - t)
    for kind, ts in times.items():
        what = avatar.name if kind == "avatar" else "its reference frame"
        print(
            f"{kind:6s} ({what}) {args.seconds:.0f} s of speech: {min(ts):6.2f} s (best of {len(ts)}), "
            f"real-time factor {args.seconds / min(ts):.2f}x"
        )


if __name__ == "__main__":
    main()
