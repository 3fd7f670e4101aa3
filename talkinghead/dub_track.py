"""Pass 1 of a dub: follow the chosen face through the video in a background thread.

The thread saves a chunk of landmarks every `chunk` frames into the work folder and publishes each
frame's small arrays (timestamps, status, lip gap, skin tone; landmarks of recent frames) to the main
thread as soon as it is tracked. Each decoded frame is also handed to the renderer (`FrameHandoff`, bounded:
the tracker waits while it is full), so the video is decoded once; the renderer follows a few frames behind.
A resumed job reads the saved chunks back and continues after the last one.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkinghead.dub_work import save_face, save_npz, saved_face
from talkinghead.errors import InputError
from talkinghead.face.canonical import fit_canonical
from talkinghead.face.choice import speaking_face
from talkinghead.face.follow import FaceChoice, FaceFollower, usable
from talkinghead.face.indices import inter_ocular
from talkinghead.media.frame_fetch import FrameFetcher
from talkinghead.media.i420 import I420Frame
from talkinghead.media.timers import stage
from talkinghead.media.video_reader import probe_video
from talkinghead.render.mouth_bank import MouthCollector
from talkinghead.render.region import cheek_tone
from talkinghead.types import TrackStatus, lip_gap

StageProgress = Callable[[str, int, int], None]


class FrameHandoff:
    """Decoded frames passed from the tracking thread to the renderer, in order, at most `capacity` at a time.

    `put` (tracker) waits while the hand-off is full, except for frames before `drop_before`: those push the
    oldest frame out instead (the first segment waits for CHUNK + RADIUS tracked frames, more than the hand-off
    holds; the renderer decodes the dropped ones again). `take` (renderer) never waits: it drops older frames and
    returns the asked one, or None when it was not handed over (dropped, a resumed job's earlier frames, or after
    `close`): the renderer then decodes it itself. `close` (the renderer is done with it, or the job stops)
    drops every frame and lets `put` return at once, so the tracker can never be left waiting."""

    def __init__(self, capacity: int, drop_before: int = 0) -> None:
        self.capacity = capacity
        self.drop_before = drop_before
        self._items: deque[tuple[int, I420Frame]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.handed = 0  # frames the renderer took (tests, benchmarks)
        self.dropped = 0  # frames pushed out unseen (the renderer decodes them again)
        self.most = 0  # the most frames held at once

    def put(self, index: int, frame: I420Frame) -> None:
        with self._cond:
            while not self._closed and len(self._items) >= self.capacity:
                if index < self.drop_before:
                    self._items.popleft()
                    self.dropped += 1
                    break
                self._cond.wait(0.5)
            if not self._closed:
                self._items.append((index, frame))
                self.most = max(self.most, len(self._items))

    def take(self, index: int) -> I420Frame | None:
        with self._cond:
            while self._items and self._items[0][0] < index:
                self._items.popleft()
            frame = None
            if self._items and self._items[0][0] == index:
                frame = self._items.popleft()[1]
                self.handed += 1
            self._cond.notify_all()
            return frame

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._items.clear()
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


@dataclass(frozen=True)
class Track:
    """What pass 1 found, frame by frame; landmarks stay on disk, `chunk` frames a file."""

    work: Path
    chunk: int
    pts: np.ndarray  # (N,) int64
    status: np.ndarray  # (N,) uint8 TrackStatus
    gaps: np.ndarray  # (N,) canonical lip gap, NaN where not usable
    tones: np.ndarray  # (N,) skin brightness, NaN where not usable

    def points(self, lo: int, hi: int) -> np.ndarray:
        """Raw landmarks of frames [lo, hi) (NaN where not usable), read chunk by chunk."""
        parts = []
        for c in range(lo // self.chunk, (hi - 1) // self.chunk + 1):
            with np.load(self.work / f"track_{c:05d}.npz") as z:
                pts = z["points"]
            a, b = max(lo - c * self.chunk, 0), min(hi - c * self.chunk, len(pts))
            parts.append(pts[a:b])
        return np.concatenate(parts)

    def stats(self, upto: int) -> tuple[float, float]:
        """The speaker's closed-lip gap and skin tone from frames [0, upto): a fixed prefix, so a segment
        renders the same whether the job ran through or was resumed."""
        ok = self.status[:upto] == 0
        gaps, tones = self.gaps[:upto][ok], self.tones[:upto][ok]
        return (float(np.percentile(gaps, 10)) if len(gaps) else 0.0, float(np.median(tones)) if len(tones) else 1.0)


class TrackJob(threading.Thread):
    """Pass 1 in a background thread: follows the face and saves a chunk of landmarks every `chunk` frames."""

    def __init__(
        self,
        video: str | os.PathLike[str],
        work: Path,
        choice: FaceChoice,
        reference: np.ndarray,
        report: StageProgress,
        chunk: int,
        warm: int | None = None,
        handoff: FrameHandoff | None = None,
    ) -> None:
        super().__init__(daemon=True, name="talkinghead-track")
        self.video, self.work, self.choice, self.reference, self.report = video, work, choice, reference, report
        self.chunk = chunk
        # the mouths of a chunk's first `warm` frames are saved in a file of their own as soon as they are tracked
        # (mouths_NNNNNa.npz), so that a segment's mouth bank can end there (dubbing.py)
        self.warm = chunk if warm is None else min(warm, chunk)
        self.handoff = handoff
        self.total = probe_video(video).n_frames
        self._cond = threading.Condition()
        self._halt = threading.Event()
        self._chunks: list[dict[str, np.ndarray]] = []
        self._kept: dict[int, np.ndarray] = {}  # landmarks of the last saved chunks, so recent frames are not read back
        self._live: dict[str, list] = {k: [] for k in ("pts", "points", "status", "gaps", "tones")}  # the open chunk
        self._count = 0
        self._finished = False
        self._error: BaseException | None = None

    # -- consumer side (main thread)
    def tracked(self) -> int:
        with self._cond:
            return self._count

    def finished(self) -> bool:
        with self._cond:
            return self._finished

    def wait_for(self, n: int) -> bool:
        """Block until `n` frames are tracked (True) or tracking ended with fewer (False)."""
        with self._cond:
            while not self._finished and self._error is None and self._count < n:
                self._cond.wait(0.5)
            if self._error is not None:
                raise self._error
            return self._count >= n

    def snapshot(self) -> Track:
        """The per-frame arrays of every frame tracked so far (landmarks: `points`)."""
        with self._cond:
            chunks = list(self._chunks)
            live = {k: list(self._live[k]) for k in ("pts", "status", "gaps", "tones")}
        types = {"pts": np.int64, "status": np.uint8, "gaps": np.float32, "tones": np.float32}
        parts = {k: [c[k] for c in chunks] + [np.asarray(live[k], t)] for k, t in types.items()}
        return Track(self.work, self.chunk, *(np.concatenate(parts[k]).astype(types[k]) for k in types))

    def points(self, lo: int, hi: int) -> np.ndarray:
        """Raw landmarks of tracked frames [lo, hi): recent ones from memory, older ones from their chunk files."""
        with self._cond:
            start = self._count - len(self._live["pts"])  # the open chunk's first frame
            live = self._live["points"][max(lo - start, 0) : max(hi - start, 0)]
            kept = dict(self._kept)
        parts = []
        for c in range(lo // self.chunk, (hi - 1) // self.chunk + 1):
            a, b = max(lo, c * self.chunk), min(hi, (c + 1) * self.chunk)
            if c * self.chunk >= start:
                parts.append(np.asarray(live, np.float32).reshape(-1, 478, 3))
            elif c in kept:
                parts.append(kept[c][a - c * self.chunk : b - c * self.chunk])
            else:
                with np.load(self.work / f"track_{c:05d}.npz") as z:
                    parts.append(z["points"][a - c * self.chunk : b - c * self.chunk])
        return np.concatenate(parts)

    def result(self) -> Track:
        self.join()
        if self._error is not None:
            raise self._error
        track = self.snapshot()
        if len(track.pts) == 0:
            raise InputError(f"The video '{os.fspath(self.video)}' has no frames.")
        return track

    def stop(self) -> None:
        self._halt.set()
        if self.handoff is not None:
            self.handoff.close()  # a tracker waiting for room in the hand-off returns at once
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
        """A saved chunk (read back on resume)."""
        with self._cond:
            self._chunks.append(arrays)
            self._count += len(arrays["pts"])
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
            choice = resolve_choice(fetch, self.work, self.choice)
            n_done = self.tracked()
            after = int(self._chunks[-1]["pts"][-1]) if self._chunks else None
            chunk = self._live  # the open chunk, published frame by frame
            mouths = MouthCollector()  # the speaker's open mouths (render/mouth_bank.py), two files per chunk
            with FaceFollower(choice) as follower:
                follower.box = box

                def flush(last: bool) -> None:
                    arrays: dict[str, np.ndarray] = {
                        "pts": np.asarray(chunk["pts"], np.int64),
                        "points": np.asarray(chunk["points"], np.float32).reshape(-1, 478, 3),
                        "status": np.asarray(chunk["status"], np.uint8),
                        "gaps": np.asarray(chunk["gaps"], np.float32),
                        "tones": np.asarray(chunk["tones"], np.float32),
                    }
                    k = len(self._chunks)
                    if not (self.warm == self.chunk == len(chunk["pts"])):  # else saved before its last frame counted
                        mouths.save(self.work / f"mouths_{k:05d}.npz")
                    save_npz(
                        self.work / f"track_{k:05d}.npz",
                        **arrays,
                        box=np.asarray(follower.box if follower.box else [], np.float64),
                        last=np.asarray(last),
                    )
                    with self._cond:  # the open chunk becomes a saved one (its frames were counted already)
                        self._kept = {c: v for c, v in self._kept.items() if c >= k - 1}
                        self._kept[k] = arrays.pop("points")
                        self._chunks.append(arrays)
                        for v in chunk.values():
                            v.clear()
                        self._cond.notify_all()

                def publish(row: dict[str, object]) -> None:
                    with self._cond:
                        for key, v in row.items():
                            chunk[key].append(v)
                        self._count += 1
                        self._cond.notify_all()

                for p, frame in fetch.scan(after):
                    if self._halt.is_set():
                        return
                    if self.handoff is not None:
                        with stage("track: hand-off"):  # waits while the renderer is `capacity` frames behind
                            self.handoff.put(n_done, frame)
                    with stage("track: mesh"):
                        found = follower(frame)
                    with stage("track: fit"):
                        sim = fit_canonical(found, self.reference) if found is not None else None
                        status = (
                            TrackStatus.NO_FACE
                            if found is None or sim is None
                            else usable(found, sim, frame.width, frame.height)
                        )
                    row: dict[str, object] = {"pts": p, "status": status}
                    if status == TrackStatus.OK and found is not None and sim is not None:
                        row["points"] = np.asarray(found, np.float32)
                        with stage("track: fit"):
                            row["gaps"] = lip_gap(sim.apply(found))
                        with stage("track: tone"):
                            row["tones"] = cheek_tone(frame, found)
                        with stage("mouth bank: collect"):
                            mouths.add(n_done, frame, found, inter_ocular(found))
                    else:
                        row.update(points=np.full((478, 3), np.nan, np.float32), gaps=np.nan, tones=np.nan)
                    frame.forget_rgb()  # a searched frame's RGB (6 MB at 1080p) is not held in the hand-off
                    k = len(self._chunks)
                    if len(chunk["pts"]) + 1 == self.warm:  # saved before the frame counts as tracked
                        with stage("track: save chunk"):
                            mouths.save(self.work / f"mouths_{k:05d}{'a' if self.warm < self.chunk else ''}.npz")
                    publish(row)
                    n_done += 1
                    self.report("Tracking the face", n_done, max(self.total, n_done))
                    if len(chunk["pts"]) == self.chunk:
                        with stage("track: save chunk"):
                            flush(False)
                with stage("track: save chunk"):
                    flush(True)


def resolve_choice(fetch: FrameFetcher, work: Path, choice: FaceChoice) -> FaceChoice:
    """The face this job follows: the one saved when it started, else for `auto` with several people in
    shot the speaking one (saved, so a resumed job keeps the same face), else `choice` itself."""
    saved = saved_face(work)
    if saved is not None:
        return FaceChoice("point", point=saved)
    if choice.mode != "auto":
        return choice
    found = speaking_face(frame for _, frame in fetch.scan())
    if found is None:
        return choice
    point, scores = found
    save_face(work, point, scores)
    return FaceChoice("point", point=point)
