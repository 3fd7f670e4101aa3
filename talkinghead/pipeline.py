"""The only module that combines stages: Animator (stateful, caches the face) and generate()."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from talkinghead.config import PHOTO_X264, GenerateOptions, check_lips, check_mouth
from talkinghead.errors import InputError
from talkinghead.face.source import SourceFace, analyse_source
from talkinghead.media import VideoWriter, fit_size, load_image
from talkinghead.media.image import MAX_SIDE as MAX_SIZE
from talkinghead.media.inputs import check_output, load_speech
from talkinghead.media.still_frames import BackgroundEncoder, StillPlanes
from talkinghead.media.timers import stage
from talkinghead.media.video_writer import Threads
from talkinghead.motion.compose import target_points
from talkinghead.motion_process import MotionProcess, predict_motion
from talkinghead.provenance.stamp import Stamp, mouth_spare
from talkinghead.render.eyes import EyeCloser
from talkinghead.render.mouth_interior import face_tone, paint_mouth, painted_teeth
from talkinghead.render.warp import MeshWarper
from talkinghead.types import Motion, MouthGeometry

if TYPE_CHECKING:  # the models import torch (seconds): loaded when an Animator is made, not on import
    from talkinghead.face.landmarks import DetectedFace
    from talkinghead.motion.emotion import Emotions
    from talkinghead.motion.learned import LearnedMotion
    from talkinghead.motion.mouth import MouthModel
    from talkinghead.weights import WeightsRef

ASSETS = Path(__file__).parent / "assets"
DEMO_FACE = ASSETS / "astronaut.jpg"
DEMO_AUDIO = ASSETS / "demo_speech.wav"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class _PreparedFace:
    """What `Animator.set_source` computes once per photo and every frame reuses."""

    source: SourceFace
    warper: MeshWarper
    neutral: np.ndarray  # (478, 3) canonical shape with the mouth closed
    tone: float  # skin brightness, lights the painted mouth interior
    eyes: EyeCloser
    avatar: Any = None  # talkinghead.avatar.Avatar when set by `set_avatar`: own mouths, lids and style
    mouth: Any = None  # the avatar's adapted lips model (MouthModel), None: the Animator's own


class Animator:
    """Photo mode's predictor: loads the models once; `set_source` analyses a face once; `frames` animates it.

    `lips_weights`, `motion_weights` and `emotions_weights` take a built-in name or a file written by
    `talkinghead train` (checked for fitting its kind at load)."""

    def __init__(
        self,
        lips_weights: WeightsRef = "lips",
        motion_weights: WeightsRef = "motion",
        emotions_weights: WeightsRef = "emotions",
        mouth_weights: WeightsRef = "mouth",
    ) -> None:
        from talkinghead.motion.learned import LearnedMotion
        from talkinghead.motion.mouth import MouthModel

        self.mouth = MouthModel(lips_weights)
        self.head: LearnedMotion | None = LearnedMotion(motion_weights)
        self._setup(emotions_weights, mouth_weights)

    @classmethod
    def rendering(
        cls, geometry: MouthGeometry, emotions_weights: WeightsRef = "emotions", mouth_weights: WeightsRef = "mouth"
    ) -> Animator:
        """An Animator that renders motion predicted elsewhere (the command line's child process,
        motion_process.py): only the lips model's `geometry` (`mouth.geometry`), no model loaded and torch not
        imported; `motion`, `stream` and `set_avatar` need the models and are refused."""
        anim = cls.__new__(cls)
        anim.mouth = cast("MouthModel", _GeometryOnly(geometry))
        anim.head = None
        anim._setup(emotions_weights, mouth_weights)
        return anim

    def _setup(self, emotions_weights: WeightsRef, mouth_weights: WeightsRef) -> None:
        self._emotions_weights = emotions_weights
        self._emotions: Emotions | None = None  # loaded on the first emotion asked for
        self._face: _PreparedFace | None = None
        self._mouth_weights = mouth_weights
        self._mouth_net: Any = None  # the learned mouth interior, loaded on the first frame that needs it

    @property
    def source(self) -> SourceFace:
        """The analysed face; `set_source` must have been called."""
        return self._prepared().source

    def _prepared(self) -> _PreparedFace:
        if self._face is None:
            raise RuntimeError("Animator: call set_source() with a photo before animating it.")
        return self._face

    def set_source(
        self,
        image: np.ndarray | str | os.PathLike[str],
        size: int | None = None,
        face_index: int = 0,
        faces: list[DetectedFace] | None = None,
    ) -> SourceFace:
        """Analyse the photo's face (0 = largest) once; `size` is the output's longer side (None = as is).
        `faces`: `detect_faces` of the image at that size, when already known."""
        img = load_image(image) if not isinstance(image, np.ndarray) else image
        img = fit_size(img, size)
        source = analyse_source(img, self.mouth.geometry.reference, face_index, faces)
        self._face = _PreparedFace(
            source=source,
            warper=MeshWarper(img, source.points),
            neutral=self.mouth.geometry.close(source.canonical),
            tone=face_tone(img, source.points),
            eyes=EyeCloser(img, source.points, source.inter_ocular),
        )
        return source

    def set_avatar(self, path: str | os.PathLike[str], size: int | None = None) -> SourceFace:
        """Animate an avatar (`talkinghead avatar`): its reference frame is the source, its own mouth
        interiors, closed lids, adapted articulation and motion style replace the generic ones. `set_source`
        clears it."""
        from dataclasses import replace

        from talkinghead.avatar import load_avatar
        from talkinghead.avatar.adapt import for_avatar
        from talkinghead.face.landmarks import detect_faces

        self._models()
        mouth, avatar = for_avatar(self.mouth, load_avatar(path))
        img = fit_size(avatar.reference, size)
        k = img.shape[1] / avatar.reference.shape[1]
        faces = detect_faces(img)  # the avatar's face: the one nearest where it was filmed
        filmed = np.asarray(avatar.face_point, np.float64) * k
        index = int(np.argmin([np.hypot(*(np.asarray(f.center) - filmed)) for f in faces])) if faces else 0
        source = self.set_source(img, face_index=index)
        face = self._prepared()
        eyes = EyeCloser(img, source.points, source.inter_ocular, lids=avatar.eyes_closed)
        self._face = replace(face, eyes=eyes, avatar=avatar, mouth=mouth)
        return source

    def motion(self, speech16k: np.ndarray, n_frames: int, opts: GenerateOptions) -> Motion:
        """Mouth, eyelids and head pose for `n_frames` frames of speech; one seeded generator for all.
        With an avatar, --pose-scale and --blink-rate are relative to the person's filmed style
        (1 and 17 = as filmed)."""
        head = self._models()
        face = self._face
        mouth = face.mouth if face is not None and face.mouth is not None else self.mouth
        style = face.avatar.style if face is not None and face.avatar is not None else None
        return predict_motion(mouth, head, speech16k, n_frames, opts, style, self.mouth.geometry.reference)

    def _models(self) -> LearnedMotion:
        if self.head is None:
            raise RuntimeError("This Animator only renders (Animator.rendering): it has no models to predict with.")
        return self.head

    def expression(self, opts: GenerateOptions) -> np.ndarray:
        """(478, 3) canonical expression offset for the requested emotion (zero for neutral); an unknown
        emotion raises InputError."""
        if opts.emotion == "neutral" or opts.emotion_strength == 0:
            return np.zeros((478, 3), np.float32)
        if self._emotions is None:
            from talkinghead.motion.emotion import Emotions

            self._emotions = Emotions(self._emotions_weights)
        return self._emotions.offset(opts.emotion, opts.emotion_strength, self.mouth.geometry)

    def render(self, motion: Motion | Iterable[Motion], opts: GenerateOptions) -> Iterator[np.ndarray]:
        """RGB uint8 frames of the source following `motion`, one Motion or consecutive pieces of one (a
        stream: only the piece being rendered is held); each frame is a new array the caller may keep."""
        x0, y0, x1, y1 = self.changed_box()
        for region in self.render_regions(motion, opts):
            frame = self._prepared().eyes.work.copy()  # the photo, eyes as in this frame
            frame[y0:y1, x0:x1] = region
            yield frame

    def changed_box(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1), even corners: the only pixels that differ from the photo in any frame (the
        warp's region and the eyes'); everything outside is the photo itself."""
        face = self._prepared()
        x0, y0, x1, y1 = face.warper.box
        if face.eyes.box is not None:
            ex0, ey0, ex1, ey1 = face.eyes.box
            x0, y0, x1, y1 = min(x0, ex0), min(y0, ey0), max(x1, ex1), max(y1, ey1)
        h, w = face.source.image.shape[:2]
        return x0 // 2 * 2, y0 // 2 * 2, min(w, (x1 + 1) // 2 * 2), min(h, (y1 + 1) // 2 * 2)

    def render_regions(self, motion: Motion | Iterable[Motion], opts: GenerateOptions) -> Iterator[np.ndarray]:
        """Like `render`, but each frame is only its `changed_box` region (a new array): the warp, eyes
        and mouth work on that region alone, and an encoder can reuse the photo's pixels for the rest."""
        face = self._prepared()
        neutral = face.neutral + self.expression(opts)
        indices = self.mouth.geometry.indices
        painter = None
        if face.avatar is not None:  # the person's own interiors, fitted between the target lips
            from talkinghead.render.mouth_bank import MouthPainter

            painter = MouthPainter(face.avatar.bank)
        x0, y0, x1, y1 = self.changed_box()
        wx0, wy0, wx1, wy1 = face.warper.box
        whole = (x0, y0, x1, y1) == (wx0, wy0, wx1, wy1)
        shift = np.zeros((1, 3), np.float32)
        shift[0, :2] = x0, y0
        source_local = face.source.points - shift
        learned = None
        # photo mode's default: the painted cavity with a drawn tooth row (numpy and OpenCV only, no network)
        teeth = painted_teeth(face.source.image, face.source.points) if opts.mouth == "teeth" else None
        if painter is None and opts.mouth in ("learned", "hybrid"):  # photo mode: the network's interior
            from talkinghead.render.learned_mouth import HybridMouth, LearnedMouth, load_mouth_net

            if self._mouth_net is None:
                self._mouth_net = load_mouth_net(self._mouth_weights)
            kind = HybridMouth if opts.mouth == "hybrid" else LearnedMouth  # hybrid: with a tooth row over it
            learned = kind(self._mouth_net, _face_colours(face.source.image, face.source.points))
        for piece in [motion] if isinstance(motion, Motion) else motion:
            for k in range(len(piece)):
                lids = float(piece.lids[k])
                tgt = target_points(face.source, neutral, indices, piece.mouth[k], lids, piece.pose[k])
                with stage("eyes"):
                    src = face.eyes.source_for(lids)
                with stage("warp"):
                    warped = face.warper.warp_region(tgt, src)
                    if whole:
                        region = warped
                    else:
                        region = src[y0:y1, x0:x1].copy()
                        region[wy0 - y0 : wy1 - y0, wx0 - x0 : wx1 - x0] = warped
                with stage("interior"):
                    local = tgt - shift
                    if painter is not None:
                        painter(region, source_local, local, face.source.inter_ocular, face.tone)
                    elif learned is not None:
                        learned(region, local, face.source.inter_ocular)
                    else:
                        paint_mouth(region, local, face.source.inter_ocular, face.tone, teeth=teeth)
                yield region

    def stream(
        self, chunks: Iterable[np.ndarray], options: GenerateOptions | None = None, lookahead: float | None = None
    ) -> Iterator[np.ndarray]:
        """RGB frames of the source speaking 16 kHz mono float32 `chunks` (any lengths) as they arrive: frame k
        (time k / fps) comes as soon as the audio up to k / fps + `lookahead` s has (motion/stream.py)."""
        from talkinghead.motion.stream import LOOKAHEAD_S, MotionStream

        options = options or GenerateOptions()
        if options.lips == "whisper":  # Whisper's encoder hears whole 30 s chunks: no bounded look-ahead
            raise InputError("Streaming uses the standard lips model only; --lips whisper needs the whole speech.")
        opts = check_options(options)  # (before it: refused whether or not the [whisper] extra is installed)
        face = self._prepared()
        style = face.avatar.style if face.avatar is not None else None
        motion = MotionStream(self.mouth, self._models(), opts, style, LOOKAHEAD_S if lookahead is None else lookahead)
        self.expression(opts)  # an unknown emotion fails before any audio is read

        def pieces() -> Iterator[Motion]:
            for chunk in chunks:
                yield motion.push(np.asarray(chunk, np.float32).reshape(-1))
            yield motion.finish()

        return self.render(pieces(), opts)

    def frames(self, speech16k: np.ndarray, n_frames: int, opts: GenerateOptions) -> Iterator[np.ndarray]:
        """RGB uint8 frames of the source speaking 16 kHz mono `speech16k` (see `render`)."""
        self._prepared()
        return self.render(self.motion(speech16k, n_frames, opts), opts)


