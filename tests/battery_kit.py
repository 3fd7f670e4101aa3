"""Inputs and the contract for the reliability battery (tests/test_battery*.py), built at test time from the
shipped demo assets and synthetic signals: no corpus, no files in the repository.

The contract every case checks (issue 12): the exit code; on failure exactly one human sentence on stderr
and no traceback; nothing at the output path unless the run succeeded; an existing output untouched on
failure; no hidden leftovers (partial files, dub work folders) once a run cannot be resumed; and for a
success the right duration, size and orientation.
"""

from __future__ import annotations

import wave
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from talkinghead.cli import app
from talkinghead.pipeline import DEMO_AUDIO, DEMO_FACE

runner = CliRunner()
PRECIOUS = b"an existing output that a failed run must not touch"


def run_cli(args: list[str]):
    """In process: no interpreter start-up per case."""
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=True)


def _exists(p: Path) -> bool:
    try:
        return p.exists()
    except OSError:  # a name too long to exist
        return False


def leftovers(out: Path) -> list[str]:
    """Hidden files a run left next to `out` (partial video files, a dub's work folder)."""
    if not out.parent.is_dir():
        return []
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def assert_user_error(
    result, out: Path, *needles: str, existing: bytes | None = None, allow_work: bool = False, folder: bool = False
) -> str:
    """Exit 1, one line starting 'Error:' on stderr, no traceback or usage dump, output absent (or
    untouched), no leftovers. Returns the sentence."""
    err = result.stderr.strip()
    assert result.exit_code == 1, (result.exit_code, result.output, repr(result.exception))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "Traceback" not in result.output and "Usage:" not in result.output, result.output
    sentence = lines[0][len("Error: ") :]
    assert (sentence.endswith((".", ")")) and sentence[0].isupper()) or sentence[0] in "'-/", sentence
    for n in needles:
        assert n.lower() in sentence.lower(), sentence
    if folder:  # the output path named a folder: it is still one, untouched
        assert out.is_dir()
    elif existing is None:
        assert not _exists(out), out
    else:
        assert out.read_bytes() == existing
    if not allow_work:
        assert leftovers(out) == [], leftovers(out)
    return sentence


def assert_video(out: Path, duration: float, size: tuple[int, int] | None = None, tolerance: float = 0.1) -> None:
    """A finished video at `out`: of `duration` seconds (the audio's) and `size` (width, height) as displayed."""
    from talkinghead.media import probe_video

    info = probe_video(out)
    assert abs(info.duration - duration) <= tolerance, (info.duration, duration)
    if size is not None:
        assert (info.width, info.height) == size, ((info.width, info.height), size)
    assert leftovers(out) == []


# ------------------------------------------------------------------------------------------ audio


def tone_speech(seconds: float = 1.0, rate: int = 16000) -> np.ndarray:
    """Voiced-like synthetic signal with syllable gaps (the models animate anything loud enough)."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)


def demo_speech(seconds: float = 1.0) -> tuple[np.ndarray, int]:
    from talkinghead.media import load_audio

    w = load_audio(DEMO_AUDIO, sample_rate=None)
    return w.samples[: int(seconds * w.sample_rate)], w.sample_rate


def write_pcm(path: Path, samples: np.ndarray, rate: int, width: int = 2) -> Path:
    """16/24/32-bit integer PCM WAV; `samples` (n,) or (n, channels) float in [-1, 1]."""
    x = np.clip(samples if samples.ndim == 2 else samples[:, None], -1, 1)
    if width == 1:  # 8-bit WAV is unsigned
        raw = (np.round(x * 127) + 128).astype(np.uint8).tobytes()
    else:
        ints = np.round(x * float(2 ** (8 * width - 1) - 1)).astype("<i4")
        raw = (
            ints.astype("<i2").tobytes()
            if width == 2
            else ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
            if width == 3
            else ints.tobytes()
        )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)
    return path


def write_float_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    from scipy.io import wavfile

    wavfile.write(path, rate, samples.astype(np.float32))
    return path


def write_encoded(path: Path, samples: np.ndarray, rate: int, codec: str, fmt: str | None = None) -> Path:
    """Encode with PyAV (mp3, aac, flac, libopus, libvorbis...)."""
    import av

    x = samples if samples.ndim == 2 else samples[:, None]
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=rate)
        s.layout = "mono" if x.shape[1] == 1 else "stereo"
        fmt_name = s.codec_context.codec.audio_formats[0].name if s.codec_context.codec.audio_formats else "fltp"
        planar = fmt_name.endswith("p")
        n = s.codec_context.frame_size or 1024
        pos = 0
        while pos < len(x):
            chunk = x[pos : pos + n]
            if fmt_name.startswith("s16"):
                arr = (np.clip(chunk, -1, 1) * 32767).astype(np.int16)
            elif fmt_name.startswith("s32"):
                arr = (np.clip(chunk, -1, 1) * 2**31 - 1).astype(np.int32)
            else:
                arr = chunk.astype(np.float32)
            arr = np.ascontiguousarray(arr.T if planar else arr.reshape(1, -1))
            f = av.AudioFrame.from_ndarray(arr, format=fmt_name, layout=s.layout.name)
            f.sample_rate = rate
            f.pts = pos
            for p in s.encode(f):
                c.mux(p)
            pos += n
        for p in s.encode(None):
            c.mux(p)
    return path


# ------------------------------------------------------------------------------------------ images


def demo_face_rgb() -> np.ndarray:
    from talkinghead.media import load_image

    return load_image(DEMO_FACE)


def write_rgb(path: Path, rgb: np.ndarray, *params: int) -> Path:
    ok, buf = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), list(params))
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def portrait_face() -> np.ndarray:
    """The demo face on a taller-than-wide canvas (384 x 512), so orientation mistakes show in the size."""
    face = demo_face_rgb()
    return np.ascontiguousarray(face[:, 64:448])


def write_exif_jpeg(path: Path, stored: np.ndarray, orientation: int) -> Path:
    from PIL import Image

    im = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = orientation
    im.save(path, format="JPEG", exif=exif, quality=90)
    return path


# ------------------------------------------------------------------------------------------ videos


def write_video(
    path: Path,
    frames: list[np.ndarray],
    fps: float = 25.0,
    audio: tuple[np.ndarray, int] | None = None,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rotate: int | None = None,
) -> Path:
    """Frames (RGB) to a video with PyAV, any codec / size / rate; `rotate` adds display-matrix side data
    through the container's metadata (phone videos)."""
    from fractions import Fraction

    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=Fraction(fps).limit_denominator(1001000))
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        if rotate is not None:
            s.metadata["rotate"] = str(rotate)
        a = None
        if audio is not None:
            a = c.add_stream("aac", rate=audio[1])
            a.layout = "mono"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
        if a is not None:
            x = audio[0].astype(np.float32)
            for k in range(0, len(x), 1024):
                fr = av.AudioFrame.from_ndarray(x[None, k : k + 1024], format="fltp", layout="mono")
                fr.sample_rate = audio[1]
                fr.pts = k
                for p in a.encode(fr):
                    c.mux(p)
            for p in a.encode(None):
                c.mux(p)
    return path
