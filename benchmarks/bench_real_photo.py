"""Photo-mode speed as a user meets it: 512x512, faces ~100 and ~300 px wide, 3 s and 30 s of speech
(10 min with --long), each beside the encode floor measured in the same run.

The floor is our own VideoWriter (photo mode's x264 setting, `config.PHOTO_X264`, the default CRF, the same AAC
audio, x264 on frame threads: its fastest way) encoding the still photo for the same number of frames: what any
photo-to-video tool must pay at least.
Each case runs in a fresh process set up as the command line sets it up (allocator, OpenCV threads: media/heap.py;
peak RSS is per process), floor and ours alternating, `--runs` times; medians are printed.
Per case: wall and CPU time of `generate` (torch already imported; weights load, decode, face analysis,
motion, render, encode), the command line's way: the motion predicted in a forked child process and sent in
pieces while the frames are rendered (talkinghead/motion_process.py; `--thread`: the models on a second
thread instead, the way before session 6), real-time factor, ratios to the floor, peak RSS, the job's fixed overhead
(weights load + face analysis, which run side by side), the wall time before the first frame (audio
decode, face analysis, waiting for the models and the motion they predict) and the per-stage profile
(talkinghead/media/timers.py; the models load and the encoder runs on their own threads, so stages overlap).
CPU seconds count every thread of the process: on a shared machine they are the stable figure, wall
time is not.
Then, as fresh processes: `talkinghead generate` on a 3 s clip from process start to file written, and
the answer time of an input error (a mistyped photo path).

The ~100 px face is the built-in astronaut; the ~300 px one is made at run time in a temp folder from a
corpus portrait (`--corpus`, default ../shared/data; skipped when absent) and never kept.
`--encoder-cost [SETTING ...]` instead measures x264 alone: the CPU it takes to encode our 30 s of frames
(300 px face, rendered beforehand) and the still, per setting (PRESET[+x264 options], as our writer sets it up;
`x264:veryfast` is x264's own preset without our extra options, media/video_writer.py `x264_options`), with the
file sizes and the luma PSNR / SSIM of our frames after encoding: quality per CPU second, to choose PHOTO_X264.
`--bound` instead measures the job's two sides alone beside the floor (300 px, 30 s): its encoding side (our frames,
rendered beforehand, encoded as the job does, with and without the watermark) and its renderer, and prints the
lowest wall time two cores could run them in.
Run: .venv/bin/python benchmarks/bench_real_photo.py [--runs 3] [--long] [--encoder-cost] [--bound]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PORTRAIT = "portraits/EDTalk_leijun.jpg"  # a real photo, face ~250 px in 512: rescaled to 300 px


def _write_speech(path: Path, seconds: float) -> None:
    """The built-in demo speech looped to `seconds`, as a 16 kHz WAV."""
    from talkinghead.media import load_audio
    from talkinghead.pipeline import DEMO_AUDIO

    speech = load_audio(DEMO_AUDIO).samples
    n = int(seconds * 16000)
    long = np.tile(speech, int(np.ceil(n / len(speech))))[:n]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(long, -1, 1) * 32767).astype("<i2").tobytes())


def _face_width(image: np.ndarray) -> float:
    from talkinghead.face.indices import FACE_OVAL
    from talkinghead.face.landmarks import detect_faces

    oval = detect_faces(image)[0].points[FACE_OVAL, 0]
    return float(oval.max() - oval.min())


def _make_face(src: Path, width: float, out: Path, side: int = 512) -> float:
    """A side x side crop of `src` scaled so the face is `width` px wide, centred on it; returns the width."""
    import cv2

    from talkinghead.face.indices import FACE_OVAL
    from talkinghead.face.landmarks import detect_faces
    from talkinghead.media import load_image

    img = load_image(src)
    oval = detect_faces(img)[0].points[FACE_OVAL, :2]
    s = width / float(oval[:, 0].max() - oval[:, 0].min())
    big = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    big = cv2.copyMakeBorder(big, side, side, side, side, cv2.BORDER_REFLECT)
    cx, cy = oval.mean(0) * s + side
    x0, y0 = int(cx - side / 2), int(cy - side / 2)
    crop = np.ascontiguousarray(big[y0 : y0 + side, x0 : x0 + side])
    cv2.imwrite(str(out), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    return _face_width(crop)


def _one_thread_animator():  # type: ignore[no-untyped-def]
    import torch

    from talkinghead.pipeline import Animator

    torch.set_num_threads(1)
    return Animator()


def worker(kind: str, face: str, speech: str, out: str) -> None:
    """One measurement in this fresh process; prints one JSON line."""
    import resource

    from talkinghead.media.heap import one_opencv_thread, tune_allocator

    tune_allocator()  # the process as the command line sets it up (cli.py), for ours and the floor
    one_opencv_thread()
    from talkinghead.config import PHOTO_X264
    from talkinghead.media import VideoWriter, fit_size, load_image, timers
    from talkinghead.media.inputs import load_speech
    from talkinghead.motion.learned import LearnedMotion  # noqa: F401  torch imported before the clock starts
    from talkinghead.pipeline import generate

    result: dict[str, object] = {}
    c0 = time.process_time()  # CPU seconds of all threads: the figure a busy shared machine does not distort
    if kind == "floor":
        t0 = time.perf_counter()
        wave_, _ = load_speech(speech)
        still = fit_size(load_image(face), 512)
        h, w = still.shape[:2]
        n = max(1, int(round(wave_.duration * 25)))
        # photo mode's x264 setting, on frame threads: the fastest way to encode the still (slice threads, PyAV's
        # default and photo mode's, take ~25 % longer on it: the floor before session 10)
        with VideoWriter(out, w, h, fps=25, audio=wave_, x264_params=PHOTO_X264, threads="frames") as writer:
            for _ in range(n):
                writer.write(still)
        result["seconds"] = time.perf_counter() - t0
        result["cpu"] = time.process_time() - c0
    elif kind in ("encode", "encode-unmarked", "render"):
        _bound_part(kind, face, speech, out, result)
    else:
        from talkinghead.config import GenerateOptions

        opts = GenerateOptions(size=512, seed=0)
        with timers.profiled():
            t0 = time.perf_counter()
            child = None
            if kind == "ours":  # as the command line does (cli.py): the motion from a forked child process
                from talkinghead.motion_process import MotionProcess

                child = MotionProcess.start(speech, opts)
            # else (ours-thread, or no fork): the models load beside the photo on a thread, on one torch thread
            generate(face, speech, out, opts, animator=child or _one_thread_animator)
            result["seconds"] = time.perf_counter() - t0
            # CPU of all threads, and of the child once reaped
            result["cpu"] = time.process_time() - c0 + sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])
        result["stages"], result["stage_cpu"] = timers.stage_totals()
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def _bound_part(kind: str, face: str, speech: str, out: str, result: dict[str, object]) -> None:
    """One part of the job alone, for `--bound`: `render`, the frames rendered and dropped (the renderer's thread,
    nothing beside it); `encode`, the frames rendered beforehand (untimed) then converted, marked, encoded and
    signed exactly as `generate` does (its writer, `BackgroundEncoder`, the same still planes); `encode-unmarked`,
    the same without the watermark. Load, face analysis and motion are left out (untimed)."""
    from dataclasses import asdict

    from talkinghead.config import PHOTO_X264, GenerateOptions
    from talkinghead.media import VideoWriter
    from talkinghead.media.inputs import load_speech
    from talkinghead.media.still_frames import BackgroundEncoder, StillPlanes
    from talkinghead.provenance.stamp import Stamp, mouth_spare

    anim = _one_thread_animator()
    opts = GenerateOptions(size=512, seed=0)
    wave_, samples = load_speech(speech)
    src = anim.set_source(face, size=512)
    regions = anim.render_regions(anim.motion(samples, max(1, int(round(wave_.duration * opts.fps))), opts), opts)
    if kind != "render":
        regions = iter(list(regions))  # rendered beforehand: only what follows is timed
    c0, t0 = time.process_time(), time.perf_counter()
    if kind == "render":
        for _ in regions:
            pass
    else:
        h, w = src.image.shape[:2]
        stamp = Stamp.new("photo", kind == "encode", [face, speech], asdict(opts), (w, h))
        marks = stamp.writer_args(w, h, mouth_spare(src.points))
        args = {"x264_params": PHOTO_X264, "threads": "one", **marks}  # as generate() opens it
        still = StillPlanes(src.image, anim.changed_box())
        with (
            VideoWriter(out, w, h, fps=opts.fps, audio=wave_, crf=opts.crf, **args) as writer,
            BackgroundEncoder(writer, convert=still.frame) as encoder,
        ):
            for region in regions:
                encoder.put(region)
    result["seconds"] = time.perf_counter() - t0
    result["cpu"] = time.process_time() - c0


def _luma_psnr_ssim(planes: list[np.ndarray], path: Path, every: int = 10) -> tuple[float, float]:
    """Mean luma PSNR and SSIM of every `every`-th decoded frame of `path` against the yuv420p `planes` it encoded."""
    import av

    from talkinghead.metrics.image import ssim

    with av.open(str(path)) as c:
        decoded = [f.to_ndarray() for i, f in enumerate(c.decode(video=0)) if i % every == 0]
    psnr, sims = [], []
    for ref, got in zip(planes[::every], decoded):
        h = ref.shape[0] * 2 // 3
        a, b = ref[:h].astype(np.float64), got[:h].astype(np.float64)
        psnr.append(10 * np.log10(255.0**2 / max(float(np.mean((a - b) ** 2)), 1e-10)))
        sims.append(ssim(np.repeat(ref[:h, :, None], 3, 2), np.repeat(got[:h, :, None], 3, 2)))
    return float(np.mean(psnr)), float(np.mean(sims))


def encoder_cost(face: str, seconds: float, settings: list[str]) -> None:
    """x264 alone: CPU to encode our rendered frames (planes made beforehand) vs the still, per setting, with the
    size and the luma PSNR / SSIM of our encoded frames against the planes encoded (quality per CPU second).
    A setting is PRESET[+key=value:...]: our writer's preset (media/video_writer.py `x264_options`; `x264:PRESET`
    is x264's own, without our extra options) with x264 options added after it."""
    import av
    import torch

    from talkinghead.config import PHOTO_X264, GenerateOptions
    from talkinghead.media import VideoWriter, video_writer
    from talkinghead.media.inputs import load_speech
    from talkinghead.media.still_frames import StillPlanes
    from talkinghead.pipeline import Animator

    torch.set_num_threads(1)
    _, speech = load_speech(face.replace("face300.png", f"speech{seconds:.0f}.wav"))
    anim = Animator()
    src = anim.set_source(face, size=512)
    opts = GenerateOptions(seed=0)
    n = int(seconds * 25)
    still = StillPlanes(src.image, anim.changed_box())
    x0, y0, x1, y1 = still.box
    planes = {  # made beforehand: only the encoder is timed
        "ours": [still.frame(r).to_ndarray() for r in anim.render_regions(anim.motion(speech, n, opts), opts)],
        "still": [still.frame(src.image[y0:y1, x0:x1]).to_ndarray()] * n,
    }
    h, w = src.image.shape[:2]
    print(f"photo mode's setting: veryfast+{PHOTO_X264} (config.PHOTO_X264); CRF {GenerateOptions.crf}")
    print("| setting | still: CPU (s) | still: MB | ours: CPU (s) | ours: MB | ours / still (CPU) | PSNR (dB) | SSIM |")
    print("|---|---|---|---|---|---|---|---|")
    for setting in settings:
        preset, _, params = setting.partition("+")
        name = preset.removeprefix("x264:")  # x264:NAME is x264's own preset, without our extra options
        saved = dict(video_writer._X264_PARAMS)
        if name != preset:
            video_writer._X264_PARAMS.pop(name, None)
        cost = {}
        for kind in ("still", "ours"):
            out = Path(face).parent / f"enc_{kind}.mp4"
            frames = [av.VideoFrame.from_ndarray(p, format="yuv420p") for p in planes[kind]]  # fresh, untimed
            c0 = time.process_time()
            with VideoWriter(out, w, h, fps=25, crf=GenerateOptions.crf, preset=name, x264_params=params) as writer:
                for vf in frames:
                    writer.write_yuv(vf)
            cost[kind] = (time.process_time() - c0, out.stat().st_size / 1e6)
        video_writer._X264_PARAMS.update(saved)
        psnr, sim = _luma_psnr_ssim(planes["ours"], Path(face).parent / "enc_ours.mp4")
        (sc, sm), (oc, om) = cost["still"], cost["ours"]
        print(f"| {setting} | {sc:.2f} | {sm:.2f} | {oc:.2f} | {om:.2f} | {oc / sc:.2f}x | {psnr:.2f} | {sim:.4f} |")


