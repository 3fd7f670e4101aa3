"""Dubbing speed on real footage at 1080p, beside the plain transcode floor measured in the same run.

Inputs are made at run time in a scratch folder (nothing derived from the corpus is kept in the repo):
a real talking clip from the corpus is cropped round the face and scaled so that the face (landmark
box height) is --faces px tall in a 1920x1080 frame (the frame edges are mirrored where the crop
leaves the clip), played back and forth to the asked length and encoded with x264 (CRF 20, `fast`);
the new speech is a corpus speech file tiled to the same length.

For each face size and length, each in a fresh child process:
- floor: a plain transcode of the same source with PyAV, x264 at the dub's own preset/CRF and options
  (`video_writer.x264_options` of the checkout dubbed with), 4:2:0 (decode + encode only, no audio), x264 on
  frame threads as ffmpeg's command line runs it (PyAV's default, slice threads, is 13-17 % slower here: the floor
  before session 10);
- dub: `dub(source, speech, out)` with its defaults, as the command line calls it (no Dubber: the lips model
  loads inside the call; BENCH_DUBBER=1: `Dubber().dub(...)`, the model loaded before the call, as before
  session 6), with the per-stage timers switched on (TALKINGHEAD_PROFILE=1, talkinghead/media/timers.py).
Reported: wall time (dub end to end, and the `dub()` call alone without the imports; with BENCH_DUBBER=1 also
without the model load),
real-time factor (output seconds / wall seconds; >= 1 is faster than real time), ratio to the floor,
peak RSS, the load average, and the per-stage profile of the last dub of each case (thread wall and
CPU seconds; the two threads overlap, so the wall column can add up to more than the run); with --threads also
the dub's CPU seconds per native thread (decoders, mediapipe, x264 and the rest), polled from /proc.

With --bound also the same dub with nothing drawn (`dub_region` replaced by a no-op: every frame is decoded,
tracked, marked and encoded as it came), with and without the watermark: what a dub pays beyond the floor before
drawing a single mouth (tracking, mouth bank, watermark, segments, signing), the part no faster renderer can win.

Run: PYTHONPATH=. .venv/bin/python benchmarks/bench_real_dub.py [--faces 100 300 600] [--seconds 3 30]
     [--long] (adds 600 s) [--repeat 1] [--corpus ../shared/data] [--clip talking/...]
     [--scratch /tmp/th_bench_real_dub] [--keep] [--code CHECKOUT] [--threads] [--bound]
Skips (exit 0, with a message) when the corpus is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data"
CLIP = "talking/train/multivsr_hxn8clTtMTo-00001.mp4"  # 720x720, 6.4 s, one speaker, frontal
SPEECH = "speech/en_AniTalker_english_male.flac"
W, H = 1920, 1080

_FLOOR = r"""
import json, os, sys, time
def peak():  # VmHWM: ru_maxrss would carry the parent's peak over fork + exec
    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) / 1024
t0 = time.perf_counter()
import av
src, dst, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
t1 = time.perf_counter()
with av.open(src) as inp, av.open(dst, "w", format="mp4") as out:
    s = inp.streams.video[0]
    s.thread_type = "AUTO"
    o = out.add_stream("libx264", rate=s.average_rate)
    o.width, o.height, o.pix_fmt = s.width, s.height, "yuv420p"
    tb = 1 / s.average_rate
    o.time_base = o.codec_context.time_base = tb
    o.options = options
    o.codec_context.thread_type = "FRAME"  # x264's frame threads, as ffmpeg's command line (and a dub) encodes
    for i, f in enumerate(inp.decode(s)):
        f.pts, f.time_base = i, tb
        for p in o.encode(f):
            out.mux(p)
    for p in o.encode(None):
        out.mux(p)
t2 = time.perf_counter()
print(json.dumps({"total": t2 - t0, "call": t2 - t1, "peak_mb": peak(), "cpu": sum(os.times()[:2])}))
"""

_DUB = r"""
import json, os, sys, time
def peak():  # VmHWM: ru_maxrss would carry the parent's peak over fork + exec
    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) / 1024
