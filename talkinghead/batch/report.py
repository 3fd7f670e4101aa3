"""OUT_DIR/report.json and report.csv: every job's status, error, timings and output, rewritten (atomically)
after each job so an interrupted batch still leaves an accurate report, and the next run knows what is done."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from talkinghead.batch.jobs import Job
from talkinghead.batch.worker import JobResult

STATUSES = ("done", "failed", "skipped", "pending")  # pending: not run yet (the batch was interrupted)
CSV_COLUMNS = ("row", "id", "mode", "output", "status", "error", "started", "seconds", "worker", "summary", "path")


@dataclass
class Entry:
    """One job's line in the report."""

    row: int
    id: str
    mode: str
    output: str  # as in the jobs file, relative to OUT_DIR
    path: str  # absolute output path ("" for an invalid row)
    status: str = "pending"
    error: str = ""
    started: str = ""  # ISO 8601 UTC of the run that made the output
    seconds: float | None = None
    worker: str = ""
    summary: str = ""
    loaded_models: bool = False  # JSON only: this job loaded its worker's models (a worker's first job of its kind)
    fingerprint: str = ""
    traceback: str = ""  # JSON only: where a bug happened

    @classmethod
    def of(cls, job: Job) -> Entry:
        entry = cls(job.row, job.id, job.mode, job.output, str(job.path or ""), fingerprint=job.fingerprint)
        if job.error:
            entry.status, entry.error = "failed", job.error
        return entry

    def record(self, result: JobResult) -> None:
        self.status, self.error, self.worker, self.summary = result.status, result.error, result.worker, result.summary
        self.started = _iso(result.started)
        self.seconds = round(result.seconds, 3)
        self.traceback, self.loaded_models = result.traceback, result.loaded_models


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else ""


def previous_entries(out_dir: Path) -> dict[str, dict]:
    """The last report's entries by output path; {} when there is none or it is unreadable."""
    try:
        data = json.loads((out_dir / "report.json").read_text())
        return {e["path"]: e for e in data["jobs"] if e.get("path")}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def finished_before(job: Job, previous: dict[str, dict]) -> dict | None:
    """The previous entry if this job's output exists and was made from the same inputs and options."""
    if job.error or job.path is None:
        return None
    entry = previous.get(str(job.path))
    if (
        entry
        and entry.get("status") in ("done", "skipped")
        and entry.get("fingerprint") == job.fingerprint
        and job.path.is_file()
    ):
        return entry
    return None


class Report:
    def __init__(self, out_dir: Path, jobs_file: Path, backend: str, entries: list[Entry]) -> None:
        self.out_dir, self.jobs_file, self.backend = out_dir, jobs_file, backend
        self.entries = {e.row: e for e in entries}
        self.started = _iso(time.time())
        self.finished = ""

    def counts(self) -> dict[str, int]:
        return {s: sum(e.status == s for e in self.entries.values()) for s in STATUSES}

    def write(self, final: bool = False) -> None:
        if final:
            self.finished = _iso(time.time())
        entries = [self.entries[r] for r in sorted(self.entries)]
        data = {
            "jobs_file": str(self.jobs_file),
            "out_dir": str(self.out_dir),
            "backend": self.backend,
            "started": self.started,
            "finished": self.finished,
            "counts": self.counts(),
            "jobs": [asdict(e) for e in entries],
        }
        _write_atomic(self.out_dir / "report.json", json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        buf = io.StringIO()
        writer = csv.DictWriter(buf, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(asdict(e) for e in entries)
        _write_atomic(self.out_dir / "report.csv", buf.getvalue())


def _write_atomic(path: Path, text: str) -> None:
    """Temp file + rename: a reader never sees half a report (the temp name is per process)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
