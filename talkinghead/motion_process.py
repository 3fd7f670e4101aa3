"""Photo mode's models in a child process, so that a short clip's fixed cost runs on both cores.

Importing torch, loading the lips and motion models and predicting the motion are most of a 3 s clip's time,
and they are Python under one interpreter lock, as is importing the face and render stages (mediapipe,
OpenCV, SciPy): two threads of one process take turns, two processes do not. The command line forks this
child before anything heavy is imported; the child decodes the speech, loads the models (one torch thread,
as the command line runs them) and sends the motion a second of frames at a time as its head motion is
drawn, while the parent imports the stages, finds the photo's face, reads the mouth geometry from the lips
weights file, opens the writer and renders the pieces that have come. The parent never imports torch. Same
code and seed, so the same motion as an Animator's (tests/test_photo_speed.py).

Only where `os.fork` exists and no other thread runs yet, native ones included (a fork copies one thread: a
lock or thread pool of another would stay held or half-built in the child; a command line run in-process
by a program that already ran torch or OpenCV crashed its child with signal 11); elsewhere
`MotionProcess.start` returns None and the caller loads the models in-process as before.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    import numpy as np

    from talkinghead.config import GenerateOptions
    from talkinghead.motion.learned import LearnedMotion
    from talkinghead.motion.mouth import MouthModel
    from talkinghead.types import Motion
    from talkinghead.weights import WeightsRef


PIECE = 25  # frames of motion per message from the child: rendering starts after the first second's


def predict_motion(
    mouth: MouthModel,
    head: LearnedMotion,
    speech16k: np.ndarray,
    n_frames: int,
    opts: GenerateOptions,
    style: Any = None,
    reference: np.ndarray | None = None,
) -> Motion:
    """Mouth, eyelids and head pose for `n_frames` frames of speech; one seeded generator for all (what
    `Animator.motion` computes; `style`: an avatar's, `reference`: the canonical face a driving video is
    read against, default the lips model's). With a style, --pose-scale and --blink-rate are relative to the
    person's filmed style (1 and 17 = as filmed)."""
    import numpy as np

    from talkinghead.types import Motion

    parts = list(predict_pieces(mouth, head, speech16k, n_frames, opts, style, reference, max(n_frames, 1)))
    return Motion(
        mouth=np.concatenate([p.mouth for p in parts]),
        lids=np.concatenate([p.lids for p in parts]),
        pose=np.concatenate([p.pose for p in parts]),
        fps=opts.fps,
    )


def predict_pieces(
    mouth: MouthModel,
    head: LearnedMotion,
    speech16k: np.ndarray,
    n_frames: int,
    opts: GenerateOptions,
    style: Any = None,
    reference: np.ndarray | None = None,
    size: int = PIECE,
) -> Iterator[Motion]:
    """`predict_motion` in consecutive pieces of `size` frames (the same values), each as soon as its head
    motion is drawn; the mouth is predicted for the whole clip first (its gain reads the whole speech). A
    driving video's motion comes as one piece."""
    import numpy as np

    from talkinghead.config import GenerateOptions as Defaults
    from talkinghead.types import HeadMotion, Motion

    rng = np.random.default_rng(opts.seed)
    lips = mouth.predict(speech16k, n_frames, opts.fps, opts.lips) * opts.lip_strength
    pose_scale: Any = 0.0 if opts.still else opts.pose_scale
    blinks = opts.blinks_per_min
    if style is not None:
        lips = lips * style.lip_gain
        pose_scale = pose_scale * np.asarray(style.pose_scale, np.float32)
        blinks = style.blinks_per_min * opts.blinks_per_min / Defaults.blinks_per_min
    # learned model (motion/learned.py); the procedural motion/head.py stays only as a benchmark baseline
    if opts.pose_from:  # the driver replaces both tracks; the draws of `sample` keep seeds comparable
        from talkinghead.face.native_logs import quiet_native_logs
        from talkinghead.face.track import track_video
        from talkinghead.motion.driving import driven_motion

        head.sample(speech16k, n_frames, opts.fps, rng, pose_scale, blinks)
        ref = mouth.geometry.reference if reference is None else reference
        with quiet_native_logs():  # in the CLI's child the driver's mesh is the process's first mediapipe graph
            track = track_video(opts.pose_from)
        driven = driven_motion(track, ref, n_frames, opts.fps)
        pose = HeadMotion(driven.pose * pose_scale, driven.lids)
        yield Motion(mouth=lips, lids=pose.lids, pose=pose.pose, fps=opts.fps)
        return
    if n_frames <= 0:
        yield Motion(mouth=lips, lids=np.zeros(0, np.float32), pose=np.zeros((0, 5), np.float32), fps=opts.fps)
        return
    a = 0
    for piece in head.pieces(speech16k, n_frames, opts.fps, rng, pose_scale, blinks, size):
        b = a + len(piece.lids)
        yield Motion(mouth=lips[a:b], lids=piece.lids, pose=piece.pose, fps=opts.fps)
        a = b


class MotionProcess:
    """A forked child predicting the motion of one speech file; `pieces` reads it as it comes, `close` ends it.

    The child writes pickled messages to a pipe: ("frames", n) once the speech is decoded and the models
    loaded, then ("motion", Motion) per piece, ("end", None) last; ("error", exception) instead, at any point.
    """

    def __init__(self, pid: int, fd: int, lips_weights: WeightsRef) -> None:
        self._pid: int | None = pid
        self._file: BinaryIO | None = os.fdopen(fd, "rb")
        self.lips_weights = lips_weights  # the parent reads the mouth geometry from the same file

    @staticmethod
    def start(
        audio: str | os.PathLike[str],
        opts: GenerateOptions,
        lips_weights: WeightsRef = "lips",
        motion_weights: WeightsRef = "motion",
    ) -> MotionProcess | None:
        """The child, started now; None where it cannot be (no fork, or threads already running)."""
        if not hasattr(os, "fork") or _threads() > 1:
            return None
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read)
            code = 1
            try:
                _child(write, audio, opts, lips_weights, motion_weights)
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        return MotionProcess(pid, read, lips_weights)

    def pieces(self, n_frames: int) -> Iterator[Motion]:
        """The motion, piece by piece as the child sends it (its error is raised here); `n_frames` is what the
        caller read from the same speech, checked against the child's."""
        kind, value = self._next()
        if kind == "frames" and value != n_frames:
            raise RuntimeError(f"the motion process read {value} frames of speech, this one {n_frames}")
        while True:
            kind, value = self._next()
            if kind == "end":
                break
            yield value
        self.close(kill=False)

    def _next(self) -> tuple[str, Any]:
        if self._file is None:
            raise RuntimeError("the motion process was closed")
        try:
            kind, value = pickle.load(self._file)
        except EOFError:
            status = self._reap()
            raise RuntimeError(f"The motion process ended without an answer ({status}).") from None
        if kind == "error":
            self.close()
            raise value
        return kind, value

    def _reap(self) -> str:
        """Close the pipe, wait for the child to exit and say how it ended (for a child that died mid-job)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        pid, self._pid = self._pid, None
        if pid is None:
            return "already reaped"
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return "not found"
        if os.WIFSIGNALED(status):
            return f"killed by signal {os.WTERMSIG(status)}"
        return f"exit status {os.WEXITSTATUS(status)}"

    def close(self, kill: bool = True) -> None:
        """End the child if it still runs (the job failed or was interrupted first) and reap it; `kill=False`:
        it has sent everything and is exiting by itself."""
        if kill and self._pid is not None:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reap()

    def __enter__(self) -> MotionProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _threads() -> int:
    """Threads of this process, native ones (OpenMP, OpenCV, mediapipe pools) included where the system says
    (Linux's /proc); Python's own count elsewhere."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _child(
    fd: int, audio: str | os.PathLike[str], opts: GenerateOptions, lips: WeightsRef, motion_weights: WeightsRef
) -> None:
    """The child's work: its messages (see `MotionProcess`), pickled to `fd`."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C reaches the parent too, which explains it
    with os.fdopen(fd, "wb") as out:

        def send(kind: str, value: Any) -> None:
            try:
                data = pickle.dumps((kind, value), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # an error that does not pickle: its sentence
                data = pickle.dumps(("error", RuntimeError(f"{type(value).__name__}: {value}")))
            out.write(data)
            out.flush()

        try:
            import torch

            from talkinghead.media.inputs import load_speech
            from talkinghead.motion.learned import LearnedMotion
            from talkinghead.motion.mouth import MouthModel

            # the models are small: one thread predicts 30 s of motion in a third of the CPU time two take
            torch.set_num_threads(1)
            wave, speech = load_speech(audio)
            n_frames = max(1, int(round(wave.duration * opts.fps)))
            mouth, head = MouthModel(lips), LearnedMotion(motion_weights)
            send("frames", n_frames)
            for piece in predict_pieces(mouth, head, speech, n_frames, opts):
                send("motion", piece)
            send("end", None)
        except BrokenPipeError:  # the parent stopped reading (its job failed): nothing to tell
            pass
        except BaseException as exc:  # handed to the parent, which raises it
            send("error", exc)
