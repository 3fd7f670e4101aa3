"""Video dubbing: an existing video + new speech -> the same video with the mouth following the speech.

Like pipeline.py this module combines stages. Two streaming passes over the video, both resumable:

1. track: follow the chosen face frame by frame (chunks of landmarks saved as they finish);
2. render: re-render mouth and jaw only, frame by frame at the input's resolution and timestamps,
   into short video segments; a finished segment is never redone.

The segments are then joined without re-encoding and the new audio is muxed in. All intermediate
files live in a hidden work folder next to the output, keyed by the inputs and options, and are
removed once the output is complete; running the same command again after an interruption
continues where it stopped. Memory stays flat: a few frames and one chunk of landmarks at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import av
import numpy as np

from talkinghead.config import DubOptions
from talkinghead.errors import InputError, NoFaceError
from talkinghead.face.follow import MIN_INTER_OCULAR, FaceChoice, FaceFollower, usable
from talkinghead.face.indices import inter_ocular, mouth_opening
from talkinghead.face.landmarks import detect_faces
from talkinghead.face.smooth import RADIUS, smooth_points
from talkinghead.media import VideoInfo, VideoWriter, load_audio, probe_video
from talkinghead.media.frame_fetch import FrameFetcher
from talkinghead.media.heap import pin_mmap_threshold
from talkinghead.media.i420 import I420Frame
from talkinghead.media.timeline import LOOP_MODES, REST_MODES, Timeline, plan_timeline
from talkinghead.face.canonical import fit_canonical
from talkinghead.motion.dub_mouth import DubMouth, lip_gap
from talkinghead.motion.mouth import MouthModel
from talkinghead.pipeline import check_output, load_speech
from talkinghead.render.mouth_bank import BankLoader, MouthCollector, MouthPainter
from talkinghead.render.mouth_interior import CHEEKS, face_tone
from talkinghead.render.mouth_warp import warp_mouth
from talkinghead.types import Waveform

StageProgress = Callable[[str, int, int], None]

CHUNK = 256  # frames per saved chunk of landmarks and per rendered segment
_STATUS = ("dubbed", "no face", "too small", "profile", "mouth out of frame")
_RAMP_S = 0.2  # after the new speech ends (--rest keep), the original mouth returns over this long
_FORMAT = 3  # bump when the work folder's contents change meaning
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


def dub(video: str | os.PathLike[str], audio: str | os.PathLike[str], out: str | os.PathLike[str],
        options: DubOptions | None = None, progress: StageProgress | None = None, **overrides: object) -> DubReport:
    """Make the speaker in `video` say `audio`; everything but mouth and jaw stays as filmed."""
    opts = replace(options or DubOptions(), **overrides)  # type: ignore[arg-type]
    if opts.loop not in LOOP_MODES:
        raise InputError(f"--loop must be one of {', '.join(LOOP_MODES)}, not '{opts.loop}'.")
    if opts.rest not in REST_MODES:
        raise InputError(f"--rest must be one of {', '.join(REST_MODES)}, not '{opts.rest}'.")
    FaceChoice.parse(opts.face)  # a bad --face fails before anything is written
    out_path = check_output(out)
    info = probe_video(video)
    wave, speech = load_speech(audio)
    if not out_path.parent.is_dir():
        raise InputError(f"Cannot write '{out_path}' because the folder '{out_path.parent}' does not exist.")
    if out_path.exists() and _same_file(out_path, video):
        raise InputError("The output would overwrite the input video; choose another output name.")
    report = (lambda *a: None) if progress is None else progress

    pin_mmap_threshold()
    work, resumed = _work_folder(out_path, video, audio, opts)
    mouth = MouthModel()
    pred = mouth.predict(speech, int(np.ceil(wave.duration * _MODEL_FPS)) + 2, _MODEL_FPS) * opts.lip_strength
    job = _TrackJob(video, work, FaceChoice.parse(opts.face), mouth.reference, report)
    job.start()  # tracking runs ahead in a thread; rendering follows a chunk behind
    try:
        with FrameFetcher(video) as fetch:
            render = _Renderer(fetch, work, job, pred, wave.duration,
                               DubMouth(mouth.reference, mouth.indices, mouth.open_direction),
                               info, opts, report)
            segments = render.while_tracking()
            track = job.result()
            if not (track.status == 0).any():
                raise NoFaceError(f"No usable face was found in '{os.fspath(video)}' (faces must be at least "
                                  f"{MIN_INTER_OCULAR:.0f} px between the eyes and not in profile); nothing to dub.")
            plan = plan_timeline(track.pts, float(fetch.time_base), wave.duration, opts.loop, opts.rest)
            segments = render.rest(plan, track, len(segments))
    except NoFaceError:
        job.stop()
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        job.stop()
    weights = _weights(plan.pts * float(fetch.time_base), wave.duration)
    counts = Counter(_STATUS[s] for s in track.status[plan.source][weights > 0])
    sound = _soundtrack(wave, video, plan, float(fetch.time_base), opts.rest)
    _join(segments, out_path, sound, report)
    shutil.rmtree(work, ignore_errors=True)
    passed = {why: counts.get(why, 0) for why in _STATUS[1:]}
    passed["after the new speech"] = int((weights <= 0).sum())
    return DubReport(out_path, len(plan), counts.get("dubbed", 0), passed, resumed)


# ------------------------------------------------------------------------------------------ work folder

def _same_file(a: Path, b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _fingerprint(path: str | os.PathLike[str]) -> dict[str, object]:
    st = os.stat(path)
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _work_folder(out: Path, video: str | os.PathLike[str], audio: str | os.PathLike[str],
                 opts: DubOptions) -> tuple[Path, bool]:
    """The hidden folder of this job; reused when the same inputs and options were interrupted before."""
    job = {"format": _FORMAT, "video": _fingerprint(video), "audio": _fingerprint(audio),
           "options": {k: v for k, v in asdict(opts).items() if k != "resume"}}
    key = hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()[:16]
    work = out.parent / f".{out.name}.dub"
    stamp = work / "job.json"
    if work.is_dir() and opts.resume and stamp.is_file():
        try:
            if json.loads(stamp.read_text()).get("key") == key:
                return work, any(work.glob("track_*.npz"))
        except (OSError, ValueError):
            pass
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    stamp.write_text(json.dumps({"key": key, **job}, indent=1))
    return work, False


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------ pass 1: track

@dataclass(frozen=True)
class _Track:
    work: Path
    pts: np.ndarray  # (N,) int64
    status: np.ndarray  # (N,) uint8 index into _STATUS
    gaps: np.ndarray  # (N,) canonical lip gap, NaN where not usable
    tones: np.ndarray  # (N,) skin brightness, NaN where not usable

    def points(self, lo: int, hi: int) -> np.ndarray:
        """Raw landmarks of frames [lo, hi) (NaN where not usable), read chunk by chunk."""
        parts = []
        for c in range(lo // CHUNK, (hi - 1) // CHUNK + 1):
            with np.load(self.work / f"track_{c:05d}.npz") as z:
                pts = z["points"]
            a, b = max(lo - c * CHUNK, 0), min(hi - c * CHUNK, len(pts))
            parts.append(pts[a:b])
        return np.concatenate(parts)

    def stats(self, upto: int) -> tuple[float, float]:
        """The speaker's closed-lip gap and skin tone from frames [0, upto): a fixed prefix, so a segment
        renders the same whether the job ran through or was resumed."""
        ok = self.status[:upto] == 0
        gaps, tones = self.gaps[:upto][ok], self.tones[:upto][ok]
        return (float(np.percentile(gaps, 10)) if len(gaps) else 0.0,
                float(np.median(tones)) if len(tones) else 1.0)


class _TrackJob(threading.Thread):
    """Pass 1 in a background thread: follows the face and saves a chunk of landmarks every CHUNK frames."""

    def __init__(self, video: str | os.PathLike[str], work: Path, choice: FaceChoice, reference: np.ndarray,
                 report: StageProgress) -> None:
        super().__init__(daemon=True, name="talkinghead-track")
        self.video, self.work, self.choice, self.reference, self.report = video, work, choice, reference, report
        self.total = probe_video(video).n_frames
        self._cond = threading.Condition()
        self._halt = threading.Event()
        self._chunks: list[dict[str, np.ndarray]] = []
        self._finished = False
        self._error: BaseException | None = None

    # -- consumer side (main thread)
    def tracked(self) -> int:
        with self._cond:
            return sum(len(c["pts"]) for c in self._chunks)

    def wait_for(self, n: int) -> bool:
        """Block until `n` frames are tracked (True) or tracking ended with fewer (False)."""
        with self._cond:
            while not self._finished and self._error is None and sum(len(c["pts"]) for c in self._chunks) < n:
                self._cond.wait(0.5)
            if self._error is not None:
                raise self._error
            return sum(len(c["pts"]) for c in self._chunks) >= n

    def snapshot(self) -> _Track:
        with self._cond:
            chunks = list(self._chunks)
        if not chunks:
            return _Track(self.work, *(np.zeros(0, t) for t in (np.int64, np.uint8, np.float32, np.float32)))
        return _Track(self.work, *(np.concatenate([c[k] for c in chunks]) for k in ("pts", "status", "gaps", "tones")))

    def result(self) -> _Track:
        self.join()
        if self._error is not None:
            raise self._error
        track = self.snapshot()
        if len(track.pts) == 0:
            raise InputError(f"The video '{os.fspath(self.video)}' has no frames.")
        return track

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join()

    # -- producer side (this thread)
    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # handed to the main thread
            with self._cond:
                self._error = exc
                self._cond.notify_all()
        else:
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def _publish(self, arrays: dict[str, np.ndarray]) -> None:
        with self._cond:
            self._chunks.append(arrays)
            self._cond.notify_all()

    def _run(self) -> None:
        box, complete = None, False
        for f in sorted(self.work.glob("track_*.npz")):
            with np.load(f) as z:
                self._publish({k: z[k] for k in ("pts", "status", "gaps", "tones")})
                box = tuple(z["box"]) if z["box"].size else None
                complete = bool(z["last"])
        if complete:
            return
        with FrameFetcher(self.video) as fetch:
            choice = _resolve_choice(fetch, self.work, self.choice)
            n_done = self.tracked()
            after = int(self._chunks[-1]["pts"][-1]) if self._chunks else None
            chunk: dict[str, list] = {"pts": [], "points": [], "status": [], "gaps": [], "tones": []}
            mouths = MouthCollector()  # mouth bank hook: the speaker's open mouths, one file per chunk
            with FaceFollower(choice) as follower:
                follower.box = box

                def flush(last: bool) -> None:
                    arrays = {"pts": np.asarray(chunk["pts"], np.int64),
                              "points": np.asarray(chunk["points"], np.float32).reshape(-1, 478, 3),
                              "status": np.asarray(chunk["status"], np.uint8),
                              "gaps": np.asarray(chunk["gaps"], np.float32),
                              "tones": np.asarray(chunk["tones"], np.float32)}
                    k = len(self._chunks)
                    mouths.save(self.work / f"mouths_{k:05d}.npz")  # mouth bank hook
                    _save_npz(self.work / f"track_{k:05d}.npz", **arrays,
                              box=np.asarray(follower.box if follower.box else [], np.float64), last=np.asarray(last))
                    del arrays["points"]
                    self._publish(arrays)
                    for v in chunk.values():
                        v.clear()

                for p, frame in fetch.scan(after):
                    if self._halt.is_set():
                        return
                    found = follower(frame)
                    sim = fit_canonical(found, self.reference) if found is not None else None
                    why = "no face" if sim is None else usable(found, sim, frame.width, frame.height)
                    code = 0 if why is None else _STATUS.index(why)
                    chunk["pts"].append(p)
                    chunk["points"].append(found if code == 0 else np.full((478, 3), np.nan, np.float32))
                    chunk["status"].append(code)
                    chunk["gaps"].append(lip_gap(sim.apply(found)) if code == 0 else np.nan)
                    chunk["tones"].append(_tone(frame, found) if code == 0 else np.nan)
                    if code == 0:  # mouth bank hook
                        mouths.add(n_done, frame, found, inter_ocular(found))
                    n_done += 1
                    self.report("Tracking the face", n_done, max(self.total, n_done))
                    if len(chunk["pts"]) == CHUNK:
                        flush(False)
                flush(True)


def _tone(frame: I420Frame, points: np.ndarray) -> float:
    """Skin brightness of the face (lights the painted mouth interior); only the box round the cheek
    points it samples is converted to RGB."""
    cheeks = points[CHEEKS]
    x0, y0, x1, y1 = frame.clip(cheeks[:, 0].min(), cheeks[:, 1].min(), cheeks[:, 0].max() + 1,
                                cheeks[:, 1].max() + 1)
    local = points.copy()
    local[:, 0] -= x0
    local[:, 1] -= y0
    return face_tone(frame.region(x0, y0, x1, y1), local)


def _resolve_choice(fetch: FrameFetcher, work: Path, choice: FaceChoice, probe_frames: int = 75) -> FaceChoice:
    """`auto` with several people in shot: the one whose mouth moves most in the first seconds
    (the largest when none clearly does). The answer is saved so a resumed job keeps the same face."""
    saved = work / "face.json"
    if saved.is_file():
        x, y = json.loads(saved.read_text())["point"]
        return FaceChoice("point", point=(x, y))
    if choice.mode != "auto":
        return choice
    followers: list[FaceFollower] = []
    candidates = []
    openings: list[list[float]] = []
    try:
        for k, (_, frame) in enumerate(fetch.scan()):
            if not followers:
                if k >= 10 * probe_frames:
                    break
                if k % 10:
                    continue
                faces = detect_faces(frame.rgb())
                if not faces:
                    continue
                if len(faces) == 1:
                    return choice
                candidates = faces[:4]
                followers = [FaceFollower(FaceChoice("point", point=f.center)) for f in candidates]
                openings = [[] for _ in candidates]
                start = k
            if k - start >= probe_frames:
                break
            for f, o in zip(followers, openings):
                p = f(frame)
                if p is not None:
                    o.append(mouth_opening(p))
    finally:
        for f in followers:
            f.close()
    if not candidates:
        return choice
    scores = [float(np.std(o)) if len(o) > 10 else 0.0 for o in openings]
    ranked = sorted(scores)
    best = candidates[int(np.argmax(scores))] if ranked[-1] > 1.2 * ranked[-2] else candidates[0]
    saved.write_text(json.dumps({"point": list(best.center), "scores": scores}))
    return FaceChoice("point", point=best.center)


# ------------------------------------------------------------------------------------------ mouth motion

def _offsets(pred: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Mouth offsets at times `t` (s): the model's 25 fps output, linearly interpolated."""
    x = np.clip(t * _MODEL_FPS, 0, len(pred) - 1)
    i0 = np.floor(x).astype(int)
    i1 = np.minimum(i0 + 1, len(pred) - 1)
    f = (x - i0)[:, None, None]
    return (pred[i0] * (1 - f) + pred[i1] * f).astype(np.float32)


