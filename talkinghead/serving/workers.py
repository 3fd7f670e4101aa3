"""Worker processes that keep their models loaded, and the bounded queue that feeds them.

Each worker is a separate process (a crash or a runaway job cannot take the server down, and memory a
job used goes back when the process is replaced) holding one `Animator` and one `Dubber`, loaded once.
In the server, one thread per worker takes the next job id from the queue, sends the job down the
worker's pipe and turns what comes back (progress, done, failed) into job state. Cancelling a running
job sets the worker's cancel flag, which its progress callback checks; a worker that does not stop in
time, or dies, is replaced.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing as mp
import os
import signal
import threading
import time
import traceback
from collections import deque
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from talkinghead.serving.jobs import RESULT, Job, JobStore

log = logging.getLogger("talkinghead.serve")

# share of the whole dub each stage's progress stands for (tracking and rendering overlap in time)
_DUB_STAGES = {"Tracking the face": 0.35, "Rendering": 0.6, "Writing": 0.05}
_CANCEL_GRACE_S = 15.0
_INTERNAL = "The job failed because of an internal error of the server."


class _Cancelled(Exception):
    pass


# ---------------------------------------------------------------------------------------- in the worker


def _worker_main(conn: Connection, cancel: Any, threads: int) -> None:
    """Body of a worker process: load the models, then run jobs sent down `conn` until None arrives."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the server stops us
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    from talkinghead.face.native_logs import mute_native_logs
    from talkinghead.media.heap import tune_allocator

    # as the command line's dub and generate (media/heap.py), before any library starts its threads: their
    # allocations then share one arena, and a worker renders job after job
    tune_allocator()
    mute_native_logs()
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    from talkinghead.dubbing import Dubber
    from talkinghead.pipeline import Animator

    animator, dubber = Animator(), Dubber()
    conn.send(("ready",))
    while True:
        try:
            spec = conn.recv()
        except EOFError:
            return
        if spec is None:
            return
        conn.send(_run(spec, animator, dubber, cancel, conn))


def _run(spec: dict[str, Any], animator: Any, dubber: Any, cancel: Any, conn: Connection) -> tuple[Any, ...]:
    from talkinghead.errors import InputError, NoFaceError, OutputError, TalkingHeadError
    from talkinghead.pipeline import generate

    folder = Path(spec["folder"])
    paths = {role: folder / name for role, name in spec["inputs"].items()}
    out = folder / RESULT
    last = [0.0, -1.0]  # time, progress of the last report

    def report(p: float, stage: str) -> None:
        if cancel.is_set():
            raise _Cancelled()
        now = time.monotonic()
        if p >= 1.0 or p - last[1] >= 0.01 or now - last[0] >= 0.25:
            last[0], last[1] = now, p
            conn.send(("progress", p, stage))

    def frames(done: int, total: int) -> None:
        report(done / max(total, 1), "rendering")

    dub_parts: dict[str, float] = {}

    def stages(stage: str, done: int, total: int) -> None:
        share = _DUB_STAGES.get(stage, 0.0)
        dub_parts[stage] = share * min(done / max(total, 1), 1.0)
        report(sum(dub_parts.values()), stage.lower())

    try:
        report(0.0, "preparing")
        if spec["mode"] == "generate":
            generate(paths["face"], paths["audio"], out, progress=frames, animator=animator, **spec["overrides"])
            summary = None
        else:
            summary = dubber.dub(paths["video"], paths["audio"], out, progress=stages, **spec["overrides"]).summary()
        return ("done", summary)
    except _Cancelled:
        return ("cancelled",)
    except TalkingHeadError as exc:
        code = (
            "no_face"
            if isinstance(exc, NoFaceError)
            else "bad_input"
            if isinstance(exc, InputError)
            else "output"
            if isinstance(exc, OutputError)
            else "refused"
        )
        return ("failed", code, _user_message(str(exc), folder, paths, spec["names"]))
    except Exception:
        traceback.print_exc()
        return ("failed", "internal", _INTERNAL)


def _user_message(message: str, folder: Path, paths: dict[str, Path], names: dict[str, str]) -> str:
    """The pipeline's one sentence with the server's own paths replaced by the names the client sent."""
    what = {"face": "photo", "video": "video", "audio": "speech"}
    for role, path in paths.items():
        message = message.replace(str(path), names.get(role) or f"uploaded {what.get(role, 'file')}")
    return message.replace(str(folder) + os.sep, "").replace(str(folder), "")


# ---------------------------------------------------------------------------------------- in the server


