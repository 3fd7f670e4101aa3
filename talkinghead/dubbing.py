"""Video dubbing: an existing video + new speech -> the same video with the mouth following the speech.

Like pipeline.py this module combines stages; it only orchestrates. Two streaming passes over the
video, both resumable:

1. track (dub_track.py): follow the chosen face frame by frame in a background thread, saving chunks
   of landmarks as they finish;
2. render (here, with render/region.py): re-render mouth and jaw only, frame by frame at the input's
   resolution and timestamps, into short video segments; a finished segment is never redone.

The segments are then joined without re-encoding and the new audio is muxed in (media/mux.py,
media/soundtrack.py). All intermediate files live in a hidden work folder next to the output
(dub_work.py), keyed by the inputs and options, and are removed once the output is complete; running
the same command again after an interruption continues where it stopped. Memory stays flat: a few
frames and one chunk of landmarks at a time.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from talkinghead.config import DubOptions, check_lips
from talkinghead.dub_track import Track, TrackJob
from talkinghead.dub_work import work_folder
from talkinghead.errors import InputError, NoFaceError
from talkinghead.face.follow import MIN_INTER_OCULAR, FaceChoice
from talkinghead.face.smooth import RADIUS, smooth_points
from talkinghead.media import VideoInfo, VideoWriter, probe_video
from talkinghead.media.frame_fetch import FrameFetcher
from talkinghead.media.inputs import check_output, load_speech, same_file
from talkinghead.media.mux import join_segments
from talkinghead.media.soundtrack import splice_soundtrack
from talkinghead.media.timeline import LOOP_MODES, REST_MODES, Timeline, plan_timeline
from talkinghead.media.timers import stage
from talkinghead.media.video_writer import BackgroundClose
from talkinghead.motion.dub_mouth import dub_target
from talkinghead.motion.resample import at_rate
from talkinghead.provenance.stamp import Stamp, mouth_spare
from talkinghead.render.mouth_bank import BankLoader, MouthPainter
from talkinghead.render.region import dub_region
from talkinghead.types import MouthGeometry, TrackStatus, Waveform
from talkinghead.weights import WeightsRef, lips_geometry

if TYPE_CHECKING:  # the lips model imports torch (a second or more): loaded by a Dubber, not on import
    from talkinghead.motion.mouth import MouthModel

StageProgress = Callable[[str, int, int], None]

CHUNK = 256  # frames per saved chunk of landmarks and per rendered segment
_RAMP_S = 0.2  # after the new speech ends (--rest keep), the original mouth returns over this long
_MODEL_FPS = 25.0  # the lips model's own frame rate; other rates are interpolated


@dataclass(frozen=True)
class DubReport:
    """What a dub did: frames written, how many had their mouth re-rendered, and why others did not."""

    path: Path
    frames: int
    dubbed: int
    passed_through: dict[str, int]
    resumed: bool

    def summary(self) -> str:
        parts = [f"{self.dubbed} of {self.frames} frames dubbed"]
        parts += [f"{n} passed through ({why})" for why, n in self.passed_through.items() if n]
        return "; ".join(parts) + (" (resumed)" if self.resumed else "")


@dataclass(frozen=True)
class _Job:
    """One dub's checked inputs: everything is validated before any model is loaded or file written."""

    video: str | os.PathLike[str]
    audio: str | os.PathLike[str]
    out: Path
    opts: DubOptions
    info: VideoInfo
    wave: Waveform
    speech: np.ndarray  # 16 kHz mono, for the lips model