t0 = time.perf_counter()
from talkinghead.media.heap import tune_allocator
tune_allocator()  # as the CLI does
from talkinghead.dubbing import Dubber, dub
threads = {}  # --threads: CPU seconds per native thread, polled from /proc (x264's threads carry no name of their own)
if os.environ.get("BENCH_THREADS"):
    import threading
    def poll():
        tick, names = os.sysconf("SC_CLK_TCK"), {}
        while True:
            names.update({str(t.native_id): t.name for t in threading.enumerate()})
            for tid in os.listdir("/proc/self/task"):
                try:
                    st = open(f"/proc/self/task/{tid}/stat").read()
                except OSError:
                    continue
                f = st[st.rindex(")") + 2 :].split()
                name = names.get(tid) or st[st.index("(") + 1 : st.rindex(")")]
                threads[tid] = (name, (int(f[11]) + int(f[12])) / tick)
            time.sleep(0.25)
    threading.Thread(target=poll, daemon=True, name="bench-poller").start()
try:
    from talkinghead.media import timers
except ImportError:  # --code: a version before the timers
    timers = None
if os.environ.get("BENCH_NO_RENDER"):  # --bound: the frames pass through unchanged (nothing drawn)
    import talkinghead.dubbing
    talkinghead.dubbing.dub_region = lambda *args: None
kw = {"watermark": False} if os.environ.get("BENCH_NO_MARK") else {}  # --bound: without the watermark
if os.environ.get("BENCH_DUBBER"):  # the Python API's way: a Dubber made first (model loaded), then dub()
    dubber = Dubber()
    t1, c1 = time.perf_counter(), sum(os.times()[:2])
    r = dubber.dub(sys.argv[1], sys.argv[2], sys.argv[3], **kw)
else:  # the command line's way: dub() without a Dubber, which loads the model (since session 6 beside tracking)
    t1, c1 = time.perf_counter(), sum(os.times()[:2])
    r = dub(sys.argv[1], sys.argv[2], sys.argv[3], **kw)
t2 = time.perf_counter()
c2 = sum(os.times()[:2])
print(json.dumps({"total": t2 - t0, "call": t2 - t1, "peak_mb": peak(), "cpu": c2, "cpu_call": c2 - c1,
                  "summary": r.summary(), "stages": [[*k, *v] for k, v in timers.totals().items()] if timers else [],
                  "threads": list(threads.values())}))
"""


def face_box(frame: np.ndarray) -> tuple[float, float, float]:
    """Centre x, centre y and height of the largest face's landmark box in an RGB frame."""
    from talkinghead.face.landmarks import detect_faces

    faces = detect_faces(frame)
    if not faces:
        raise SystemExit("no face found in the first frame of the clip")
    x0, y0, x1, y1 = faces[0].box
    return (x0 + x1) / 2, (y0 + y1) / 2, y1 - y0


def build_source(clip: Path, face_px: int, seconds: float, out: Path) -> None:
    """The clip cropped round the face and scaled so the face is `face_px` tall in a 1080p frame."""
    import av
    import cv2

    from talkinghead.media import VideoWriter, iter_frames, load_audio
    from talkinghead.types import Waveform

    frames = [f for _, f in iter_frames(clip)]
    fps = 25.0
    cx, cy, fh = face_box(frames[0])
    s = face_px / fh
    m = np.array([[s, 0, W / 2 - s * cx], [0, s, H / 2 - s * cy]], np.float32)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    with av.open(str(clip)) as c:
        has_audio = bool(c.streams.audio)
    sound = load_audio(clip).samples if has_audio else np.zeros(16000, np.float32)
    n = int(round(seconds * fps))
    order = np.concatenate([np.arange(len(frames)), np.arange(len(frames) - 2, 0, -1)])
    wave = Waveform(np.resize(sound, int(seconds * 16000)).astype(np.float32), 16000)
    tmp = out.with_name(out.stem + ".part.mp4")
    with VideoWriter(tmp, W, H, fps=fps, audio=wave, crf=20, preset="fast") as w:
        for k in range(n):
            f = frames[order[k % len(order)]]
            w.write(cv2.warpAffine(f, m, (W, H), flags=interp, borderMode=cv2.BORDER_REFLECT_101))
    tmp.replace(out)


