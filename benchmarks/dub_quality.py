"""Dubbing quality on the validation clips (needs ../shared/data).

Each clip is dubbed twice: with its own audio (the output should look like the original: whole-frame
SSIM, and the mouth should move like the real speaker's: Pearson r of the inner-lip gap, re-measured
with the face mesh), and with another clip's speech (the mouth should now follow the new speech and
no longer the original: our expert's sync confidence against each audio, and r with the real mouth,
next to the r between the two real speakers as a baseline, and r with the new speech's own real mouth).
Run: .venv/bin/python benchmarks/dub_quality.py [--grid 10]

--mouth: only the own-audio dubs, each made twice, with the speaker's own mouth interiors (the mouth
bank) and with the painted interior alone (the renderer before the bank); for each, whole-frame SSIM and
the SSIM and LPIPS (with the [quality] extra) of a mouth crop against the real video: a square box 1.6x
the real outer-lip width round the real lips, scaled to 96 px.
Run: .venv/bin/python benchmarks/dub_quality.py --mouth [--grid 4] [--lrcar 4] [--corpus DIR] [--tinted]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from talkinghead import dubbing
from talkinghead.audio.features import log_mel, normalize
from talkinghead.dubbing import dub
from talkinghead.face.indices import LOWER_OUTER_LIP, UPPER_OUTER_LIP
from talkinghead.face.mouth_motion import mouth_offsets
from talkinghead.face.track import track_video
from talkinghead.media import iter_frames, load_audio, probe_video
from talkinghead.metrics.image import ssim
from talkinghead.metrics.mouth import measure_track
from talkinghead.metrics.sync import SyncExpert, similarity_map, sync_from_map

sys.path.insert(0, str(Path(__file__).parent))
from eval_lips import CORPUS, pearson


def frame_ssim(a: Path, b: Path) -> float:
    """Mean whole-frame SSIM over the frames both videos have."""
    return float(np.mean([ssim(x, y) for (_, x), (_, y) in zip(iter_frames(a), iter_frames(b))]))


def sync(expert: SyncExpert, track, audio: Path, fps: float) -> tuple[int, float]:
    offsets, valid, _ = mouth_offsets(track.points, expert.reference)
    s = sync_from_map(similarity_map(expert.net, normalize(log_mel(load_audio(audio).samples)), offsets, fps), valid)
    return s.offset_frames, s.confidence


CROP = 96  # mouth crops are compared at this size


class _PaintedOnly:
    """The renderer before the mouth bank: the painted interior on every open mouth (teeth tinted by
    the light, as the bank's fallback paints them, with --tinted)."""

    tinted = False

    def __init__(self, bank) -> None:
        pass

    def __call__(self, rgb, source, target, iod, tone) -> None:
        from talkinghead.render.mouth_interior import light_tint, paint_mouth

        paint_mouth(rgb, target, iod, tone, light_tint(rgb, target) if self.tinted else None)


def mouth_crop(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    """A square box 1.6x the outer-lip width round the (real) lips, scaled to CROP px."""
    lips = points[UPPER_OUTER_LIP + LOWER_OUTER_LIP, :2].astype(np.float64)
    c = (lips.min(0) + lips.max(0)) / 2
    side = 1.6 * float(np.linalg.norm(lips[0] - lips[len(UPPER_OUTER_LIP) - 1]))
    s = side / CROP
    m = np.array([[s, 0, c[0] - side / 2], [0, s, c[1] - side / 2]])
    return cv2.warpAffine(
        frame, m, (CROP, CROP), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )


def mouth_scores(real: Path, fake: Path, points: np.ndarray, lp) -> dict[str, float]:
    """Whole-frame SSIM, mouth-crop SSIM and LPIPS of `fake` against `real` (boxes from the real lips)."""
    whole, crops = [], []
    for k, ((_, x), (_, y)) in enumerate(zip(iter_frames(real), iter_frames(fake))):
        whole.append(ssim(x, y))
        if k < len(points) and not np.isnan(points[k, 0, 0]):
            crops.append((mouth_crop(x, points[k]), mouth_crop(y, points[k])))
    out = {"ssim": float(np.mean(whole)), "mouth_ssim": float(np.mean([ssim(a, b) for a, b in crops]))}
    if lp is not None:
        out["mouth_lpips"] = float(np.mean(lp.distances(crops)))
    return out


def mouth_main(args: argparse.Namespace) -> None:
    from talkinghead.metrics import quality

    clips = sorted(Path(args.corpus).glob("*.mp4"))
    grid = [c for c in clips if c.name.startswith("grid")]
    lrcar = [c for c in clips if c.name.startswith("lrcar")]
    others = [c for c in clips if not c.name.startswith(("grid", "lrcar"))]
    chosen = (
        grid[:: max(1, len(grid) // max(args.grid, 1))][: args.grid]
        + lrcar[:: max(1, len(lrcar) // max(args.lrcar, 1))][: args.lrcar]
        + others
    )
    lp = quality.Lpips() if quality.lpips_available() else None
    print(f"{len(chosen)} clips; LPIPS {'on' if lp else 'off (install the [quality] extra)'}", flush=True)
    rows = []
    bank_painter = dubbing.MouthPainter
    with tempfile.TemporaryDirectory() as d:
        for clip in chosen:
            points = track_video(clip).points
            row: dict[str, object] = {"clip": clip.stem}
            for name, painter in (("painted", _PaintedOnly), ("bank", bank_painter)):
                dubbing.MouthPainter = painter
                try:
                    out = dub(clip, clip, Path(d) / f"{name}.mp4")
                finally:
                    dubbing.MouthPainter = bank_painter
                row.update({f"{k}_{name}": v for k, v in mouth_scores(clip, out.path, points, lp).items()})
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"{len(rows)} clips, own-audio dubs against the real video (mean, min):")
    for key in ("ssim", "mouth_ssim", "mouth_lpips"):
        for name in ("painted", "bank"):
            v = np.array([r[f"{key}_{name}"] for r in rows if f"{key}_{name}" in r])
            if len(v):
                print(f"{key} {name}: mean {v.mean():.4f}, min {v.min():.4f}, max {v.max():.4f}")
    better = np.mean([r["mouth_ssim_bank"] > r["mouth_ssim_painted"] for r in rows])
    print(f"mouth SSIM better with the bank on {100 * better:.0f} % of clips")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", type=int, default=10, help="how many GRID clips (all non-GRID clips are used)")
    ap.add_argument("--mouth", action="store_true", help="mouth-crop SSIM/LPIPS, painted vs the mouth bank")
    ap.add_argument("--lrcar", type=int, default=4, help="--mouth: how many LRC-AR clips")
    ap.add_argument("--corpus", default=str(CORPUS), help="folder of validation clips")
    ap.add_argument("--tinted", action="store_true", help="--mouth: the painted baseline with light-tinted teeth")
    args = ap.parse_args()
    _PaintedOnly.tinted = args.tinted
    if args.mouth:
        mouth_main(args)
        return
    clips = sorted(CORPUS.glob("*.mp4"))
    grid = [c for c in clips if c.name.startswith("grid")]
    chosen = grid[:: max(1, len(grid) // args.grid)][: args.grid] + [c for c in clips if not c.name.startswith("grid")]
    expert = SyncExpert()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for k, clip in enumerate(chosen):
            other = chosen[(k + 1) % len(chosen)]
            fps = probe_video(clip).fps
            real = track_video(clip)
            real_mouth = measure_track(real).mouth
            other_mouth = measure_track(track_video(other)).mouth
            own = dub(clip, clip, Path(d) / "own.mp4")
            own_track = track_video(own.path)
            new = dub(clip, other, Path(d) / "new.mp4", rest="trim", loop="pingpong")
            new_track = track_video(new.path)
            n = min(len(real_mouth), len(new_track.times))  # the dub may add a frame where the audio is longer
            m = min(len(real_mouth), len(own_track.times))
            row = {
                "clip": clip.stem,
                "ssim_own": frame_ssim(clip, own.path),
                "r_own": pearson(measure_track(own_track).mouth[:m], real_mouth[:m]),
                "r_new_vs_real_mouth": pearson(measure_track(new_track).mouth[:n], real_mouth[:n]),
                # baseline: how alike two real speakers' mouths are when they say different things
                "r_other_real_vs_real_mouth": pearson(
                    other_mouth[: min(n, len(other_mouth))], real_mouth[: min(n, len(other_mouth))]
                ),
                "r_new_vs_new_real_mouth": pearson(
                    measure_track(new_track).mouth[: min(n, len(other_mouth))], other_mouth[: min(n, len(other_mouth))]
                ),
                "real_sync": sync(expert, real, clip, fps),
                "own_sync": sync(expert, own_track, clip, fps),
                "new_sync_new_audio": sync(expert, new_track, other, fps),
                "new_sync_old_audio": sync(expert, new_track, clip, fps),
                "dubbed_share": own.dubbed / max(own.frames, 1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"{len(rows)} clips")
    for key in (
        "ssim_own",
        "r_own",
        "r_new_vs_real_mouth",
        "r_other_real_vs_real_mouth",
        "r_new_vs_new_real_mouth",
        "dubbed_share",
    ):
        v = np.array([r[key] for r in rows])
        print(f"{key}: mean {v.mean():.3f}, min {v.min():.3f}")
    conf_new = np.array([r["new_sync_new_audio"][1] for r in rows])
    conf_old = np.array([r["new_sync_old_audio"][1] for r in rows])
    print(
        f"dubbed with other speech: expert confidence vs new audio {conf_new.mean():.3f}, vs original audio "
        f"{conf_old.mean():.3f}; new > original on {100 * np.mean(conf_new > conf_old):.0f} % of clips"
    )
    for key in ("real_sync", "own_sync", "new_sync_new_audio"):
        off = np.array([r[key][0] for r in rows])
        print(
            f"{key}: |offset| <= 1 on {100 * np.mean(np.abs(off) <= 1):.0f} %, mean confidence "
            f"{np.mean([r[key][1] for r in rows]):.3f}"
        )


if __name__ == "__main__":
    main()
