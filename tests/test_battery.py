"""The reliability battery (issue 12): a few hundred bad or unusual inputs, each held to the contract of
tests/battery_kit.py (exit code, one sentence, no traceback, nothing at the output unless it succeeded, an
existing output untouched, no leftovers, and a success of the right duration, size and orientation).

Cases are built at test time from the shipped demo face and synthetic signals and run in process through
the CLI (no interpreter start-up per case). Cases that fail before any rendering form the fast tier of the
default suite; renders (successes, dubs) and the subprocess interruptions are marked `slow`.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
from battery_kit import (
    PRECIOUS,
    assert_user_error,
    assert_video,
    demo_face_rgb,
    leftovers,
    portrait_face,
    run_cli,
    tone_speech,
    write_encoded,
    write_exif_jpeg,
    write_float_wav,
    write_pcm,
    write_rgb,
    write_video,
)

from talkinghead.pipeline import DEMO_FACE

SIZE = "64"


@dataclass
class Case:
    """One battery case: `make(folder)` writes its inputs and returns the CLI arguments (the output is
    `folder / out.mp4` unless the case says otherwise); `ok` is the expected outcome."""

    id: str
    make: Callable[[Path], list]
    ok: bool
    needles: tuple[str, ...] = ()
    size: tuple[int, int] | None = None  # (width, height) of a success
    duration: float = 1.0
    slow: bool = False
    existing: bool = False  # an output already exists and must survive a failure
    out_name: str = "out.mp4"
    marks: list = field(default_factory=list)


def _put(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _speech(d: Path, seconds: float = 1.0) -> Path:
    return write_pcm(d / "speech.wav", tone_speech(seconds), 16000)


def _gen(face, extra=(), audio=None, seconds=1.0):
    def make(d: Path) -> list:
        f = face(d) if callable(face) else face
        a = audio(d) if callable(audio) else (audio or _speech(d, seconds))
        return ["generate", "--face", f, "--audio", a, "-o", d / "out.mp4", "-q", "--size", SIZE, *extra]

    return make


# ------------------------------------------------------------------------------------------ images


def _img_bytes(name: str, data: bytes):
    def make(d: Path) -> Path:
        (d / name).write_bytes(data)
        return d / name

    return make


def _img(name: str, fn: Callable[[], np.ndarray], *params: int):
    return lambda d: write_rgb(d / name, fn(), *params)


def _jpeg_bytes() -> bytes:
    return DEMO_FACE.read_bytes()


def _png_header(w: int, h: int) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 100))
        + chunk(b"IEND", b"")
    )


def _image_cases() -> list[Case]:
    jpg = _jpeg_bytes()
    rng = np.random.default_rng(12)
    cases = [
        Case("img-empty", _gen(_img_bytes("e.jpg", b"")), False, ("e.jpg",)),
        Case("img-text", _gen(_img_bytes("t.jpg", b"hello, not a photo")), False, ("t.jpg",)),
        Case("img-pdf", _gen(_img_bytes("p.png", b"%PDF-1.4\n%%EOF")), False, ("p.png",)),
        Case("img-random", _gen(_img_bytes("r.webp", rng.bytes(5000))), False, ("r.webp",)),
        Case("img-png-bomb", _gen(_img_bytes("bomb.png", _png_header(40000, 40000))), False, ("megapixels",)),
        Case("img-png-bomb-wide", _gen(_img_bytes("wide.png", _png_header(200000, 600))), False, ("megapixels",)),
        Case("img-header-only", _gen(_img_bytes("h.jpg", jpg[:200])), False, ("h.jpg",)),
        Case("img-missing", _gen(lambda d: d / "nope.jpg"), False, ("does not exist",)),
        Case("img-folder", _gen(lambda d: d), False, ("is a folder",)),
        Case("img-no-face", _gen(_img("flat.png", lambda: np.full((200, 300, 3), 128, np.uint8))), False, ("no face",)),
        Case(
            "img-noise",
            _gen(_img("noise.png", lambda: rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))),
            False,
            ("no face",),
        ),
        Case("img-1x1", _gen(_img("dot.png", lambda: np.zeros((1, 1, 3), np.uint8))), False, ()),
        Case("img-face-index-9", _gen(DEMO_FACE, ("--face-index", "9")), False, ("face-index",)),
    ]
    for cut in (0.1, 0.3, 0.5, 0.8):  # truncated JPEGs: decodable prefixes may still show a face
        cases.append(Case(f"img-truncated-{cut}", _gen(_img_bytes("cut.jpg", jpg[: int(len(jpg) * cut)])), None))
    # successes: formats, layouts, mislabelled files, EXIF orientations
    face = demo_face_rgb
    ok = [
        ("png", _img("f.png", face)),
        ("webp", _img("f.webp", face)),
        ("bmp", _img("f.bmp", face)),
        ("tiff", _img("f.tiff", face)),
        ("jpeg-q5", _img("f.jpg", face, cv2.IMWRITE_JPEG_QUALITY, 5)),
        ("grey", lambda d: (cv2.imwrite(str(d / "g.png"), cv2.cvtColor(face(), cv2.COLOR_RGB2GRAY)), d / "g.png")[1]),
        ("png16", lambda d: (cv2.imwrite(str(d / "h.png"), face()[..., ::-1].astype(np.uint16) * 257), d / "h.png")[1]),
        (
            "rgba",
            lambda d: (
                cv2.imwrite(str(d / "a.png"), np.dstack([face()[..., ::-1], np.full((512, 512), 255, np.uint8)])),
                d / "a.png",
            )[1],
        ),
        ("png-named-jpg", lambda d: _put(d / "x.jpg", cv2.imencode(".png", face()[..., ::-1])[1].tobytes())),
        ("jpg-named-png", lambda d: _put(d / "x.png", jpg)),
        ("no-extension", lambda d: _put(d / "photo", jpg)),
        ("space and ünïcode", lambda d: _put(d / "my phötö 1.jpg", jpg)),
        ("small-256", _img("s.png", lambda: cv2.resize(face(), (256, 256)))),
        (
            "off-centre",
            _img(
                "c.png",
                lambda: np.pad(cv2.resize(face(), (256, 256)), ((20, 200), (300, 10), (0, 0)), constant_values=90),
            ),
        ),
    ]
    for name, make in ok:
        extra = ("--size", "160") if name == "off-centre" else ()  # a face too small to find at 64 px
        cases.append(Case(f"img-ok-{name}", _gen(make, extra), True, slow=name not in ("png", "grey")))
    from talkinghead.media.image import upright

    for o in range(1, 9):  # stored turned so that, shown as its EXIF tag says, the face is upright (384 x 512)

        def phone_photo(d: Path, o: int = o) -> Path:
            stored = np.ascontiguousarray(upright(portrait_face(), {6: 8, 8: 6}.get(o, o)))
            return write_exif_jpeg(d / "p.jpg", stored, o)

        cases.append(Case(f"img-exif-{o}", _gen(phone_photo), True, size=(48, 64), slow=o not in (6,)))
    return cases


# ------------------------------------------------------------------------------------------ audio

RATES = [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000]


def _audio(fn: Callable[[Path], Path], extra=()):
    return _gen(DEMO_FACE, extra, audio=fn)


def _pcm(rate: int, channels: int, width: int = 2, seconds: float = 1.0, mix=None):
    def make(d: Path) -> Path:
        x = tone_speech(seconds, rate)
        xs = np.stack([x * (0.5 + 0.5 * k / max(channels, 1)) for k in range(channels)], 1) if mix is None else mix(x)
        return write_pcm(d / "a.wav", xs, rate, width)

    return make


def _enc(codec: str, ext: str, rate: int = 44100, channels: int = 1, fmt: str | None = None):
    def make(d: Path) -> Path:
        x = tone_speech(1.0, rate)
        return write_encoded(d / f"a.{ext}", np.stack([x] * channels, 1) if channels > 1 else x, rate, codec, fmt)

    return make


def _audio_cases() -> list[Case]:
    cases = []
    for rate in RATES:
        for ch in (1, 2):
            cases.append(Case(f"wav-{rate}-{ch}ch", _audio(_pcm(rate, ch)), True, slow=(rate, ch) not in ((44100, 2),)))
    for ch in (3, 4, 6, 8):
        cases.append(Case(f"wav-48000-{ch}ch", _audio(_pcm(48000, ch)), True, slow=True))
    for width in (1, 3, 4):
        cases.append(Case(f"wav-{8 * width}bit", _audio(_pcm(22050, 1, width)), True, slow=True))
    cases.append(
        Case("wav-float", _audio(lambda d: write_float_wav(d / "f.wav", tone_speech(1.0), 16000)), True, slow=True)
    )
    for codec, ext, fmt in (
        ("libmp3lame", "mp3", None),
        ("flac", "flac", None),
        ("aac", "m4a", "mp4"),
        ("libopus", "opus", "ogg"),
        ("alac", "m4a", "mp4"),
        ("pcm_s16le", "wav", None),
    ):
        rate = 48000 if codec == "libopus" else 44100
        for ch in (1, 2):
            cases.append(Case(f"{ext}-{codec}-{ch}ch", _audio(_enc(codec, ext, rate, ch, fmt)), True, slow=True))
    # odd signals
    cancel = _pcm(16000, 2, mix=lambda x: np.stack([x, -x], 1))
    one_side = _pcm(16000, 2, mix=lambda x: np.stack([x, 0 * x], 1))
    quiet = _pcm(16000, 1, mix=lambda x: 0.01 * x[:, None])
    clipped = _pcm(16000, 1, mix=lambda x: np.clip(x * 50, -1, 1)[:, None])
    dc = _pcm(16000, 1, mix=lambda x: (0.5 + 0.2 * x)[:, None])

    def nan(d: Path) -> Path:
        return write_float_wav(d / "n.wav", np.where(np.arange(16000) % 97 == 0, np.nan, tone_speech(1.0)), 16000)

    for name, make in (
        ("stereo-cancelling", cancel),
        ("left-only", one_side),
        ("quiet", quiet),
        ("clipped", clipped),
        ("dc-offset", dc),
        ("nan-samples", nan),
    ):
        cases.append(Case(f"audio-{name}", _audio(make), True, slow=name not in ("stereo-cancelling", "nan-samples")))
    cases.append(Case("audio-short-50ms", _audio(_pcm(16000, 1, seconds=0.05)), True, duration=0.05, slow=True))
    cases.append(Case("audio-long-3s", _audio(_pcm(16000, 1, seconds=3.0)), True, duration=3.0, slow=True))
    # failures
    bad: dict[str, tuple[Callable[[Path], Path], str]] = {
        "silent": (lambda d: write_pcm(d / "z.wav", np.zeros(16000, np.float32), 16000), "silent"),
        "all-nan": (lambda d: write_float_wav(d / "n.wav", np.full(16000, np.nan, np.float32), 16000), "silent"),
        "header-only": (lambda d: write_pcm(d / "h.wav", np.zeros(0, np.float32), 16000), "no audio"),
        "text": (lambda d: _put(d / "t.wav", "RIFF but not really"), "t.wav"),
        "random": (lambda d: _put(d / "r.mp3", np.random.default_rng(3).bytes(20000)), "r.mp3"),
        "image": (lambda d: _put(d / "i.wav", DEMO_FACE.read_bytes()), "i.wav"),
        "video-without-sound": (
            lambda d: write_video(d / "v.mp4", [demo_face_rgb()[:128, :128]] * 5),
            "no audio track",
        ),
        "missing": (lambda d: d / "none.wav", "does not exist"),
        "folder": (lambda d: d, "is a folder"),
    }
    for name, (make, needle) in bad.items():
        cases.append(Case(f"audio-bad-{name}", _audio(make), False, (needle,)))
    for cut in (0.05, 0.5):

        def truncated(d, cut=cut):
            p = _enc("libmp3lame", "mp3")(d)
            data = p.read_bytes()
            p.write_bytes(data[: int(len(data) * cut)])
            return p

        cases.append(Case(f"audio-truncated-mp3-{cut}", _audio(truncated), None, slow=True))
    cases.append(
        Case(
            "audio-video-track",
            _audio(
                lambda d: write_video(
                    d / "v.mp4", [demo_face_rgb()[:128, :128]] * 25, audio=(tone_speech(1.0, 16000), 16000)
                )
            ),
            True,
            slow=True,
        )
    )
    return cases


# ------------------------------------------------------------------------------------------ outputs


def _out_case(id: str, out: Callable[[Path], Path], ok: bool, needles=(), existing=False, slow=False) -> Case:
    def make(d: Path) -> list:
        return ["generate", "--face", DEMO_FACE, "--audio", _speech(d), "-o", out(d), "-q", "--size", SIZE]

    return Case(id, make, ok, needles, existing=existing, slow=slow)


def _output_cases() -> list[Case]:
    return [
        _out_case("out-missing-folder", lambda d: d / "no" / "out.mp4", False, ("does not exist",)),
        _out_case("out-avi", lambda d: d / "out.avi", False, (".mp4",)),
        _out_case("out-no-extension", lambda d: d / "out", False, (".mp4",)),
        _out_case("out-folder", lambda d: (d / "dir.mp4").mkdir() or d / "dir.mp4", False, ("folder",)),
        _out_case("out-name-too-long", lambda d: d / ("n" * 300 + ".mp4"), False, ("too long",)),
        _out_case("out-name-nearly-too-long", lambda d: d / ("n" * 230 + ".mp4"), False, ("too long",)),
        _out_case("out-under-a-file", lambda d: _put(d / "file", "x") / "out.mp4", False),
        _out_case("out-brackets", lambda d: d / "[bold]out[red] (1).mp4", True, slow=True),
        _out_case("out-unicode", lambda d: d / "vidéo 说话.mp4", True, slow=True),
        _out_case("out-uppercase-ext", lambda d: d / "OUT.MP4", True, slow=True),
        _out_case("out-overwrites-existing", lambda d: d / "out.mp4", True, existing=True, slow=True),
    ]


# ------------------------------------------------------------------------------------------ options


def _option_cases() -> list[Case]:
    gen_bad = {
        "--fps": ["0", "0.5", "121", "nan", "inf", "-25", "x"],
        "--size": ["0", "63", "4097", "-1", "big"],
        "--seed": ["-1", "-99", "1.5", "x"],
        "--lip-strength": ["nan", "-0.1", "3.1", "inf"],
        "--pose-scale": ["nan", "-1", "4"],
        "--blink-rate": ["-1", "61", "nan"],
        "--emotion-strength": ["-1", "2.5", "nan"],
        "--face-index": ["-1", "x", "1000"],
        "--emotion": ["bored", ""],
    }
    cases = []
    for flag, values in gen_bad.items():
        for v in values:
            cases.append(
                Case(
                    f"gen{flag}={v}",
                    _gen(DEMO_FACE, (flag, v)),
                    False,
                    (flag,) if flag != "--emotion" else ("emotion",),
                )
            )
    for args in (["--bogus"], ["--size"], ["--quiet", "extra-argument"]):
        cases.append(Case(f"gen-usage-{'_'.join(args)}", _gen(DEMO_FACE, tuple(args)), False))
    cases.append(
        Case("gen-missing-audio", lambda d: ["generate", "--face", DEMO_FACE, "-o", d / "out.mp4"], False, ("--audio",))
    )
    cases.append(Case("unknown-command", lambda d: ["animate", "--face", DEMO_FACE], False, ("animate",)))
    gen_ok = {
        "--fps": ["1", "12.5", "29.97", "60", "120"],
        "--seed": ["0", "7", "4294967296"],
        "--lip-strength": ["0", "3"],
        "--pose-scale": ["0"],
        "--blink-rate": ["0", "60"],
        "--emotion": ["happy"],
        "--still": [None],
    }
    for flag, values in gen_ok.items():
        for v in values:
            extra = (flag,) if v is None else (flag, v)
            cases.append(Case(f"gen-ok{flag}={v}", _gen(DEMO_FACE, extra), True, slow=(flag, v) != ("--fps", "29.97")))
    return cases


# ------------------------------------------------------------------------------------------ videos (dub)


def _face_frames(n: int, size=(128, 128)) -> list[np.ndarray]:
    f = cv2.resize(demo_face_rgb(), size)
    return [np.ascontiguousarray(np.roll(f, k % 3, axis=1)) for k in range(n)]


def _dub(video: Callable[[Path], Path], extra=(), seconds: float = 1.0):
    def make(d: Path) -> list:
        return ["dub", "--video", video(d), "--audio", _speech(d, seconds), "-o", d / "out.mp4", "-q", *extra]

    return make


def _video_cases() -> list[Case]:
    cases = []
    for fps in (10, 23.976, 24, 25, 29.97, 30, 50, 60):
        cases.append(
            Case(
                f"dub-fps-{fps}",
                _dub(lambda d, fps=fps: write_video(d / "v.mp4", _face_frames(int(fps)), fps)),
                True,
                size=(128, 128),
                slow=True,
            )
        )
    for codec, ext, pix in (
        ("mpeg4", "mp4", "yuv420p"),
        ("mjpeg", "mov", "yuvj420p"),
        ("libx264", "mkv", "yuv420p"),
        ("libvpx-vp9", "webm", "yuv420p"),
        ("libx264", "mov", "yuv444p"),
        ("libx265", "mp4", "yuv420p"),
    ):
        cases.append(
            Case(
                f"dub-codec-{codec}-{ext}-{pix}",
                _dub(
                    lambda d, c=codec, e=ext, p=pix: write_video(d / f"v.{e}", _face_frames(25), 25, codec=c, pix_fmt=p)
                ),
                True,
                size=(128, 128),
                slow=True,
            )
        )
    for w, h in ((160, 120), (120, 160), (130, 98), (641, 481)):
        cases.append(
            Case(
                f"dub-size-{w}x{h}",
                _dub(lambda d, w=w, h=h: write_video(d / "v.mp4", _face_frames(25, (w, h)), pix_fmt="yuv444p")),
                True,
                size=(w, h),
                slow=True,
            )
        )
    for loop in ("pingpong", "loop", "freeze"):
        cases.append(
            Case(
                f"dub-loop-{loop}",
                _dub(lambda d: write_video(d / "v.mp4", _face_frames(10)), ("--loop", loop)),
                True,
                size=(128, 128),
                slow=True,
            )
        )
    cases.append(
        Case(
            "dub-rest-trim",
            _dub(lambda d: write_video(d / "v.mp4", _face_frames(50)), ("--rest", "trim")),
            True,
            size=(128, 128),
            slow=True,
        )
    )
    cases.append(
        Case(
            "dub-rest-keep",
            _dub(lambda d: write_video(d / "v.mp4", _face_frames(50)), ("--rest", "keep")),
            True,
            size=(128, 128),
            duration=2.0,
            slow=True,
        )
    )
    bad = {
        "no-face": (lambda d: write_video(d / "v.mp4", [np.full((96, 128, 3), 90, np.uint8)] * 10), "no usable face"),
        "text": (lambda d: _put(d / "v.mp4", "not a video"), "v.mp4"),
        "empty": (lambda d: _put(d / "v.mp4", b""), "v.mp4"),
        "audio-only": (lambda d: write_pcm(d / "v.wav", tone_speech(1.0), 16000), "no video track"),
        "missing": (lambda d: d / "none.mp4", "does not exist"),
        "folder": (lambda d: d, "is a folder"),
    }
    for name, (make, needle) in bad.items():
        cases.append(Case(f"dub-bad-{name}", _dub(make), False, (needle,), slow=name == "no-face"))
    dub_bad_opts = {
        "--face": ["left", "-1", "1,2,3", "99,99999", "x,y"],
        "--loop": ["bounce", ""],
        "--rest": ["cut"],
        "--crf": ["-1", "52", "nan"],
        "--lip-strength": ["nan", "4"],
    }
    for flag, values in dub_bad_opts.items():
        for v in values:
            cases.append(
                Case(
                    f"dub{flag}={v}",
                    _dub(lambda d: write_video(d / "v.mp4", _face_frames(5)), (flag, v)),
                    False,
                    (flag,),
                )
            )
    cases.append(
        Case(
            "dub-out-is-input",
            lambda d: [
                "dub",
                "--video",
                write_video(d / "out.mp4", _face_frames(5)),
                "--audio",
                _speech(d),
                "-o",
                d / "out.mp4",
                "-q",
            ],
            False,
            ("overwrite",),
            existing=True,
        )
    )
    return cases


ALL = _image_cases() + _audio_cases() + _output_cases() + _option_cases() + _video_cases()


def _params():
    for c in ALL:
        marks = [pytest.mark.slow] if c.slow else []
        yield pytest.param(c, id=c.id, marks=marks)


def test_battery_has_enough_cases():
    assert len(ALL) >= 200, len(ALL)
    assert len({c.id for c in ALL}) == len(ALL)


@pytest.mark.parametrize("case", list(_params()))
def test_case(case: Case, tmp_path):
    args = case.make(tmp_path)
    out = Path(args[args.index("-o") + 1]) if "-o" in args else tmp_path / case.out_name
    if case.existing:
        out.write_bytes(PRECIOUS) if not out.exists() else None
    before = out.read_bytes() if case.existing else None
    try:
        folder = out.is_dir()
    except OSError:  # a name too long to exist
        folder = False
    res = run_cli(args)
    ok, duration = case.ok, case.duration
    if ok is None:  # either outcome is right (a damaged file may still decode), but by the contract; a
        ok = res.exit_code == 0  # success lasts as long as the audio that could be decoded
        if ok:
            from talkinghead.media import load_audio

            duration = load_audio(args[args.index("--audio") + 1]).duration
    if ok:
        assert res.exit_code == 0, (res.output, repr(res.exception))
        assert_video(out, duration, case.size, tolerance=0.1)
    else:
        assert_user_error(res, out, *case.needles, existing=before, folder=folder)


# ------------------------------------------------------------------------------------------ interruptions


def _cli(*args: object) -> list[str]:
    return [sys.executable, "-m", "talkinghead.cli", *map(str, args)]


def _interrupt(cmd: list[str], sig: int, after_s: float, cwd: Path) -> int:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(after_s)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err.decode()


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode, sig, seed",
    [
        ("generate", signal.SIGINT, 1),
        ("generate", signal.SIGKILL, 2),
        ("dub", signal.SIGINT, 3),
        ("dub", signal.SIGKILL, 4),
        ("dub", signal.SIGKILL, 5),
        ("generate", signal.SIGINT, 6),
    ],
)
def test_interrupted_then_rerun(tmp_path, mode, sig, seed):
    """Interrupted at a seeded random point (start-up, loading, rendering), the output is absent, a rerun
    succeeds and leaves nothing behind; a dub resumes."""
    after = float(np.random.default_rng(seed).uniform(2.0, 12.0))
    seconds = 4.0 if mode == "generate" else 8.0
    speech = write_pcm(tmp_path / "s.wav", tone_speech(seconds), 16000)
    out = tmp_path / "out.mp4"
    if mode == "generate":
        cmd = _cli("generate", "--face", DEMO_FACE, "--audio", speech, "-o", out, "-q", "--size", "128")
    else:
        video = write_video(tmp_path / "v.mp4", _face_frames(100))
        cmd = _cli("dub", "--video", video, "--audio", speech, "-o", out, "-q")
    rc, err = _interrupt(cmd, sig, after, tmp_path)
    if rc != 0:
        if out.exists():  # stopped after the finished file was moved into place (while tidying up): it is whole
            from talkinghead.media import probe_video

            assert abs(probe_video(out).duration - seconds) <= 0.1
        assert "Traceback" not in err, err
        if sig == signal.SIGINT:
            assert rc == 130 and "Interrupted" in err, (rc, err)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr.decode()
    assert_video(out, seconds)
    assert leftovers(out) == []