def _face_colours(img: np.ndarray, points: np.ndarray) -> np.ndarray:
    from talkinghead.render.learned_mouth import face_colours  # imports torch: not on `import pipeline`

    return face_colours(img, points)


def check_options(opts: GenerateOptions) -> GenerateOptions:
    """The options, if every number is in range (the CLI's ranges, for Python callers); else InputError."""
    ranges = {
        "fps": (1, 120),
        "lip_strength": (0, 3),
        "pose_scale": (0, 3),
        "blinks_per_min": (0, 60),
        "emotion_strength": (0, 2),
        "crf": (0, 51),
    }
    check_mouth(opts.mouth)
    check_lips(opts.lips)
    for name, (lo, hi) in ranges.items():
        value = getattr(opts, name)
        if not (math.isfinite(value) and lo <= value <= hi):
            raise InputError(f"{name} must be a number from {lo} to {hi}, not {value}.")
    if opts.seed < 0:
        raise InputError(f"seed must be 0 or more, not {opts.seed}.")
    if opts.size is not None and not 64 <= opts.size <= MAX_SIZE:
        raise InputError(f"size must be from 64 to {MAX_SIZE}, not {opts.size}.")
    if opts.face_index < 0:
        raise InputError(f"face_index must be 0 or more, not {opts.face_index}.")
    return opts


