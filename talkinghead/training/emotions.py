"""`talkinghead train emotion`: expression offsets from labelled clips (MEAD naming).

For each actor, the mean canonical face of each emotion clip minus the mean of the actor's neutral
clips; averaged over actors. Speech in the clips averages out over their length, so what remains is how
the emotion reshapes the face (mouth corners, brows, eyes) — an offset that can be added to any face.
Clip names: mead_<actor>_<emotion>_level<k>_<n> (prepared with `talkinghead prepare`).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from talkinghead.face.mouth_motion import to_canonical

_NAME = re.compile(r"mead_(?P<actor>[^_]+)_(?P<emotion>[a-z]+)_level(?P<level>\d)_\d+")


def emotion_offsets(cache: Path, reference: np.ndarray) -> dict[str, np.ndarray]:
    """emotion -> (478, 3) canonical offset from neutral; 'neutral' itself is zero."""
    means: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
    for path in sorted(cache.glob("*.npz")):
        m = _NAME.search(path.stem)
        if not m:
            continue
        with np.load(path) as z:
            canon, valid = to_canonical(z["points"], reference)
        if valid.sum() < 10:
            continue
        means[(m["actor"], m["emotion"])].append(canon[valid].mean(axis=0))
    actors = {a for a, e in means if e == "neutral"}
    if not actors:
        raise ValueError(f"no neutral clips (mead_<actor>_neutral_...) in {cache}")
    per_emotion: dict[str, list[np.ndarray]] = defaultdict(list)
    for (actor, emotion), shapes in means.items():
        if actor in actors and emotion != "neutral":
            per_emotion[emotion].append(np.mean(shapes, axis=0) - np.mean(means[(actor, "neutral")], axis=0))
    out = {e: np.mean(v, axis=0).astype(np.float32) for e, v in sorted(per_emotion.items())}
    out["neutral"] = np.zeros_like(next(iter(out.values())))
    return out


def train_emotions(cache: Path, out: Path, command: str) -> list[str]:
    """Write the offsets to `out` (safetensors) and return the emotion names."""
    from safetensors.torch import save_file

    from talkinghead.weights import load_weights

    reference = load_weights("lips").tensors["reference"].numpy()
    offsets = emotion_offsets(cache, reference)
    names = sorted(offsets)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {"offsets": torch.from_numpy(np.stack([offsets[n] for n in names]))},
        str(out),
        metadata={"names": json.dumps(names), "command": command, "format": "talkinghead-emotions-1"},
    )
    return names
