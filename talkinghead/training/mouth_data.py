"""Turns prepared clips into (audio windows, mouth-motion targets) for the lips model.

Targets are mouth/jaw landmark offsets in the canonical frame (see face/mouth_motion.py), comparable
across faces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkinghead.audio.features import log_mel
from talkinghead.face.canonical import generalized_procrustes
from talkinghead.face.mouth_motion import mouth_offsets


@dataclass
class Clip:
    name: str
    fps: float
    mel: np.ndarray  # (M, 80) raw log-mel (normalise after augmenting)
    offsets: np.ndarray  # (T, len(MOUTH_JAW), 2) canonical offsets from closed mouth
    valid: np.ndarray  # (T,) bool: face found
    opening: np.ndarray  # (T,) inner-lip gap / inter-ocular (canonical units)
    samples: np.ndarray  # (n,) float32 16 kHz
    varied: bool  # not GRID: a rarer speaker, up-weighted
    emb: np.ndarray | None = None  # (M, 96) speech embedding, when the model uses it


def load_raw(path: Path) -> dict[str, np.ndarray] | None:
    with np.load(path) as z:
        if "audio" not in z.files:
            return None
        return {k: z[k] for k in z.files}


def reference_shape(paths: list[Path], max_clips: int = 300) -> np.ndarray:
    """Canonical reference: generalised Procrustes mean of the first valid frame of many clips."""
    shapes = []
    step = max(1, len(paths) // max_clips)
    for p in paths[::step]:
        raw = load_raw(p)
        if raw is None:
            continue
        pts = raw["points"]
        ok = ~np.isnan(pts[:, 0, 0])
        if ok.any():
            shapes.append(pts[np.argmax(ok)])
    return generalized_procrustes(np.stack(shapes))


def clip_embedding(path: Path, samples: np.ndarray, kind: str = "speech") -> np.ndarray:
    """Speech embedding ("speech") or Whisper states ("whisper") of a prepared clip, cached beside it."""
    from talkinghead.motion.mouth import embedding_features

    side = path.with_name(path.stem + (".emb.npy" if kind == "speech" else f".{kind}.npy"))
    if side.exists():
        return np.load(side).astype(np.float32)
    emb = embedding_features(samples, kind)
    np.save(side, emb.astype(np.float16))
    return emb


def load_clip(path: Path, reference: np.ndarray, embedding: bool | str = False) -> Clip | None:
    """One prepared clip; `embedding` = True / "speech" or "whisper" also loads those features."""
    raw = load_raw(path)
    if raw is None:
        return None
    offsets, valid, opening = mouth_offsets(raw["points"], reference)
    if valid.sum() < 10:
        return None
    samples = raw["audio"].astype(np.float32) / 32768.0
    return Clip(
        name=path.stem,
        fps=float(raw["fps"]),
        mel=log_mel(samples),
        offsets=offsets,
        valid=valid,
        opening=opening,
        samples=samples,
        varied=not path.stem.split("__")[-1].startswith("grid"),
        emb=clip_embedding(path, samples, "speech" if embedding is True else embedding) if embedding else None,
    )


def fit_pca(clips: list[Clip], n_coeffs: int, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mouth-motion basis (n_coeffs, M*2) and the per-coefficient std, from valid frames."""
    rows, w = [], []
    for i, c in enumerate(clips):
        x = c.offsets[c.valid].reshape(int(c.valid.sum()), -1)
        rows.append(x)
        w.append(np.full(len(x), 1.0 if weights is None else weights[i] / max(len(x), 1)))
    x = np.concatenate(rows)
    wt = np.concatenate(w)
    wt = wt / wt.sum()
    cov = (x * wt[:, None]).T @ x  # offsets are already centred on "closed", keep zero = closed
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1][:n_coeffs]
    comps = vecs[:, order].T.astype(np.float32)
    # sign convention: the first component opens the mouth
    std = np.sqrt(vals[order]).astype(np.float32)
    return comps, std


def opening_direction(clips: list[Clip]) -> np.ndarray:
    """Least-squares offset per unit of mouth opening: used to close a photo whose mouth is open."""
    x = np.concatenate([c.offsets[c.valid].reshape(int(c.valid.sum()), -1) for c in clips])
    g = np.concatenate([c.opening[c.valid] - np.percentile(c.opening[c.valid], 10) for c in clips])
    return (g @ x / max(float(g @ g), 1e-9)).astype(np.float32)
