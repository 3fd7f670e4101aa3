"""The MP4 of a stream, written while it runs: `talkinghead generate --audio -` and the server's `/v1/stream`.

The audio of a stream is only complete at its end, and the MP4 muxer wants it interleaved with the video. So
the frames are encoded as they come into a hidden video-only file next to the output (with the watermark),
the audio is spooled to a hidden raw file, and `close` copies the encoded video packets (no re-encoding) with
the audio into the output, labelled and signed like every other output (`provenance/stamp.py`), by a rename.
Memory stays flat however long the stream.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.audio.features import SAMPLE_RATE
from talkinghead.media import VideoWriter
from talkinghead.media.mux import join_segments
from talkinghead.provenance.stamp import Stamp
from talkinghead.types import Waveform


class StreamRecorder:
    """`write(frame)` and `add_audio(samples)` in any order while streaming; `close()` finishes the MP4 at
    `out`; `abort()` (or an exception inside `with`) leaves nothing behind."""

    def __init__(
        self, out: str | os.PathLike[str], width: int, height: int, fps: float, stamp: Stamp, crf: int = 20
    ) -> None:
        self.out = Path(out)
        self.stamp = stamp
        self._video_path = self.out.with_name(f".{self.out.name}.video.mp4")
        self._audio_path = self.out.with_name(f".{self.out.name}.audio.f32")
        self._writer = VideoWriter(self._video_path, width, height, fps=fps, crf=crf, **stamp.segment_args(width, height))
        self._audio = open(self._audio_path, "wb")  # noqa: SIM115 - closed in close/abort
        self.samples = 0

    @property
    def frames(self) -> int:
        return self._writer.frames_written

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(frame)

    def add_audio(self, samples: np.ndarray) -> None:
        """16 kHz mono float32 samples, in order."""
        data = np.asarray(samples, "<f4").reshape(-1)
        self._audio.write(data.tobytes())
        self.samples += len(data)

    def close(self) -> Path:
        try:
            self._writer.close()
            self._audio.close()
            sound = np.fromfile(self._audio_path, "<f4")
            if len(sound) == 0:
                sound = np.zeros(1, np.float32)
            join_segments([self._video_path], self.out, Waveform(sound, SAMPLE_RATE), **self.stamp.join_args())
        finally:
            self._cleanup()
        return self.out

    def abort(self) -> None:
        self._writer.abort()
        self._cleanup()

    def _cleanup(self) -> None:
        if not self._audio.closed:
            self._audio.close()
        for p in (self._video_path, self._audio_path):
            p.unlink(missing_ok=True)

    def __enter__(self) -> StreamRecorder:
        return self

    def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()
