"""Running jobs on a Ray cluster: one actor per worker keeps its models loaded and runs one job at a time.

Inputs and outputs are plain paths, so every node must see them at the same path (a shared file system: NFS,
a mounted bucket, a Kubernetes volume). Object-store URLs (s3://, gs://) are not supported. Every node needs
the same talkinghead installed (its models ship inside the package).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from typing import Any

from talkinghead.batch.jobs import Job
from talkinghead.batch.local import Events
from talkinghead.batch.worker import JobResult, Worker, limit_threads
from talkinghead.errors import TalkingHeadError

LOCAL = "local"  # `--ray` alone: start a Ray instance on this machine for the batch


class BatchActor:
    """A Worker inside a Ray actor: the models stay loaded between the jobs it is given."""

    def __init__(self, threads: int) -> None:
        from talkinghead.face.native_logs import mute_native_logs

        mute_native_logs()
        limit_threads(threads)
        self.worker = Worker()

    def run(self, job: Job) -> JobResult:
        return self.worker.run(job)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise TalkingHeadError("--ray needs Ray: install it with pip install 'talkinghead[ray]'.") from None
    return ray


def _reachable(address: str) -> None:
    """A host:port (or ray://host:port) that does not answer fails in seconds; Ray itself retries for minutes.
    `auto` is first resolved the way Ray does (RAY_ADDRESS, then the last cluster started on this machine)."""
    target = address
    if address == "auto":
        try:
            from ray._private.services import get_ray_address_from_environment  # private: skip if it moves

            target = get_ray_address_from_environment("auto", None) or "auto"
        except Exception:
            return
    host, _, port = target.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as exc:
        where = f"'{address}'" if target == address else f"'{address}' ({target})"
        raise TalkingHeadError(f"Cannot reach the Ray cluster at {where}: {exc.strerror or exc}.") from None


def run_ray(jobs: Sequence[Job], workers: int | None, address: str, events: Events) -> None:
    """Jobs on the cluster at `address` (LOCAL: a new instance on this machine, stopped at the end).

    `workers` actors (default: one per CPU of the cluster), each reserving up to one CPU and using one thread."""
    ray = _ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING, "configure_logging": True}
    try:
        if address == LOCAL:
            ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False, **quiet)
        else:
            _reachable(address)
            ray.init(address=address, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        hint = (
            ""
            if os.environ.get("RAY_AUTH_MODE")
            else (
                "; a cluster with token authentication (Ray's default) also needs RAY_AUTH_MODE=token "
                "and its token here"
            )
        )
        raise TalkingHeadError(
            f"Cannot connect to the Ray cluster at '{address}' ({str(exc).rstrip('.')}{hint})."
        ) from None
    try:
        _run(ray, jobs, workers, events)
    finally:
        ray.shutdown()  # a cluster we only joined keeps running; a local one started above stops


def _run(ray: Any, jobs: Sequence[Job], workers: int | None, events: Events) -> None:
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    n = max(1, min(workers or int(cpus), len(jobs)))
    actor_cls = ray.remote(num_cpus=min(1.0, cpus / n), max_restarts=1, max_task_retries=0)(BatchActor)
    actors = [actor_cls.remote(1) for _ in range(n)]
    todo: list[Job] = list(jobs)
    running: dict[Any, tuple[Job, int]] = {}  # Ray object ref -> (job, actor index)
    idle = list(range(n))
    try:
        while todo or running:
            while idle and todo:
                i, job = idle.pop(0), todo.pop(0)
                events.started(job.row, f"ray actor {i}")
                running[actors[i].run.remote(job)] = (job, i)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
            for ref in ready:
                job, i = running.pop(ref)
                idle.append(i)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    result = JobResult(
                        job.row,
                        "failed",
                        f"The Ray worker died while running this job ({type(exc).__name__}).",
                        worker=f"ray actor {i}",
                    )
                except ray.exceptions.RayError as exc:
                    result = JobResult(
                        job.row, "failed", f"{type(exc).__name__}: {exc}".split("\n")[0], worker=f"ray actor {i}"
                    )
                events.finished(result)
    finally:
        for actor in actors:
            ray.kill(actor)
