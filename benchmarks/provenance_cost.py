"""What marking costs end to end (issue 14: "marking adds <= 10 % to generate and dub time").

The embedder's own time is a small part of it; the mark also changes what x264 has to code (a fine noise-like
pattern in every frame), so this measures whole CLI runs with and without `--no-watermark`, same inputs and seed:
- `talkinghead generate` at 512x512 (a corpus portrait cropped so the face is ~300 px wide, as
  bench_real_photo.py makes it) with 30 s of corpus speech;
- `talkinghead dub` on a 1920x1080 source whose face is 600 px tall (made from a corpus talking clip as
  bench_real_dub.py makes it) with 25 s of corpus speech.
Each run is a fresh process (`python -m talkinghead.cli ... -q`); marked and unmarked alternate, `--runs` of each.
Printed per case: median wall and CPU seconds (user + sys of the child, all its threads: on a shared machine the
stable figure), the marked / unmarked ratios, output bytes, and the load average before and after. Label and
manifest are written in both (only the watermark is switched off), so the difference is the watermark's.

Inputs are made in a scratch folder and deleted (nothing from the corpus is kept).
Run: PYTHONPATH=. .venv/bin/python benchmarks/provenance_cost.py [--runs 3] [--only generate|dub]
     [--corpus ../shared/data] [--dub-seconds 25] [--photo-seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

CORPUS = ROOT.parent / "shared" / "data"
PORTRAIT = "portraits/EDTalk_leijun.jpg"  # as bench_real_photo.py: rescaled so the face is ~300 px wide
CLIP = "talking/train/multivsr_hxn8clTtMTo-00001.mp4"  # as bench_real_dub.py: 720x720, frontal
SPEECH = "speech/en_AniTalker_english_male.flac"


def timed(argv: list[str]) -> dict[str, float]:
    """Run one CLI command in a fresh process: wall seconds and the child's CPU seconds (user + sys, every thread
    and the photo's motion process), as bench_real_photo measures the command line."""
    from bench_real_photo import _wall

    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    wall, cpu, run = _wall([sys.executable, "-m", "talkinghead.cli", *argv], env=env)
    if run.returncode:
        raise SystemExit(f"failed ({run.returncode}): {' '.join(argv)}\n{run.stderr[-3000:]}")
    return {"wall": wall, "cpu": cpu}


def make_inputs(corpus: Path, folder: Path, photo_s: float, dub_s: float) -> dict[str, Path]:
    from bench_real_dub import build_source, build_speech
    from bench_real_photo import _make_face

    paths = {
        "face": folder / "face.png",
        "photo_speech": folder / "photo_speech.wav",
        "video": folder / "source1080.mp4",
        "dub_speech": folder / "dub_speech.wav",
    }
    width = _make_face(corpus / PORTRAIT, 300.0, paths["face"])
    print(f"face: ~{width:.0f} px wide in 512x512", flush=True)
    build_speech(corpus / SPEECH, photo_s, paths["photo_speech"])
    build_source(corpus / CLIP, 600, dub_s, paths["video"])
    build_speech(corpus / SPEECH, dub_s, paths["dub_speech"])
    return paths


def commands(case: str, paths: dict[str, Path], out: Path, marked: bool) -> list[str]:
    flag = [] if marked else ["--no-watermark"]
    if case == "generate":
        return ["generate", "--face", str(paths["face"]), "--audio", str(paths["photo_speech"]), "-o", str(out),
                "--seed", "0", "-q", *flag]  # fmt: skip
    return ["dub", "--video", str(paths["video"]), "--audio", str(paths["dub_speech"]), "-o", str(out), "--fresh",
            "-q", *flag]  # fmt: skip


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs of each (marked and unmarked alternate)")
    ap.add_argument("--only", choices=("generate", "dub"), default=None)
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--photo-seconds", type=float, default=30.0)
    ap.add_argument("--dub-seconds", type=float, default=25.0)
    ap.add_argument("--json", type=Path, default=None, help="also write every run here")
    args = ap.parse_args()
    if not (args.corpus / PORTRAIT).is_file() or not (args.corpus / CLIP).is_file():
        print(f"SKIPPED: the corpus is absent (no {args.corpus / PORTRAIT})")
        return
    cases = [args.only] if args.only else ["generate", "dub"]
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="th-prov-cost-") as d:
        folder = Path(d)
        os.environ["XDG_CONFIG_HOME"] = str(folder / "config")  # the self-signed key: made once, not in ~/.config
        paths = make_inputs(args.corpus, folder, args.photo_seconds, args.dub_seconds)
        for case in cases:
            warm = folder / f"{case}_warm.mp4"  # first run: key pair, caches; not counted
            timed(commands(case, paths, warm, True))
            warm.unlink()
            rows = results[case] = []
            for k in range(args.runs):
                for marked in (True, False) if k % 2 == 0 else (False, True):
                    out = folder / f"{case}_{k}_{int(marked)}.mp4"
                    la = load()
                    row = timed(commands(case, paths, out, marked))
                    row.update(marked=marked, bytes=out.stat().st_size, load_before=la, load_after=load())
                    out.unlink()
                    rows.append(row)
                    print(
                        f"{case} run {k} {'marked  ' if marked else 'unmarked'}: wall {row['wall']:.2f} s, CPU "
                        f"{row['cpu']:.2f} s, {row['bytes'] / 1e6:.2f} MB (load {la} -> {row['load_after']})",
                        flush=True,
                    )
    print(f"\n{'case':<9} | {'wall marked':>11} {'unmarked':>9} {'ratio':>6} | {'CPU marked':>10} {'unmarked':>9} "
          f"{'ratio':>6} | {'MB marked':>9} {'unmarked':>9}")  # fmt: skip
    summary = {}
    for case, rows in results.items():
        med = {
            (m, key): statistics.median(r[key] for r in rows if r["marked"] == m)
            for m in (True, False)
            for key in ("wall", "cpu", "bytes")
        }
        s = summary[case] = {
            "wall_marked": med[True, "wall"],
            "wall_unmarked": med[False, "wall"],
            "wall_ratio": med[True, "wall"] / med[False, "wall"],
            "cpu_marked": med[True, "cpu"],
            "cpu_unmarked": med[False, "cpu"],
            "cpu_ratio": med[True, "cpu"] / med[False, "cpu"],
            "mb_marked": med[True, "bytes"] / 1e6,
            "mb_unmarked": med[False, "bytes"] / 1e6,
            # paired: each marked run against the unmarked run next to it
            "cpu_ratio_pairs": [
                round(float(a["cpu"] / b["cpu"]), 3)
                for a, b in zip(rows[0::2], rows[1::2])
                for a, b in [(a, b) if a["marked"] else (b, a)]
            ],
        }
        print(
            f"{case:<9} | {s['wall_marked']:>10.2f}s {s['wall_unmarked']:>8.2f}s {s['wall_ratio']:>6.3f} | "
            f"{s['cpu_marked']:>9.2f}s {s['cpu_unmarked']:>8.2f}s {s['cpu_ratio']:>6.3f} | "
            f"{s['mb_marked']:>9.2f} {s['mb_unmarked']:>9.2f}"
        )
    print(f"paired CPU ratios: {json.dumps({c: s['cpu_ratio_pairs'] for c, s in summary.items()})}")
    print(f"load average at the end: {load()}")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "runs": results}, indent=1, default=float))


if __name__ == "__main__":
    main()