def generate(
    face: str | os.PathLike[str] | None,
    audio: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: GenerateOptions | None = None,
    progress: Progress | None = None,
    animator: Animator | Callable[[], Animator] | MotionProcess | None = None,
    avatar: str | os.PathLike[str] | None = None,
    **overrides: object,
) -> Path:
    """Photo (or `avatar` file, face=None) + speech -> MP4 at `out`. Keyword overrides (seed=7, still=True,
    ...) patch `options`. `animator`: one to reuse, or a function making a new one (default `Animator`),
    which then loads its models on a second thread while the photo is read and its face found, or (photo
    only) a `MotionProcess` started for this `audio` and these options, whose motion is rendered here."""
    from dataclasses import replace

    opts = check_options(replace(options or GenerateOptions(), **overrides))  # type: ignore[arg-type]
    out_path = check_output(out)
    with stage("decode"):
        wave, speech = load_speech(audio)
    if (face is None) == (avatar is None):
        raise InputError("Give either a face photo or an avatar file, not both or neither.")
    n_frames = max(1, int(round(wave.duration * opts.fps)))
    motion: Motion | Iterable[Motion]
    if isinstance(animator, MotionProcess):
        if face is None:
            raise ValueError("generate: a MotionProcess animates a photo, not an avatar")
        anim, src, motion = _photo_from_process(animator, face, n_frames, opts)
    elif face is not None and not isinstance(animator, Animator):
        anim, src, motion = _photo_overlapped(animator or Animator, face, speech, n_frames, opts)
    else:
        with stage("load"):
            anim = animator if isinstance(animator, Animator) else (animator or Animator)()
        with stage("face analysis"):
            src = (
                anim.set_avatar(avatar, size=opts.size)
                if avatar is not None
                else anim.set_source(face, size=opts.size, face_index=opts.face_index)  # type: ignore[arg-type]
            )
            anim.expression(opts)  # an unknown emotion fails here, before any output exists
        with stage("motion"):
            motion = anim.motion(speech, n_frames, opts)
    h, w = src.image.shape[:2]
    source = face if face is not None else avatar
    assert source is not None
    settings = asdict(opts)
    for key, default in (("mouth", GenerateOptions.mouth), ("lips", "standard")):
        if settings[key] == default:  # the defaults: same job id and watermark as before the option existed
            del settings[key]
    stamp = Stamp.new("photo", opts.watermark, [source, audio], settings, (w, h))  # label, watermark, C2PA
    marks = stamp.writer_args(w, h, mouth_spare(src.points))  # the mouth is left unmarked (face mesh, small faces)
    odd = bool(w % 2 or h % 2)  # odd sizes are encoded 4:4:4 from RGB on this thread (video_writer.py)
    # even sizes encode on a thread of their own, where x264 runs alone ("one") and the renderer has the other core
    threads: Threads = "slices" if odd else "one"
    with VideoWriter(
        out_path, w, h, fps=opts.fps, audio=wave, crf=opts.crf, x264_params=PHOTO_X264, threads=threads, **marks
    ) as writer:
        if odd:
            for k, frame in enumerate(anim.render(motion, opts)):
                with stage("encode"):
                    writer.write(frame)
                if progress:
                    progress(k + 1, n_frames)
            return out_path
        # the still's planes are reused outside the changing box; converting and encoding overlap rendering
        still = StillPlanes(src.image, anim.changed_box())
        with BackgroundEncoder(writer, convert=still.frame) as encoder:
            for k, region in enumerate(anim.render_regions(motion, opts)):
                encoder.put(region)
                if progress:
                    progress(k + 1, n_frames)
    return out_path


