"""Pass 1 of a dub: follow the chosen face through the video in a background thread.

The thread saves a chunk of landmarks every `chunk` frames into the work folder and publishes the
small per-frame arrays (timestamps, status, lip gap, skin tone) to the main thread, which renders a
chunk behind it. A resumed job reads the saved chunks back and continues after the last one.
"""

from __future__ import annotations

import os
import threading
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
from talkinghead.media.timers import stage
from talkinghead.media.video_reader import probe_video
from talkinghead.render.mouth_bank import MouthCollector
from talkinghead.render.region import cheek_tone
from talkinghead.types import TrackStatus, lip_gap

StageProgress = Callable[[str, int, int], None]


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
    ) -> None:
        super().__init__(daemon=True, name="talkinghead-track")
        self.video, self.work, self.choice, self.reference, self.report = video, work, choice, reference, report
        self.chunk = chunk
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

    def snapshot(self) -> Track:
        with self._cond:
            chunks = list(self._chunks)
        if not chunks:
            return Track(self.work, self.chunk, *(np.zeros(0, t) for t in (np.int64, np.uint8, np.float32, np.float32)))
        return Track(
            self.work, self.chunk, *(np.concatenate([c[k] for c in chunks]) for k in ("pts", "status", "gaps", "tones"))
        )

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
            choice = resolve_choice(fetch, self.work, self.choice)
            n_done = self.tracked()
            after = int(self._chunks[-1]["pts"][-1]) if self._chunks else None
            chunk: dict[str, list] = {"pts": [], "points": [], "status": [], "gaps": [], "tones": []}
            mouths = MouthCollector()  # the speaker's open mouths (render/mouth_bank.py), one file per chunk
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
                    mouths.save(self.work / f"mouths_{k:05d}.npz")
                    save_npz(
                        self.work / f"track_{k:05d}.npz",
                        **arrays,
                        box=np.asarray(follower.box if follower.box else [], np.float64),
                        last=np.asarray(last),
                    )
                    del arrays["points"]
                    self._publish(arrays)
                    for v in chunk.values():
                        v.clear()

                for p, frame in fetch.scan(after):
                    if self._halt.is_set():
                        return
                    with stage("track: mesh"):
                        found = follower(frame)
                    with stage("track: fit"):
                        sim = fit_canonical(found, self.reference) if found is not None else None
                        status = (
                            TrackStatus.NO_FACE
                            if found is None or sim is None
                            else usable(found, sim, frame.width, frame.height)
                        )
                    chunk["pts"].append(p)
                    chunk["status"].append(status)
                    if status == TrackStatus.OK and found is not None and sim is not None:
                        chunk["points"].append(found)
                        with stage("track: fit"):
                            chunk["gaps"].append(lip_gap(sim.apply(found)))
                        with stage("track: tone"):
                            chunk["tones"].append(cheek_tone(frame, found))
                        with stage("mouth bank: collect"):
                            mouths.add(n_done, frame, found, inter_ocular(found))
                    else:
                        chunk["points"].append(np.full((478, 3), np.nan, np.float32))
                        chunk["gaps"].append(np.nan)
                        chunk["tones"].append(np.nan)
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
