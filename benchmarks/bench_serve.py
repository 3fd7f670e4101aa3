"""`talkinghead serve` under load: concurrent clients drive a running server with many short jobs.

Starts the server as a user would (`talkinghead serve` in a subprocess, on a free loopback port), then C client
threads each submit photo + speech jobs (retrying after Retry-After on 429) and follow every job through its
server-sent events until it is done. Prints:

- throughput: jobs per minute, and the real-time factor under load (seconds of speech rendered per wall second,
  > 1 is faster than real time), plus each job's own render time against its speech;
- latency to the first progress event: from the 202 to the first event of the job running with progress > 0;
- peak memory: RSS of the server process alone and of the server with its worker processes, sampled every 0.2 s.

Run: nice -n 10 .venv/bin/python benchmarks/bench_serve.py [--jobs 100] [--clients 4] [--workers 1]
     [--size 256] [--seconds 1.5]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

import httpx
import numpy as np
import psutil

from talkinghead.media import load_audio
from talkinghead.pipeline import DEMO_AUDIO, DEMO_FACE


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


class MemorySampler(threading.Thread):
    """Peak RSS of the server process, and of the server with all its children (the workers)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak_server = self.peak_total = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            try:
                server = self.proc.memory_info().rss
                total = server + sum(c.memory_info().rss for c in self.proc.children(recursive=True))
            except psutil.Error:
                continue
            self.peak_server, self.peak_total = max(self.peak_server, server), max(self.peak_total, total)


def run_job(client: httpx.Client, face: bytes, audio: bytes, size: int, seed: int) -> dict[str, float]:
    """Submit one job (waiting out 429s), follow its events; return its timings."""
    retries = 0
    while True:
        t_submit = time.perf_counter()
        r = client.post(
            "/v1/jobs",
            data={"mode": "generate", "size": str(size), "seed": str(seed)},
            files={"face": ("face.jpg", face), "audio": ("speech.wav", audio)},
        )
        if r.status_code != 429:
            break
        retries += 1
        time.sleep(min(float(r.headers.get("retry-after", "1")), 2.0))
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    t_accepted = time.perf_counter()
    first_event = first_running = first_progress = None
    job: dict = {}
    with client.stream("GET", f"/v1/jobs/{job_id}/events", timeout=None) as events:
        for line in events.iter_lines():
            if not line.startswith("data:"):
                continue
            job = json.loads(line[5:])
            now = time.perf_counter()
            first_event = first_event or now
            if first_running is None and job["status"] == "running":
                first_running = now
            if first_progress is None and job["status"] == "running" and job["progress"] > 0:
                first_progress = time.perf_counter()
            if job["status"] in ("done", "failed", "cancelled"):
                break
    t_done = time.perf_counter()
    assert job.get("status") == "done", job
    from datetime import datetime

    ran = (datetime.fromisoformat(job["finished"]) - datetime.fromisoformat(job["started"])).total_seconds()
    first_progress = first_progress or t_done
    return {
        "submit": t_submit,
        "accepted": t_accepted,
        "first_event": (first_event or t_done) - t_accepted,
        "first_progress": first_progress - t_accepted,
        "start_to_progress": first_progress - (first_running or first_progress),
        "done": t_done,
        "ran": ran,
        "retries": retries,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--queue", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=1.5, help="speech per job")
    args = ap.parse_args()

    speech = load_audio(DEMO_AUDIO).samples[: int(args.seconds * 16000)]
    seconds = len(speech) / 16000
    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "speech.wav"
        _write_wav(wav, speech)
        audio, face = wav.read_bytes(), Path(DEMO_FACE).read_bytes()
        port = _free_port()
        cmd = [
            sys.executable,
            "-m",
            "talkinghead.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--queue",
            str(args.queue),
            "--data-dir",
            str(Path(d) / "data"),
            "--keep-hours",
            "1",
        ]
        server = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if k != "TALKINGHEAD_TOKEN"},
        )
        sampler = MemorySampler(server.pid)
        sampler.start()
        base = f"http://127.0.0.1:{port}"
        try:
            t0 = time.perf_counter()
            while True:
                try:
                    if httpx.get(base + "/v1/health").json()["workers_ready"] == args.workers:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            print(f"server ready in {time.perf_counter() - t0:.1f} s (models loaded in {args.workers} worker(s))")

            results: list[dict[str, float]] = []
            lock = threading.Lock()
            todo = iter(range(args.jobs))

            def client_loop() -> None:
                with httpx.Client(base_url=base, timeout=60) as c:
                    while True:
                        with lock:
                            k = next(todo, None)
                        if k is None:
                            return
                        res = run_job(c, face, audio, args.size, k)
                        with lock:
                            results.append(res)
                            if len(results) % 10 == 0:
                                print(f"  {len(results)}/{args.jobs} jobs done", flush=True)

            threads = [threading.Thread(target=client_loop) for _ in range(args.clients)]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - start
        finally:
            sampler.stop.set()
            server.terminate()
            server.wait(timeout=60)

    first = sorted(r["first_progress"] for r in results)
    started = sorted(r["start_to_progress"] for r in results)
    any_event = sorted(r["first_event"] for r in results)
    ran = [r["ran"] for r in results]
    print(
        f"\n{args.jobs} jobs ({args.size} px, {seconds:.2f} s of speech each), {args.clients} clients, "
        f"{args.workers} worker(s), queue {args.queue}, on {os.cpu_count()} CPU cores"
    )
    print(f"wall time                       {wall:.1f} s")
    print(f"throughput                      {args.jobs / wall * 60:.1f} jobs/min")
    print(f"real-time factor under load     {args.jobs * seconds / wall:.2f}x (speech seconds per wall second)")
    print(
        f"render time per job (median)    {statistics.median(ran):.2f} s = {seconds / statistics.median(ran):.2f}x "
        f"real time"
    )

    def spread(xs: list[float]) -> str:
        return (
            f"median {statistics.median(xs) * 1000:.0f} ms, p95 {xs[int(0.95 * (len(xs) - 1))] * 1000:.0f} ms, "
            f"max {xs[-1] * 1000:.0f} ms"
        )

    print(f"first event after 202           {spread(any_event)}")
    print(f"first progress > 0 after 202    {spread(first)} (includes waiting for a worker)")
    print(f"first progress > 0 after start  {spread(started)} (job running -> first frame reported)")
    print(f"429 answers (retried)           {sum(int(r['retries']) for r in results)}")
    print(f"peak RSS: server process        {sampler.peak_server / 2**20:.0f} MB")
    print(f"peak RSS: server + workers      {sampler.peak_total / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
