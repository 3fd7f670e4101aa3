"""Read back the three marks of a file: label, manifest, watermark."""

from __future__ import annotations

import os
from typing import Any

import av

from talkinghead.errors import InputError, require_file
from talkinghead.provenance.label import read_label
from talkinghead.provenance.manifest import read_manifest
from talkinghead.provenance.watermark import detect

__all__ = ["verify"]


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
    marked = (label is not None and bool(label.get("synthetic"))) or manifest["status"] in ("valid", "tampered") \
        or bool(wm and wm["found"])
    return {"file": os.fspath(p), "marked": marked, "label": label, "manifest": manifest, "watermark": wm}
