"""Photo mode's models in a child process, so that a short clip's fixed cost runs on both cores.

Importing torch, loading the lips and motion models and predicting the motion are most of a 3 s clip's time,
and they are Python under one interpreter lock, as is importing the face and render stages (mediapipe,
OpenCV, SciPy): two threads of one process take turns, two processes do not. The command line forks this
child before anything heavy is imported; the child decodes the speech, loads the models (one torch thread,
as the command line runs them) and sends back the mouth geometry and the motion, while the parent imports
the stages and finds the photo's face. The parent never imports torch. Same code and seed, so the same
motion as an Animator's in the parent (tests/test_motion_process.py).

Only where `os.fork` exists and no other thread runs yet (a fork copies one thread: a lock held by another
would stay held in the child); elsewhere `MotionProcess.start` returns None and the caller loads the models
in-process as before.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from talkinghead.config import GenerateOptions
    from talkinghead.motion.learned import LearnedMotion
    from talkinghead.motion.mouth import MouthModel
    from talkinghead.types import Motion, MouthGeometry
    from talkinghead.weights import WeightsRef


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
    pose = head.sample(speech16k, n_frames, opts.fps, rng, pose_scale, blinks)
    if opts.pose_from:  # the driver replaces both tracks; the draws above keep seeds comparable
        from talkinghead.face.track import track_video
        from talkinghead.motion.driving import driven_motion

        ref = mouth.geometry.reference if reference is None else reference
        driven = driven_motion(track_video(opts.pose_from), ref, n_frames, opts.fps)
        pose = HeadMotion(driven.pose * pose_scale, driven.lids)
    return Motion(mouth=lips, lids=pose.lids, pose=pose.pose, fps=opts.fps)


@dataclass(frozen=True)
class Predicted:
    """What the child sends back: the lips model's geometry, the motion, and the frame count it was for."""

    geometry: MouthGeometry
    motion: Motion
    n_frames: int


class MotionProcess:
    """A forked child predicting the motion of one speech file; `result` waits for it, `close` ends it."""

    def __init__(self, pid: int, fd: int) -> None:
        self._pid: int | None = pid
        self._fd: int | None = fd

    @staticmethod
    def start(
        audio: str | os.PathLike[str],
        opts: GenerateOptions,
        lips_weights: WeightsRef = "lips",
        motion_weights: WeightsRef = "motion",
    ) -> MotionProcess | None:
        """The child, started now; None where it cannot be (no fork, or threads already running)."""
        if not hasattr(os, "fork") or threading.active_count() > 1:
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
        return MotionProcess(pid, read)

    def result(self) -> Predicted:
        """The child's answer (its error is raised here)."""
        if self._fd is None:
            raise RuntimeError("MotionProcess.result was already called")
        fd, self._fd = self._fd, None
        with os.fdopen(fd, "rb") as f:
            data = f.read()
        self._reap()
        if not data:
            raise RuntimeError("The motion process ended without an answer.")
        ok, value = pickle.loads(data)
        if not ok:
            raise value
        assert isinstance(value, Predicted)
        return value

    def close(self) -> None:
        """End the child if it still runs (the job failed or was interrupted first) and reap it."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._pid is not None:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap()

    def _reap(self) -> None:
        if self._pid is not None:
            pid, self._pid = self._pid, None
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass

    def __enter__(self) -> MotionProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _child(
    fd: int, audio: str | os.PathLike[str], opts: GenerateOptions, lips: WeightsRef, motion_weights: WeightsRef
) -> None:
    """The child's work: its answer, or its error, pickled to `fd`."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C reaches the parent too, which explains it
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
        motion = predict_motion(mouth, head, speech, n_frames, opts)
        answer: tuple[bool, Any] = (True, Predicted(mouth.geometry, motion, n_frames))
    except BaseException as exc:  # handed to the parent, which raises it
        answer = (False, exc)
    try:
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # an error that does not pickle: its sentence
        data = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {answer[1]}")))
    with os.fdopen(fd, "wb") as f:
        f.write(data)
