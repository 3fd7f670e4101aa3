"""Avatar quality on the validation clips >= 8 s (needs ../shared/data), and avatar build speed.

For each clip: an avatar is built from its first half; it speaks the second half's audio; the result
is compared with the real second half, next to the same clip animated from a single photo (its first
frame) with the same audio, seed and frame rate. Figures: mouth-crop SSIM and LPIPS (a box 1.6x the
outer-lip width round each video's own lips, 96 px: benchmarks/dub_quality.py's crop), Pearson r of the
inner-lip gap against the real one, LMD and identity distance (talkinghead.metrics.evaluate); also the
avatar without its mouth bank (what the bank itself adds), and the avatar with the shared lips model's
output layer instead of its adapted one (what the articulation adaptation adds; same gain).
Speed: avatars built from 1-minute clips (the longest and the largest validation clip played over, re-encoded).
Run: nice -n 10 .venv/bin/python benchmarks/avatar_quality.py [--corpus DIR] [--min-seconds 8]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from dub_quality import mouth_crop
from eval_lips import CORPUS, pearson

from talkinghead.avatar import build_avatar, load_avatar, save_avatar
from talkinghead.face.track import track_video
from talkinghead.media import VideoWriter, iter_frames, load_audio, probe_video
from talkinghead.metrics.evaluate import evaluate
from talkinghead.metrics.image import ssim
from talkinghead.metrics.mouth import measure_track
from talkinghead.pipeline import Animator, generate
from talkinghead.render.mouth_bank import MouthBank
from talkinghead.types import Waveform


def cut(clip: Path, t0: float, t1: float, out: Path, repeat: int = 1) -> Path:
    """Frames and sound of [t0, t1) of `clip` (played `repeat` times) as a new MP4 (re-encoded, CRF 18)."""
    info = probe_video(clip)
    wave = load_audio(clip)
    a = wave.samples[int(t0 * wave.sample_rate) : int(t1 * wave.sample_rate)]
    frames = [f for t, f in iter_frames(clip) if t0 <= t < t1]
    frames = frames[: max(1, round(len(a) / wave.sample_rate * info.fps))]  # no frames past the sound: a video
    # generated from this audio has exactly as many frames as the real one it is compared with
    h, w = frames[0].shape[:2]
    with VideoWriter(out, w, h, fps=info.fps, audio=Waveform(np.tile(a, repeat), wave.sample_rate), crf=18) as wr:
        for _ in range(repeat):
            for f in frames:
                wr.write(f)
    return out


def mouth_figures(real: Path, fake: Path, lp) -> dict[str, float]:
    """Mouth-crop SSIM / LPIPS (each video cropped round its own lips) and r of the lip gap."""
    tr, tf = track_video(real), track_video(fake)
    crops = []
    for k, ((_, x), (_, y)) in enumerate(zip(iter_frames(real), iter_frames(fake))):
        if k < min(len(tr.times), len(tf.times)) and tr.found[k] and tf.found[k]:
            crops.append((mouth_crop(x, tr.points[k]), mouth_crop(y, tf.points[k])))
    n = min(len(tr.times), len(tf.times))
    out = {
        "mouth_ssim": float(np.mean([ssim(a, b) for a, b in crops])),
        "mouth_r": pearson(measure_track(tr).mouth[:n], measure_track(tf).mouth[:n]),
    }
    if lp is not None:
        out["mouth_lpips"] = float(np.mean(lp.distances(crops)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=str(CORPUS))
    ap.add_argument("--min-seconds", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    corpus = Path(args.corpus)
    clips = (
        [c for c in sorted(corpus.glob("*.mp4")) if probe_video(c).duration >= args.min_seconds]
        if corpus.is_dir()
        else []
    )
    if not clips:
        print(f"skipped: no validation clips >= {args.min_seconds} s under {corpus} (the corpus is not here)")
        return
    from talkinghead.metrics import quality

    lp = quality.Lpips() if quality.lpips_available() else None
    print(f"{len(clips)} clips >= {args.min_seconds} s; LPIPS {'on' if lp else 'off'}", flush=True)
    animator = Animator()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for clip in clips:
            info = probe_video(clip)
            half = info.duration / 2
            first = cut(clip, 0.0, half, tmp / "first.mp4")
            second = cut(clip, half, info.duration + 1.0, tmp / "second.mp4")
            photo = tmp / "photo.png"
            import cv2

            cv2.imwrite(str(photo), cv2.cvtColor(next(iter_frames(clip))[1], cv2.COLOR_RGB2BGR))
            t = time.perf_counter()
            avatar = build_avatar(first, tmp / "me.avatar")
            build_s = time.perf_counter() - t
            av = load_avatar(avatar)
            row: dict[str, object] = {
                "clip": clip.stem,
                "seconds": round(info.duration, 2),
                "build_s": round(build_s, 2),
                "bank": len(av.bank),
                "lids": av.eyes_closed is not None,
                "pose_scale": av.style.pose_scale,
                "blinks_per_min": av.style.blinks_per_min,
                "lip_gain": av.style.lip_gain,
                "adaptation": (av.meta.get("articulation") or {}).get("adaptation"),
            }
            size = max(info.width, info.height)
            # ablation: the same avatar without its mouth bank (painted interior), to see what the bank adds
            nobank = save_avatar(replace(av, bank=MouthBank.empty()), tmp / "nobank.avatar")
            shared = save_avatar(replace(av, lips=None), tmp / "shared.avatar")
            for name, kw in (
                ("photo", {"face": photo}),
                ("avatar", {"face": None, "avatar": avatar}),
                ("avatar_nobank", {"face": None, "avatar": nobank}),
                ("avatar_shared", {"face": None, "avatar": shared}),
            ):
                if name == "avatar_shared" and av.lips is None:
                    continue  # the adaptation kept the shared layer: the same video as "avatar"
                face = kw.pop("face")
                out = generate(
                    face, second, tmp / f"{name}.mp4", animator=animator, size=size, fps=info.fps, seed=args.seed, **kw
                )
                figs = mouth_figures(second, out, lp)
                ev = evaluate(out, reference=second, audio=second)
                figs.update(lmd=ev["lmd"], identity=ev["identity_distance"])
                row.update({f"{k}_{name}": (round(v, 4) if isinstance(v, float) else v) for k, v in figs.items()})
            rows.append(row)
            print(json.dumps(row), flush=True)
        print(f"{len(rows)} clips: avatar from the first half speaking the second half, vs the real second half")
        for key in ("mouth_ssim", "mouth_lpips", "mouth_r", "lmd", "identity"):
            for name in ("photo", "avatar", "avatar_nobank", "avatar_shared"):
                v = np.array([r[f"{key}_{name}"] for r in rows if r.get(f"{key}_{name}") is not None], float)
                if len(v):
                    print(f"{key} {name}: mean {v.mean():.4f} ({', '.join(f'{x:.4f}' for x in v)})")
        # build speed: the longest clip and the largest-resolution validation clip, each played to ~60 s
        everything = sorted(corpus.glob("*.mp4"))
        largest = max(everything, key=lambda c: (probe_video(c).width * probe_video(c).height, c.name))
        for clip in dict.fromkeys([max(clips, key=lambda c: probe_video(c).duration), largest]):
            dur = probe_video(clip).duration
            reps = int(np.ceil(60.0 / dur))
            minute = cut(clip, 0.0, min(dur, 60.0 / reps), tmp / "minute.mp4", repeat=reps)
            t = time.perf_counter()
            build_avatar(minute, tmp / "minute.avatar")
            mi = probe_video(minute)
            print(
                f"build time for a {mi.duration:.1f} s clip ({clip.stem}, {mi.width}x{mi.height}, "
                f"{mi.fps:g} fps): {time.perf_counter() - t:.1f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
