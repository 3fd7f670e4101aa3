"""Many short jobs: one `talkinghead generate` call per job vs `talkinghead batch` (in-process, 2 worker processes,
a local Ray instance with 2 actors).

Each job animates the demo face at --size with --seconds of the demo speech (slices starting at different
points, a different seed per job). For each mode the whole run is timed from the first process start to the
last exit, and the memory of the whole process tree (the command and every process it started, Ray's own
processes included) is sampled every 0.2 s from /proc: the peak of the summed RSS (shared pages counted once per
process) and of the summed PSS (shared pages divided among the processes that share them). CPU time is the
larger of two counts: what wait4() reports for each command (itself plus the children it reaped) and the sum
over every sampled process of its last seen user+system time. Linux only.
Run: .venv/bin/python benchmarks/bench_batch.py [--jobs 20] [--seconds 3] [--size 256] [--modes cli,inline,workers2,ray]
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _tree(root: int) -> list[int]:
    kids, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def _cpu(pid: int) -> float:
    """User + system seconds of `pid` so far (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def _memory(pids: list[int]) -> tuple[int, int]:
    """(sum of RSS, sum of PSS) in bytes over `pids`."""
    rss = pss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as f:
                rss += int(f.read().split()[1]) * PAGE
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError, IndexError):
            continue
    return rss, pss


class TreeSampler:
    """Peak summed RSS/PSS of every process tree started through `run` while it is active."""

    def __init__(self) -> None:
        self.roots: list[int] = []
        self.peak_rss = self.peak_pss = 0
        self.procs = 0
        self.cpu_seen: dict[int, float] = {}  # pid -> last seen CPU seconds
        self.cpu_waited = 0.0  # CPU seconds wait4() reported for the commands
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            pids = [p for root in list(self.roots) for p in _tree(root)]
            rss, pss = _memory(pids)
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.procs = max(self.procs, len(pids))
            for pid in pids:
                self.cpu_seen[pid] = max(self.cpu_seen.get(pid, 0.0), _cpu(pid))

    @property
    def cpu(self) -> float:
        return max(self.cpu_waited, sum(self.cpu_seen.values()))

    def run(self, argv: list[str], cwd: Path) -> int:
        with tempfile.TemporaryFile() as err:
            p = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
            self.roots = [p.pid]
            _, status, usage = os.wait4(p.pid, 0)  # its CPU time, with that of the children it reaped
            p.returncode = code = os.waitstatus_to_exitcode(status)
            self.cpu_waited += usage.ru_utime + usage.ru_stime
            if code != 0:
                err.seek(0)
                print(
                    f"  {' '.join(argv[1:4])}...: exit {code}: {err.read().decode(errors='replace')[-500:]}",
                    file=sys.stderr,
                )
        return code


def make_inputs(folder: Path, jobs: int, seconds: float, size: int) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from speech import write_wav

    from talkinghead.media import load_audio
    from talkinghead.pipeline import DEMO_AUDIO, DEMO_FACE

    shutil.copy(DEMO_FACE, folder / "face.jpg")
    speech = load_audio(DEMO_AUDIO, sample_rate=16000).samples
    n = int(seconds * 16000)
    starts = [int(s) for s in range(0, max(1, len(speech) - n), max(1, (len(speech) - n) // 4))][:4]
    for k, s in enumerate(starts):
        write_wav(folder / f"speech{k}.wav", speech[s : s + n], 16000)
    rows = [
        {
            "mode": "generate",
            "face": "face.jpg",
            "audio": f"speech{i % len(starts)}.wav",
            "output": f"job{i:02d}.mp4",
            "seed": str(i),
            "size": str(size),
        }
        for i in range(jobs)
    ]
    with open(folder / "jobs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder / "jobs.csv"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--modes", default="cli,inline,workers2,ray")
    args = ap.parse_args()
    exe = shutil.which("talkinghead", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "talkinghead.cli"]
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        folder = Path(tmp)
        jobs_file = make_inputs(folder, args.jobs, args.seconds, args.size)
        with open(jobs_file, newline="") as f:
            rows = list(csv.DictReader(f))
        modes = {
            "cli": "one `talkinghead generate` per job",
            "inline": "`batch` (1 worker, in-process)",
            "workers2": "`batch --workers 2`",
            "ray": "`batch --ray --workers 2` (local Ray)",
        }
        print(
            f"{args.jobs} jobs: demo face at {args.size} px, {args.seconds:g} s of speech each; "
            f"{os.cpu_count()} CPUs; load average before: {os.getloadavg()[0]:.1f}"
        )
        for mode in args.modes.split(","):
            if mode == "ray" and importlib.util.find_spec("ray") is None:
                print(f"{modes[mode]:42s} skipped: ray is not installed (pip install -e '.[ray]')")
                continue
            out = folder / f"out_{mode}"
            out.mkdir()
            failures = 0
            with TreeSampler() as sampler:
                t0 = time.perf_counter()
                if mode == "cli":
                    for r in rows:
                        failures += (
                            sampler.run(
                                [
                                    *cmd,
                                    "generate",
                                    "--face",
                                    r["face"],
                                    "--audio",
                                    r["audio"],
                                    "-o",
                                    str(out / r["output"]),
                                    "--size",
                                    r["size"],
                                    "--seed",
                                    r["seed"],
                                    "-q",
                                ],
                                folder,
                            )
                            != 0
                        )
                else:
                    extra = {"inline": [], "workers2": ["--workers", "2"], "ray": ["--ray", "--workers", "2"]}[mode]
                    failures += sampler.run([*cmd, "batch", str(jobs_file), "-o", str(out), "-q", *extra], folder) != 0
                wall = time.perf_counter() - t0
                load = os.getloadavg()[0]
            made = len(list(out.glob("job*.mp4")))
            print(
                f"{modes[mode]:42s} wall {wall:6.1f} s  ({wall / args.jobs:4.2f} s/job)   CPU {sampler.cpu:6.1f} s   "
                f"peak RSS sum "
                f"{sampler.peak_rss / 2**20:6.0f} MB   peak PSS sum {sampler.peak_pss / 2**20:6.0f} MB   "
                f"processes {sampler.procs:3d}   outputs {made}/{args.jobs}   load after {load:.1f}"
                + ("   FAILED" if failures else "")
            )


if __name__ == "__main__":
    main()
