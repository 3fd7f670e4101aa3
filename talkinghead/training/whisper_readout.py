"""Fit the Whisper readout of `--lips whisper` (models/whisper_readout.py): ridge regression in closed form.

For every training clip of a prepared cache, the Whisper-base encoder states at each video frame
(`frame_features`, each clip's mean state subtracted first) are regressed onto the lips model's own PCA
coefficients of the real mouth motion (divided by their std), frames of the varied (non-GRID) speakers weighted
up, so the one studio speaker does not dominate.
Validation clips (`val__*`) are never read. Deterministic: the same cache gives the same file.
Needs the `[whisper]` extra. Encoder states are cached as float16 .npy files in `states` (scratch; default a
folder in the system's temporary directory), so a refit with other options does not run the encoder again.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from talkinghead.errors import InputError
from talkinghead.models.whisper_readout import frame_features
from talkinghead.training.mouth_data import Clip, load_clip
from talkinghead.weights import load_model, resolve, sha256


@dataclass(frozen=True)
class ReadoutOptions:
    alpha: float = 1000.0  # ridge strength (the fit is insensitive to it over 100-10000: RESULTS.md)
    varied_weight: float = 5.0  # weight of a varied speaker's frame against a GRID frame
    context: int = 0  # video frames each side whose states join the frame's own
    centre: bool = True  # states minus the clip's own mean state (per-recording normalisation), as at inference
    lips_share: float = 0.5  # the lips model's weight in the average `--lips whisper` makes


def clip_states(path: Path, clip: Clip, states: Path) -> np.ndarray:
    """(n_mel, 512) encoder states of a prepared clip, cached in `states` as float16."""
    from talkinghead.audio.whisper import whisper_states

    side = states / f"{path.stem}.npy"
    if side.exists():
        return np.load(side).astype(np.float32)
    out = whisper_states(clip.samples)
    np.save(side, out.astype(np.float16))
    return out


def normal_equations(
    data: Path,
    lips: str,
    states: Path,
    context: int,
    centre: bool,
    weight: Callable[[Clip], float],
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """(X'WX, X'WY, frames) over the training clips: X = `frame_features`, Y = real motion coefficients / std."""
    model = load_model("lips", lips)
    t = model.weights.tensors
    basis, std = t["pca_components"].double().numpy(), t["pca_std"].double().numpy()
    paths = sorted(p for p in data.glob("*.npz") if not p.name.startswith("val__"))
    if not paths:
        raise InputError(f"{data} holds no prepared training clips; run `talkinghead prepare` first.")
    xtx: np.ndarray | None = None
    xty: np.ndarray | None = None
    frames = 0
    for k, path in enumerate(paths):
        clip = load_clip(path, t["reference"].numpy())
        if progress:
            progress(k + 1, len(paths))
        if clip is None:
            continue
        v = clip.valid
        s = clip_states(path, clip, states)
        x = frame_features(s - s.mean(axis=0) if centre else s, len(v), clip.fps, context)[v].astype(np.float64)
        y = clip.offsets[v].reshape(int(v.sum()), -1).astype(np.float64) @ basis.T / std
        xw = x * weight(clip)
        xtx = xw.T @ x if xtx is None else xtx + xw.T @ x
        xty = xw.T @ y if xty is None else xty + xw.T @ y
        frames += int(v.sum())
    assert xtx is not None and xty is not None
    return xtx, xty, frames


def solve(xtx: np.ndarray, xty: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge solution; the bias (last feature) is not shrunk."""
    reg = alpha * np.eye(len(xtx))
    reg[-1, -1] = 0.0
    return np.linalg.solve(xtx + reg, xty)


def fit_readout(
    data: Path,
    out: Path,
    opts: ReadoutOptions | None = None,
    lips: str = "lips",
    states: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    command: str = "",
) -> Path:
    """Fit the readout on `data`'s training clips and write it to `out` (safetensors, atomically)."""
    from talkinghead.audio.whisper import MODEL_SHA256

    opts = opts or ReadoutOptions()
    states = states or Path(tempfile.gettempdir()) / "talkinghead_whisper_states"
    states.mkdir(parents=True, exist_ok=True)
    xtx, xty, frames = normal_equations(
        data, lips, states, opts.context, opts.centre, lambda c: opts.varied_weight if c.varied else 1.0, progress
    )
    matrix = solve(xtx, xty, opts.alpha)
    w = load_model("lips", lips).weights
    tensors = {
        "readout": torch.from_numpy(matrix.astype(np.float32)),
        "pca_components": w.tensors["pca_components"].float().contiguous(),
        "pca_std": w.tensors["pca_std"].float().contiguous(),
        "mouth_indices": w.tensors["mouth_indices"].contiguous(),
    }
    metadata = {
        "format": "talkinghead-whisper-readout-1",
        "command": command,
        "options": json.dumps(opts.__dict__),
        "context": str(opts.context),
        "centre": "true" if opts.centre else "false",
        "lips_share": str(opts.lips_share),
        "frames": str(frames),
        "lips_sha256": sha256(resolve(lips)),  # the lips file whose basis and training targets it shares
        "whisper_sha256": MODEL_SHA256,
    }
    tmp = out.with_name(out.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(out)
    return out
