"""Batch jobs: many generate/dub jobs from a CSV or JSON Lines file, with workers that keep their models loaded.

A front end over the public API, at the level of cli.py: `jobs` reads and validates the jobs file, `worker` runs
jobs with models loaded once, `local` runs workers in this process or in worker processes, `ray_backend` as Ray
actors, `report` writes OUT_DIR/report.json and report.csv, and `run` ties them together (`run_batch`).
"""

from talkinghead.batch.jobs import Job, JobsFileError, load_jobs
from talkinghead.batch.run import BatchSummary, run_batch

__all__ = ["BatchSummary", "Job", "JobsFileError", "load_jobs", "run_batch"]
