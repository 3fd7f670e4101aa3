"""Streaming H.264 + AAC MP4 writer.

Frames are encoded as they arrive so memory stays flat however long the clip is, and the output
only appears at its final path once it is complete: a crash or Ctrl-C never leaves a truncated
MP4 that looks valid to the next tool in a pipeline.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from types import TracebackType
from typing import Literal, get_args

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, VideoReformatter

from talkinghead.errors import OutputError
from talkinghead.media.audio import resample
from talkinghead.media.timers import stage
from talkinghead.types import Waveform

__all__ = ["BackgroundClose", "VideoWriter", "x264_options"]

# AVCOL_* value for BT.601 (SMPTE 170M). We convert RGB->YUV with BT.601 coefficients and say so
# in the bitstream; untagged HD video is otherwise shown with BT.709 and colours shift.
_BT601 = 6
_AAC_FALLBACK_RATE = 48000
_AAC_BITRATE = {1: 96_000, 2: 160_000}
# Our `veryfast` is x264's with the diamond motion search and without the 8x8 inter sub-partitions: on a 1080p
# talking-head transcode 24 % less CPU (decode + encode) for 3.5 % more bits and a luma SSIM 0.0004 lower at the
# same CRF (benchmarks/RESULTS.md, issue 16 third round, encoder_tradeoff.py). Other presets are x264's own.
_X264_PARAMS = {"veryfast": "me=dia:partitions=i8x8,i4x4"}
Threads = Literal["slices", "frames", "one"]  # VideoWriter's ways to run x264 (its docstring)
THREADS: tuple[str, ...] = get_args(Threads)


def x264_options(preset: str, crf: int, params: str = "") -> dict[str, str]:
    """The libx264 options of a preset and CRF as every writer here uses them (benchmarks' floors use them too);
    `params` ("key=value:key=value") are added after the preset's own, so they win."""
    extra = ":".join(p for p in (_X264_PARAMS.get(preset, ""), params) if p)
    return {"crf": str(crf), "preset": preset, **({"x264-params": extra} if extra else {})}


class VideoWriter:
    """Write RGB uint8 frames (and optionally a waveform) to an MP4 file.

    Use as a context manager: leaving the block normally finalises the file, leaving it with an
    exception discards it. Audio is interleaved with the video as frames are written, starts at
    t=0 and is written in full, even if it is longer or shorter than the video.

    `threads`: how x264 uses the cores (THREADS). "slices" (PyAV's default): each `write` returns once that
    frame is encoded, its slices on two threads, so the caller waits for x264. "frames": x264 encodes several
    frames at once on threads of its own and `write` returns as soon as it has the frame, so the caller
    renders the next frame meanwhile (a dub: 1080p, 600 px face, 30 s, 22.1-23.4 -> 21.2-21.7 s), for a
    few frames more in memory (+75-100 MB at 1080p); it is also how ffmpeg's command line encodes. "one": x264
    on the calling thread alone, which takes the least CPU per frame (no slices to split and join) and leaves
    the other core to whoever renders: photo mode, whose encoder has a thread of its own beside the renderer
    (512², 300 px face, 30 s: ~8 % less wall and CPU than on slices, the same PSNR and SSIM, 2 % smaller).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        fps: float | Fraction = 25.0,
        audio: Waveform | None = None,
        crf: int = 20,
        preset: str = "veryfast",
        x264_params: str = "",
        time_base: Fraction | None = None,
        copy_from: av.video.stream.VideoStream | None = None,
        colors: tuple[int, int, int, int] | None = None,
        metadata: dict[str, str] | None = None,
        mark: Callable[[np.ndarray], None] | None = None,
        finalize: Callable[[str], None] | None = None,
        threads: Threads = "slices",
    ) -> None:
        if int(width) != width or int(height) != height or width <= 0 or height <= 0:
            raise ValueError(f"width and height must be positive integers, got {width}x{height}")
        # yuv420p subsamples chroma 2x2, so libx264 rejects odd sizes there; an odd size is encoded in 4:4:4
        # (H.264 High 4:4:4: ffmpeg, VLC and mpv play it, some browsers do not) so that no row or column is lost
        self.pix_fmt = "yuv444p" if width % 2 or height % 2 else "yuv420p"
        if not fps or fps <= 0 or not np.isfinite(float(fps)):
            raise ValueError(f"fps must be a positive number, got {fps}")
        if audio is not None and audio.samples.shape[0] == 0:
            raise ValueError("audio waveform is empty")
        if threads not in THREADS:
            raise ValueError(f"threads must be one of {', '.join(THREADS)}, got {threads!r}")

        self.path = os.path.abspath(os.fspath(path))
        self.width = int(width)
        self.height = int(height)
        self.fps = _exact_rate(fps)
        # With an explicit time base the caller stamps every frame (variable frame rate, frames
        # kept at their source timestamps); otherwise frame k is shown at k / fps.
        self._explicit_tb = Fraction(time_base) if time_base is not None else None
        # (range, space, primaries, transfer) of frames given as planes: a dub keeps the source's tags
        self._colors = colors
        # provenance hooks (talkinghead.provenance.Stamp): container tags, an in-place change of each frame's
        # Y plane before encoding (the watermark), and a last step on the finished temporary file (signing)
        self._metadata = metadata
        self._mark = mark
        self._finalize = finalize
        self._threads = threads
        self._last_pts: int | None = None
        self._frames = 0
        self._closed = False
        self._container: av.container.OutputContainer | None = None
        self._tmp_path: str | None = None

        self._tmp_path = _make_temp_file(self.path)
        try:
            self._open(audio, x264_options(str(preset), int(crf), x264_params), copy_from)
        except BaseException:
            self._cleanup()
            raise

    # ----------------------------------------------------------------------------- public API

    @property
    def frames_written(self) -> int:
        return self._frames

    def write(self, frame: np.ndarray, pts: int | None = None) -> None:
        """Encode one HxWx3 uint8 RGB frame at `pts` (in `time_base` units; default index / fps)."""
        if self._closed:
            raise RuntimeError("VideoWriter is already closed")
        if (pts is None) != (self._explicit_tb is None):
            raise ValueError("pts must be given exactly when the writer has an explicit time_base")
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
            raise ValueError(f"frame must be a uint8 numpy array, got {_describe(frame)}")
        if frame.shape != (self.height, self.width, 3):
            raise ValueError(f"frame must have shape {(self.height, self.width, 3)}, got {frame.shape}")
        try:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            vf = self._reformatter.reformat(
                vf,
                format=self.pix_fmt,
                src_colorspace=Colorspace.ITU601,
                dst_colorspace=Colorspace.ITU601,
                dst_color_range=ColorRange.MPEG,
            )
            self._encode(vf, pts)
        except (av.FFmpegError, OSError) as exc:
            self.abort()
            raise OutputError(f"Writing the video '{self.path}' failed: {exc}.") from None

    def _encode(self, vf: av.VideoFrame, pts: int | None) -> None:
        if self._mark is not None:
            with stage("watermark"):
                p = vf.planes[0]
                y = np.frombuffer(p, np.uint8)  # type: ignore[call-overload]  # a VideoPlane is a buffer
                self._mark(y.reshape(-1, p.line_size)[: p.height, : p.width])
        vf.pts = self._next_pts(pts)
        vf.time_base = self._video_tb
        with stage("encode"):
            self._mux(self._video.encode(vf))
        self._frames += 1
        # Audio up to this frame, so both streams advance together.
        if self._explicit_tb is None:
            self._write_audio(until=self._audio_samples_until(self._frames), final=False)
        else:
            self._write_audio(until=self._audio_samples_at(vf.pts), final=False)

    def write_yuv(self, vf: av.VideoFrame, pts: int | None = None) -> None:
        """Encode one yuv420p frame as it is (no colour conversion, no copy); it must not be reused."""
        if self._closed:
            raise RuntimeError("VideoWriter is already closed")
        padded = (self.width + self.width % 2, self.height + self.height % 2)
        if (vf.width, vf.height) not in ((self.width, self.height), padded) or vf.format.name != "yuv420p":
            raise ValueError(
                f"frame must be yuv420p {self.width}x{self.height}, got {vf.format.name} {vf.width}x{vf.height}"
            )
        if self.pix_fmt == "yuv444p":
            vf = _cropped_444(vf, self.width, self.height)
        if (pts is None) != (self._explicit_tb is None):
            raise ValueError("pts must be given exactly when the writer has an explicit time_base")
        try:
            self._encode(vf, pts)
        except (av.FFmpegError, OSError) as exc:
            self.abort()
            raise OutputError(f"Writing the video '{self.path}' failed: {exc}.") from None

    def write_packet(self, packet: av.Packet) -> None:
        """Copy one already-encoded video packet (writers made with `copy_from`): joins segments
        without re-encoding them."""
        if self._closed or self._copy_tb is None:
            raise RuntimeError("write_packet needs an open writer made with copy_from")
        try:
            if packet.pts is None:
                return
            tb = packet.time_base
            packet.stream = self._video
            packet.time_base = tb
            self._container.mux(packet)  # type: ignore[union-attr]
            self._frames += 1
            if self._audio is not None:
                self._write_audio(until=int(packet.pts * tb * self._audio_rate), final=False)
        except (av.FFmpegError, OSError) as exc:
            self.abort()
            raise OutputError(f"Writing the video '{self.path}' failed: {exc}.") from None

    def close(self) -> None:
        """Flush the encoders and move the finished file into place."""
        if self._closed:
            return
        if self._frames == 0:
            self.abort()
            raise ValueError(f"no frames were written to '{self.path}'")
        try:
            if self._copy_tb is None:
                with stage("encode"):
                    self._mux(self._video.encode(None))
            self._write_audio(until=None, final=True)
            assert self._container is not None
            self._container.close()
            self._container = None
            assert self._tmp_path is not None
            if self._finalize is not None:
                self._finalize(self._tmp_path)
            os.replace(self._tmp_path, self.path)
            self._tmp_path = None
        except (av.FFmpegError, OSError) as exc:
            self.abort()
            raise OutputError(f"Finishing the video '{self.path}' failed: {exc}.") from None
        except BaseException:
            self.abort()
            raise
        self._closed = True

    def abort(self) -> None:
        """Discard everything written so far; the target path is left untouched."""
        self._closed = True
        self._cleanup()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        # A writer dropped without close() must not leave a hidden partial file behind.
        try:
            if not self._closed:
                self._cleanup()
        except Exception:
            pass

    # ----------------------------------------------------------------------------- internals

    def _open(
        self, audio: Waveform | None, options: dict[str, str], copy_from: av.video.stream.VideoStream | None
    ) -> None:
        assert self._tmp_path is not None
        try:
            # use_metadata_tags: the mp4 muxer drops keys of its own (the provenance label) without it
            flags = "+faststart+use_metadata_tags" if self._metadata else "+faststart"
            container = av.open(self._tmp_path, mode="w", format="mp4", options={"movflags": flags})
            if self._metadata:
                container.metadata.update(self._metadata)
        except (av.FFmpegError, OSError) as exc:
            raise OutputError(f"Cannot create the video file '{self.path}': {exc}.") from None
        self._container = container
        self._copy_tb: Fraction | None = None
        self._audio = None
        self._audio_planar: np.ndarray | None = None
        self._audio_pos = 0
        if copy_from is not None:
            self._video = container.add_stream_from_template(copy_from)
            self._copy_tb = Fraction(copy_from.time_base)  # type: ignore[arg-type]
            if audio is not None:
                self._setup_audio(container, audio)
            return

        video = container.add_stream("libx264", rate=self.fps)
        video.width = self.width
        video.height = self.height
        video.pix_fmt = self.pix_fmt
        # Keep our own copies of the time bases: writing the header lets the muxer replace the
        # *stream* time base (mp4 picks e.g. 1/12800), and stamping frames with that silently
        # collapses their pts.
        self._video_tb = self._explicit_tb or 1 / self.fps
        video.time_base = self._video_tb
        video.codec_context.time_base = self._video_tb  # the encoder's clock: exact pts, any rate
        video.options = dict[str, object](options)
        cc = video.codec_context
        if self._threads == "frames":
            cc.thread_type = "FRAME"
        elif self._threads == "one":
            cc.thread_count = 1
        rng, space, prim, trc = self._colors or (int(ColorRange.MPEG), _BT601, _BT601, _BT601)
        cc.color_range = rng
        cc.colorspace = space
        cc.color_primaries = prim
        cc.color_trc = trc
        self._video = video
        # One reformatter for the whole clip reuses its swscale context (~30% faster per frame).
        self._reformatter = VideoReformatter()
        if audio is not None:
            self._setup_audio(container, audio)

    def _setup_audio(self, container: av.container.OutputContainer, audio: Waveform) -> None:
        samples = np.asarray(audio.samples, dtype=np.float32)
        if samples.ndim == 1:
            samples = samples[:, None]
        if samples.shape[1] > 2:
            # Without a channel map we cannot place surround channels; a mean is never wrong.
            samples = samples.mean(axis=1, keepdims=True, dtype=np.float32)
        rate = int(audio.sample_rate)
        supported = av.codec.Codec("aac", "w").audio_rates or ()
        if supported and rate not in supported:
            samples = resample(samples, rate, _AAC_FALLBACK_RATE)
            rate = _AAC_FALLBACK_RATE
        channels = samples.shape[1]
        self._audio_layout = "mono" if channels == 1 else "stereo"
        self._audio_rate = rate
        # The AAC encoder only takes planar float: (channels, n).
        self._audio_planar = np.ascontiguousarray(samples.T)

        stream = container.add_stream("aac", rate=rate)
        stream.layout = self._audio_layout
        stream.format = "fltp"
        stream.bit_rate = _AAC_BITRATE[channels]
        self._audio_tb = Fraction(1, rate)
        stream.time_base = self._audio_tb
        # frame_size is only known once the codec is open; opening now lets us cut exact frames.
        stream.codec_context.open()
        self._audio_frame_size = int(stream.codec_context.frame_size) or 1024
        self._audio = stream  # type: ignore[assignment]

    def _next_pts(self, pts: int | None) -> int:
        if pts is None:
            return self._frames
        pts = int(pts)
        if self._last_pts is not None and pts <= self._last_pts:
            raise ValueError(f"frame timestamps must increase (got {pts} after {self._last_pts})")
        self._last_pts = pts
        return pts

    def _audio_samples_at(self, pts: int) -> int:
        if self._audio is None:
            return 0
        assert self._explicit_tb is not None
        t = pts * self._explicit_tb
        return int(t * self._audio_rate)

    def _audio_samples_until(self, n_frames: int) -> int:
        """Audio sample index at video time n_frames / fps, in exact integer arithmetic."""
        if self._audio is None:
            return 0
        return (n_frames * self._audio_rate * self.fps.denominator) // self.fps.numerator

    def _write_audio(self, until: int | None, final: bool) -> None:
        """Encode whole encoder frames up to sample `until` (or everything, then flush)."""
        if self._audio is None or self._audio_planar is None:
            return
        total = self._audio_planar.shape[1]
        end = total if until is None else min(until, total)
        size = self._audio_frame_size
        while self._audio_pos < end:
            n = min(size, end - self._audio_pos)
            if n < size and not final:
                break  # only the very last frame may be short (AAC allows a small last frame)
            chunk = self._audio_planar[:, self._audio_pos : self._audio_pos + n]
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout=self._audio_layout)
            af.sample_rate = self._audio_rate
            af.pts = self._audio_pos
            af.time_base = self._audio_tb
            self._mux(self._audio.encode(af))
            self._audio_pos += n
        if final:
            self._mux(self._audio.encode(None))

    def _mux(self, packets: list[av.Packet]) -> None:
        assert self._container is not None
        for packet in packets:
            self._container.mux(packet)

    def _cleanup(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            try:
                container.close()
            except Exception:
                pass  # the file is being discarded; a flush error here is irrelevant
        tmp, self._tmp_path = self._tmp_path, None
        if tmp is not None:
            try:
                os.remove(tmp)
            except FileNotFoundError:
                pass


def _cropped_444(vf: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    """A yuv420p frame (odd size padded to even) as yuv444p of the odd size: chroma repeated 2x2, padding cut."""
    out = av.VideoFrame(width, height, "yuv444p")
    for k in range(3):
        src, dst = vf.planes[k], out.planes[k]
        a = np.frombuffer(memoryview(src), np.uint8).reshape(-1, src.line_size)[: src.height, : src.width]
        if k:
            a = a.repeat(2, axis=0).repeat(2, axis=1)
        b = np.frombuffer(memoryview(dst), np.uint8).reshape(-1, dst.line_size)
        b[:height, :width] = a[:height, :width]
    return out


def _make_temp_file(path: str) -> str:
    """Create the hidden partial file next to `path`, failing early if we cannot write there."""
    directory, name = os.path.split(path)
    if not os.path.isdir(directory):
        raise OutputError(f"Cannot write '{path}' because the folder '{directory}' does not exist.")
    if os.path.isdir(path):
        raise OutputError(f"Cannot write the video to '{path}' because it is a folder.")
    sweep_partials(path)
    # Created with mode 0666 like any file a program writes, so the kernel applies the caller's umask
    # (mkstemp's 0600 would need a chmod, and reading the umask means setting it process-wide).
    for _ in range(100):
        tmp = os.path.join(directory, f".{name}.partial-{os.getpid()}-{secrets.token_hex(4)}.mp4")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise OutputError(f"Cannot write to the folder '{directory}' ({reason}).") from None
        os.close(fd)
        return tmp
    raise OutputError(f"Cannot write to the folder '{directory}' (no free temporary name).")


_LEGACY_STALE_S = 3600.0  # a partial file without its writer's pid in the name counts as stale after this long


def sweep_partials(path: str | os.PathLike[str]) -> list[str]:
    """Remove the hidden partial files of `path` left by writers that no longer run (kill -9, power loss):
    the pid in the name is checked; the removed paths are returned. A live writer's file is never touched."""
    directory, name = os.path.split(os.path.abspath(os.fspath(path)))
    prefix = f".{name}.partial-"
    removed: list[str] = []
    try:
        entries = [e for e in os.listdir(directory) if e.startswith(prefix) and e.endswith(".mp4")]
    except OSError:
        return removed
    for entry in entries:
        full = os.path.join(directory, entry)
        pid_text = entry[len(prefix) : -len(".mp4")].split("-")[0]
        try:
            stale = (
                not _alive(int(pid_text))
                if "-" in entry[len(prefix) :]
                else os.path.getmtime(full) < time.time() - _LEGACY_STALE_S
            )
            if stale:
                os.remove(full)
                removed.append(full)
        except (OSError, ValueError):
            continue
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _exact_rate(fps: float | Fraction) -> Fraction:
    """Turn a float rate into the exact rational the user means.

    NTSC rates written as 29.97 / 23.976 / 59.94 mean N*1000/1001 exactly; 2997/100 is a different
    rate that players and editors do not recognise as NTSC. Other rates keep their nearest
    simple fraction.
    """
    if isinstance(fps, Fraction):
        return fps
    value = float(fps)
    n = round(value * 1.001)
    if n >= 1 and abs(value * 1.001 - n) < 5e-4 and abs(value - round(value)) > 5e-4:
        return Fraction(n * 1000, 1001)
    return Fraction(value).limit_denominator(1001 * 1000)


def _describe(x: object) -> str:
    if isinstance(x, np.ndarray):
        return f"array of dtype {x.dtype}"
    return type(x).__name__


class BackgroundClose:
    """Closes writers on a thread of its own, one at a time: a finished segment's encoder drains its last frames
    (x264's lookahead and frame threads, a serial tail) while the next segment is already being rendered.
    `wait` re-raises the close's error in the caller; at most one writer is closing at any time."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def close(self, writer: VideoWriter) -> None:
        self.wait()

        def run() -> None:
            try:
                writer.close()
            except BaseException as exc:  # handed to the caller's next wait()
                self._error = exc

        self._thread = threading.Thread(target=run, name="talkinghead-close", daemon=True)
        self._thread.start()

    def wait(self, raise_error: bool = True) -> None:
        """Until the writer being closed is closed (its file in place); its error, if any, is raised here."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None and raise_error:
            raise error