def _check(
    video: str | os.PathLike[str],
    audio: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: DubOptions | None,
    overrides: dict[str, object],
) -> _Job:
    """Options, inputs and output checked and loaded; a user error raises here with one plain sentence."""
    opts = replace(options or DubOptions(), **overrides)  # type: ignore[arg-type]
    if opts.loop not in LOOP_MODES:
        raise InputError(f"--loop must be one of {', '.join(LOOP_MODES)}, not '{opts.loop}'.")
    if opts.rest not in REST_MODES:
        raise InputError(f"--rest must be one of {', '.join(REST_MODES)}, not '{opts.rest}'.")
    check_lips(opts.lips)
    choice = FaceChoice.parse(opts.face)  # a bad --face fails before anything is written
    out_path = check_output(out)
    info = probe_video(video)
    if choice.mode == "point" and not (choice.point[0] < info.width and choice.point[1] < info.height):
        raise InputError(
            f"--face {opts.face} is outside the video, whose frames are {info.width}x{info.height} "
            "pixels (x from the left, y from the top)."
        )
    wave, speech = load_speech(audio)
    if not out_path.parent.is_dir():
        raise InputError(f"Cannot write '{out_path}' because the folder '{out_path.parent}' does not exist.")
    if out_path.exists() and same_file(out_path, video):
        raise InputError("The output would overwrite the input video; choose another output name.")
    return _Job(video, audio, out_path, opts, info, wave, speech)


class Dubber:
    """Loads the lips model once; `dub` then dubs any number of videos with it (like `Animator`)."""

    def __init__(self, lips_weights: WeightsRef = "lips") -> None:
        self._lips_weights = lips_weights
        self._mouth: MouthModel | None = None
        self._geometry: MouthGeometry | None = None
        self.mouth  # noqa: B018  loaded now: a bad weights file fails here, before any dub

    @classmethod
    def deferred(cls, lips_weights: WeightsRef = "lips") -> Dubber:
        """A Dubber whose lips model (and torch) loads inside its first dub, while the tracking pass, which needs
        only the model's reference face (read from the file without torch), already runs: `dub()` without a
        Dubber, the command line's way, starts tracking about a second earlier."""
        dubber = cls.__new__(cls)
        dubber._lips_weights, dubber._mouth = lips_weights, None
        dubber._geometry = lips_geometry(lips_weights)
        return dubber

    @property
    def mouth(self) -> MouthModel:
        """The lips model (loaded on first use by a `deferred` Dubber)."""
        if self._mouth is None:
            from talkinghead.motion.mouth import MouthModel

            self._mouth = MouthModel(self._lips_weights)
        return self._mouth

    @property
    def geometry(self) -> MouthGeometry:
        """The lips model's mouth geometry (a deferred Dubber's: read from its file)."""
        if self._geometry is None:
            self._geometry = self.mouth.geometry
        return self._geometry

    def dub(
        self,
        video: str | os.PathLike[str],
        audio: str | os.PathLike[str],
        out: str | os.PathLike[str],
        options: DubOptions | None = None,
        progress: StageProgress | None = None,
        **overrides: object,
    ) -> DubReport:
        """Make the speaker in `video` say `audio`; everything but mouth and jaw stays as filmed.
        Keyword overrides (loop="freeze", face="0", ...) patch `options`."""
        return self._run(_check(video, audio, out, options, overrides), progress)

    def _run(self, job: _Job, progress: StageProgress | None) -> DubReport:
        video, opts, wave = job.video, job.opts, job.wave
        report = (lambda *a: None) if progress is None else progress
        work, resumed = work_folder(job.out, video, job.audio, opts)
        # provenance: the segments get the watermark, the joined output the label and the signed manifest
        stamp = Stamp.new(
            "dub",
            opts.watermark,
            [video, job.audio],
            _settings(opts),
            (job.info.width, job.info.height),
            ingredient=video,
        )
        geometry = self.geometry
        tracker = TrackJob(video, work, FaceChoice.parse(opts.face), geometry.reference, report, CHUNK)
        tracker.start()  # tracking runs ahead in a thread (from now, beside the lips model); rendering follows
        closing = BackgroundClose()  # a finished segment's encoder drains on a thread beside the next segment
        try:
            with stage("lips model"):
                n_model = int(np.ceil(wave.duration * _MODEL_FPS)) + 2
                pred = self.mouth.predict(job.speech, n_model, _MODEL_FPS, opts.lips)  # a deferred one loads here
            # opening and jaw only: the lips model's sideways motion (width, rounding), drawn over a filmed mouth
            # with the bank's interiors, made dubbed mouths follow the new speech less (RESULTS.md, issue 10)
            pred[..., 0] = 0.0
            pred = pred * opts.lip_strength
            with FrameFetcher(video) as fetch:
                render = _Renderer(
                    fetch, work, tracker, pred, wave.duration, geometry, job.info, opts, report, stamp, closing
                )
                segments = render.while_tracking()
                track = tracker.result()
                if not (track.status == TrackStatus.OK).any():
                    raise NoFaceError(_no_face_message(video, FaceChoice.parse(opts.face), track.status))
                plan = plan_timeline(track.pts, float(fetch.time_base), wave.duration, opts.loop, opts.rest)
                segments = render.rest(plan, track, len(segments))
                closing.wait()  # the last segment's file is in place
        except (InputError, NoFaceError):
            # the same inputs can never succeed (no face, a video that cannot be decoded): nothing to resume
            tracker.stop()
            closing.wait(raise_error=False)
            shutil.rmtree(work, ignore_errors=True)
            raise
        finally:
            tracker.stop()
            closing.wait(raise_error=False)  # on any failure too: no encoder left running behind the caller
        weights = _weights(plan.pts * float(fetch.time_base), wave.duration)
        counts = Counter(TrackStatus(s) for s in track.status[plan.source][weights > 0])
        sound = splice_soundtrack(wave, video, plan, float(fetch.time_base), opts.rest)
        with stage("join + mux + sign"):
            join_segments(segments, job.out, sound, report, **stamp.join_args())
        shutil.rmtree(work, ignore_errors=True)
        passed = {s.reason: counts.get(s, 0) for s in TrackStatus if s != TrackStatus.OK}
        passed["after the new speech"] = int((weights <= 0).sum())
        return DubReport(job.out, len(plan), counts.get(TrackStatus.OK, 0), passed, resumed)