def _photo_overlapped(
    make: Callable[[], Animator], face: str | os.PathLike[str], speech: np.ndarray, n_frames: int, opts: GenerateOptions
) -> tuple[Animator, SourceFace, Motion]:
    """A new Animator, the photo's face and the motion, with the fixed overhead on both cores: the models
    (importing torch: most of a short clip's time) load and predict the motion on a second thread while
    this one decodes the photo and finds its face (mediapipe, which releases the GIL). The motion of a new
    Animator does not depend on the face, so nothing waits for the other before the end."""
    from talkinghead.face.landmarks import detect_faces

    def load() -> tuple[Animator, Motion | None]:
        with stage("load"):
            anim = make()
        if opts.pose_from:  # a driving video is tracked after the photo: one mediapipe graph at a time
            return anim, None
        with stage("motion"):
            return anim, anim.motion(speech, n_frames, opts)

    models = _Background(load)
    with stage("face analysis"):
        img = fit_size(load_image(face), opts.size)
        faces = detect_faces(img)
    with stage("waiting for the models"):
        anim, motion = models.result()
    with stage("face analysis"):
        src = anim.set_source(img, face_index=opts.face_index, faces=faces)
        anim.expression(opts)  # an unknown emotion fails here, before any output exists
    if motion is None:
        with stage("motion"):
            motion = anim.motion(speech, n_frames, opts)
    return anim, src, motion


