"""Media I/O (decode audio, read and write video) built on PyAV, with no ffmpeg subprocess."""

from talkinghead.media.audio import load_audio, resample
from talkinghead.media.image import fit_size, load_image
from talkinghead.media.video_reader import VideoInfo, iter_frames, probe_video
from talkinghead.media.video_writer import VideoWriter

__all__ = ["VideoInfo", "VideoWriter", "fit_size", "iter_frames", "load_audio", "load_image", "probe_video", "resample"]
