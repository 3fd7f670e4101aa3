"""The MP4 of a stream, written while it runs: `talkinghead generate --audio -` and the server's `/v1/stream`.

The audio of a stream is only complete at its end, and the MP4 muxer wants it interleaved with the video. So
the frames are encoded as they come into a hidden video-only file next to the output (with the watermark),
the audio is spooled to a hidden raw file, and `close` copies the encoded video packets (no re-encoding) with
the audio into the output, labelled and signed like every other output (`provenance/stamp.py`), by a rename.
Memory stays flat however long the stream.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.audio.features import SAMPLE_RATE
from talkinghead.config import PHOTO_X264, GenerateOptions
from talkinghead.media import VideoWriter
from talkinghead.media.mux import join_segments
from talkinghead.provenance.stamp import Stamp, mouth_spare
from talkinghead.provenance.watermark import Spare
from talkinghead.types import Waveform


class StreamRecorder:
    """`write(frame)` and `add_audio(samples)` in any order while streaming; `close()` finishes the MP4 at
    `out`; `abort()` (or an exception inside `with`) leaves nothing behind. `spare` (`mouth_spare` of the photo's
    landmarks): the animated mouth, left out of the watermark as `generate` leaves it."""

    def __init__(
        self,
        out: str | os.PathLike[str],
        width: int,
        height: int,
        fps: float,
        stamp: Stamp,
        crf: int = 20,
        spare: Spare | None = None,
    ) -> None:
        self.out = Path(out)
        self.stamp = stamp
        self._video_path = self.out.with_name(f".{self.out.name}.video.mp4")
        self._audio_path = self.out.with_name(f".{self.out.name}.audio.f32")
        marks = stamp.segment_args(width, height, spare)
        self._writer = VideoWriter(self._video_path, width, height, fps=fps, crf=crf, x264_params=PHOTO_X264, **marks)
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


def stream_to_file(
    animator: Any,
    chunks: Iterable[np.ndarray],
    out: str | os.PathLike[str],
    opts: GenerateOptions,
    inputs: list[str | os.PathLike[str]],
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Frames of `animator` (its source set) speaking 16 kHz mono `chunks` as they arrive, written to the MP4 at
    `out` as they come (`talkinghead generate --audio -`); `inputs` (the photo) go into the job id."""
    from dataclasses import asdict

    h, w = animator.source.image.shape[:2]
    stamp = Stamp.new("photo", opts.watermark, list(inputs), {"stream": True, **asdict(opts)}, (w, h))
    spare = mouth_spare(animator.source.points)  # the mouth is left unmarked, as generate leaves it
    with StreamRecorder(out, w, h, opts.fps, stamp, crf=opts.crf, spare=spare) as recorder:

        def audio() -> Iterator[np.ndarray]:
            for chunk in chunks:
                recorder.add_audio(chunk)
                yield chunk

        for k, frame in enumerate(animator.stream(audio(), opts)):
            recorder.write(frame)
            if progress is not None:
                progress(k + 1)
    return Path(out)
