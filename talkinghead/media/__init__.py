"""Media I/O (decode audio, read and write video) built on PyAV, with no ffmpeg subprocess.

The names below are imported lazily, so that `talkinghead.media.audio` (or `.inputs`) alone does not pay for
OpenCV and the video modules: the command line's motion process decodes speech and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from talkinghead.lazy import lazy_getattr

_API = {
    "load_audio": "talkinghead.media.audio",
    "resample": "talkinghead.media.audio",
    "fit_size": "talkinghead.media.image",
    "load_image": "talkinghead.media.image",
    "VideoInfo": "talkinghead.media.video_reader",
    "iter_frames": "talkinghead.media.video_reader",
    "probe_video": "talkinghead.media.video_reader",
    "VideoWriter": "talkinghead.media.video_writer",
}

__all__ = ["VideoInfo", "VideoWriter", "fit_size", "iter_frames", "load_audio", "load_image", "probe_video", "resample"]

if TYPE_CHECKING:
    from talkinghead.media.audio import load_audio, resample
    from talkinghead.media.image import fit_size, load_image
    from talkinghead.media.video_reader import VideoInfo, iter_frames, probe_video
    from talkinghead.media.video_writer import VideoWriter

__getattr__ = lazy_getattr("talkinghead.media", _API, globals())
