"""`talkinghead prepare`: track faces and extract audio features from a folder of talking videos.

One compressed .npz per video, written under a temporary name and renamed, so an interrupted run
loses no finished video and a rerun skips what is done. Videos are processed in parallel worker
processes (each with its own face tracker); a broken file is logged and skipped, never fatal.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".m4v"}


@dataclass(frozen=True)
class PrepareSummary:
    done: int
    skipped_existing: int
    failed: dict[str, str]


def find_videos(root: Path) -> list[Path]:
    """Every video file below `root`, in any folder layout, sorted for reproducibility."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


def cache_name(video: Path, root: Path) -> str:
    """Flat, collision-free cache file name that keeps the source's relative path readable."""
    rel = video.relative_to(root).with_suffix("")
    return "__".join(rel.parts) + ".npz"


def prepare_video(video: Path) -> dict[str, np.ndarray]:
    """Landmarks per frame (NaN where no face) and the 16 kHz audio of one video."""
    from talkinghead.face.landmarks import FaceTracker
    from talkinghead.media import iter_frames, load_audio, probe_video

    info = probe_video(video)
    points, times = [], []
    with FaceTracker() as tracker:
        for t, frame in iter_frames(video):
            pts = tracker(frame)
            points.append(pts if pts is not None else np.full((478, 3), np.nan, np.float32))
            times.append(t)
    if not points:
        raise ValueError("no video frames")
    out = {
        "points": np.stack(points).astype(np.float32),
        "times": np.asarray(times, np.float64),
        "fps": np.float64(info.fps),
        "size": np.array([info.width, info.height]),
    }
    if info.has_audio:
        wav = load_audio(video, sample_rate=16000, mono=True)
        out["audio"] = np.clip(wav.samples * 32767, -32768, 32767).astype(np.int16)
    return out


def _work(args: tuple[str, str]) -> tuple[str, str | None]:
    video, target = args
    try:
        data = prepare_video(Path(video))
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), suffix=".partial.npz")
        os.close(fd)
        try:
            np.savez_compressed(tmp, **data)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return video, None
    except Exception as exc:  # a broken file must not stop the other videos
        return video, f"{type(exc).__name__}: {exc}"


def prepare(
    root: Path, out: Path, workers: int = 2, on_progress: Callable[[int, int], None] | None = None
) -> PrepareSummary:
    """Process every video under `root` into `out`; returns counts and the reasons for failures."""
    out.mkdir(parents=True, exist_ok=True)
    videos = find_videos(root)
    jobs, existing = [], 0
    for v in videos:
        target = out / cache_name(v, root)
        if target.exists():
            existing += 1
        else:
            jobs.append((str(v), str(target)))
    failed: dict[str, str] = {}
    done = 0
    total = len(jobs)
    if on_progress:
        on_progress(0, total)
    results: Iterable[tuple[str, str | None]]
    if workers <= 1:
        results = map(_work, jobs)
        for video, err in results:
            done += 1
            if err:
                failed[video] = err
            if on_progress:
                on_progress(done, total)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_work, j) for j in jobs]
            for fut in as_completed(futures):
                video, err = fut.result()
                done += 1
                if err:
                    failed[video] = err
                if on_progress:
                    on_progress(done, total)
    if failed:
        (out / "failed.json").write_text(json.dumps(failed, indent=1))
    return PrepareSummary(done=total - len(failed), skipped_existing=existing, failed=failed)