class JobQueue:
    """Job ids waiting for a worker, at most `limit` of them, plus slots reserved by uploads in progress."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._ids: deque[str] = deque()
        self._reserved = 0
        self._cond = threading.Condition()
        self._closed = False

    def reserve(self) -> bool:
        """Hold a place for an upload about to be read; False when the queue is full."""
        with self._cond:
            if len(self._ids) + self._reserved >= self.limit:
                return False
            self._reserved += 1
            return True

    def release(self) -> None:
        with self._cond:
            self._reserved -= 1

    def put(self, job_id: str, reserved: bool = True) -> None:
        with self._cond:
            if reserved:
                self._reserved -= 1
            self._ids.append(job_id)
            self._cond.notify()

    def take(self, timeout: float = 0.5) -> str | None:
        with self._cond:
            if not self._ids and not self._closed:
                self._cond.wait(timeout)
            return self._ids.popleft() if self._ids else None

    def remove(self, job_id: str) -> bool:
        with self._cond:
            try:
                self._ids.remove(job_id)
            except ValueError:
                return False
            return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._ids)


class _Worker:
    """One worker process and the server thread that feeds it."""

    def __init__(self, pool: WorkerPool, index: int) -> None:
        self.pool, self.index = pool, index
        self.ready = False
        self.job_id: str | None = None
        self.cancel_at: float | None = None
        self._ctx = mp.get_context("spawn")
        self.cancel = self._ctx.Event()
        self.process: Any = None
        self.conn: Connection | None = None
        self.thread = threading.Thread(target=self._loop, name=f"talkinghead-worker-{index}", daemon=True)

    def _spawn(self) -> None:
        ours, theirs = self._ctx.Pipe()
        self.process = self._ctx.Process(
            target=_worker_main,
            args=(theirs, self.cancel, self.pool.threads),
            name=f"talkinghead-worker-{self.index}",
            daemon=True,
        )
        self.process.start()
        theirs.close()
        self.conn, self.ready = ours, False

    def _wait_ready(self) -> bool:
        assert self.conn is not None
        while not self.pool.stopping.is_set():
            try:
                if self.conn.poll(0.2) and self.conn.recv() == ("ready",):
                    self.ready = True
                    return True
            except (EOFError, OSError):
                break
            if not self.process.is_alive():
                break
        return False

    def _loop(self) -> None:
        failures = 0
        while not self.pool.stopping.is_set():
            self._spawn()
            if not self._wait_ready():
                self._stop_process()
                if self.pool.stopping.is_set():
                    return
                failures += 1
                log.error("worker %d could not start (attempt %d)", self.index, failures)
                self.pool.stopping.wait(min(60.0, 2.0**failures))
                continue
            failures = 0
            if self._serve():  # returns True when the process must be replaced
                self._stop_process()
        self._stop_process()

    def _serve(self) -> bool:
        store, queue = self.pool.store, self.pool.queue
        assert self.conn is not None
        while not self.pool.stopping.is_set():
            job_id = queue.take()
            if job_id is None or not store.start(job_id):
                continue
            job = store.get(job_id)
            assert job is not None
            self.cancel.clear()
            self.job_id, self.cancel_at = job_id, None
            try:
                self.conn.send(_spec(job, store))
                ok = self._follow(job)
            finally:
                self.job_id = None
            if not ok:
                return True
        return False

    def _follow(self, job: Job) -> bool:
        """Turn the worker's messages about `job` into job state; False if the worker must be replaced."""
        store = self.pool.store
        assert self.conn is not None
        while True:
            try:
                if not self.conn.poll(0.2):
                    died = not self.process.is_alive()
                    late = self.cancel_at is not None and time.monotonic() - self.cancel_at > _CANCEL_GRACE_S
                    if self.pool.stopping.is_set() or died or late:
                        if late:
                            store.finish(job.id, "cancelled")
                        elif not self.pool.stopping.is_set():
                            store.finish(job.id, "failed", error={"code": "internal", "message": _INTERNAL})
                        return False
                    continue
                msg = self.conn.recv()
            except (EOFError, OSError):
                store.finish(job.id, "failed", error={"code": "internal", "message": _INTERNAL})
                return False
            kind = msg[0]
            if kind == "progress":
                store.progress(job.id, msg[1], msg[2])
            elif kind == "done":
                self.pool.record_time(job)
                store.finish(job.id, "done", summary=msg[1])
                return True
            elif kind == "cancelled":
                store.finish(job.id, "cancelled")
                return True
            elif kind == "failed":
                store.finish(job.id, "failed", error={"code": msg[1], "message": msg[2]})
                return True

    def request_cancel(self) -> None:
        self.cancel.set()
        self.cancel_at = time.monotonic()

    def _stop_process(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError, ValueError):
                self.conn.send(None)
        if self.process is not None:
            self.process.join(timeout=2.0)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(timeout=5.0)
        if self.conn is not None:
            self.conn.close()
        self.conn, self.process, self.ready = None, None, False


def _spec(job: Job, store: JobStore) -> dict[str, Any]:
    return {
        "id": job.id,
        "mode": job.mode,
        "folder": str(store.folder(job.id)),
        "inputs": job.inputs,
        "names": job.names,
        "overrides": job.overrides,
    }


class WorkerPool:
    """N workers on one queue."""

    def __init__(self, store: JobStore, workers: int, queue_limit: int, threads: int | None = None) -> None:
        self.store = store
        self.queue = JobQueue(queue_limit)
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)
        self.stopping = threading.Event()
        self.workers = [_Worker(self, i) for i in range(workers)]
        self._times: deque[float] = deque(maxlen=20)

    def start(self) -> None:
        for w in self.workers:
            w.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.queue.close()
        for w in self.workers:
            w.thread.join(timeout=15.0)

    @property
    def ready(self) -> int:
        return sum(w.ready for w in self.workers)

    @property
    def busy(self) -> int:
        return sum(w.job_id is not None for w in self.workers)

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job; False if no worker or queue holds it."""
        if self.queue.remove(job_id):
            self.store.finish(job_id, "cancelled")
            return True
        for w in self.workers:
            if w.job_id == job_id:
                w.request_cancel()
                return True
        return False

    def record_time(self, job: Job) -> None:
        if job.started is not None:
            self._times.append(time.time() - job.started)

    def retry_after(self) -> int:
        """Seconds until a queue place is likely to be free: the mean job time over the workers."""
        mean = sum(self._times) / len(self._times) if self._times else 10.0
        return max(1, math.ceil(mean / len(self.workers)))