def bound(face: Path, speech: Path, tmp: Path, runs: int) -> None:
    """What the job must pay at least, beside the floor: the job's encoding side alone (our frames, rendered
    beforehand, converted, marked, encoded and signed as `generate` does) and its renderer alone, each in a fresh
    process, alternating with the floor and the job itself. Two cores run the two sides at best side by side, so
    the job cannot take less wall time than the larger of the two, nor less than half their CPU together (a
    bound that leaves out load, face analysis and motion, and what the two sides cost each other side by side)."""
    kinds = ("floor", "encode", "encode-unmarked", "render", "ours")
    got: dict[str, list[dict]] = {k: [] for k in kinds}
    for _ in range(runs):
        for kind in kinds:
            got[kind].append(_run_worker(kind, face, speech, tmp / f"{kind}.mp4"))
    wall = {k: statistics.median(r["seconds"] for r in v) for k, v in got.items()}
    cpu = {k: statistics.median(r["cpu"] for r in v) for k, v in got.items()}
    floor = wall["floor"]
    names = {
        "floor": "floor: the still encoded alone",
        "encode": "our frames encoded as the job does (convert, mark, x264, sign)",
        "encode-unmarked": "the same without the watermark",
        "render": "the renderer alone (eyes, warp, interior)",
        "ours": "the job (generate, as in the main table)",
    }
    print(f"300 px face, 30 s, medians of {runs} runs, alternating")
    print("| part | wall (s) | / floor | CPU (s) |\n|---|---|---|---|")
    for k in kinds:
        print(f"| {names[k]} | {wall[k]:.2f} | {wall[k] / floor:.2f}x | {cpu[k]:.2f} |")
    for label, enc in (("marked", "encode"), ("unmarked", "encode-unmarked")):
        low = max(wall[enc], wall["render"], (cpu[enc] + cpu["render"]) / 2)
        print(
            f"lower bound on the job, {label}: max({wall[enc]:.2f}, {wall['render']:.2f}, "
            f"({cpu[enc]:.2f} + {cpu['render']:.2f}) / 2) = {low:.2f} s = {low / floor:.2f}x the floor "
            f"(target 2.5x = {2.5 * floor:.2f} s)"
        )


