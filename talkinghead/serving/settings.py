"""What a server instance is allowed to do: one frozen dataclass, filled by `talkinghead serve` or by hand."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def default_data_dir() -> Path:
    """Where jobs and results live unless --data-dir says otherwise ($XDG_DATA_HOME/talkinghead/serve)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "talkinghead" / "serve"


@dataclass(frozen=True)
class ServeSettings:
    """Limits and places of one server. Every limit is checked before the work it protects is done."""

    data_dir: Path = field(default_factory=default_data_dir)
    workers: int = 1  # worker processes, each with its own loaded models; each runs one job at a time
    token: str | None = None  # bearer token; None = no token, and then only this computer may connect
    queue: int = 8  # jobs that may wait for a worker; one more is refused with 429
    max_upload_mb: float = 50.0  # whole request body, checked while it streams in
    max_pixels: int = 40_000_000  # photo or video frame, read from the file header before any decoding
    max_seconds: float = 300.0  # audio and video duration
    keep_hours: float = 24.0  # finished jobs (results, errors) are deleted this long after they end
    cleanup_every_s: float = 60.0  # how often expired jobs are looked for
    threads_per_worker: int | None = None  # torch/OpenCV threads per worker; None = cores / workers
    streams: int = 2  # live WebSocket streams (/v1/stream) at a time; each renders in a thread of the server
    max_stream_seconds: float = 3600.0  # audio one live stream may send
    stream_threads: int = 1  # torch/OpenCV threads of the server process, where live streams render

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.queue < 0:
            raise ValueError("queue must be 0 or more")
        if self.token is not None and not self.token:
            raise ValueError("token must not be empty")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
