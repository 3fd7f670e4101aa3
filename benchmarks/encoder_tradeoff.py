"""x264 preset / CRF trade-off for the dub's output: quality per second of encoding, on one 1080p source.

A dub re-encodes the whole video, so the encoder sets the floor of its speed. Each setting transcodes
the same source with PyAV (decode + encode, like bench_real_dub.py's floor) and is measured by its wall
and process CPU time, its bitrate, and the luma SSIM and PSNR of its frames against the decoded source
(what the encoder loses on top of the source's own compression). The source is made as bench_real_dub.py
makes it (a corpus clip scaled so the face is --face px tall in 1920x1080), so this needs the corpus.
Run: PYTHONPATH=. .venv/bin/python benchmarks/encoder_tradeoff.py [--face 600] [--seconds 3]
     [--presets ultrafast superfast veryfast faster] [--crfs 18 23] [--every 5]
     [--corpus ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_real_dub import CLIP, CORPUS, build_source

from talkinghead.metrics.image import ssim


def luma_frames(path: Path, every: int = 1) -> list[np.ndarray]:
    """The luma planes of every `every`-th frame (a long 1080p source would not fit in memory whole)."""
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="gray") for i, f in enumerate(c.decode(video=0)) if i % every == 0]


def transcode(src: Path, dst: Path, preset: str, crf: int, params: str = "") -> tuple[float, float]:
    """(wall s, CPU s) of a decode + x264 encode of `src` (`params`: extra x264 options, "me=dia:subme=1")."""
    c0, t0 = sum(os.times()[:2]), time.perf_counter()
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        s = inp.streams.video[0]
        s.thread_type = "AUTO"
        o = out.add_stream("libx264", rate=s.average_rate)
        o.width, o.height, o.pix_fmt = s.width, s.height, "yuv420p"
        tb = 1 / s.average_rate
        o.time_base = o.codec_context.time_base = tb
        o.options = {"crf": str(crf), "preset": preset, **({"x264-params": params} if params else {})}
        for i, f in enumerate(inp.decode(s)):
            f.pts, f.time_base = i, tb
            for p in o.encode(f):
                out.mux(p)
        for p in o.encode(None):
            out.mux(p)
    return time.perf_counter() - t0, sum(os.times()[:2]) - c0


def grey3(y: np.ndarray) -> np.ndarray:
    """A luma plane as the RGB image `ssim` takes (its luma is the plane itself)."""
    return np.repeat(y[..., None], 3, axis=2)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-10))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--face", type=int, default=600)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument(
        "--presets",
        nargs="+",
        default=["ultrafast", "superfast", "veryfast", "faster"],
        help="x264 presets, each optionally with extra x264 options after a slash: veryfast/me=dia:subme=1",
    )
    ap.add_argument("--crfs", type=int, nargs="+", default=[18, 23])
    ap.add_argument("--every", type=int, default=5, help="SSIM/PSNR on every n-th frame")
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--source", type=Path, help="a source made before (bench_real_dub.py --keep) instead of a new one")
    args = ap.parse_args()
    clip = args.corpus / CLIP
    if args.source is None and not clip.is_file():
        print(f"SKIPPED: the corpus is absent ({clip} not found)")
        return
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as d:
        src = args.source or Path(d) / "source.mp4"
        if args.source is None:
            build_source(clip, args.face, args.seconds, src)
        ref = luma_frames(src, args.every)
        with av.open(str(src)) as c:
            seconds = float(c.streams.video[0].frames) / 25.0
        print(f"source: {src.name if args.source else f'face {args.face} px'}, 1920x1080, {round(seconds * 25)} frames")
        width = max(10, *(len(p) for p in args.presets))
        print(f"{'preset':<{width}} {'crf':>4} | {'wall s':>7} {'CPU s':>7} | {'Mbit/s':>7} {'SSIM':>7} {'PSNR dB':>8}")
        for setting in args.presets:
            preset, _, params = setting.partition("/")
            for crf in args.crfs:
                dst = Path(d) / f"setting_{args.presets.index(setting)}_{crf}.mp4"
                wall, cpu = transcode(src, dst, preset, crf, params)
                pairs = list(zip(ref, luma_frames(dst, args.every)))
                s = float(np.mean([ssim(grey3(a), grey3(b)) for a, b in pairs]))
                p = float(np.mean([psnr(a, b) for a, b in pairs]))
                rate = dst.stat().st_size * 8 / seconds / 1e6
                print(
                    f"{setting:<{width}} {crf:4d} | {wall:7.2f} {cpu:7.2f} | {rate:7.2f} {s:7.4f} {p:8.2f}", flush=True
                )
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
