"""The only module that combines stages: Animator (stateful, caches the face) and generate()."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from talkinghead.config import GenerateOptions
from talkinghead.errors import InputError
from talkinghead.face.source import SourceFace, analyse_source
from talkinghead.face.track import track_video
from talkinghead.media import VideoWriter, fit_size, load_image
from talkinghead.media.inputs import check_output, load_speech
from talkinghead.motion.compose import neutral_canonical, target_points
from talkinghead.motion.driving import driver_motion, resample_pingpong
from talkinghead.motion.emotion import Emotions
from talkinghead.motion.learned import LearnedMotion
from talkinghead.motion.mouth import MouthModel
from talkinghead.render.eyes import EyeCloser
from talkinghead.render.mouth_interior import face_tone, paint_mouth
from talkinghead.render.warp import MeshWarper

ASSETS = Path(__file__).parent / "assets"
DEMO_FACE = ASSETS / "astronaut.jpg"
DEMO_AUDIO = ASSETS / "demo_speech.wav"

Progress = Callable[[int, int], None]


class Animator:
    """Loads the built-in models once; `set_source` analyses a face once; `frames` animates it."""

    def __init__(self, lips_weights: str = "lips", motion_weights: str = "motion") -> None:
        self.mouth = MouthModel(lips_weights)
        self.head = LearnedMotion(motion_weights)
        self.source: SourceFace | None = None
        self._emotions: Emotions | None = None

    def set_source(self, image: np.ndarray | str | os.PathLike[str], size: int | None = None,
                   face_index: int = 0) -> SourceFace:
        img = load_image(image) if not isinstance(image, np.ndarray) else image
        img = fit_size(img, size)
        self.source = analyse_source(img, self.mouth.reference, face_index)
        self._warper = MeshWarper(img, self.source.points)
        self._neutral = neutral_canonical(self.source, self.mouth.indices, self.mouth.open_direction)
        self._tone = face_tone(img, self.source.points)
        self._eyes = EyeCloser(img, self.source.points, self.source.inter_ocular)
        return self.source

    def motion(self, speech16k: np.ndarray, n_frames: int, opts: GenerateOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-frame mouth offsets, eyelid closure and head pose; one seeded generator for all."""
        rng = np.random.default_rng(opts.seed)
        mouth = self.mouth.predict(speech16k, n_frames, opts.fps) * opts.lip_strength
        pose_scale = 0.0 if opts.still else opts.pose_scale
        # learned model (motion/learned.py); the procedural motion/head.py stays only as a benchmark baseline
        pose, lids = self.head.sample(speech16k, n_frames, opts.fps, rng, pose_scale, opts.blinks_per_min)
        if opts.pose_from:  # the driver replaces both tracks; the draws above keep seeds comparable
            track = track_video(opts.pose_from)
            drv_pose, drv_lids = driver_motion(track, self.mouth.reference)
            pose = resample_pingpong(track.times, drv_pose, n_frames, opts.fps) * pose_scale
            lids = resample_pingpong(track.times, drv_lids, n_frames, opts.fps)
        return mouth, lids, pose

    def expression(self, opts: GenerateOptions) -> np.ndarray:
        """Canonical expression offset for the requested emotion (zero for neutral)."""
        if opts.emotion == "neutral" or opts.emotion_strength == 0:
            return np.zeros_like(self._neutral)
        if self._emotions is None:
            self._emotions = Emotions()
        return self._emotions.offset(opts.emotion, opts.emotion_strength, self.mouth.indices, self.mouth.open_direction)

    def frames(self, speech16k: np.ndarray, n_frames: int, opts: GenerateOptions) -> Iterator[np.ndarray]:
        """RGB uint8 frames of the source speaking; one buffer is reused, copy a frame to keep it."""
        if self.source is None:
            raise RuntimeError("call set_source() first")
        mouth, lids, pose = self.motion(speech16k, n_frames, opts)
        neutral = self._neutral + self.expression(opts)
        buf = self.source.image.copy()
        for k in range(n_frames):
            tgt = target_points(self.source, neutral, self.mouth.indices, mouth[k], float(lids[k]), pose[k])
            frame = self._warper.warp(tgt, out=buf, source=self._eyes.source_for(float(lids[k])))
            paint_mouth(frame, tgt, self.source.inter_ocular, self._tone)
            yield frame


def generate(face: str | os.PathLike[str], audio: str | os.PathLike[str], out: str | os.PathLike[str],
             options: GenerateOptions | None = None, progress: Progress | None = None,
             animator: Animator | None = None, **overrides: object) -> Path:
    """Photo + speech -> MP4 at `out`. Keyword overrides (seed=7, still=True, ...) patch `options`."""
    from dataclasses import replace

    opts = replace(options or GenerateOptions(), **overrides)  # type: ignore[arg-type]
    if opts.fps <= 0 or opts.fps > 120:
        raise InputError(f"--fps must be between 1 and 120, not {opts.fps}.")
    out_path = check_output(out)
    wave, speech = load_speech(audio)
    anim = animator or Animator()
    src = anim.set_source(face, size=opts.size, face_index=opts.face_index)
    anim.expression(opts)  # an unknown emotion fails here, before any output exists
    h, w = src.image.shape[:2]
    n_frames = max(1, int(round(wave.duration * opts.fps)))
    with VideoWriter(out_path, w, h, fps=opts.fps, audio=wave, crf=opts.crf) as writer:
        for k, frame in enumerate(anim.frames(speech, n_frames, opts)):
            writer.write(frame)
            if progress:
                progress(k + 1, n_frames)
    return out_path


def demo(out: str | os.PathLike[str] = "demo.mp4", progress: Progress | None = None, **overrides: object) -> Path:
    """The built-in face speaking the built-in speech."""
    return generate(DEMO_FACE, DEMO_AUDIO, out, progress=progress, **overrides)
