"""Running jobs on this machine: in the batch command's own process (one worker) or in N worker processes.

Worker processes are started with the spawn method (a fresh interpreter: no forked torch or mediapipe state),
are handed one job at a time, keep their models loaded between jobs, and send back start, progress and
result messages. A worker that dies (killed, out of memory) fails only the job it was running; a new worker
takes its place.
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
import queue
import socket
import time
from collections.abc import Sequence
from typing import Any, Protocol

from talkinghead.batch.jobs import Job
from talkinghead.batch.worker import JobResult, Worker, limit_threads

_PROGRESS_EVERY_S = 0.25


class Events(Protocol):
    """What a backend tells the batch runner, always from the runner's own thread."""

    def started(self, row: int, worker: str) -> None: ...

    def progress(self, row: int, fraction: float) -> None: ...

    def finished(self, result: JobResult) -> None: ...


def run_inline(jobs: Sequence[Job], events: Events) -> None:
    """One worker, in this process: the models load once; Ctrl-C raises KeyboardInterrupt between frames."""
    worker = Worker()
    for job in jobs:
        events.started(job.row, worker.name)
        events.finished(worker.run(job, functools.partial(events.progress, job.row)))


def run_pool(jobs: Sequence[Job], workers: int, events: Events) -> None:
    """`workers` processes (spawn), each with cores/workers threads; returns when every job has a result.

    Each worker has its own inbox and is handed one job at a time, so the runner always knows which job a
    worker holds: a worker that dies fails that job only, and a new worker takes its place."""
    ctx = mp.get_context("spawn")
    results: Any = ctx.Queue()
    n = max(1, min(workers, len(jobs)))
    threads = max(1, (os.cpu_count() or 1) // n)
    todo = list(jobs)
    remaining = {job.row for job in jobs}
    procs: dict[int, tuple[Any, Any]] = {}  # pid -> (process, inbox)
    holding: dict[int, tuple[int, float]] = {}  # pid -> (row it was handed, when)
    deaths = 0

    def start() -> None:
        inbox = ctx.Queue()
        p = ctx.Process(target=_serve, args=(inbox, results, threads), daemon=True, name="talkinghead-batch")
        p.start()
        assert p.pid is not None
        procs[p.pid] = (p, inbox)
        hand_out(p.pid)

    def hand_out(pid: int) -> None:
        inbox = procs[pid][1]
        if todo:
            job = todo.pop(0)
            holding[pid] = (job.row, time.time())
            inbox.put(job)
        else:
            holding.pop(pid, None)
            inbox.put(None)

    def reap() -> bool:
        """Fail the job of each dead worker and replace it; False when workers keep dying."""
        nonlocal deaths
        for pid, (p, _) in list(procs.items()):
            if p.is_alive():
                continue
            del procs[pid]
            held = holding.pop(pid, None)
            if held is None:
                continue  # it had finished its work
            deaths += 1
            row, began = held
            if row in remaining:
                remaining.discard(row)
                events.finished(
                    JobResult(
                        row,
                        "failed",
                        f"The worker process died (exit code {p.exitcode}) while running this job.",
                        began,
                        time.time() - began,
                        f"{socket.gethostname()}:{pid}",
                    )
                )
            if deaths > n + len(jobs):
                return False
            if remaining and len(procs) < n:
                start()
        return True

    for _ in range(n):
        start()
    checked = time.monotonic()
    try:
        while remaining:
            try:
                kind, pid, *rest = results.get(timeout=0.5)
            except queue.Empty:
                kind = ""
            if kind == "started":
                events.started(rest[0], rest[1])
            elif kind == "progress":
                events.progress(rest[0], rest[1])
            elif kind == "finished":
                result: JobResult = rest[0]
                if result.row in remaining:
                    remaining.discard(result.row)
                    events.finished(result)
                if pid in procs:
                    hand_out(pid)
            if kind in ("", "finished") or time.monotonic() - checked > 1.0:
                checked = time.monotonic()
                if not reap():
                    for row in sorted(remaining):
                        events.finished(
                            JobResult(row, "failed", "Worker processes keep dying; see the messages above.")
                        )
                    remaining.clear()
    finally:
        for _, inbox in procs.values():
            inbox.put(None)  # harmless to a worker that already had its sentinel or stopped on Ctrl-C
        _stop([p for p, _ in procs.values()], graceful=not remaining)


def _stop(procs: list[Any], graceful: bool) -> None:
    """Workers exit on their sentinel; after Ctrl-C they get a few seconds to unwind (temp files), then SIGTERM."""
    deadline = time.monotonic() + (30.0 if graceful else 5.0)
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join(2.0)


def _serve(inbox: Any, results: Any, threads: int) -> None:
    """A worker process's loop: one Worker (models loaded once), jobs until the sentinel."""
    pid = os.getpid()
    last = {"row": 0, "sent": 0.0}

    def progress(fraction: float) -> None:  # at most a few messages a second
        now = time.monotonic()
        if now - last["sent"] >= _PROGRESS_EVERY_S:
            last["sent"] = now
            results.put(("progress", pid, last["row"], fraction))

    try:
        from talkinghead.face.native_logs import mute_native_logs

        mute_native_logs()
        limit_threads(threads)
        worker = Worker()
        while (job := inbox.get()) is not None:
            last["row"] = job.row
            results.put(("started", pid, job.row, worker.name))
            results.put(("finished", pid, worker.run(job, progress)))
    except KeyboardInterrupt:  # Ctrl-C reaches every process of the terminal; the parent writes the report
        pass