def _photo_from_process(
    child: MotionProcess, face: str | os.PathLike[str], n_frames: int, opts: GenerateOptions
) -> tuple[Animator, SourceFace, Iterator[Motion]]:
    """The photo's face found here while the child process loads the models and predicts the motion
    (motion_process.py), whose pieces are read as the frames are rendered; this process never imports torch."""
    from talkinghead.face.landmarks import detect_faces
    from talkinghead.weights import lips_geometry

    with stage("face analysis"):
        img = fit_size(load_image(face), opts.size)
        faces = detect_faces(img)
        anim = Animator.rendering(lips_geometry(child.lips_weights))
        src = anim.set_source(img, face_index=opts.face_index, faces=faces)
        anim.expression(opts)  # an unknown emotion fails here, before any output exists

    def pieces() -> Iterator[Motion]:
        with stage("waiting for the models"):
            stream = child.pieces(n_frames)
            piece = next(stream, None)
        while piece is not None:
            yield piece
            with stage("waiting for the models"):
                piece = next(stream, None)

    return anim, src, pieces()


@dataclass(frozen=True)
class _GeometryOnly:
    """Stands for the lips model in `Animator.rendering`: rendering reads only its geometry."""

    geometry: MouthGeometry


class _Background:
    """Runs `fn` on a daemon thread; `result` waits for it and raises its error in the caller's thread."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), name="talkinghead-models", daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self._value = fn()
        except BaseException as exc:  # handed to the caller's thread
            self._error = exc

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def demo(out: str | os.PathLike[str] = "demo.mp4", progress: Progress | None = None, **overrides: Any) -> Path:
    """The built-in face speaking the built-in speech."""
    return generate(DEMO_FACE, DEMO_AUDIO, out, progress=progress, **overrides)