def build_speech(speech: Path, seconds: float, out: Path) -> None:
    from talkinghead.media import load_audio

    sys.path.insert(0, str(ROOT / "tests"))
    from speech import write_wav

    s = load_audio(speech).samples
    write_wav(out, np.resize(s, int(seconds * 16000)).astype(np.float32), 16000)


def encoder_options(code: Path, preset: str, crf: int) -> dict[str, str]:
    """The x264 options the dub of checkout `code` uses (its writer's `x264_options`), for the floor to use too;
    a checkout before x264_options used the preset and CRF alone."""
    ask = (
        "import json, sys; from talkinghead.media.video_writer import x264_options as o; "
        "print(json.dumps(o(sys.argv[1], int(sys.argv[2]))))"
    )
    run = subprocess.run(
        [sys.executable, "-c", ask, preset, str(crf)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(code)},
        cwd="/",  # not the current folder, which `python -c` would import talkinghead from first
    )
    return json.loads(run.stdout) if run.returncode == 0 else {"crf": str(crf), "preset": preset}


def child(code: str, *args: str, env: dict[str, str] | None = None) -> tuple[dict, str]:
    """Run `code` in a fresh interpreter, from a neutral folder (so it imports the checkout PYTHONPATH names)."""
    run = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=Path(args[0]).parent,
    )
    if run.returncode:
        raise SystemExit(f"child failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1]), run.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--faces", type=int, nargs="+", default=[100, 300, 600])
    ap.add_argument("--seconds", type=float, nargs="+", default=[3.0, 30.0])
    ap.add_argument("--long", action="store_true", help="also 600 s (10 min) of output")
    ap.add_argument("--repeat", type=int, default=1, help="runs per case (floor and dub alternate); medians")
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--clip", default=CLIP, help="talking clip, relative to the corpus")
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/th_bench_real_dub"))
    ap.add_argument("--keep", action="store_true", help="keep the generated sources for the next run")
    ap.add_argument("--code", type=Path, default=ROOT, help="the talkinghead checkout to dub with (before/after)")
    ap.add_argument("--threads", action="store_true", help="also CPU seconds per thread of the dub (polled /proc)")
    ap.add_argument(
        "--bound",
        action="store_true",
        help="also the dub with nothing drawn (frames pass through), with and without the watermark: what a dub "
        "costs beyond the floor before any rendering",
    )
    args = ap.parse_args()
    clip, speech = args.corpus / args.clip, args.corpus / SPEECH
    if not clip.is_file() or not speech.is_file():
        print(f"SKIPPED: the corpus is absent ({clip} / {speech} not found)")
        return
    from talkinghead.config import DubOptions

    opts = DubOptions()
    seconds = list(args.seconds) + ([600.0] if args.long else [])
    args.scratch.mkdir(parents=True, exist_ok=True)
    env = {"PYTHONPATH": str(args.code) + os.pathsep + os.environ.get("PYTHONPATH", ""), "TALKINGHEAD_PROFILE": "1"}
    if args.threads:
        env["BENCH_THREADS"] = "1"
    x264 = encoder_options(args.code, opts.preset, opts.crf)
    print(f"clip {clip.name}; x264 {x264} (the dub's defaults) for floor and dub")
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        f"{'face':>5} {'out s':>6} | {'floor s':>8} {'dub s':>8} {'dub() s':>8} | {'x real time':>11} "
        f"{'dub/floor':>9} {'dub()/floor':>11} {'CPU ratio':>9} | {'RSS floor':>9} {'RSS dub':>8} | load"
    )
    profiles = []
    for sec in seconds:
        for face in args.faces:
            src = args.scratch / f"source_{face}px_{sec:g}s.mp4"
            wav = args.scratch / f"speech_{sec:g}s.wav"
            if not src.is_file():
                build_source(clip, face, sec, src)
            if not wav.is_file():
                build_speech(speech, sec, wav)
            floors, dubs = [], []
            bounds: dict[str, list[dict]] = {"nothing drawn": [], "nothing drawn, no watermark": []}
            for _ in range(args.repeat):
                floors.append(child(_FLOOR, str(src), str(args.scratch / "floor.mp4"), json.dumps(x264))[0])
                d, _ = child(_DUB, str(src), str(wav), str(args.scratch / "dub.mp4"), env=env)
                dubs.append(d)
                if args.bound:
                    for name, extra in zip(
                        bounds, ({"BENCH_NO_RENDER": "1"}, {"BENCH_NO_RENDER": "1", "BENCH_NO_MARK": "1"})
                    ):
                        b, _ = child(_DUB, str(src), str(wav), str(args.scratch / "bound.mp4"), env={**env, **extra})
                        bounds[name].append(b)
            fl = float(np.median([f["call"] for f in floors]))
            total = float(np.median([d["total"] for d in dubs]))
            call = float(np.median([d["call"] for d in dubs]))
            cpu = float(np.median([d["cpu"] / f["cpu"] for d, f in zip(dubs, floors)]))
            print(
                f"{face:5d} {sec:6g} | {fl:8.2f} {total:8.2f} {call:8.2f} | {sec / total:11.2f} "
                f"{total / fl:9.2f} {call / fl:11.2f} {cpu:9.2f} | {max(f['peak_mb'] for f in floors):8.0f}M "
                f"{max(d['peak_mb'] for d in dubs):7.0f}M | {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            for name, runs in bounds.items():
                if runs:
                    bt = float(np.median([b["total"] for b in runs]))
                    bc = float(np.median([b["cpu"] / f["cpu"] for b, f in zip(runs, floors)]))
                    print(f"      {name}: {bt:.2f} s, {bt / fl:.2f}x the floor, CPU ratio {bc:.2f}", flush=True)
            profiles.append((face, sec, dubs[-1]))
    for face, sec, d in profiles:
        print_profile(face, sec, d)
    if not args.keep:
        shutil.rmtree(args.scratch, ignore_errors=True)


def print_profile(face: int, sec: float, d: dict) -> None:
    """The per-stage table of one dub, per thread, slowest first."""
    print(
        f"\n--- per-stage profile: face {face} px, {sec:g} s ({d['summary']}; dub() {d['call']:.2f} s wall, "
        f"{d['cpu_call']:.2f} s CPU; process CPU {d['cpu']:.2f} s)"
    )
    print(f"{'thread':<18} {'stage':<24} {'wall s':>7} {'cpu s':>7} {'calls':>6}")
    for th, st, w, c, n in sorted(d["stages"], key=lambda r: (r[0], -r[2])):
        print(f"{th:<18} {st:<24} {w:7.2f} {c:7.2f} {n:6d}")
    if d.get("threads"):
        groups: dict[str, list[float]] = {}
        for name, cpu in d["threads"]:
            key = "decoders (av:h264 ...)" if name.startswith("av:") else name.split("/")[0]
            key = {"python": "unnamed native (x264, OpenCV, torch)"}.get(key, key)
            groups.setdefault(key, []).append(cpu)
        print(f"CPU per thread, polled every 0.25 s (threads that ended lose < 0.25 s each; process {d['cpu']:.2f} s):")
        for key, cpus in sorted(groups.items(), key=lambda kv: -sum(kv[1])):
            print(f"  {key:<40} {sum(cpus):7.2f} s in {len(cpus)} threads")


if __name__ == "__main__":
    main()
