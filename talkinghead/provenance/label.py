"""The plain label in the MP4's own metadata: readable by ffprobe, exiftool and any player's info panel.

The mp4 muxer keeps only a few standard keys (`comment`, `description`, `title`, ...) unless it is told
`movflags=use_metadata_tags`; with that flag it also writes our own `talkinghead` key (a JSON object) as an
iTunes-style metadata item. The standard keys carry a sentence for people, the JSON one for programs.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import av

__all__ = ["KEY", "Label", "read_label"]

KEY = "talkinghead"


@dataclass(frozen=True)
class Label:
    """What the metadata says about an output."""

    generator: str  # "talkinghead 0.1.0"
    created: str  # UTC, ISO 8601
    mode: str  # "photo" (a photo animated) or "dub" (a video's mouth re-rendered)
    watermark: bool  # False when the user turned the invisible watermark off
    job_id: str  # 6 hex digits, also carried by the watermark
    synthetic: bool = True

    @staticmethod
    def now(generator: str, mode: str, watermark: bool, job_id: str) -> Label:
        created = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        return Label(generator=generator, created=created, mode=mode, watermark=watermark, job_id=job_id)

    def sentence(self) -> str:
        what = "a photo animated to speak" if self.mode == "photo" else "a video whose mouth was re-rendered to speak"
        return (
            f"AI-generated (synthetic) video: {what}, made by {self.generator} on {self.created}. "
            f"Invisible watermark: {'on' if self.watermark else 'off'}. Check with `talkinghead verify`."
        )

    def tags(self) -> dict[str, str]:
        """Container metadata to write (VideoWriter sets movflags=use_metadata_tags for them)."""
        return {
            "comment": self.sentence(),
            "description": self.sentence(),
            KEY: json.dumps(asdict(self), sort_keys=True),
        }


def read_label(path: str | os.PathLike[str]) -> dict[str, object] | None:
    """The `talkinghead` JSON label of a video, or None when it has none (av.FFmpegError when unreadable)."""
    with av.open(os.fspath(path)) as c:
        raw = c.metadata.get(KEY)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
