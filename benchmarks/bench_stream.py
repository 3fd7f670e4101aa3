"""Live streaming (`/v1/stream`), measured through the WebSocket by a client, as a user would run it.

Starts `talkinghead serve` in a subprocess on a free loopback port, then, with the `websockets` client:

1. agreement: streams the built-in speech as fast as it can and compares the mouth opening measured on the
   received JPEG frames (face mesh, inner-lip gap / inter-ocular, `metrics/mouth.py`'s measure) with the one
   measured on the offline `generate` MP4 of the same audio and seed: Pearson correlation per frame. With
   `--agreement-audio programme`, the same on `--agreement-seconds` of the live part's programme instead,
   reported over the first 10 s, after it, and per minute (the issue's stream runs for minutes; the built-in
   speech is mostly the running statistics' warm-up);
2. live: one stream of `--minutes` of speech (the built-in speech and corpus speech if present, looped, with
   pauses) sent in real time in `--chunk-ms` chunks, the way a microphone delivers it (a chunk leaves when its
   last sample has been "spoken"). For each frame k (time k / fps), the audio-to-mouth delay is its arrival
   time minus the moment the audio at k / fps was spoken: chunking + look-ahead + render + encode + transport
   (loopback). First-frame latency is from sending the first chunk to receiving frame 0. Per minute: frames,
   median and 95th percentile delay (drift = last minute's median minus the first's) and the server's RSS.

Prints one JSON object. The machine's load average is printed too: on a shared machine the figures move with it.

Run: nice -n 10 .venv/bin/python benchmarks/bench_stream.py [--minutes 2] [--size 512] [--chunk-ms 20]
     [--lookahead 0.15] [--quality 90] [--face PHOTO] [--ten-minutes] [--skip-agreement] [--skip-live]
     [--agreement-audio builtin|programme|FILE] [--agreement-seconds 120]
     .venv/bin/python benchmarks/bench_stream.py --motion-sweep [--lookaheads 0.1 0.15]   (motion only; no server)
     .venv/bin/python benchmarks/bench_stream.py --real-series CACHE   (streamed mouth vs real speakers; no server)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import psutil

from talkinghead.media import load_audio
from talkinghead.pipeline import DEMO_AUDIO, DEMO_FACE

HEADER = struct.Struct("<IfI")
# the corpus' speech clips, next to the repository (../shared/data, as the tests find it; a worktree may sit deeper)
CORPUS = next(
    (
        p / "shared" / "data" / "speech"
        for p in Path(__file__).resolve().parents[1:]
        if (p / "shared" / "data").is_dir()
    ),
    Path("/nonexistent"),
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _speech16k(path: Path) -> np.ndarray:
    w = load_audio(path)
    from talkinghead.media.audio import resample

    x = w.samples.mean(axis=1) if w.samples.ndim == 2 else w.samples
    return resample(x.astype(np.float32), w.sample_rate, 16000)


def _programme(seconds: float) -> np.ndarray:
    """`seconds` of speech with pauses: the built-in speech and corpus speech (if present), looped."""
    clips = [_speech16k(DEMO_AUDIO)]
    if CORPUS.is_dir():
        clips += [_speech16k(p) for p in sorted(CORPUS.glob("*.flac"))[:20]]
    out, i, n = [], 0, 0
    pause = np.zeros(12000, np.float32)  # 0.75 s
    while n < seconds * 16000:
        out += [clips[i % len(clips)], pause]
        n += len(clips[i % len(clips)]) + len(pause)
        i += 1
    return np.concatenate(out)[: int(seconds * 16000)]


def _mouth_of(frames: Iterable[np.ndarray]) -> np.ndarray:
    """Mouth opening (inner-lip gap / inter-ocular, face mesh) of each RGB frame; NaN where no face is found."""
    from talkinghead.face.indices import mouth_opening
    from talkinghead.face.landmarks import detect_faces

    out = []
    for f in frames:
        faces = detect_faces(f, max_faces=1)
        out.append(mouth_opening(faces[0].points) if faces else np.nan)
    return np.asarray(out, np.float64)


def _decoded(jpegs: list[bytes]) -> Iterator[np.ndarray]:
    import cv2

    for data in jpegs:
        yield cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1].copy()


def stream(
    url: str,
    samples: np.ndarray,
    size: int,
    chunk_ms: float,
    lookahead: float,
    paced: bool,
    keep_frames: bool,
    rss: psutil.Process,
    options: dict | None = None,
    quality: int = 90,
    record: bool = False,
    face: Path = DEMO_FACE,
) -> dict:
    """One stream; per-frame arrival times (and the frames' JPEG bytes if asked)."""
    from websockets.sync.client import connect

    chunk = int(16000 * chunk_ms / 1000)
    arrivals: list[float] = []
    jpegs: list[bytes] = []
    done: dict = {}
    memory: list[tuple[float, int]] = []
    with connect(url, max_size=None, open_timeout=60) as ws:
        start = {"size": size, "seed": 0, **(options or {})}
        ws.send(
            json.dumps(
                {"type": "start", "options": start, "lookahead": lookahead, "quality": quality, "record": record}
            )
        )
        ws.send(face.read_bytes())
        ready = json.loads(ws.recv(timeout=120))
        assert ready["type"] == "ready", ready
        t0: list[float] = []

        def send() -> None:
            start = time.perf_counter()
            t0.append(start)
            for i in range(0, len(samples), chunk):
                if paced:  # a microphone: the chunk leaves once its last sample has been spoken
                    wait = start + (i + chunk) / 16000 - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                ws.send(samples[i : i + chunk].astype("<f4").tobytes())
            ws.send(json.dumps({"type": "end"}))

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        last_mem = 0.0
        while True:
            m = ws.recv(timeout=120)
            now = time.perf_counter()
            if isinstance(m, bytes):
                k = HEADER.unpack(m[: HEADER.size])[0]
                assert k == len(arrivals), (k, len(arrivals))
                arrivals.append(now)
                if keep_frames:  # JPEG bytes (a 2-minute stream decoded would hold gigabytes)
                    jpegs.append(m[HEADER.size :])
                if now - last_mem > 5.0:
                    memory.append((now, rss.memory_info().rss))
                    last_mem = now
                continue
            done = json.loads(m)
            if done["type"] in ("done", "error"):
                break
        sender.join()
        video = None
        if record and done.get("type") == "done":
            assert json.loads(ws.recv(timeout=120))["type"] == "video"
            video = ws.recv(timeout=120)
    return {
        "t0": t0[0],
        "arrivals": np.array(arrivals),
        "jpegs": jpegs,
        "done": done,
        "memory": memory,
        "video": video,
    }


def _jpeg(frame: np.ndarray, quality: int) -> np.ndarray:
    import cv2

    _, data = cv2.imencode(".jpg", np.ascontiguousarray(frame[..., ::-1]), [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].copy()


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    ok = np.isfinite(a[:n]) & np.isfinite(b[:n])
    return round(float(np.corrcoef(a[:n][ok], b[:n][ok])[0, 1]), 3)


def agreement(url: str, tmp: str, args: argparse.Namespace, rss: psutil.Process) -> dict:
    """Mouth opening measured on the streamed JPEGs vs on the offline MP4 (same audio, seed, size), with head
    motion and without (--still on both sides), and the measure's own ceilings: what a stream whose motion
    were exactly the offline one would score (the offline motion rendered in-process, JPEG-encoded at the
    stream's quality, against the MP4: the two encodings move the face mesh differently), and the offline
    MP4's frames against themselves once JPEG-encoded."""
    import torch

    import talkinghead as th
    from talkinghead.config import GenerateOptions
    from talkinghead.media.video_reader import iter_frames
    from talkinghead.pipeline import Animator

    speech = _speech16k(DEMO_AUDIO)
    out: dict = {"quality": args.quality, "face": args.face.name}
    torch.set_num_threads(1)
    anim = Animator()
    anim.set_source(args.face, size=args.size)
    n_frames = max(1, round(len(speech) / 16000 * 25))
    for still in (False, True):
        got = stream(
            url,
            speech,
            args.size,
            40,
            args.lookahead,
            False,
            True,
            rss,
            {"still": still},
            args.quality,
            record=True,
            face=args.face,
        )
        a = _mouth_of(_decoded(got["jpegs"]))
        recorded = Path(tmp) / "recorded.mp4"
        recorded.write_bytes(got["video"])
        a_mp4 = _mouth_of([f for _, f in iter_frames(recorded)])  # the stream's MP4: H.264 + watermark, as generate
        key = "still" if still else "head_motion"
        out[key] = {"frames_streamed": len(a)}
        # the streamed JPEGs carry no watermark; the MP4s do (>= 400 px), and it moves the measured mesh a little
        opts = GenerateOptions(seed=0, still=still, size=args.size)
        rendered = _mouth_of([_jpeg(f, args.quality) for f in anim.frames(speech, n_frames, opts)])
        for watermark in (False, True):
            path = Path(tmp) / "offline.mp4"
            th.generate(args.face, DEMO_AUDIO, path, size=args.size, seed=0, still=still, watermark=watermark)
            offline = [f for _, f in iter_frames(path)]
            b = _mouth_of(offline)
            name = "vs_generate" if watermark else "vs_generate_no_watermark"
            out[key][name] = {
                "frames_offline": len(b),
                "mouth_opening_correlation": _corr(a, b),
                "ceiling_identical_motion": _corr(rendered, b),
            }
            if watermark:
                out[key][name]["recorded_mp4_correlation"] = _corr(a_mp4, b)
            if not still:
                out[key][name]["ceiling_offline_vs_its_jpeg"] = _corr(
                    _mouth_of([_jpeg(f, args.quality) for f in offline]), b
                )
    return out


def _windows(a: np.ndarray, b: np.ndarray, fps: float = 25.0) -> dict:
    """Pearson r of two per-frame series over the first 10 s, after it, each minute, and the whole: the first
    seconds are the running statistics' warm-up, so a long figure must not be read as a short one."""
    n = min(len(a), len(b))
    out: dict = {"whole": _corr(a[:n], b[:n])}
    ten = int(10 * fps)
    out["first_10s"] = _corr(a[:ten], b[:ten])
    if n > ten + 50:
        out["after_10s"] = _corr(a[ten:n], b[ten:n])
    minute = int(60 * fps)
    if n > minute:
        out["per_minute"] = [_corr(a[i : min(i + minute, n)], b[i : min(i + minute, n)]) for i in range(0, n, minute)]
    return out


def agreement_programme(url: str, tmp: str, args: argparse.Namespace, rss: psutil.Process) -> dict:
    """The long measure: `--agreement-seconds` of the live part's programme (built-in speech + corpus speech
    with pauses: many voices and recordings) or of an audio file (`--agreement-audio FILE`), streamed as fast
    as it can go (frames depend on the audio only, never on its pacing) with head motion, against `generate`
    (watermarked, as shipped) of the same WAV and seed; the identical-motion ceiling (the offline motion
    rendered in-process, JPEG-encoded); and the motion-level lip gap (streamed `MotionStream` vs
    `Animator.motion`, no rendering). Each as `_windows`: first 10 s, after it, per minute, whole."""
    import torch

    import talkinghead as th
    from talkinghead.config import GenerateOptions
    from talkinghead.media.inputs import load_speech
    from talkinghead.media.video_reader import iter_frames
    from talkinghead.motion.stream import MotionStream
    from talkinghead.pipeline import Animator

    path = Path(tmp) / "programme.wav"
    if args.agreement_audio == "programme":
        samples = _programme(args.agreement_seconds)
    else:
        samples = load_speech(args.agreement_audio)[1][: int(args.agreement_seconds * 16000)]
    pcm = (np.clip(samples, -1, 1) * 32767).round().astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(16000)
        f.writeframes(pcm.tobytes())
    speech = load_speech(path)[1]  # exactly what generate reads from the file
    torch.set_num_threads(1)
    anim = Animator()
    anim.set_source(args.face, size=args.size)
    opts = GenerateOptions(seed=0, size=args.size)
    n_frames = max(1, int(round(len(speech) / 16000 * opts.fps)))
    name = args.agreement_audio if args.agreement_audio == "programme" else Path(args.agreement_audio).name
    out: dict = {"audio": name, "seconds": round(len(speech) / 16000, 2), "face": args.face.name}
    out["quality"] = args.quality
    t = time.perf_counter()
    got = stream(url, speech, args.size, 40, args.lookahead, False, True, rss, None, args.quality, face=args.face)
    out["stream_wall_s"] = round(time.perf_counter() - t, 1)
    a = _mouth_of(_decoded(got["jpegs"]))
    del got
    offline = Path(tmp) / "offline.mp4"
    th.generate(args.face, path, offline, size=args.size, seed=0)
    b = _mouth_of(f for _, f in iter_frames(offline))
    ceiling = _mouth_of(_jpeg(f, args.quality) for f in anim.frames(speech, n_frames, opts))
    out["frames_streamed"], out["frames_offline"] = len(a), len(b)
    out["faces_missed_streamed_offline"] = [int(np.isnan(a).sum()), int(np.isnan(b).sum())]
    out["streamed_vs_generate"] = _windows(a, b)
    out["ceiling_identical_motion"] = _windows(ceiling, b)
    out["opening_std_ratio_streamed_over_generate"] = round(float(np.nanstd(a) / np.nanstd(b)), 3)
    ms = MotionStream(anim.mouth, anim.head, opts, None, args.lookahead)
    pieces = [ms.push(speech[i : i + 640]) for i in range(0, len(speech), 640)] + [ms.finish()]
    gap_s = anim.mouth.lip_gaps(np.concatenate([p.mouth for p in pieces]))
    gap_o = anim.mouth.lip_gaps(anim.motion(speech, n_frames, opts).mouth)
    out["motion_lip_gap"] = _windows(gap_s, gap_o)
    out["motion_lip_gap_std_ratio"] = round(float(gap_s.std() / gap_o.std()), 3)
    return out


def motion_sweep(lookaheads: list[float]) -> dict:
    """No server, no rendering: the streamed lip gap (`MotionStream`, 20 ms chunks) against the offline one
    (`Animator.motion`) on the built-in speech and the first 8 corpus clips (20 s each at most), per look-ahead:
    mean and lowest per-clip Pearson r, over whole clips and after the first 3 s (the running statistics'
    warm-up). Look-ahead 1 s leaves only the running statistics as a difference."""
    import torch

    from talkinghead.config import GenerateOptions
    from talkinghead.face.indices import LIP_BOTTOM, LIP_TOP
    from talkinghead.motion.stream import MotionStream
    from talkinghead.pipeline import Animator

    torch.set_num_threads(1)
    anim, opts = Animator(), GenerateOptions()
    idx = list(anim.mouth.geometry.indices)
    top, bottom = idx.index(LIP_TOP), idx.index(LIP_BOTTOM)
    clips = [_speech16k(DEMO_AUDIO)]
    if CORPUS.is_dir():
        clips += [_speech16k(p)[: 16000 * 20] for p in sorted(CORPUS.glob("*.flac"))[:8]]
    offline = [anim.motion(c, max(1, round(len(c) / 16000 * 25)), opts).mouth for c in clips]
    out: dict = {"clips": len(clips)}
    for lookahead in lookaheads:
        whole, late = [], []
        for c, off in zip(clips, offline):
            ms = MotionStream(anim.mouth, anim.head, opts, None, lookahead)
            pieces = [ms.push(c[i : i + 320]) for i in range(0, len(c), 320)] + [ms.finish()]
            m = np.concatenate([p.mouth for p in pieces])
            a, b = m[:, bottom, 1] - m[:, top, 1], off[:, bottom, 1] - off[:, top, 1]
            whole.append(np.corrcoef(a, b)[0, 1])
            if len(a) > 100:
                late.append(np.corrcoef(a[75:], b[75:])[0, 1])
        out[str(lookahead)] = {
            "mean_r": round(float(np.mean(whole)), 3),
            "min_r": round(float(np.min(whole)), 3),
            "after_3s_mean_r": round(float(np.mean(late)), 3) if late else None,
            "after_3s_min_r": round(float(np.min(late)), 3) if late else None,
        }
        print(lookahead, out[str(lookahead)], flush=True)
    return out


def real_series(cache: Path) -> dict:
    """No server, no rendering: the streamed mouth against the REAL speakers' tracked mouths, on the validation
    clips of a prepared cache (`lips_series.py`'s measures: lip-gap r, amplitude), beside the offline mouth
    (`MouthModel.predict`). Two ways: each clip streamed alone (a stream's first seconds: its warm-up), and all
    clips (25 fps) concatenated in a shuffled order (seed 0) with 0.8 s pauses and streamed as one long input
    of many voices, the same for offline on the concatenation: whether the running statistics keep the
    per-voice adaptation. Still head (the mouth does not depend on it)."""
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from lips_series import clip_metrics, group_of, load_val

    from talkinghead.config import GenerateOptions
    from talkinghead.motion.stream import MotionStream
    from talkinghead.pipeline import Animator

    torch.set_num_threads(1)
    anim, opts = Animator(), GenerateOptions(still=True)

    def streamed(samples: np.ndarray, n: int) -> np.ndarray:
        ms = MotionStream(anim.mouth, anim.head, opts)
        pieces = [ms.push(samples[i : i + 16000]) for i in range(0, len(samples), 16000)] + [ms.finish()]
        out = np.concatenate([p.mouth for p in pieces])[:n]  # a clip's tracked frames may outlast its audio
        return np.concatenate([out, np.zeros((n - len(out), *out.shape[1:]), np.float32)])

    clips = [c for c in load_val(cache, anim.mouth.geometry.reference) if abs(c.fps - 25.0) < 0.01]
    rows: dict[str, list[dict]] = {k: [] for k in ("offline_clip", "stream_clip", "offline_concat", "stream_concat")}
    for c in clips:
        n, g = len(c.valid), group_of(c.name)
        for key, pred in (
            ("offline_clip", anim.mouth.predict(c.samples, n, 25.0)),
            ("stream_clip", streamed(c.samples, n)),
        ):
            rows[key].append({"group": g, **clip_metrics(pred, c.offsets, c.valid, c.samples, c.fps)})
    order = np.random.default_rng(0).permutation(len(clips))
    pause = np.zeros(20 * 640, np.float32)
    pieces, starts, k = [], [], 0
    for i in order:
        c = clips[i]
        a = np.zeros(len(c.valid) * 640, np.float32)
        a[: min(len(a), len(c.samples))] = c.samples[: len(a)]
        starts.append(k)
        pieces += [a, pause]
        k += len(c.valid) + 20
    audio = np.concatenate(pieces)
    whole = {"offline_concat": anim.mouth.predict(audio, k, 25.0), "stream_concat": streamed(audio, k)}
    for i, k0 in zip(order, starts):
        c = clips[i]
        n = len(c.valid)
        for key, pred in whole.items():
            rows[key].append(
                {"group": group_of(c.name), **clip_metrics(pred[k0 : k0 + n], c.offsets, c.valid, c.samples, c.fps)}
            )
    out: dict = {"clips": len(clips), "concat_minutes": round(k / 25 / 60, 2)}
    for key, rr in rows.items():
        for grp in ("grid", "varied"):
            sel = [x for x in rr if (x["group"] != "grid") == (grp == "varied")]
            out[f"{key}_{grp}"] = {
                "n": len(sel),
                "r": round(float(np.mean([x["r"] for x in sel])), 3),
                "amp": round(float(np.mean([x["amp"] for x in sel])), 2),
            }
        print(key, {g: out[f"{key}_{g}"] for g in ("grid", "varied")}, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--ten-minutes", action="store_true", help="the issue's full 10-minute run")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--chunk-ms", type=float, default=20.0)
    ap.add_argument("--lookahead", type=float, default=0.15)
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality of the streamed frames")
    ap.add_argument("--face", type=Path, default=DEMO_FACE, help="the photo streamed (default: the built-in one)")
    ap.add_argument("--skip-agreement", action="store_true")
    ap.add_argument(
        "--agreement-audio",
        default="builtin",
        help="agreement on the built-in ~8 s speech (with and without head motion); 'programme': on the live "
        "part's programme of --agreement-seconds (many speakers, with pauses); or an audio FILE (its first "
        "--agreement-seconds; one voice): head motion, figures per minute and over the first 10 s",
    )
    ap.add_argument("--agreement-seconds", type=float, default=120.0, help="length of the programme agreement")
    ap.add_argument("--skip-live", action="store_true")
    ap.add_argument(
        "--motion-sweep", action="store_true", help="only the streamed vs offline lip gap per look-ahead (no server)"
    )
    ap.add_argument(
        "--lookaheads", type=float, nargs="+", default=[0.04, 0.06, 0.1, 0.14, 0.2, 1.0], help="for --motion-sweep"
    )
    ap.add_argument(
        "--real-series",
        type=Path,
        default=None,
        metavar="CACHE",
        help="only the streamed and offline mouths vs the real speakers on CACHE's validation clips (no server)",
    )
    args = ap.parse_args()
    if args.real_series:
        print(json.dumps(real_series(args.real_series), indent=1))
        return
    if args.motion_sweep:
        print(json.dumps(motion_sweep(args.lookaheads), indent=1))
        return
    minutes = 10.0 if args.ten_minutes else args.minutes
    fps = 25.0
    result: dict = {
        "load_average_start": os.getloadavg(),
        "size": args.size,
        "chunk_ms": args.chunk_ms,
        "lookahead_s": args.lookahead,
        "minutes": minutes,
    }
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="bench_stream_") as tmp:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "talkinghead.cli",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                tmp,
                "--workers",
                "1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            import httpx

            for _ in range(600):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            url = f"ws://127.0.0.1:{port}/v1/stream"
            rss = psutil.Process(server.pid)
            # warm the server's models (first stream loads them), not counted
            silence = np.zeros(8000, np.float32)
            stream(url, silence, args.size, args.chunk_ms, args.lookahead, False, False, rss, face=args.face)

            if not args.skip_agreement:
                measure = agreement if args.agreement_audio == "builtin" else agreement_programme
                result["agreement"] = measure(url, tmp, args, rss)
                print(json.dumps(result["agreement"]), flush=True)

            if not args.skip_live:
                samples = _programme(minutes * 60)
                la, q = args.lookahead, args.quality
                live = stream(url, samples, args.size, args.chunk_ms, la, True, False, rss, None, q, False, args.face)
                arr = live["arrivals"]
                k = np.arange(len(arr))
                delay = arr - (live["t0"] + k / fps)
                minute = (k / fps // 60).astype(int)
                per_minute = []
                for m in range(int(minute.max()) + 1):
                    d = delay[minute == m]
                    mem = [r for t, r in live["memory"] if live["t0"] + 60 * m <= t < live["t0"] + 60 * (m + 1)]
                    per_minute.append(
                        {
                            "minute": m + 1,
                            "frames": int(len(d)),
                            "delay_median_ms": round(1000 * float(np.median(d)), 1),
                            "delay_p95_ms": round(1000 * float(np.percentile(d, 95)), 1),
                            "server_rss_mb": round(max(mem) / 2**20, 1) if mem else None,
                        }
                    )
                result["live"] = {
                    "frames": int(len(arr)),
                    "expected_frames": int(round(len(samples) / 16000 * fps)),
                    "first_frame_ms": round(1000 * float(arr[0] - live["t0"]), 1),
                    "audio_to_mouth_median_ms": round(1000 * float(np.median(delay)), 1),
                    "audio_to_mouth_p95_ms": round(1000 * float(np.percentile(delay, 95)), 1),
                    "drift_ms": round(per_minute[-1]["delay_median_ms"] - per_minute[0]["delay_median_ms"], 1),
                    "per_minute": per_minute,
                }
        finally:
            server.terminate()
            server.wait(30)
    result["load_average_end"] = os.getloadavg()
    print(json.dumps(result, indent=1))  # with --skip-live: the agreement figures again, with the load averages


if __name__ == "__main__":
    main()
