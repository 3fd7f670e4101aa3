"""Read back the three marks of a file: label, manifest, watermark."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import av

from talkinghead.errors import InputError, require_file
from talkinghead.provenance.label import read_label
from talkinghead.provenance.manifest import read_manifest
from talkinghead.provenance.watermark import detect

__all__ = ["Verification", "summary", "verify"]


@dataclass(frozen=True)
class Verification:
    """What `verify` found; `as_dict()` is the object `talkinghead verify --json` prints."""

    file: str
    marked: bool  # any of the three marks says the file is synthetic
    label: dict[str, Any] | None  # the metadata label (generator, created, mode, watermark, job_id), or None
    manifest: dict[str, Any]  # status "valid" | "tampered" | "absent" | "unavailable", signer, self_signed, ...
    watermark: dict[str, Any] | None  # found, confidence, payload (the job id), ...; None when not checked

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "marked": self.marked,
            "label": self.label,
            "manifest": self.manifest,
            "watermark": self.watermark,
        }


def verify(path: str | os.PathLike[str], watermark: bool = True) -> Verification:
    """Label, manifest and watermark of a video; `marked` when any of the three says it is synthetic.
    Raises InputError when the file cannot be read as a video."""
    p = require_file(path, "video file")
    try:
        label = read_label(p)
        wm = detect(p).as_dict() if watermark else None
    except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise InputError(f"'{p}' cannot be read as a video ({exc}).") from None
    manifest = read_manifest(p)
    marked = (
        (label is not None and bool(label.get("synthetic")))
        or manifest["status"] in ("valid", "tampered")
        or bool(wm and wm["found"])
    )
    return Verification(os.fspath(p), marked, label, manifest, wm)


def summary(result: Verification) -> str:
    """`verify`'s result as a few lines for people."""
    label, manifest, wm = result.label, result.manifest, result.watermark
    head = "MARKED as synthetic" if result.marked else "no talkinghead mark found"
    if label:
        text = (
            f"synthetic={label.get('synthetic')}, {label.get('generator')}, mode {label.get('mode')}, "
            f"created {label.get('created')}, job {label.get('job_id')}, "
            f"watermark {'on' if label.get('watermark') else 'off'}"
        )
    else:
        text = "none"
    sign = manifest["status"]
    if manifest.get("signer"):
        sign += f", signed by {manifest['signer']}" + (" (self-signed)" if manifest.get("self_signed") else "")
    elif manifest.get("reason"):
        sign += f" ({manifest['reason']})"
    if wm is None:
        mark = "not checked"
    elif wm["found"]:
        job = f"job {wm['payload']}" if wm["payload"] else "job id unreadable"
        mark = f"found, {job}, confidence {wm['confidence']:.9f}"
    else:
        mark = f"not found (sync {wm['sync_z']:.1f} < {wm['threshold_z']:.1f} sd)"
    return "\n".join([f"{result.file}: {head}", f"  label:     {text}", f"  manifest:  {sign}", f"  watermark: {mark}"])
