"""Video dubbing: an existing video + new speech -> the same video with the mouth following the speech.

Like pipeline.py this module combines stages; it only orchestrates. Two streaming stages over one
decode of the video, both resumable:

1. track (dub_track.py): follow the chosen face frame by frame in a background thread, saving chunks
   of landmarks as they finish and handing each decoded frame on (a bounded hand-off);
2. render (here, with render/region.py): re-render mouth and jaw only, frame by frame at the input's
   resolution and timestamps, into short video segments, a few frames behind the tracker (the first
   segment's speaker statistics come from its own frames and the RADIUS after them, a later one's from the
   frames before it and its first WARM frames); a finished segment is never redone. Frames the tracker did
   not hand on (the first segment's that did not fit in the hand-off, a resumed job's, loops after the
   input's end) are decoded again by the renderer (media/frame_fetch.py).

The segments are then joined without re-encoding and the new audio is muxed in (media/mux.py,
media/soundtrack.py). All intermediate files live in a hidden work folder next to the output
(dub_work.py), keyed by the inputs and options, and are removed once the output is complete; running
the same command again after an interruption continues where it stopped. Memory stays flat: a few
frames (WARM + RADIUS + 2 in the hand-off) and a chunk or two of landmarks at a time.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from talkinghead.config import DubOptions, check_lips
from talkinghead.dub_track import FrameHandoff, Track, TrackJob
from talkinghead.dub_work import work_folder
from talkinghead.errors import InputError, NoFaceError
from talkinghead.face.follow import MIN_INTER_OCULAR, FaceChoice
from talkinghead.face.smooth import RADIUS, smooth_points
from talkinghead.media import VideoInfo, VideoWriter, probe_video
from talkinghead.media.frame_fetch import FrameFetcher
from talkinghead.media.i420 import I420Frame
from talkinghead.media.inputs import check_output, load_speech, same_file
from talkinghead.media.mux import join_segments
from talkinghead.media.soundtrack import splice_soundtrack
from talkinghead.media.timeline import LOOP_MODES, REST_MODES, Timeline, plan_timeline
from talkinghead.media.timers import stage
from talkinghead.media.video_writer import BackgroundClose
from talkinghead.motion.dub_mouth import dub_target
from talkinghead.motion.resample import at_rate
from talkinghead.provenance.stamp import Stamp, mouth_spare
from talkinghead.provenance.watermark import MovingSpareEmbedder, Spare
from talkinghead.render.mouth_bank import BankLoader, MouthPainter
from talkinghead.render.region import dub_region
from talkinghead.types import MouthGeometry, TrackStatus, Waveform
from talkinghead.weights import WeightsRef, lips_geometry

if TYPE_CHECKING:  # the lips model imports torch (a second or more): loaded by a Dubber, not on import
    from talkinghead.motion.mouth import MouthModel

StageProgress = Callable[[str, int, int], None]

CHUNK = 256  # frames per saved chunk of landmarks and per rendered segment
# the first segment's closed-lip gap, skin tone and mouth bank come from its frames and the RADIUS after them, a later
# one's from the frames before it and its first WARM frames: rendering follows the tracker by at most WARM frames and
# they are decoded once, but for the first segment's first CHUNK + RADIUS - (WARM + RADIUS + 2) frames, which the
# hand-off cannot hold. 8, not 64: the hand-off holds WARM + RADIUS + 2 frames (~40 MB at 1080p instead of ~210) and
# the dub ran as fast or faster (RESULTS.md, session 11)
WARM = 8
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
        warm = min(WARM, CHUNK)
        # the tracker's decoded frames, for the renderer: decoded once (but the first segment's that do not fit)
        handoff = FrameHandoff(warm + RADIUS + 2, drop_before=CHUNK + RADIUS)
        tracker = TrackJob(video, work, FaceChoice.parse(opts.face), geometry.reference, report, CHUNK, warm, handoff)
        tracker.start()  # tracking runs ahead in a thread (from now, beside the lips model); rendering follows
        closing = BackgroundClose()  # a finished segment's encoder drains on a thread beside the next segment
        render: _Renderer | None = None
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
            if render is not None:
                render.abort()  # a segment left open by a failure between the passes
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


@dataclass
class _Open:
    """A segment being written: its writer and what is fixed for all of its frames."""

    s: int
    path: Path
    painter: MouthPainter
    closed: float  # the speaker's closed-lip gap
    tone: float  # skin tone
    writer: VideoWriter | None = None  # opened with the first frame
    marker: MovingSpareEmbedder | None = None  # following the tracker: the mark spares each frame's mouth
    first: Spare | None = None  # the spare of the frame last written (the first: when the writer is opened)
    written: int = 0


class _Renderer:
    """Renders segments of CHUNK output frames into the work folder; a finished segment is kept.

    A segment's frames are fixed by what was tracked before it. The first one, and any rendered after tracking
    (`rest`), is rendered whole: its closed-lip gap and skin tone come from frames [0, CHUNK + RADIUS) (after
    tracking: all of them), its mouth bank from its own frames (all), and its watermark spares one box round
    every frame's mouth, as when the renderer ran a whole segment behind the tracker (so a short clip renders
    the same pixels as then); it re-decodes the frames the hand-off could not hold. A later segment begun while
    tracking follows: its gap, tone and bank come from frames [0, a + WARM) (a: its first frame), each frame's
    landmarks are smoothed over RADIUS frames either side, and its watermark spares each frame's own mouth; it
    starts once WARM of its frames are tracked and renders RADIUS frames behind the tracker, taking the tracker's
    decoded frames from the hand-off. A resumed job renders the same pixels."""

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
        self.warm = job.warm
        self.open: _Open | None = None  # a segment begun while tracking whose end follows the plan (`rest`)

    def while_tracking(self) -> list[Path]:
        """Segments of input frames in order, rendered while the tracker runs a few frames ahead; stops at the
        input's end or where --rest trim may cut, leaving the segment there open for `rest`."""
        segments: list[Path] = []
        try:
            while True:
                s, a = len(segments), len(segments) * CHUNK
                reached = self.job.wait_for(CHUNK + RADIUS if s == 0 else a + self.warm)
                track = self.job.snapshot()
                n = len(track.pts)
                if n <= a or (a > 0 and self._cut(track, a)):
                    return segments
                path = self.work / f"video_{s:05d}.mp4"
                if path.is_file():  # finished in an earlier run
                    self.report("Rendering", a + CHUNK, max(self.job.total, a + CHUNK))
                    segments.append(path)
                    continue
                if s == 0:  # whole, from CHUNK + RADIUS tracked frames (a shorter input, a cut in it: `rest`)
                    t_end = (track.pts[CHUNK - 1] - track.pts[0]) * self.tb if reached else 0.0
                    cut = self.opts.rest == "trim" and (t_end >= self.duration or self._cut_in(track, 1, CHUNK))
                    if not reached or cut:
                        return segments
                    src = np.arange(CHUNK)
                    self._whole(0, track, src, track.pts[src] - track.pts[0], CHUNK + RADIUS, CHUNK, self.job.points)
                    segments.append(path)
                    continue
                seg = self._begin(s, track, min(a + self.warm, n))
                if not self._follow(seg, a):
                    self.open = seg
                    return segments
                self._finish(seg)
                segments.append(path)
        except BaseException:
            self.abort()
            raise
        finally:
            if self.job.handoff is not None:
                self.job.handoff.close()  # the tracker never waits for a renderer that has stopped taking frames

    def _cut(self, track: Track, i: int) -> bool:
        """Whether --rest trim cuts the output before input frame `i` (i > 0; the plan's own rule)."""
        audio_end = int(round(self.duration / self.tb))
        return self.opts.rest == "trim" and int(track.pts[i] - track.pts[0]) >= audio_end

    def _cut_in(self, track: Track, lo: int, hi: int) -> bool:
        """Whether --rest trim cuts the output before any input frame in [lo, hi)."""
        return any(self._cut(track, k) for k in range(max(lo, 1), min(hi, len(track.pts))))

    def _follow(self, seg: _Open, a: int) -> bool:
        """Render input frames a + seg.written ... into `seg` as they are tracked; True once it has CHUNK."""
        while seg.written < CHUNK:
            j = a + seg.written
            self.job.wait_for(j + RADIUS + 1)  # the smoothing window after frame j
            finished = self.job.finished()  # before the snapshot: then it holds every frame
            track = self.job.snapshot()
            n = len(track.pts)
            end = min(a + CHUNK, n if finished else n - RADIUS)
            cut = next((k for k in range(max(j, 1), end) if self._cut(track, k)), None)  # the first cut frame
            end = end if cut is None else cut
            if end <= j:
                return False  # the input ends (or is cut) here: the plan decides the rest
            self.fetch.index(track.pts)
            lo, hi = max(j - RADIUS, 0), min(end + RADIUS, n)
            with stage("motion"):
                smooth = smooth_points(self.job.points(lo, hi))
            src = np.arange(j, end)
            self._frames(seg, track, src, track.pts[j:end] - track.pts[0], smooth[src - lo])
        return True

    def rest(self, plan: Timeline, track: Track, start: int) -> list[Path]:
        """All segments from `start` on (and the end of the open one), following the finished plan (loops and
        cuts included)."""
        self.fetch.index(track.pts)
        segments = [self.work / f"video_{s:05d}.mp4" for s in range(start)]
        try:
            for s in range(start, (len(plan) + CHUNK - 1) // CHUNK):
                a, b = s * CHUNK, min(len(plan), (s + 1) * CHUNK)
                path = self.work / f"video_{s:05d}.mp4"
                if path.is_file() and (self.open is None or self.open.s != s):
                    self.report("Rendering", b, len(plan))
                    segments.append(path)
                    continue
                if self.open is None or self.open.s != s:  # whole, its gap, tone and bank from every tracked frame
                    n = len(track.pts)
                    self._whole(s, track, plan.source[a:b], plan.pts[a:b], n, n, track.points, len(plan))
                    segments.append(path)
                    continue
                seg = self.open
                src = plan.source[a + seg.written : b]
                if len(src):
                    lo, hi = max(int(src.min()) - RADIUS, 0), min(int(src.max()) + RADIUS + 1, len(track.pts))
                    with stage("motion"):
                        smooth = smooth_points(track.points(lo, hi))
                    self._frames(seg, track, src, plan.pts[a + seg.written : b], smooth[src - lo], len(plan))
                self._finish(seg)
                segments.append(path)
        except BaseException:
            self.abort()
            raise
        return segments

    def abort(self) -> None:
        """Drop the open segment's unfinished file (an error, an interruption)."""
        if self.open is not None and self.open.writer is not None:
            self.open.writer.abort()
        self.open = None

    def _begin(self, s: int, track: Track, stats_upto: int, bank_upto: int | None = None) -> _Open:
        """Open segment `s`, its gap and tone from frames [0, stats_upto), its mouth bank from [0, bank_upto)
        (default: the same): fixed prefixes, so a segment renders the same whether the job ran through or was
        resumed."""
        self.fetch.index(track.pts)
        with stage("motion"):
            closed, tone = track.stats(stats_upto)
        with stage("mouth bank: load"):  # only mouths seen before bank_upto: resumable
            painter = MouthPainter(self.bank.upto(stats_upto if bank_upto is None else bank_upto))
        self.open = _Open(s, self.work / f"video_{s:05d}.mp4", painter, closed, tone)
        return self.open

    def _whole(
        self,
        s: int,
        track: Track,
        src: np.ndarray,
        out_pts: np.ndarray,
        stats_upto: int,
        bank_upto: int,
        points: Callable[[int, int], np.ndarray],
        total: int = 0,
    ) -> None:
        """Render segment `s` (input frames `src` at `out_pts`) in one go, every landmark it needs known: its
        watermark spares one box round all of its frames' mouths."""
        seg = self._begin(s, track, stats_upto, bank_upto)
        lo, hi = max(int(src.min()) - RADIUS, 0), min(int(src.max()) + RADIUS + 1, len(track.pts))
        with stage("motion"):
            smooth = smooth_points(points(lo, hi))[src - lo]
        seg.writer = self._writer(seg, self.stamp.segment_args(*self.size, mouth_spare(smooth)))
        self._frames(seg, track, src, out_pts, smooth, total)
        self._finish(seg)

    def _writer(self, seg: _Open, mark: dict[str, Any] | None = None) -> VideoWriter:
        """The segment's encoder. Without `mark` (a segment that follows the tracker), its watermark spares
        each frame's own mouth, opened at its first frame: the mark's energy is fixed by that frame's spare,
        so the mark outside the mouth is static through the segment."""
        w, h = self.size
        if mark is None:
            seg.marker = self.stamp.moving_marker(w, h, seg.first)
            mark = {"mark": seg.marker}
        return VideoWriter(
            seg.path,
            w,
            h,
            fps=self.info.fps or 25.0,
            crf=self.opts.crf,
            preset=self.opts.preset,
            time_base=self.fetch.time_base,
            colors=self.fetch.colors,
            threads="frames",  # x264 encodes on its own threads while this one renders the next frames
            **mark,
        )

    def _frames(
        self, seg: _Open, track: Track, src: np.ndarray, out_pts: np.ndarray, smooth: np.ndarray, total: int = 0
    ) -> None:
        """Render and write frames `src` of the input at `out_pts`, with their smoothed landmarks."""
        with stage("motion"):
            t = out_pts * self.tb
            offsets, weights = at_rate(self.pred, _MODEL_FPS, t), _weights(t, self.duration)
        a = seg.s * CHUNK
        total = total or max(self.job.total, len(track.pts))
        handoff = self.job.handoff
        fetched: Iterator[I420Frame] | None = None  # a run of frames not handed over: decoded here
        for j, i in enumerate(int(k) for k in src):
            held = handoff.take(i) if handoff is not None else None
            if held is not None:
                fetched = None  # the rest comes from the hand-off
                with stage("decode: copy frame"):
                    frame = held.copy()  # the tracker's decoded frame, read-only: drawn on in a copy of our own
            else:  # frames the hand-off dropped, a resumed job's earlier ones, loops: the fetcher decodes runs
                fetched = fetched or self.fetch.frames(src[j:])
                frame = next(fetched)
            p = smooth[j]
            mouth = p
            if track.status[i] == TrackStatus.OK and weights[j] > 0 and not np.isnan(p[0, 0]):
                with stage("motion"):
                    target = dub_target(self.geometry, p, offsets[j], seg.closed, float(weights[j]))
                with stage("render: other"):
                    dub_region(frame, p, target, seg.tone, seg.painter)
                mouth = np.stack([p, target])  # the filmed mouth and the new one are left unmarked
            if seg.writer is None or seg.marker is not None:  # a segment that follows: each frame's own spare
                seg.first = mouth_spare(mouth)
                seg.writer = seg.writer or self._writer(seg)
                if seg.marker is not None:
                    seg.marker.spare = seg.first
            seg.writer.write_yuv(frame.av_frame, pts=int(out_pts[j]))
            seg.written += 1
            self.report("Rendering", a + seg.written, max(total, a + seg.written))

    def _finish(self, seg: _Open) -> None:
        self.open = None
        assert seg.writer is not None  # every segment has a frame
        self.closing.close(seg.writer)  # the encoder drains on a thread while the next segment renders
