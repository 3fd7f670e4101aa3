"""Articulation adaptation of avatars against clip length: 5 s, 30 s and 2 min of one person (needs ../shared/data).

The corpus has no single long clip, so a person's footage is their validation clips of one identity
(MANIFEST.tsv) in name order: GRID speaker s1 (100 clips, 5 min; a speaker the lips model was trained on,
with unseen sentences) and the LRC-AR validation presenters with the most clips (about 48 s each; unseen
by the model). The last clips of each person are held out (never used to adapt); the avatar's
adaptation (talkinghead/avatar/adapt.py, with its own held-out tail inside the fitted part) runs on the
first 5 s / 30 s / 2 min of the rest, whole clips, as far as the footage goes.

Figures on the held-out clips, from the motion (no rendering): the filmed mouth is the face mesh of the
real video in the canonical frame (offsets from each clip's closed mouth, as the lips model is trained);
r = Pearson r of the inner-lip gap pooled over the held-out frames; LMD = mean distance of the mouth and
jaw points, % of the inter-ocular distance (lower is better). Rows: the shared model; the shared model
times the avatar's gain (what a version-1 avatar did); the adapted model times its gain (version 2).
Run: nice -n 10 .venv/bin/python benchmarks/avatar_adaptation.py [--corpus DIR] [--tracks DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from eval_lips import pearson

from talkinghead.avatar.adapt import Segment, adapt_lips, with_head
from talkinghead.avatar.build import LIP_GAIN
from talkinghead.face.indices import LIP_BOTTOM, LIP_TOP
from talkinghead.face.mouth_motion import mouth_offsets, to_canonical
from talkinghead.motion.mouth import MouthModel

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PEOPLE = {  # identity -> clips held out at the end
    "GRID speaker s1": 50,
    "LRC-AR speaker 04": 12,
    "LRC-AR speaker 02": 12,
    "LRC-AR speaker 05": 12,
}
LENGTHS = (5.0, 30.0, 120.0)


@dataclass(frozen=True)
class Filmed:
    seg: Segment
    gaps: np.ndarray  # (T,) filmed inner-lip gap, NaN without a face
    seconds: float


def filmed(clip: Path, reference: np.ndarray, tracks: Path | None) -> Filmed:
    from talkinghead.face.track import track_video
    from talkinghead.media import load_audio, probe_video

    cached = tracks / f"{clip.stem}.npz" if tracks else None
    if cached is not None and cached.exists():
        with np.load(cached) as z:
            points, fps, audio = z["points"], float(z["fps"]), z["audio"]
    else:
        points, fps, audio = track_video(clip).points, probe_video(clip).fps, load_audio(clip).samples
        if cached is not None:
            np.savez(cached, points=points, fps=fps, audio=audio)
    offsets, valid, _ = mouth_offsets(points, reference)
    canon, _ = to_canonical(points, reference)
    gaps = np.where(valid, np.linalg.norm(canon[:, LIP_TOP, :2] - canon[:, LIP_BOTTOM, :2], axis=1), np.nan)
    return Filmed(Segment(audio.astype(np.float32), fps, offsets, valid), gaps, len(valid) / fps)


def predicted(model: MouthModel, f: Filmed) -> np.ndarray:
    return model.predict(f.seg.samples, len(f.seg.valid), f.seg.fps)


def gap(model: MouthModel, offsets: np.ndarray) -> np.ndarray:
    """Inner-lip gap of the closed reference face moved by `offsets` (what build.lip_gain measures)."""
    geo = model.geometry
    closed = geo.close(geo.reference)
    idx = list(geo.indices)
    top, bottom = idx.index(LIP_TOP), idx.index(LIP_BOTTOM)
    d = closed[LIP_TOP, :2] + offsets[:, top] - closed[LIP_BOTTOM, :2] - offsets[:, bottom]
    return np.linalg.norm(d, axis=1)


def gain(model: MouthModel, part: list[Filmed]) -> float:
    """The avatar's bounded articulation gain (build.lip_gain), pooled over the clips of `part`."""
    pred = np.concatenate([gap(model, predicted(model, f)) for f in part])
    real = np.concatenate([f.gaps for f in part])
    ok = np.isfinite(real)
    return float(np.clip(real[ok].std() / max(pred[ok].std(), 1e-6), *LIP_GAIN))


def figures(model: MouthModel, k: float, held: list[Filmed]) -> dict[str, float]:
    preds = [k * predicted(model, f) for f in held]
    v = np.concatenate([f.seg.valid for f in held])
    p, y = np.concatenate(preds)[v], np.concatenate([f.seg.offsets for f in held])[v]
    idx = list(model.geometry.indices)
    top, bottom = idx.index(LIP_TOP), idx.index(LIP_BOTTOM)
    r = pearson(p[:, bottom, 1] - p[:, top, 1], y[:, bottom, 1] - y[:, top, 1])
    lmd = float(np.linalg.norm(p - y, axis=2).mean() * 100)
    return {"r": round(r, 4), "lmd": round(lmd, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=str(DATA))
    ap.add_argument("--tracks", default="", help="folder to keep the clips' face tracks in between runs")
    args = ap.parse_args()
    root = Path(args.corpus)
    if not (root / "MANIFEST.tsv").is_file():
        print(f"skipped: no corpus at {root}")
        return
    tracks = Path(args.tracks) if args.tracks else None
    if tracks:
        tracks.mkdir(parents=True, exist_ok=True)
    with open(root / "MANIFEST.tsv") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["kind"] == "talking" and r["split"] == "val"]
    model = MouthModel()
    results = []
    for person, n_held in PEOPLE.items():
        clips = sorted(root / r["path"] for r in rows if r["identity"] == person and r["path"].endswith(".mp4"))
        if len(clips) <= n_held:
            continue
        footage = [filmed(c, model.geometry.reference, tracks) for c in clips]
        held, pool = footage[-n_held:], footage[:-n_held]
        base = figures(model, 1.0, held)
        for length in LENGTHS:
            part: list[Filmed] = []
            for f in pool:
                if sum(x.seconds for x in part) >= length:
                    break
                part.append(f)
            seconds = sum(x.seconds for x in part)
            if seconds < 0.8 * length:
                continue  # not that much footage of this person
            fitted = adapt_lips(model, [f.seg for f in part])
            adapted = with_head(model, fitted.adapter) if fitted.adapter is not None else model
            row = {
                "person": person,
                "asked_s": length,
                "seconds": round(seconds, 1),
                "held_out_s": round(sum(f.seconds for f in held), 1),
                "shared": base,
                "shared_gain": figures(model, gain(model, part), held),
                "adapted_gain": figures(adapted, gain(adapted, part), held),
                "adapted": fitted.adapter is not None,
                "report": fitted.report,
            }
            results.append(row)
            print(json.dumps(row), flush=True)
    print("\nperson | clip s | held-out s | r shared / x gain / adapted | LMD shared / x gain / adapted | adapted?")
    for r in results:
        s, g, a = r["shared"], r["shared_gain"], r["adapted_gain"]
        print(
            f"{r['person']} | {r['seconds']} | {r['held_out_s']} | {s['r']:.3f} / {g['r']:.3f} / {a['r']:.3f} | "
            f"{s['lmd']:.2f} / {g['lmd']:.2f} / {a['lmd']:.2f} | {r['report'].get('reason')}"
        )


if __name__ == "__main__":
    main()
