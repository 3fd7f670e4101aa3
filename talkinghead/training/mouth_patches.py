"""Real mouth interiors for `talkinghead train mouth`: patches cut from the corpus videos.

For each prepared clip (landmarks from `talkinghead prepare`) the video is decoded again and, on frames
whose lips are apart, the mouth-centred patch of render/learned_mouth.py is cut out with its inputs:
the inner-lip shape maps and the face's colours. Patches stay in memory (or a scratch .npz): they are
corpus pixels and never belong in the repository.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from talkinghead.face.indices import inter_ocular
from talkinghead.media import iter_frames
from talkinghead.models.mouth import MouthConfig
from talkinghead.render.learned_mouth import face_colours, mouth_gap, patch_transform, shape_maps

MIN_GAP = 0.04  # inner-lip gap / inter-ocular of the frames kept (clearly open)


def video_for(cache_file: Path, videos: Path) -> Path:
    """The corpus video a prepared file came from (`train__grid_s1_x.npz` -> videos/train/grid_s1_x.mp4)."""
    return videos.joinpath(*cache_file.stem.split("__")).with_suffix(".mp4")


def cut_patch(frame: np.ndarray, points: np.ndarray, cfg: MouthConfig) -> np.ndarray:
    """The mouth patch (H, W, 3 uint8) of a frame, blurred first when shrunk so it does not alias."""
    m = patch_transform(points, cfg)
    scale = float(np.hypot(m[0, 0], m[0, 1]))
    src = frame
    if scale < 0.7:
        src = cv2.GaussianBlur(frame, (0, 0), 0.45 / scale)
    return cv2.warpAffine(src, m, (cfg.patch_w, cfg.patch_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def clip_patches(
    cache_file: Path, videos: Path, cfg: MouthConfig, limit: int, rng: np.random.Generator
) -> dict[str, np.ndarray] | None:
    """Up to `limit` open-mouth samples of one clip: targets (N,H,W,3 uint8), shapes (N,4,H,W float16),
    colours (N,6); None when the video is missing or nothing is open."""
    video = video_for(cache_file, videos)
    if not video.is_file():
        return None
    points = np.load(cache_file)["points"]
    ok = ~np.isnan(points).any(axis=(1, 2))
    gaps = np.array([mouth_gap(p) / max(inter_ocular(p), 1e-6) if v else 0.0 for p, v in zip(points, ok)])
    open_idx = np.flatnonzero(ok & (gaps > MIN_GAP))
    if len(open_idx) == 0:
        return None
    chosen = set(np.sort(rng.choice(open_idx, size=min(limit, len(open_idx)), replace=False)).tolist())
    targets, shapes, colours = [], [], []
    for k, (_, frame) in enumerate(iter_frames(video)):
        if k in chosen:
            p = points[k]
            targets.append(cut_patch(frame, p, cfg))
            shapes.append(shape_maps(p, patch_transform(p, cfg), cfg).astype(np.float16))
            colours.append(face_colours(frame, p))
        if k >= max(chosen):
            break
    if not targets:
        return None
    return {"targets": np.stack(targets), "shapes": np.stack(shapes), "colours": np.stack(colours)}


def collect(
    cache_files: list[Path],
    videos: Path,
    cfg: MouthConfig,
    per_clip: int,
    per_grid_clip: int,
    seed: int,
    log: Callable[[str], None] = print,
) -> dict[str, np.ndarray]:
    """Samples of every clip, concatenated, with `clip` (index into cache_files) per sample."""
    rng = np.random.default_rng(seed)
    parts: list[dict[str, np.ndarray]] = []
    for i, f in enumerate(cache_files):
        limit = per_grid_clip if "grid_" in f.name else per_clip
        got = clip_patches(f, videos, cfg, limit, rng)
        if got is not None:
            got["clip"] = np.full(len(got["targets"]), i, np.int32)
            parts.append(got)
        if (i + 1) % 100 == 0 or i + 1 == len(cache_files):
            log(f"patches: {i + 1}/{len(cache_files)} clips, {sum(len(p['targets']) for p in parts)} samples")
    if not parts:
        raise ValueError(f"no open mouths found in the clips of {videos} that the cache names")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