def _run_worker(kind: str, face: Path, speech: Path, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the command line sets it (cli.py), for ours and the floor
    cmd = [sys.executable, __file__, "--worker", kind, str(face), str(speech), str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _wall(
    argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall and CPU seconds (user + system of the child and every process it waited for) of a fresh process,
    and the finished process (its exit status is the caller's to check)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--long", action="store_true", help="also 10 min of speech (one run each)")
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--lengths", type=float, nargs="+", default=[3.0, 30.0], help="seconds of speech")
    ap.add_argument("--big-only", action="store_true", help="only the ~300 px face")
    ap.add_argument("--no-cli", action="store_true", help="skip the command-line start-up figures")
    ap.add_argument("--thread", action="store_true", help="ours: the models on a thread, not in a child process")
    ap.add_argument(
        "--encoder-cost", nargs="*", metavar="PRESET", help="only: x264's CPU on our frames vs the still (300 px, 30 s)"
    )
    ap.add_argument(
        "--bound",
        action="store_true",
        help="only: the job's parts alone beside the floor (300 px, 30 s), and the wall time they bound the job to",
    )
    ap.add_argument("--worker", nargs=4, metavar=("KIND", "FACE", "SPEECH", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    from talkinghead.media import fit_size, load_image
    from talkinghead.pipeline import DEMO_FACE

    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores; > 2 means shared)")
    with tempfile.TemporaryDirectory(prefix="bench_real_photo_") as tmp_dir:
        tmp = Path(tmp_dir)
        faces: dict[str, Path] = {}
        if not args.big_only:
            faces[f"~{_face_width(fit_size(load_image(DEMO_FACE), 512)):.0f} px (astronaut)"] = DEMO_FACE
        portrait = args.corpus / PORTRAIT
        if portrait.exists():
            big = tmp / "face300.png"
            faces[f"~{_make_face(portrait, 300, big):.0f} px (corpus portrait)"] = big
        else:
            print(f"skipping the 300 px face: {portrait} not found (the corpus is not here)")
        if args.encoder_cost is not None:
            big = tmp / "face300.png"
            _make_face(args.corpus / PORTRAIT, 300, big)
            _write_speech(tmp / "speech30.wav", 30.0)
            default = ["x264:veryfast", "veryfast", "veryfast+subme=1", "veryfast+subme=1:bframes=0", "superfast"]
            encoder_cost(str(big), 30.0, args.encoder_cost or default)
            return
        if args.bound:
            if not portrait.exists():
                return  # the corpus is absent: said above
            big = tmp / "face300.png"
            _make_face(args.corpus / PORTRAIT, 300, big)
            _write_speech(tmp / "speech30.wav", 30.0)
            bound(big, tmp / "speech30.wav", tmp, args.runs)
            return
        lengths = list(args.lengths) + ([600.0] if args.long else [])
        for seconds in lengths:
            _write_speech(tmp / f"speech{seconds:.0f}.wav", seconds)
        _write_speech(tmp / "speech3.wav", 3.0)  # the command line's clip
        print(
            "| face | speech | ours (s) | real time | floor (s) | ours / floor | ours CPU (s) | floor CPU (s) "
            "| CPU ratio | load + face analysis (s) | first frame after (s) | peak RSS (MB) |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|"
        )
        profiles = {}
        for name, face in faces.items():
            for seconds in lengths:
                speech = tmp / f"speech{seconds:.0f}.wav"
                runs = 1 if seconds > 60 else args.runs
                ours, floor = [], []
                for _ in range(runs):  # alternate, so both see the same machine load
                    floor.append(_run_worker("floor", face, speech, tmp / "floor.mp4"))
                    ours.append(_run_worker("ours-thread" if args.thread else "ours", face, speech, tmp / "ours.mp4"))
                t = statistics.median(r["seconds"] for r in ours)
                f = statistics.median(r["seconds"] for r in floor)
                mid = sorted(ours, key=lambda r: r["seconds"])[len(ours) // 2]
                st = mid["stages"]
                fixed = st.get("load", 0.0) + st.get("face analysis", 0.0)  # the job's fixed overhead (overlapped)
                # wall time before the first frame: audio, the photo's face, waiting for the models and the motion
                first = st.get("decode", 0.0) + st.get("face analysis", 0.0) + st.get("waiting for the models", 0.0)
                rss = max(r["rss_mb"] for r in ours)
                tc = statistics.median(r["cpu"] for r in ours)
                fc = statistics.median(r["cpu"] for r in floor)
                print(
                    f"| {name} | {seconds:.0f} s | {t:.2f} | {seconds / t:.2f}x | {f:.2f} | {t / f:.2f}x | "
                    f"{tc:.2f} | {fc:.2f} | {tc / fc:.2f}x | {fixed:.2f} | {first:.2f} | {rss:.0f} |"
                )
                profiles[f"{name}, {seconds:.0f} s"] = mid
        print(
            "\nper-stage seconds, wall / CPU of the stage's thread (the median run; the models load and the encoder\n"
            "runs on threads of their own; x264's own threads are the process CPU not counted in any stage):"
        )
        for key, run in profiles.items():
            cpu = run["stage_cpu"]
            print(f"  {key}: " + ", ".join(f"{k} {v:.2f}/{cpu[k]:.2f}" for k, v in run["stages"].items()))
            rest = run["cpu"] - sum(cpu.values())
            print(f"    process CPU {run['cpu']:.2f} s; on library threads (x264, mediapipe, torch) {rest:.2f} s")

        if args.no_cli or not faces:
            print(f"load average at end: {os.getloadavg()[0]:.2f}")
            return
        exe = shutil.which("talkinghead", path=str(Path(sys.executable).parent)) or "talkinghead"
        face = faces[list(faces)[-1]]
        # the command line as a user runs it: its figures include what the workers above leave out (imports; the
        # motion child imports torch itself, ~0.7 s of CPU, where the worker's child inherits it)
        clips = [3.0] + [s for s in lengths if s == 30.0]
        e2e = {
            seconds: [
                _wall([exe, "generate", "--face", str(face), "--audio", str(tmp / f"speech{seconds:.0f}.wav"), "-o",
                       "cli.mp4", "--size", "512", "-q"], tmp)
                for _ in range(args.runs)
            ]
            for seconds in clips
        }  # fmt: skip
        assert (tmp / "cli.mp4").exists(), "the command line wrote no video"
        bad = [exe, "generate", "--face", "no_such.jpg", "--audio", "x.wav", "-o", "x.mp4"]
        err = [_wall(bad, tmp) for _ in range(max(args.runs, 3))]
        big = list(faces)[-1]
        rows = [(f"`talkinghead generate` {s:.0f} s clip, {big}, start to file written", e2e[s]) for s in clips]
        for label, runs in [*rows, ("input error (missing photo) answered", err)]:
            walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
            print(
                f"{label}: median {statistics.median(walls):.2f} s wall (min {min(walls):.2f}, max {max(walls):.2f}), "
                f"{statistics.median(cpus):.2f} s CPU, {len(runs)} runs"
            )
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
