"""Cheap per-stage timers for every path, switched on with TALKINGHEAD_PROFILE=1 or `profiled()`.

A sampling profiler distorts a pipeline whose stages run in two threads and in native code (x264,
mediapipe, OpenCV); instead the stages themselves say where they start and stop. Times are exclusive
(a stage nested in another is not counted twice) and kept per thread, as wall and thread CPU seconds.
Switched off (the default), `stage` returns a shared no-op context manager, a few hundred nanoseconds
a call.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

ENABLED = os.environ.get("TALKINGHEAD_PROFILE", "") not in ("", "0")

_lock = threading.Lock()
_totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])  # (thread, stage) -> wall, cpu, n
_local = threading.local()


class _Stage:
    __slots__ = ("cpu", "name", "wall")

    def __init__(self, name: str) -> None:
        self.name = name
        self.wall = self.cpu = 0.0

    def __enter__(self) -> None:
        stack: list[_Stage] = _local.__dict__.setdefault("stack", [])
        w, c = time.perf_counter(), time.thread_time()
        if stack:  # pause the enclosing stage
            _add(stack[-1].name, w - stack[-1].wall, c - stack[-1].cpu, 0)
        self.wall, self.cpu = w, c
        stack.append(self)

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        stack: list[_Stage] = _local.stack
        w, c = time.perf_counter(), time.thread_time()
        _add(self.name, w - self.wall, c - self.cpu, 1)
        stack.pop()
        if stack:  # resume the enclosing stage
            stack[-1].wall, stack[-1].cpu = w, c


class _Off:
    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_OFF = _Off()


def _add(name: str, wall: float, cpu: float, calls: int) -> None:
    key = (threading.current_thread().name, name)
    with _lock:
        t = _totals[key]
        t[0] += wall
        t[1] += cpu
        t[2] += calls


def stage(name: str) -> _Stage | _Off:
    """`with stage("warp"): ...` times the block when profiling is on."""
    return _Stage(name) if ENABLED else _OFF


def reset() -> None:
    with _lock:
        _totals.clear()


def totals() -> dict[tuple[str, str], tuple[float, float, int]]:
    """(thread, stage) -> (wall s, thread CPU s, calls) so far."""
    with _lock:
        return {k: (v[0], v[1], int(v[2])) for k, v in _totals.items()}


def report() -> str:
    """A table of the stages, per thread, slowest first."""
    rows = sorted(totals().items(), key=lambda kv: (kv[0][0], -kv[1][0]))
    lines = [f"{'thread':<20} {'stage':<26} {'wall s':>8} {'cpu s':>8} {'calls':>7}"]
    lines += [f"{th:<20} {st:<26} {w:8.2f} {c:8.2f} {n:7d}" for (th, st), (w, c, n) in rows]
    return "\n".join(lines)


@contextmanager
def profiled() -> Iterator[None]:
    """Switch the timers on for a block (totals reset on entry), whatever TALKINGHEAD_PROFILE says."""
    global ENABLED
    was = ENABLED
    reset()
    ENABLED = True
    try:
        yield
    finally:
        ENABLED = was


def stage_totals() -> tuple[dict[str, float], dict[str, float]]:
    """Wall and thread-CPU seconds per stage, summed over threads, in first-use order."""
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for (_thread, name), (w, c, n) in totals().items():
        if n:
            wall[name] = wall.get(name, 0.0) + w
            cpu[name] = cpu.get(name, 0.0) + c
    return wall, cpu