def _weights(t: np.ndarray, duration: float) -> np.ndarray:
    """Weight of the new mouth: 1 during the new speech, easing back to the original mouth after it."""
    return np.clip(1.0 - (t - duration) / _RAMP_S, 0.0, 1.0).astype(np.float32)


# ------------------------------------------------------------------------------------------ pass 2: render

class _Renderer:
    """Renders segments of CHUNK output frames into the work folder; a finished segment is kept."""

    def __init__(self, fetch: FrameFetcher, work: Path, job: _TrackJob, pred: np.ndarray, duration: float,
                 mouth: DubMouth, info: VideoInfo, opts: DubOptions, report: StageProgress) -> None:
        self.fetch, self.work, self.job, self.pred, self.duration = fetch, work, job, pred, duration
        self.mouth, self.info, self.opts, self.report = mouth, info, opts, report
        self.tb = float(fetch.time_base)
        # yuv420p needs even sizes: an odd last row/column is dropped
        self.size = info.width - info.width % 2, info.height - info.height % 2
        self.bank = BankLoader(work)  # mouth bank hook: the speaker's own mouths, merged as tracking advances

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
            t = (track.pts[a:a + CHUNK] - track.pts[0]) * self.tb
            if self.opts.rest == "trim" and t[-1] >= self.duration:
                return segments  # the cut falls in this segment: decided once the plan is known
            segments.append(self._segment(len(segments), track, np.arange(a, a + CHUNK),
                                          track.pts[a:a + CHUNK] - track.pts[0], need, self.job.total))

    def rest(self, plan: Timeline, track: _Track, start: int) -> list[Path]:
        """All segments from `start` on, following the finished plan (loops and cuts included)."""
        self.fetch.index(track.pts)
        segments = [self.work / f"video_{s:05d}.mp4" for s in range(start)]
        for s in range(start, (len(plan) + CHUNK - 1) // CHUNK):
            a, b = s * CHUNK, min(len(plan), (s + 1) * CHUNK)
            segments.append(self._segment(s, track, plan.source[a:b], plan.pts[a:b], len(track.pts), len(plan)))
        return segments

    def _segment(self, s: int, track: _Track, src: np.ndarray, out_pts: np.ndarray, stats_upto: int,
                 total: int) -> Path:
        path = self.work / f"video_{s:05d}.mp4"
        a = s * CHUNK
        if path.is_file():
            self.report("Rendering", a + len(src), total)
            return path
        self.fetch.index(track.pts)
        closed, tone = track.stats(stats_upto)
        t = out_pts * self.tb
        offsets, weights = _offsets(self.pred, t), _weights(t, self.duration)
        lo, hi = max(int(src.min()) - RADIUS, 0), min(int(src.max()) + RADIUS + 1, len(track.pts))
        smooth = smooth_points(track.points(lo, hi))
        painter = MouthPainter(self.bank.upto(stats_upto))  # mouth bank hook
        w, h = self.size
        with VideoWriter(path, w, h, fps=self.info.fps or 25.0, crf=self.opts.crf, preset=self.opts.preset,
                         time_base=self.fetch.time_base, colors=self.fetch.colors) as writer:
            for j, frame in enumerate(self.fetch.frames(src)):
                i = int(src[j])
                p = smooth[i - lo]
                if track.status[i] == 0 and weights[j] > 0 and not np.isnan(p[0, 0]):
                    _dub_frame(frame, p, self.mouth.target(p, offsets[j], closed, float(weights[j])), tone, painter)
                writer.write_yuv(frame.av_frame, pts=int(out_pts[j]))
                self.report("Rendering", a + j + 1, max(total, a + j + 1))
        return path


def _dub_frame(frame: I420Frame, source: np.ndarray, target: np.ndarray, tone: float, painter: MouthPainter) -> None:
    """Re-render mouth and jaw in place: only the face's surroundings are converted to RGB and only the
    box the warp and the painted interior touched is written back."""
    iod = inter_ocular(source)
    both = np.concatenate([source[:, :2], target[:, :2]])
    cx, cy = both.mean(0)
    rx, ry = (both.max(0) - both.min(0)) * 0.75 + 4  # the warp's fixed ring lies within 1.35x the face oval
    x0, y0, x1, y1 = frame.clip(cx - rx, cy - ry, cx + rx, cy + ry)
    rgb = frame.region(x0, y0, x1, y1)
    shift = np.array([x0, y0, 0], np.float32)
    box = warp_mouth(rgb, source - shift, target - shift, iod)
    if box is None:
        return
    painter(rgb, source - shift, target - shift, iod, tone)  # mouth bank hook (was paint_mouth)
    bx0, by0, bx1, by1 = (box[0] // 2 * 2, box[1] // 2 * 2, min(rgb.shape[1], (box[2] + 1) // 2 * 2),
                          min(rgb.shape[0], (box[3] + 1) // 2 * 2))
    frame.put(np.ascontiguousarray(rgb[by0:by1, bx0:bx1]), x0 + bx0, y0 + by0)


# ------------------------------------------------------------------------------------------ sound and join

def _soundtrack(wave: Waveform, video: str | os.PathLike[str], plan: Timeline, time_base: float,
                rest: str) -> Waveform:
    """The new speech; with --rest keep and a longer video, followed by the video's own sound."""
    end = plan.end_pts * time_base
    if rest != "keep" or wave.duration >= end - 1e-3:
        return wave
    rate, channels = wave.sample_rate, wave.channels
    n_end = int(round(end * rate))
    tail = np.zeros((n_end - wave.samples.shape[0], channels), np.float32)
    try:
        orig = load_audio(video, sample_rate=rate, mono=channels == 1)
        o = orig.samples if orig.samples.ndim == 2 else orig.samples[:, None]
        if o.shape[1] != channels:
            o = np.repeat(o.mean(1, keepdims=True), channels, axis=1)
        piece = o[wave.samples.shape[0]: n_end]
        tail[: len(piece)] = piece
    except InputError:
        pass  # a video without sound: the rest is silent
    new = wave.samples if wave.samples.ndim == 2 else wave.samples[:, None]
    both = np.concatenate([new, tail])
    return Waveform(both if channels > 1 else both[:, 0], rate)


def _join(segments: list[Path], out: Path, sound: Waveform, report: StageProgress) -> None:
    """Concatenate the rendered segments without re-encoding and mux the soundtrack."""
    template = av.open(os.fspath(segments[0]))
    try:
        stream = template.streams.video[0]
        with VideoWriter(out, stream.codec_context.width, stream.codec_context.height,
                         fps=float(stream.average_rate or 25), audio=sound, copy_from=stream) as writer:
            last_dts = None
            for k, seg in enumerate(segments):
                with av.open(os.fspath(seg)) as c:
                    for packet in c.demux(c.streams.video[0]):
                        if packet.pts is None:
                            continue
                        if packet.dts is not None and last_dts is not None and packet.dts <= last_dts:
                            packet.dts = last_dts + 1
                        last_dts = packet.dts
                        writer.write_packet(packet)
                report("Writing", k + 1, len(segments))
    finally:
        template.close()
