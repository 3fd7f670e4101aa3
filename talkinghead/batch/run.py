"""The batch runner: jobs file -> jobs to run (finished ones skipped) -> a backend -> report, with progress."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeRemainingColumn

from talkinghead.batch.jobs import Job, load_jobs
from talkinghead.batch.report import Entry, Report, finished_before, previous_entries
from talkinghead.batch.worker import JobResult
from talkinghead.errors import OutputError, TalkingHeadError

INTERRUPTED = "Interrupted before it finished; run the same command again to resume."


@dataclass(frozen=True)
class BatchSummary:
    report: Report
    interrupted: bool

    @property
    def failed(self) -> int:
        return self.report.counts()["failed"]


class _Display:
    """One bar for the whole batch (finished jobs + the share done of running ones), one line per running job,
    and a printed line as each job ends. Also keeps the report up to date."""

    def __init__(self, report: Report, jobs: list[Job], console: Console | None) -> None:
        self.report, self.console = report, console
        self.labels = {job.row: job.label for job in jobs}
        self.total, self.done = len(jobs), 0
        self.fractions: dict[int, float] = {}
        self.bar: Progress | None = None
        self.overall: TaskID | None = None
        self.rows: dict[int, TaskID] = {}

    def __enter__(self) -> _Display:
        if self.console is not None and self.total:
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self.bar.__enter__()
            self.overall = self.bar.add_task(self._title(), total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)

    def _title(self) -> str:
        return f"[bold]Batch[/bold] {self.done}/{self.total} jobs"

    def _redraw(self) -> None:
        if self.bar is not None and self.overall is not None:
            self.bar.update(self.overall, completed=self.done + sum(self.fractions.values()), description=self._title())

    def started(self, row: int, worker: str) -> None:
        self.fractions[row] = 0.0
        if self.bar is not None:
            self.rows[row] = self.bar.add_task(f"  {escape(self.labels[row])}", total=1.0)

    def progress(self, row: int, fraction: float) -> None:
        if row in self.fractions:
            self.fractions[row] = min(1.0, fraction)
            if self.bar is not None and row in self.rows:
                self.bar.update(self.rows[row], completed=self.fractions[row])
            self._redraw()

    def finished(self, result: JobResult) -> None:
        entry = self.report.entries[result.row]
        entry.record(result)
        self.report.write()
        self.fractions.pop(result.row, None)
        self.done += 1
        if self.bar is not None:
            if result.row in self.rows:
                self.bar.remove_task(self.rows.pop(result.row))
            self._redraw()
        if self.console is not None:
            if result.status == "done":
                extra = f" ({result.summary})" if result.summary else ""
                self.console.print(
                    f"[green]done[/green]   {escape(entry.output)} in {result.seconds:.1f} s{escape(extra)}",
                    highlight=False,
                )
            else:
                self.console.print(
                    f"[red]failed[/red] {escape(entry.output or f'row {entry.row}')}: {escape(result.error)}",
                    highlight=False,
                )


def run_batch(
    jobs_file: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    workers: int | None = None,
    ray: str | None = None,
    console: Console | None = None,
) -> BatchSummary:
    """Run every job of `jobs_file` not already done into `out_dir`; returns the final report.

    `workers`: worker count (local default 1, run in this process; Ray default one per cluster CPU).
    `ray`: None = this machine, "local" = a new local Ray instance, else the address of a running cluster.
    `console`: where progress and per-job lines go (None = silent). Raises JobsFileError for a file that is not
    a jobs file; KeyboardInterrupt is caught: the report then marks unfinished jobs pending."""
    jobs_path, out = Path(jobs_file), Path(out_dir)
    jobs = load_jobs(jobs_path, out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the output folder '{out}' ({exc.strerror}).") from None
    previous = previous_entries(out.resolve())
    entries, todo = [], []
    for job in jobs:
        entry = Entry.of(job)
        before = finished_before(job, previous)
        if before is not None:  # same inputs and options, output still there: keep the run that made it
            entry.status = "skipped"
            entry.started, entry.seconds = before.get("started", ""), before.get("seconds")
            entry.worker, entry.summary = before.get("worker", ""), before.get("summary", "")
        elif job.error is None:
            todo.append(job)
        entries.append(entry)
    backend = (
        "inline" if ray is None and (workers or 1) == 1 else (f"processes:{workers}" if ray is None else f"ray:{ray}")
    )
    report = Report(out.resolve(), jobs_path.resolve(), backend, entries)
    report.write()
    if console is not None:
        _announce(console, jobs, entries)
    interrupted = False
    with _Display(report, todo, console) as display:
        try:
            if not todo:
                pass
            elif ray is not None:
                from talkinghead.batch.ray_backend import run_ray

                run_ray(todo, workers, ray, display)
            elif (workers or 1) == 1:
                from talkinghead.batch.local import run_inline

                run_inline(todo, display)
            else:
                from talkinghead.batch.local import run_pool

                run_pool(todo, workers or 1, display)
        except KeyboardInterrupt:
            interrupted = True
        except TalkingHeadError as exc:  # the backend could not start (no Ray, no cluster): nothing ran
            for entry in report.entries.values():
                if entry.status == "pending":
                    entry.error = str(exc)
            report.write(final=True)
            raise
    for entry in report.entries.values():
        if entry.status == "pending":
            entry.error = INTERRUPTED
    report.write(final=True)
    return BatchSummary(report, interrupted)


def _announce(console: Console, jobs: list[Job], entries: list[Entry]) -> None:
    skipped = sum(e.status == "skipped" for e in entries)
    if skipped:
        console.print(f"{skipped} of {len(jobs)} jobs already done with the same inputs and options: skipped.")
    for entry in entries:
        if entry.status == "failed":
            console.print(f"[red]failed[/red] {escape(entry.error)}", highlight=False)
