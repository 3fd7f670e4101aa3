"""One loader for every shipped network: a registry of the weights inside the package, and `load_model`.

Each weights file is safetensors: the network's tensors under `model.`, extra tensors beside them
(e.g. the lips model's reference face), and metadata with its `format` (`talkinghead-<kind>-<n>`), its
sizes (`config`, JSON) and the exact command that trained it. Shipped files are sha256-checked, so a
corrupted or swapped file is caught at load time instead of producing silently wrong video; a file
trained with `talkinghead train` loads the same way from its path and is checked for fitting the kind.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from safetensors import SafetensorError, safe_open

from talkinghead.errors import InputError, TalkingHeadError
from talkinghead.types import MouthGeometry

if TYPE_CHECKING:  # torch is imported where a network is built, not on import: `load_arrays` needs none
    import torch
    from torch import nn

WEIGHTS_DIR = Path(__file__).parent / "weights"

# name -> (file name, sha256). Update the hash with `python -m talkinghead.weights FILE` after retraining.
REGISTRY: dict[str, tuple[str, str]] = {
    "emotions": ("emotions.safetensors", "2e1205833344afa85395c338e939aaba3b6721e5edf4df89d5267b2eda469bd5"),
    "sync": ("sync.safetensors", "d4576059758c3d5728045d51430b1323bf7622b39a69ceae8cd33c16294f34f9"),
    "lips": ("lips.safetensors", "7f2cada2196cc3a0cf1e7aa1a236158166de2f0bfe6bd7a4199e07507349baed"),
    "motion": ("motion.safetensors", "7ce24f18f331288d15173306add0ae40afb1402fd4a546f925931484f48d7f51"),
    "mouth": ("mouth.safetensors", "1e7f28b835246ed397886e97cf75c30cb966797611bfed2ccfe1e53d0bcecd04"),
    "whisper-readout": (
        "whisper_readout.safetensors",
        "8e1ca709485f25df8ad0834d2165952f522625f3f83ed8f939bdcc5817af60c7",
    ),
}

WeightsRef = str | os.PathLike[str]  # a registered name ("lips") or a .safetensors path
N = TypeVar("N", bound="nn.Module")


@dataclass(frozen=True)
class Weights:
    tensors: dict[str, torch.Tensor]
    metadata: dict[str, str]

    def json(self, key: str) -> Any:
        return json.loads(self.metadata[key])


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve(name_or_path: WeightsRef) -> Path:
    """The file behind a registered name, or the path itself."""
    if str(name_or_path) in REGISTRY:
        return WEIGHTS_DIR / REGISTRY[str(name_or_path)][0]
    return Path(name_or_path)


def load_weights(name_or_path: WeightsRef) -> Weights:
    """Load a registered name (checked against its sha256) or an explicit .safetensors path."""
    tensors, metadata = _read(_checked_path(name_or_path), "pt")
    return Weights(tensors, metadata)


def load_arrays(name_or_path: WeightsRef, keys: tuple[str, ...], kind: str | None = None) -> dict[str, np.ndarray]:
    """Tensors `keys` of a weights file as numpy arrays, the file checked as `load_weights` checks it (and, with
    `kind`, refused if it is another kind of model, as `load_model` refuses it), without importing torch (a dub's
    tracking starts with the lips model's reference face while torch loads)."""
    tensors, metadata = _read(_checked_path(name_or_path), "np")
    if kind is not None:
        _check_kind(kind, name_or_path, metadata)
    missing = [k for k in keys if k not in tensors]
    if missing:
        raise InputError(f"The weights '{os.fspath(name_or_path)}' lack the tensors {', '.join(missing)}.")
    return {k: tensors[k] for k in keys}


def lips_geometry(name_or_path: WeightsRef = "lips") -> MouthGeometry:
    """The `MouthGeometry` a lips model's file holds (what `MouthModel.geometry` reads), without torch."""
    a = load_arrays(name_or_path, ("reference", "mouth_indices", "open_direction"), kind="lips")
    return MouthGeometry(
        reference=a["reference"],
        indices=a["mouth_indices"].astype(int),
        open_direction=a["open_direction"].reshape(-1, 2),
    )


def _checked_path(name_or_path: WeightsRef) -> Path:
    """The file of a registered name (present, sha256 as registered) or an explicit path (a file)."""
    if str(name_or_path) in REGISTRY:
        fname, digest = REGISTRY[str(name_or_path)]
        path = WEIGHTS_DIR / fname
        if not path.exists():
            raise TalkingHeadError(
                f"The built-in weights '{name_or_path}' are missing ({path}); reinstall talkinghead."
            )
        if digest and sha256(path) != digest:
            raise TalkingHeadError(
                f"The built-in weights file {path} is corrupted (sha256 mismatch); reinstall talkinghead."
            )
        return path
    path = Path(name_or_path)
    if not path.is_file():
        raise InputError(f"The weights file {path} does not exist.")
    return path


def _read(path: Path, framework: str) -> tuple[dict[str, Any], dict[str, str]]:
    try:
        with safe_open(str(path), framework=framework) as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
            metadata = dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"The weights file {path} is not a readable safetensors file ({exc}).") from None
    return tensors, metadata


