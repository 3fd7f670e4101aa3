"""Dubbing many videos: one shared `Dubber` against one `th.dub()` call per video (each loading the model).

Makes 5 short clips from the shipped assets (the demo face animated by `generate`, 256 px, 25 fps,
different seeds, each with its own slice of the demo speech as new audio), then dubs all 5 in a fresh
child process, once with one `Dubber` and once with 5 `th.dub()` calls. Each child is timed (wall and
process CPU, all threads) from just before its first model load to the end of the last dub (imports
excluded, the same for both); CPU time is the steadier figure on a shared machine;
rounds alternate the order so neither mode always runs on a warmer disk cache.
Run: .venv/bin/python benchmarks/bench_dubber.py [--clips 5] [--seconds 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> None:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def build(folder: Path, clips: int, seconds: float) -> list[tuple[Path, Path]]:
    """(video, new audio) pairs: clip k is the demo face saying speech slice k, dubbed with slice k+1."""
    import talkinghead as th
    from talkinghead.media import load_audio
    from talkinghead.pipeline import DEMO_AUDIO, DEMO_FACE

    speech = load_audio(DEMO_AUDIO).samples
    n = int(seconds * 16000)
    starts = np.linspace(0, max(len(speech) - n, 0), clips + 1).astype(int)
    wavs = []
    for k, s in enumerate(starts):
        wavs.append(folder / f"speech_{k}.wav")
        write_wav(wavs[-1], np.resize(speech[s : s + n], n))
    anim = th.Animator()
    pairs = []
    for k in range(clips):
        video = th.generate(DEMO_FACE, wavs[k], folder / f"clip_{k}.mp4", animator=anim, size=256, seed=k)
        pairs.append((video, wavs[k + 1]))
    return pairs


def child(mode: str, pairs: list[tuple[str, str]], folder: Path) -> None:
    """Runs in a fresh process: dub every pair, print the wall time and the number of model loads."""
    import talkinghead as th
    from talkinghead import dubbing

    loads = []
    real = dubbing.MouthModel

    def counted(*a: object, **k: object) -> object:
        t = time.perf_counter()
        m = real(*a, **k)
        loads.append(time.perf_counter() - t)
        return m

    dubbing.MouthModel = counted  # type: ignore[misc]
    t0, c0 = time.perf_counter(), time.process_time()
    if mode == "shared":
        d = th.Dubber()
        reports = [d.dub(v, a, folder / f"{mode}_{k}.mp4") for k, (v, a) in enumerate(pairs)]
    else:
        reports = [th.dub(v, a, folder / f"{mode}_{k}.mp4") for k, (v, a) in enumerate(pairs)]
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        json.dumps(
            {
                "wall": wall,
                "cpu": cpu,
                "loads": len(loads),
                "load_s": sum(loads),
                "frames": sum(r.frames for r in reports),
                "dubbed": sum(r.dubbed for r in reports),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", choices=["shared", "separate"], help=argparse.SUPPRESS)
    ap.add_argument("--pairs", help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, json.loads(args.pairs), args.folder)
        return
    with tempfile.TemporaryDirectory(prefix="bench_dubber_") as d:
        folder = Path(d)
        pairs = [(str(v), str(a)) for v, a in build(folder, args.clips, args.seconds)]
        results: dict[str, list[dict]] = {"shared": [], "separate": []}
        for r in range(args.rounds):
            for mode in ("shared", "separate") if r % 2 == 0 else ("separate", "shared"):
                run = subprocess.run(
                    [sys.executable, __file__, "--child", mode, "--pairs", json.dumps(pairs), "--folder", str(folder)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                results[mode].append(json.loads(run.stdout.strip().splitlines()[-1]))
                last = results[mode][-1]
                print(f"round {r + 1} {mode:8s} wall {last['wall']:6.2f} s  cpu {last['cpu']:6.2f} s", flush=True)
    frames = results["shared"][0]["frames"]
    print(
        f"{args.clips} clips of {args.seconds:g} s at 256x256 ({frames} frames in all), median of {args.rounds} rounds:"
    )
    for mode, label in (("shared", "one Dubber"), ("separate", f"{args.clips} th.dub() calls")):
        rs = results[mode]
        print(
            f"  {label:18s} wall {statistics.median(r['wall'] for r in rs):6.2f} s  "
            f"cpu {statistics.median(r['cpu'] for r in rs):6.2f} s  "
            f"({rs[0]['loads']} model load(s), {statistics.median(r['load_s'] for r in rs):.2f} s loading)"
        )


if __name__ == "__main__":
    main()
