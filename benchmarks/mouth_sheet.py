"""Contact sheet of photo mode's open mouths: teeth | painted | learned | hybrid, on the demo face at 150, 400 and
1000 px wide and on a darkened copy of it (a darker skin under the same light).

Only the repository's own face is shown (corpus faces may not be redistributed); the comparison with
real mouths is in numbers (benchmarks/mouth_quality.py). Each row is one face speaking the demo speech
(--still, seed 0); the two column groups are a half-open and the widest-open frame, cropped round the
lips and scaled to the same tile size (small faces enlarged, as a viewer zooming in would see them).
Run: .venv/bin/python benchmarks/mouth_sheet.py -o docs/mouths.png
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from talkinghead.config import GenerateOptions
from talkinghead.face.indices import LOWER_OUTER_LIP, UPPER_OUTER_LIP, inter_ocular
from talkinghead.media import load_audio, load_image
from talkinghead.motion.compose import target_points
from talkinghead.pipeline import DEMO_AUDIO, DEMO_FACE, Animator
from talkinghead.render.learned_mouth import mouth_gap

TILE = 192
MODES = ("teeth", "painted", "learned", "hybrid")


def crop(frame: np.ndarray, pts: np.ndarray) -> np.ndarray:
    lips = pts[UPPER_OUTER_LIP + LOWER_OUTER_LIP, :2].astype(np.float64)
    c = (lips.min(0) + lips.max(0)) / 2
    side = 1.7 * float(np.linalg.norm(lips[0] - lips[len(UPPER_OUTER_LIP) - 1]))
    s = side / TILE
    m = np.array([[s, 0, c[0] - side / 2], [0, s, c[1] - side / 2]])
    interp = cv2.INTER_AREA if s > 1 else cv2.INTER_CUBIC
    return cv2.warpAffine(frame, m, (TILE, TILE), flags=interp | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)


def label(img: np.ndarray, *lines: str) -> np.ndarray:
    out = img.copy()
    for i, text in enumerate(lines):
        for colour, thick in (((0, 0, 0), 3), ((255, 255, 255), 1)):
            cv2.putText(out, text, (6, 16 + 16 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, thick, cv2.LINE_AA)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", "--out", type=Path, default=Path("docs/mouths.png"))
    args = ap.parse_args()
    face = load_image(DEMO_FACE)
    speech = load_audio(DEMO_AUDIO, sample_rate=16000, mono=True).samples[: 16000 * 6]
    opts = GenerateOptions(still=True, watermark=False)
    n = int(len(speech) / 16000 * opts.fps)
    anim = Animator()
    dark = np.clip(face.astype(np.float32) * [0.42, 0.32, 0.27], 0, 255).astype(np.uint8)
    rows = []
    for name, img, width in (
        ("150 px", face, 150),
        ("400 px", face, 400),
        ("1000 px", face, 1000),
        ("dark, 400 px", dark, 400),
    ):
        small = cv2.resize(img, (width, round(img.shape[0] * width / img.shape[1])), interpolation=cv2.INTER_AREA)
        anim.set_source(small)
        motion = anim.motion(speech, n, opts)
        fc = anim._prepared()
        tgts = [
            target_points(
                fc.source,
                fc.neutral,
                anim.mouth.geometry.indices,
                motion.mouth[k],
                float(motion.lids[k]),
                motion.pose[k],
            )
            for k in range(n)
        ]
        gaps = np.array([mouth_gap(t) / inter_ocular(t) for t in tgts])
        wide = int(np.argmax(gaps))
        half = int(np.argmin(np.abs(gaps - gaps[wide] / 2)))
        frames = {m: list(anim.render(motion, replace(opts, mouth=m))) for m in MODES}
        tiles = []
        for k, what in ((half, "half open"), (wide, "wide open")):
            for m in MODES:
                tiles.append(label(crop(frames[m][k], tgts[k]), name, f"{what}: {m}"))
        rows.append(np.concatenate(tiles, 1))
    sheet = np.concatenate(rows, 0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.stem + ".tmp.png")
    cv2.imwrite(str(tmp), sheet[..., ::-1])
    tmp.replace(args.out)
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    main()