def _settings(opts: DubOptions) -> dict[str, object]:
    """The options a dub's label records (the default --lips is left out: same job id as before it existed)."""
    return {k: v for k, v in asdict(opts).items() if k != "resume" and (k, v) != ("lips", "standard")}


def dub(
    video: str | os.PathLike[str],
    audio: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: DubOptions | None = None,
    progress: StageProgress | None = None,
    dubber: Dubber | None = None,
    **overrides: object,
) -> DubReport:
    """Make the speaker in `video` say `audio`; everything but mouth and jaw stays as filmed.
    Pass a `Dubber` to reuse its loaded model across calls; without one the model is loaded here
    (after the inputs are checked, so a bad input fails fast), beside the tracking pass (`Dubber.deferred`)."""
    job = _check(video, audio, out, options, overrides)
    return (dubber or Dubber.deferred())._run(job, progress)


def _no_face_message(video: str | os.PathLike[str], choice: FaceChoice, status: np.ndarray) -> str:
    """Why nothing can be dubbed, in the terms of the choice the user made."""
    if choice.mode == "index" and choice.index > 0 and (status == TrackStatus.NO_FACE).all():
        return (
            f"No frame of '{os.fspath(video)}' shows a face number {choice.index} (faces are numbered from 0, "
            "the largest, in each frame); try --face auto or a smaller number."
        )
    return (
        f"No usable face was found in '{os.fspath(video)}' (faces must be at least {MIN_INTER_OCULAR:.0f} px "
        "between the eyes and not in profile); nothing to dub."
    )


# ------------------------------------------------------------------------------------------ mouth motion


def _weights(t: np.ndarray, duration: float) -> np.ndarray:
    """Weight of the new mouth: 1 during the new speech, easing back to the original mouth after it."""
    return np.clip(1.0 - (t - duration) / _RAMP_S, 0.0, 1.0).astype(np.float32)


# ------------------------------------------------------------------------------------------ pass 2: render


