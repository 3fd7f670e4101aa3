"""The avatar file: one safetensors file, tensors plus JSON metadata under a versioned format name.

Tensors: `reference` (H, W, 3) uint8 RGB; the mouth bank (`mouth_crop`, `mouth_up`, `mouth_lo`,
`mouth_feat`, `mouth_surround`, absent when the clip never opened the mouth); `eyes_closed`
(2, EYE_H, EYE_W, 3) uint8, absent when no blink was filmed; `lips_head_weight`, `lips_head_bias`: the
lips model's output layer adapted to the person (avatar/adapt.py), absent when the adaptation fell back
to the shared model. Metadata: `format` (FORMAT) and `avatar` (JSON: source fingerprint, style, how the
reference was chosen, articulation report, creation time, talkinghead version). Version 1 files (no
adaptation) still load: their articulation is the gain alone, as when they were built.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.errors import InputError, OutputError, require_file
from talkinghead.render.mouth_bank import MouthBank

FORMAT = "talkinghead-avatar-2"
READABLE = {"talkinghead-avatar-1": 1, FORMAT: 2}  # format name -> version this talkinghead can read
_BANK = ("crop", "up", "lo", "feat", "surround")


@dataclass(frozen=True)
class AvatarStyle:
    """How the person moves: scales for the learned motion (1 = the model's own amplitude)."""

    pose_std: list[float]  # filmed head-pose std per axis (yaw, pitch, roll deg; x, y inter-ocular units)
    pose_scale: list[float]  # per-axis ratio of pose_std to the motion model's natural std, bounded
    blinks_per_min: float  # filmed blink rate, shrunk towards the usual rate for short clips
    lip_gain: float = 1.0  # articulation gain on the lips model's output, bounded (docs/AVATAR.md)


@dataclass(frozen=True)
class LipsAdapter:
    """The lips model's output layer fitted to the person's clip (avatar/adapt.py). It only fits the lips
    network it was fitted from: `lips` is that network's fingerprint (adapt.fingerprint)."""

    weight: np.ndarray  # (n_coeffs, width) float32
    bias: np.ndarray  # (n_coeffs,) float32
    lips: str


@dataclass(frozen=True)
class Avatar:
    reference: np.ndarray  # (H, W, 3) uint8 RGB
    face_point: tuple[float, float]  # centre of the person's face in `reference` (which face to animate)
    bank: MouthBank
    eyes_closed: np.ndarray | None  # (2, EYE_H, EYE_W, 3) uint8, or None
    style: AvatarStyle
    meta: dict[str, Any] = field(default_factory=dict)  # everything else in the metadata (provenance)
    lips: LipsAdapter | None = None  # adapted articulation, None when the adaptation fell back (or version 1)
    version: int = 2  # the file's format version (1: built before articulation adaptation)


def save_avatar(avatar: Avatar, path: str | os.PathLike[str]) -> Path:
    """Write atomically (temp file + rename)."""
    from safetensors.numpy import save_file

    out = Path(path)
    if out.is_dir():
        raise OutputError(f"The output {out} is a folder; give a file name such as me.avatar.")
    tensors = {"reference": np.ascontiguousarray(avatar.reference, np.uint8)}
    if len(avatar.bank):
        for k in _BANK:
            tensors[f"mouth_{k}"] = np.ascontiguousarray(getattr(avatar.bank, k))
    if avatar.eyes_closed is not None:
        tensors["eyes_closed"] = np.ascontiguousarray(avatar.eyes_closed, np.uint8)
    if avatar.lips is not None:
        tensors["lips_head_weight"] = np.ascontiguousarray(avatar.lips.weight, np.float32)
        tensors["lips_head_bias"] = np.ascontiguousarray(avatar.lips.bias, np.float32)
    meta = dict(avatar.meta, face_point=list(avatar.face_point), style=asdict(avatar.style))
    tmp = out.with_name(out.name + ".tmp")
    try:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "avatar": json.dumps(meta)})
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"Could not write the avatar to {out}: {exc.strerror or exc}.") from exc
    return out


def _unreadable(p: str) -> InputError:
    return InputError(f"'{p}' is not a readable talkinghead avatar; rebuild it with `talkinghead avatar`.")


def _check_format(p: str, header: dict[str, str]) -> int:
    """The file's format version, or InputError for a format this talkinghead cannot read."""
    fmt = header.get("format")
    if fmt not in READABLE:
        found = f"format '{fmt}'" if fmt else "no avatar format"
        raise InputError(
            f"'{p}' is not an avatar this version of talkinghead can read ({found}; expected "
            f"'{FORMAT}'); rebuild it with `talkinghead avatar`."
        )
    return READABLE[fmt]


def check_avatar(path: str | os.PathLike[str]) -> None:
    """Refuse a missing file or another format in milliseconds (reads the header only): the command line
    calls it before loading any model."""
    from safetensors import SafetensorError, safe_open

    p = require_file(path, "avatar file")
    try:
        with safe_open(p, framework="numpy") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise _unreadable(p) from exc
    _check_format(p, header)


def load_avatar(path: str | os.PathLike[str]) -> Avatar:
    """Read an avatar file; anything else (another format or version) is refused with InputError."""
    from safetensors import SafetensorError, safe_open

    p = require_file(path, "avatar file")
    try:
        with safe_open(p, framework="numpy") as f:
            header = f.metadata() or {}
            version = _check_format(p, header)
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (a safetensors handle, not a dict)
        meta = json.loads(header["avatar"])
        style = AvatarStyle(**meta.pop("style"))
        point = tuple(float(v) for v in meta.pop("face_point"))
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as exc:
        raise _unreadable(p) from exc
    if "reference" not in tensors:
        raise _unreadable(p)
    bank = MouthBank(*(tensors[f"mouth_{k}"] for k in _BANK)) if "mouth_crop" in tensors else MouthBank.empty()
    lips = None
    if version >= 2 and "lips_head_weight" in tensors:
        try:
            lips = LipsAdapter(
                tensors["lips_head_weight"], tensors["lips_head_bias"], str(meta["articulation"]["lips"])
            )
        except (KeyError, TypeError) as exc:
            raise _unreadable(p) from exc
    return Avatar(
        reference=tensors["reference"],
        face_point=(point[0], point[1]),
        bank=bank,
        eyes_closed=tensors.get("eyes_closed"),
        style=style,
        meta=meta,
        lips=lips,
        version=version,
    )
