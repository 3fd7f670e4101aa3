"""Jobs and their state on disk: one folder per job under DATA_DIR/jobs/<id>/ with a job.json.

The server process is the only writer of job.json (workers report through a pipe), so the file is
always one consistent state. A restart reads every job.json back: finished jobs keep their results,
queued jobs wait again, and jobs that were running are reported as failed. Finished jobs expire and
their folders are deleted. A job that did not end `done` never keeps a result file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STATUSES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")
RESULT = "result.mp4"
_ID = re.compile(r"^[0-9a-f]{32}$")


def iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def valid_id(job_id: str) -> bool:
    """Only ids the server made are ever joined to a path."""
    return bool(_ID.match(job_id))


@dataclass
class Job:
    id: str
    mode: str
    status: str = "queued"
    progress: float = 0.0
    stage: str = ""
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    options: dict[str, Any] = field(default_factory=dict)  # by API name, as given
    overrides: dict[str, Any] = field(default_factory=dict)  # keyword arguments for generate()/dub()
    inputs: dict[str, str] = field(default_factory=dict)  # role -> file name inside the job folder
    names: dict[str, str] = field(default_factory=dict)  # role -> the client's file name, for messages only
    error: dict[str, str] | None = None
    summary: str | None = None
    duration: float | None = None  # seconds of speech (what the result will last, in photo mode)

    def public(self, keep_hours: float) -> dict[str, Any]:
        """The JSON of GET /v1/jobs/{id} (and of each server-sent event)."""
        expires = self.finished + keep_hours * 3600 if self.finished is not None else None
        return {
            "id": self.id,
            "mode": self.mode,
            "status": self.status,
            "progress": round(self.progress, 4),
            "stage": self.stage,
            "created": iso(self.created),
            "started": iso(self.started),
            "finished": iso(self.finished),
            "expires": iso(expires),
            "options": self.options,
            "files": self.names,
            "speech_seconds": self.duration,
            "error": self.error,
            "summary": self.summary,
            "result": f"/v1/jobs/{self.id}/result" if self.status == "done" else None,
        }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".job.", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class JobStore:
    """Every job of this server, in memory and on disk; thread-safe. Listeners are called on each change."""

    def __init__(self, data_dir: Path, keep_hours: float) -> None:
        self.root = data_dir / "jobs"
        self.uploads = data_dir / "uploads"
        self.keep_hours = keep_hours
        self._jobs: dict[str, Job] = {}
        self._lock = threading.RLock()
        self._listeners: dict[int, tuple[str | None, Callable[[], None]]] = {}
        self._next = 0

    # ------------------------------------------------------------------ start-up

    def load(self) -> list[Job]:
        """Read the jobs a previous run left; return the queued ones (oldest first) to run again."""
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.uploads, ignore_errors=True)  # uploads cut off by the restart
        self.uploads.mkdir(parents=True, exist_ok=True)
        requeue = []
        for folder in self.root.iterdir():
            path = folder / "job.json"
            try:
                data = json.loads(path.read_text())
                job = Job(**{k: v for k, v in data.items() if k in Job.__dataclass_fields__})
                assert valid_id(job.id) and job.id == folder.name and job.status in STATUSES
            except Exception:  # not a job folder, or a damaged one: nothing can be served from it
                shutil.rmtree(folder, ignore_errors=True) if folder.is_dir() else folder.unlink(missing_ok=True)
                continue
            self._jobs[job.id] = job
            if job.status == "running":
                self._finish(
                    job,
                    "failed",
                    error={
                        "code": "interrupted",
                        "message": "The server stopped while this job was running; submit it again.",
                    },
                )
            elif job.status == "queued":
                requeue.append(job)
            elif job.status == "done" and not (folder / RESULT).is_file():
                self._finish(job, "failed", error={"code": "lost", "message": "The result of this job is lost."})
        return sorted(requeue, key=lambda j: j.created)

    # ------------------------------------------------------------------ paths

    def folder(self, job_id: str) -> Path:
        assert valid_id(job_id)
        return self.root / job_id

    def new_upload(self) -> tuple[str, Path]:
        """A fresh id and an empty private folder to stream its upload into (moved in place by `add`)."""
        job_id = uuid.uuid4().hex
        folder = self.uploads / job_id
        folder.mkdir(mode=0o700)
        return job_id, folder

    def result(self, job_id: str) -> Path | None:
        with self._lock:
            job = self._jobs.get(job_id)
            path = self.folder(job_id) / RESULT
            return path if job is not None and job.status == "done" and path.is_file() else None

    # ------------------------------------------------------------------ changes

    def add(self, job: Job, upload_folder: Path) -> None:
        with self._lock:
            os.replace(upload_folder, self.folder(job.id))
            self._jobs[job.id] = job
            self._save(job)
        self._notify(job.id)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else Job(**asdict(job))

    def all(self) -> list[Job]:
        with self._lock:
            return sorted((Job(**asdict(j)) for j in self._jobs.values()), key=lambda j: -j.created)

    def count(self, status: str) -> int:
        with self._lock:
            return sum(j.status == status for j in self._jobs.values())

    def start(self, job_id: str) -> bool:
        """Mark a queued job running; False if it was cancelled meanwhile."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status != "queued":
                return False
            job.status, job.started, job.stage = "running", time.time(), "starting"
            self._save(job)
        self._notify(job_id)
        return True

    def progress(self, job_id: str, progress: float, stage: str) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status != "running":
                return
            job.progress, job.stage = max(job.progress, min(1.0, progress)), stage
        self._notify(job_id)

    def finish(self, job_id: str, status: str, **changes: Any) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status in FINISHED:
                return
            self._finish(job, status, **changes)
        self._notify(job_id)

    def _finish(self, job: Job, status: str, **changes: Any) -> None:
        """Record the end of a job and delete what it no longer needs: the inputs always, and everything
        but the result when it is done (so a failed or cancelled job has nothing to download)."""
        for k, v in changes.items():
            setattr(job, k, v)
        job.status, job.finished = status, time.time()
        if status == "done":
            job.progress, job.stage = 1.0, "done"
        folder = self.folder(job.id)
        keep = {"job.json", RESULT} if status == "done" else {"job.json"}
        if folder.is_dir():
            for entry in folder.iterdir():
                if entry.name not in keep:
                    shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
        self._save(job)

    def delete(self, job_id: str) -> bool:
        """Forget a finished job and delete its folder."""
        with self._lock:
            job = self._jobs.pop(job_id, None)
            if job is None:
                return False
            shutil.rmtree(self.folder(job_id), ignore_errors=True)
        self._notify(job_id)
        return True

    def expire(self, now: float | None = None) -> list[str]:
        """Delete finished jobs older than keep_hours; return their ids."""
        now = time.time() if now is None else now
        limit = self.keep_hours * 3600
        with self._lock:
            old = [
                j.id
                for j in self._jobs.values()
                if j.status in FINISHED and j.finished is not None and now - j.finished >= limit
            ]
        for job_id in old:
            self.delete(job_id)
        return old

    def _save(self, job: Job) -> None:
        folder = self.folder(job.id)
        if folder.is_dir():
            _write_json(folder / "job.json", asdict(job))

    # ------------------------------------------------------------------ listeners (server-sent events)

    def subscribe(self, job_id: str | None, callback: Callable[[], None]) -> int:
        with self._lock:
            self._next += 1
            self._listeners[self._next] = (job_id, callback)
            return self._next

    def unsubscribe(self, token: int) -> None:
        with self._lock:
            self._listeners.pop(token, None)

    def _notify(self, job_id: str) -> None:
        with self._lock:
            callbacks = [cb for jid, cb in self._listeners.values() if jid in (None, job_id)]
        for cb in callbacks:
            cb()
