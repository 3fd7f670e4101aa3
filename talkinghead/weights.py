"""Named registry of the weights shipped inside the package.

Each entry is a safetensors file under talkinghead/weights/ with its sha256, so a corrupted or
swapped file is caught at load time instead of producing silently wrong video. The file's metadata
holds the model's sizes and the exact command that trained it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from talkinghead.errors import TalkingHeadError

WEIGHTS_DIR = Path(__file__).parent / "weights"

# name -> (file name, sha256). Update the hash with `python -m talkinghead.weights FILE` after retraining.
REGISTRY: dict[str, tuple[str, str]] = {
    "emotions": ("emotions.safetensors", "2e1205833344afa85395c338e939aaba3b6721e5edf4df89d5267b2eda469bd5"),
    "sync": ("sync.safetensors", "4031c55b44b5a00ae6240bc18c6d1ae5f4ad228ca5b43408b01855f295248e6d"),
    "lips": ("lips.safetensors", "7f2cada2196cc3a0cf1e7aa1a236158166de2f0bfe6bd7a4199e07507349baed"),
    "motion": ("motion.safetensors", "7ce24f18f331288d15173306add0ae40afb1402fd4a546f925931484f48d7f51"),
}


@dataclass(frozen=True)
class Weights:
    tensors: dict[str, torch.Tensor]
    metadata: dict[str, str]

    def json(self, key: str) -> dict:
        return json.loads(self.metadata[key])


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve(name_or_path: str | Path) -> Path:
    """The file behind a registered name, or the path itself."""
    if str(name_or_path) in REGISTRY:
        return WEIGHTS_DIR / REGISTRY[str(name_or_path)][0]
    return Path(name_or_path)


def load_weights(name_or_path: str | Path) -> Weights:
    """Load a registered name (checked against its sha256) or an explicit .safetensors path."""
    if str(name_or_path) in REGISTRY:
        fname, digest = REGISTRY[str(name_or_path)]
        path = WEIGHTS_DIR / fname
        if not path.exists():
            raise TalkingHeadError(f"The built-in weights '{name_or_path}' are missing ({path}); reinstall talkinghead.")
        if digest and sha256(path) != digest:
            raise TalkingHeadError(f"The built-in weights file {path} is corrupted (sha256 mismatch); reinstall talkinghead.")
    else:
        path = Path(name_or_path)
        if not path.exists():
            raise TalkingHeadError(f"Weights file {path} does not exist.")
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = dict(f.metadata() or {})
    return Weights(tensors, metadata)


if __name__ == "__main__":  # print the hash to paste into REGISTRY
    import sys

    for arg in sys.argv[1:]:
        print(sha256(Path(arg)), arg)
