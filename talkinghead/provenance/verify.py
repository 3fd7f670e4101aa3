"""Read back the three marks of a file: label, manifest, watermark."""

from __future__ import annotations

import os
from typing import Any

import av

from talkinghead.errors import InputError, require_file
from talkinghead.provenance.label import read_label
from talkinghead.provenance.manifest import read_manifest
from talkinghead.provenance.watermark import detect

__all__ = ["summary", "verify"]


def verify(path: str | os.PathLike[str], watermark: bool = True) -> dict[str, Any]:
    """{marked, label, manifest, watermark}; `marked` when any of the three says the file is synthetic.
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
    return {"file": os.fspath(p), "marked": marked, "label": label, "manifest": manifest, "watermark": wm}


def summary(result: dict[str, Any]) -> str:
    """`verify`'s result as a few lines for people."""
    label, manifest, wm = result["label"], result["manifest"], result["watermark"]
    head = "MARKED as synthetic" if result["marked"] else "no talkinghead mark found"
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
    return "\n".join(
        [f"{result['file']}: {head}", f"  label:     {text}", f"  manifest:  {sign}", f"  watermark: {mark}"]
    )
