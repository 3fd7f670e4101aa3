"""Head-motion and blink statistics: real speakers vs. our generated motion on the same speech.

Real: the validation speakers outside GRID (tracked landmarks in a prepared cache; none of them is in
training), pose from `driver_motion`, blinks by `metrics.mouth.count_blinks` on the eye aspect ratio
(the definition `talkinghead eval` uses). Generated: the learned model (motion/learned.py) for several
seeds, and the procedural baseline (motion/head.py), on each clip's own speech; then the learned model
on the speech files of ../shared/data/speech (no video there: compared with the real speakers' means).

Per axis (yaw, pitch, roll, degrees): std and jitter (mean |change| per frame at 25 fps); blinks a
minute and closed-eye durations (ms; generated: frames with lid closure > 0.5); speech corr =
correlation of head speed with speech activity (loudness within 30 dB of the clip's peak).

Run: PYTHONPATH=. .venv/bin/python benchmarks/motion_stats.py [CACHE] [SPEECH_DIR] [--seeds N]
"""

import argparse
import glob
import time
from pathlib import Path

import numpy as np

from talkinghead.audio.features import loudness
from talkinghead.face.track import FaceTrack
from talkinghead.media import load_audio
from talkinghead.metrics.mouth import count_blinks, measure_track
from talkinghead.motion.driving import driver_motion
from talkinghead.motion.head import HeadMotionOptions, blinks, head_pose
from talkinghead.motion.learned import LearnedMotion
from talkinghead.weights import load_weights

FPS = 25.0


def motion_stats(pose: np.ndarray, samples: np.ndarray) -> dict:
    """std, jitter and speech correlation of a (T, >=3) pose track at 25 fps."""
    p = pose[:, :3]
    db = loudness(samples, len(p), FPS)
    act = (db > db.max() - 30).astype(float)
    speed = np.abs(np.diff(p, axis=0)).sum(1)
    corr = np.corrcoef(speed, act[1:])[0, 1] if act[1:].std() > 0 and speed.std() > 0 else np.nan
    return {"std": p.std(0), "jitter": np.abs(np.diff(p, axis=0)).mean(0), "corr": corr}


def lid_blinks(lids: np.ndarray) -> tuple[int, list[float]]:
    """Blinks as runs of lid closure > 0.5 (the generated counterpart of count_blinks)."""
    return count_blinks(np.where(lids > 0.5, 0.0, 1.0), FPS)


def summary(rows: list[dict], minutes: float, n_blinks: int, durs: list[float]) -> dict:
    d = np.array(durs) * 1000 if durs else np.zeros(1)
    return {
        "std": np.mean([r["std"] for r in rows], 0),
        "jitter": np.mean([r["jitter"] for r in rows], 0),
        "corr": float(np.nanmean([r["corr"] for r in rows])),
        "bpm": n_blinks / minutes,
        "dur_med": float(np.median(d)),
        "dur_in": float(np.mean((d >= 100) & (d <= 400))) if durs else float("nan"),
    }


def fmt(name: str, s: dict, real: dict | None = None) -> str:
    line = (
        f"{name:34s} std {np.array2string(s['std'], precision=2)} jitter {np.array2string(s['jitter'], precision=3)}"
        f" corr {s['corr']:.3f} blinks/min {s['bpm']:.1f} dur median {s['dur_med']:.0f} ms"
        f" (in 100-400 ms: {100 * s['dur_in']:.0f} %)"
    )
    if real is not None:
        line += (
            f"\n{'':34s} std ratio {np.array2string(s['std'] / real['std'], precision=2)}"
            f" jitter ratio {np.array2string(s['jitter'] / real['jitter'], precision=2)}"
        )
    return line


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cache", nargs="?", default="cache/talking")
    ap.add_argument("speech", nargs="?", default="../shared/data/speech")
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    ref = load_weights("lips").tensors["reference"].numpy()
    model = LearnedMotion()
    clips = []
    for p in sorted(glob.glob(f"{args.cache}/val__*.npz")):
        if "grid" in p:
            continue
        z = np.load(p)
        tr = FaceTrack(z["times"], z["points"])
        if "audio" not in z.files or tr.found.mean() < 0.9:
            continue
        pose, _ = driver_motion(tr, ref)
        t = np.arange(0, tr.times[-1], 1 / FPS)
        pz = np.stack([np.interp(t, tr.times, pose[:, i]) for i in range(3)], 1)
        a = z["audio"].astype(np.float32) / 32768
        nb, durs = count_blinks(measure_track(tr).eyes, float(z["fps"]))
        clips.append((Path(p).stem, pz, a, nb, durs))
    minutes = sum(len(c[1]) for c in clips) / FPS / 60
    print(f"{len(clips)} real validation clips outside GRID, {minutes:.2f} min")
    real = summary(
        [motion_stats(c[1], c[2]) for c in clips], minutes, sum(c[3] for c in clips), [d for c in clips for d in c[4]]
    )
    print(fmt("real speakers (val)", real))
    for label, learned in (("learned", True), ("procedural baseline", False)):
        per_seed = []
        for seed in range(args.seeds):
            rows, nb, durs = [], 0, []
            for k, (_, pz, a, _, _) in enumerate(clips):
                n = len(pz)
                rng = np.random.default_rng(1000 * seed + k)
                if learned:
                    pose, lids = model.sample(a, n, FPS, rng)
                else:
                    pose = head_pose(loudness(a, n, FPS), FPS, rng, HeadMotionOptions())
                    lids = blinks(n, FPS, rng)
                rows.append(motion_stats(pose, a))
                b, d = lid_blinks(lids)
                nb, durs = nb + b, durs + d
            s = summary(rows, minutes, nb, durs)
            per_seed.append(s)
            if learned:
                print(fmt(f"{label}, seed {seed}", s, real))
        mean = {k: np.mean([s[k] for s in per_seed], 0) for k in per_seed[0]}
        print(fmt(f"{label}, mean of {args.seeds} seeds", mean, real))
    # the learned model on unseen speech in 10 languages
    files = sorted(glob.glob(f"{args.speech}/*.flac"))
    if files:
        rows, nb, durs, mins, spent = [], 0, [], 0.0, 0.0
        for k, f in enumerate(files):
            a = load_audio(f).samples
            n = int(len(a) / 16000 * FPS)
            if n < 2 * FPS:
                continue
            for seed in range(2):
                t0 = time.perf_counter()
                pose, lids = model.sample(a, n, FPS, np.random.default_rng(1000 * seed + k))
                spent += time.perf_counter() - t0
                rows.append(motion_stats(pose, a))
                b, d = lid_blinks(lids)
                nb, durs, mins = nb + b, durs + d, mins + n / FPS / 60
        print(
            f"{len(files)} speech files ({mins / 2:.1f} min), 2 seeds each; sampling took "
            f"{spent / mins:.2f} s per minute of speech (features included)"
        )
        print(fmt("learned on ../shared/data/speech", summary(rows, mins, nb, durs), real))


if __name__ == "__main__":
    main()
