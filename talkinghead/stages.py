"""Cheap, switchable per-stage timers: where a job's time goes (benchmarks/bench_real_photo.py).

Off by default, and then `with STAGES["warp"]:` costs one attribute check, so the timers stay in the
render loop for good instead of being patched in for a measurement. `profiled()` switches them on for a
block and returns the totals. Each stage is timed from one thread at a time (the writer thread has its
own stages), which is all the photo path needs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

# photo mode's stages, in pipeline order; the fixed overhead of a job is "load" + "face analysis"
PHOTO_STAGES = ("load", "decode", "face analysis", "motion", "eyes", "warp", "interior", "colour", "encode")


class Stage:
    """One stage's running total; a context manager that times its block when the clock is on."""

    __slots__ = ("_c0", "_clock", "_t0", "calls", "cpu", "name", "seconds")

    def __init__(self, clock: StageClock, name: str) -> None:
        self._clock = clock
        self.name = name
        self.seconds = 0.0  # wall
        self.cpu = 0.0  # CPU of the calling thread (not of the threads a library starts, e.g. x264's)
        self.calls = 0
        self._t0 = self._c0 = 0.0

    def __enter__(self) -> Stage:
        if self._clock.enabled:
            self._t0, self._c0 = time.perf_counter(), time.thread_time()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._clock.enabled:
            self.seconds += time.perf_counter() - self._t0
            self.cpu += time.thread_time() - self._c0
            self.calls += 1


@dataclass
class StageClock:
    """Named stages made on first use; `enabled` switches every timer at once."""

    enabled: bool = False
    stages: dict[str, Stage] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Stage:
        stage = self.stages.get(name)
        if stage is None:
            stage = self.stages[name] = Stage(self, name)
        return stage

    def reset(self) -> None:
        for stage in self.stages.values():
            stage.seconds, stage.cpu, stage.calls = 0.0, 0.0, 0

    def totals(self) -> dict[str, float]:
        """Wall seconds per stage that ran, in first-use order."""
        return {name: s.seconds for name, s in self.stages.items() if s.calls}

    def cpu_totals(self) -> dict[str, float]:
        """CPU seconds per stage (its own thread's), in first-use order: steady on a busy machine."""
        return {name: s.cpu for name, s in self.stages.items() if s.calls}


STAGES = StageClock()


@contextmanager
def profiled() -> Iterator[StageClock]:
    """Time every stage inside the block (totals reset on entry); the clock is handed back to read."""
    STAGES.reset()
    STAGES.enabled = True
    try:
        yield STAGES
    finally:
        STAGES.enabled = False
