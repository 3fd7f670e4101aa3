"""One batch worker: loads its models on the first job that needs them and keeps them for every later job.

The same `Worker` runs in the batch command's own process (one worker), in each local worker process, and in
each Ray actor. Nothing here imports torch or mediapipe until a job runs.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from talkinghead.batch.jobs import Job
from talkinghead.config import DubOptions, GenerateOptions
from talkinghead.errors import TalkingHeadError

Fraction = Callable[[float], None]  # share of the running job done, 0..1


@dataclass(frozen=True)
class JobResult:
    """What one job did: `done` or `failed` (with the one-sentence reason, or the exception for a bug)."""

    row: int
    status: str
    error: str = ""
    started: float = 0.0  # epoch seconds
    seconds: float = 0.0
    worker: str = ""  # host:pid
    loaded_models: bool = False  # this job loaded models (the worker's first job of its kind)
    summary: str = ""  # dub: frames dubbed / passed through
    traceback: str = ""  # bugs only


def limit_threads(threads: int) -> None:
    """Set a worker process up: torch and OpenCV use `threads` threads (the cores are shared between workers;
    environment variables cover libraries not yet imported, set before torch loads in a fresh worker process),
    and the allocator is tuned as the command line's `dub` and `generate` tune it (media/heap.py: no page fault
    per frame-sized buffer, memory flat over a worker's many jobs)."""
    from talkinghead.media.heap import tune_allocator

    tune_allocator()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import cv2
    import torch

    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # the inter-op pool can be sized once per process, before first use
        torch.set_num_interop_threads(threads)
    cv2.setNumThreads(threads)


class Worker:
    """Keeps one Animator per (lips, motion) weights and one Dubber per lips weights, for all its jobs."""

    def __init__(self) -> None:
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._models: dict[tuple[str, ...], Any] = {}
        self.loads = 0  # models constructed by this worker (tests check it stays at one per kind)

    def _model(self, key: tuple[str, ...], make: Callable[[], Any]) -> Any:
        if key not in self._models:
            self._models[key] = make()
            self.loads += 1
        return self._models[key]

    def run(self, job: Job, progress: Fraction | None = None) -> JobResult:
        """Run one valid job; user errors and bugs become a failed result, never an exception (Ctrl-C stays one)."""
        started, t0, loads = time.time(), time.perf_counter(), self.loads
        summary = ""
        try:
            if job.path is None or job.options is None:
                raise TalkingHeadError(job.error or f"Row {job.row} is not a valid job.")
            job.path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(job.options, GenerateOptions):
                summary = self._generate(job, job.path, job.options, progress)
            else:
                summary = self._dub(job, job.path, job.options, progress)
        except TalkingHeadError as exc:
            return JobResult(
                job.row, "failed", str(exc), started, time.perf_counter() - t0, self.name, self.loads > loads
            )
        except Exception as exc:  # a bug: say what it was, keep the traceback, run the next job
            return JobResult(
                job.row,
                "failed",
                f"{type(exc).__name__}: {exc}",
                started,
                time.perf_counter() - t0,
                self.name,
                self.loads > loads,
                traceback=traceback.format_exc(),
            )
        return JobResult(job.row, "done", "", started, time.perf_counter() - t0, self.name, self.loads > loads, summary)

    def _generate(self, job: Job, out: Path, opts: GenerateOptions, progress: Fraction | None) -> str:
        from talkinghead import pipeline

        lips, motion = job.weights.get("lips_weights", "lips"), job.weights.get("motion_weights", "motion")
        animator = self._model(
            ("animator", lips, motion), lambda: pipeline.Animator(lips_weights=lips, motion_weights=motion)
        )
        update = None if progress is None else (lambda done, total: progress(done / max(total, 1)))
        pipeline.generate(job.inputs["face"], job.inputs["audio"], out, opts, progress=update, animator=animator)
        return ""

    def _dub(self, job: Job, out: Path, opts: DubOptions, progress: Fraction | None) -> str:
        from talkinghead import dubbing

        stages: dict[str, float] = {}

        def update(stage: str, done: int, total: int) -> None:  # tracking, rendering, writing: equal shares
            stages[stage] = done / max(total, 1)
            if progress is not None:
                progress(sum(stages.values()) / max(3, len(stages)))

        lips = job.weights.get("lips_weights", "lips")
        dubber = self._model(("dubber", lips), lambda: dubbing.Dubber(lips_weights=lips))
        report = dubbing.dub(job.inputs["video"], job.inputs["audio"], out, opts, progress=update, dubber=dubber)
        return report.summary()