class _Renderer:
    """Renders segments of CHUNK output frames into the work folder; a finished segment is kept."""

    def __init__(
        self,
        fetch: FrameFetcher,
        work: Path,
        job: TrackJob,
        pred: np.ndarray,
        duration: float,
        geometry: MouthGeometry,
        info: VideoInfo,
        opts: DubOptions,
        report: StageProgress,
        stamp: Stamp,
        closing: BackgroundClose,
    ) -> None:
        self.stamp, self.closing = stamp, closing  # provenance: the watermark of every rendered frame
        self.fetch, self.work, self.job, self.pred, self.duration = fetch, work, job, pred, duration
        self.geometry, self.info, self.opts, self.report = geometry, info, opts, report
        self.tb = float(fetch.time_base)
        self.bank = BankLoader(work)  # the speaker's own mouths, merged as tracking advances
        # odd sizes are kept: frames are padded to even for rendering, and the writer crops them back (4:4:4)
        self.size = info.width, info.height

    def while_tracking(self) -> list[Path]:
        """Segments made only of input frames in order, rendered as soon as their frames (and the
        smoothing window after them) are tracked; stops at the first segment that may differ."""
        segments: list[Path] = []
        while True:
            a = len(segments) * CHUNK
            need = a + CHUNK + RADIUS
            if not self.job.wait_for(need):
                return segments
            track = self.job.snapshot()
            t = (track.pts[a : a + CHUNK] - track.pts[0]) * self.tb
            if self.opts.rest == "trim" and t[-1] >= self.duration:
                return segments  # the cut falls in this segment: decided once the plan is known
            segments.append(
                self._segment(
                    len(segments),
                    track,
                    np.arange(a, a + CHUNK),
                    track.pts[a : a + CHUNK] - track.pts[0],
                    need,
                    self.job.total,
                )
            )

    def rest(self, plan: Timeline, track: Track, start: int) -> list[Path]:
        """All segments from `start` on, following the finished plan (loops and cuts included)."""
        self.fetch.index(track.pts)
        segments = [self.work / f"video_{s:05d}.mp4" for s in range(start)]
        for s in range(start, (len(plan) + CHUNK - 1) // CHUNK):
            a, b = s * CHUNK, min(len(plan), (s + 1) * CHUNK)
            segments.append(self._segment(s, track, plan.source[a:b], plan.pts[a:b], len(track.pts), len(plan)))
        return segments

    def _segment(self, s: int, track: Track, src: np.ndarray, out_pts: np.ndarray, stats_upto: int, total: int) -> Path:
        path = self.work / f"video_{s:05d}.mp4"
        a = s * CHUNK
        if path.is_file():
            self.report("Rendering", a + len(src), total)
            return path
        self.fetch.index(track.pts)
        with stage("motion"):
            closed, tone = track.stats(stats_upto)
            t = out_pts * self.tb
            offsets, weights = at_rate(self.pred, _MODEL_FPS, t), _weights(t, self.duration)
            lo, hi = max(int(src.min()) - RADIUS, 0), min(int(src.max()) + RADIUS + 1, len(track.pts))
            smooth = smooth_points(track.points(lo, hi))
        with stage("mouth bank: load"):
            painter = MouthPainter(self.bank.upto(stats_upto))  # only mouths seen before stats_upto: resumable
        w, h = self.size
        writer = VideoWriter(
            path,
            w,
            h,
            fps=self.info.fps or 25.0,
            crf=self.opts.crf,
            preset=self.opts.preset,
            time_base=self.fetch.time_base,
            colors=self.fetch.colors,
            frame_threads=True,  # x264 encodes on its own threads while this one renders the next frames
            **self.stamp.segment_args(w, h, mouth_spare(smooth[src - lo])),  # the mouth is left unmarked
        )
        try:
            for j, frame in enumerate(self.fetch.frames(src)):
                i = int(src[j])
                p = smooth[i - lo]
                if track.status[i] == TrackStatus.OK and weights[j] > 0 and not np.isnan(p[0, 0]):
                    with stage("motion"):
                        target = dub_target(self.geometry, p, offsets[j], closed, float(weights[j]))
                    with stage("render: other"):
                        dub_region(frame, p, target, tone, painter)
                writer.write_yuv(frame.av_frame, pts=int(out_pts[j]))
                self.report("Rendering", a + j + 1, max(total, a + j + 1))
        except BaseException:
            writer.abort()
            raise
        self.closing.close(writer)  # the encoder drains on a thread while the next segment renders
        return path