@dataclass(frozen=True)
class _Kind:
    build: Callable[[dict[str, Any]], nn.Module] | None  # config dict -> untrained network; None: tensors only
    tensors: tuple[str, ...]  # tensors the file must hold beside the network's


def _lips(cfg: dict[str, Any]) -> nn.Module:
    from talkinghead.models.lips import LipsConfig, LipsNet

    return LipsNet(LipsConfig(**_known(LipsConfig, {**cfg, "dilations": tuple(cfg.get("dilations", ()))})))


def _motion(cfg: dict[str, Any]) -> nn.Module:
    from talkinghead.models.motion import MotionConfig, MotionModel

    return MotionModel(MotionConfig(**_known(MotionConfig, cfg)))


def _sync(cfg: dict[str, Any]) -> nn.Module:
    from talkinghead.models.sync import SyncConfig, SyncNet

    return SyncNet(SyncConfig(**_known(SyncConfig, cfg)))


def _mouth(cfg: dict[str, Any]) -> nn.Module:
    from talkinghead.models.mouth import MouthConfig, MouthNet

    return MouthNet(MouthConfig(**_known(MouthConfig, cfg)))


def _known(cls: type, cfg: dict[str, Any]) -> dict[str, Any]:
    """The config with only the dataclass's fields; an unknown key means a newer or foreign file."""
    names = {f.name for f in fields(cls)}
    extra = sorted(set(cfg) - names)
    if extra:
        raise ValueError(f"unknown config keys {extra}")
    return cfg


KINDS: dict[str, _Kind] = {
    "lips": _Kind(_lips, ("reference", "pca_components", "pca_std", "open_direction", "mouth_indices")),
    "motion": _Kind(_motion, ()),
    "sync": _Kind(_sync, ("reference",)),
    "emotions": _Kind(None, ("offsets",)),
    "mouth": _Kind(_mouth, ()),
    # `--lips whisper`: a linear map of Whisper-base states to mouth motion (models/whisper_readout.py)
    "whisper-readout": _Kind(None, ("readout", "pca_components", "pca_std", "mouth_indices")),
}


@dataclass(frozen=True)
class LoadedModel:
    """A network in eval mode (None for tensor-only kinds) and the file it came from."""

    net: nn.Module | None
    weights: Weights
    source: str

    def network(self, cls: type[N]) -> N:
        """The network, typed as the class the caller expects."""
        if not isinstance(self.net, cls):
            raise TypeError(f"{self.source} holds {type(self.net).__name__}, not {cls.__name__}")
        return self.net


def _check_kind(kind: str, ref: WeightsRef, metadata: dict[str, str]) -> None:
    """Refuse, with a sentence, a file whose metadata says it is another kind of model or another format version."""
    where = f"'{os.fspath(ref)}'"
    fmt = metadata.get("format", "")
    if fmt.rsplit("-", 1)[0] != f"talkinghead-{kind}":
        found = fmt.rsplit("-", 1)[0].removeprefix("talkinghead-") if fmt else "unknown"
        raise InputError(f"The weights {where} are not a {kind} model (their format is {found}).")
    if fmt != f"talkinghead-{kind}-1":
        raise InputError(f"The weights {where} have format {fmt}; this talkinghead reads talkinghead-{kind}-1.")


def load_model(kind: str, name_or_path: WeightsRef | None = None) -> LoadedModel:
    """The `kind` network ('lips', 'motion', 'sync', 'emotions', 'mouth') from the shipped weights or a trained file.

    A file of another kind, another format version or other sizes is refused with a sentence that says so.
    """
    spec = KINDS[kind]
    ref = kind if name_or_path is None else name_or_path
    w = load_weights(ref)
    where = f"'{os.fspath(ref)}'"
    _check_kind(kind, ref, w.metadata)
    missing = [t for t in spec.tensors if t not in w.tensors]
    if missing:
        raise InputError(f"The weights {where} lack the tensors {', '.join(missing)} that a {kind} model needs.")
    net = None
    if spec.build is not None:
        try:
            net = spec.build(w.json("config"))
            net.load_state_dict({k.removeprefix("model."): v for k, v in w.tensors.items() if k.startswith("model.")})
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise InputError(
                f"The weights {where} do not fit this talkinghead's {kind} model: {str(exc).splitlines()[0]}"
            ) from None
        net.eval()
    return LoadedModel(net, w, os.fspath(ref))


if __name__ == "__main__":  # print the hash to paste into REGISTRY
    import sys

    for arg in sys.argv[1:]:
        print(sha256(Path(arg)), arg)
