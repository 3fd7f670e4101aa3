"""Provenance marks (issue 14): does the watermark survive what happens to videos, does it never fire on real
video, what does marking cost, and how visible is it.

1. Marked clips: `--photos N` generated clips (corpus portraits, corpus speech cut to 3-10 s) and `--dubs N` dubbed
   clips (corpus talking videos, other corpus speech), each also rendered with --no-watermark (same seed) for PSNR.
2. Each marked clip is transformed: H.264 re-encode at CRF 28; half size; 10 % cropped from each side; a 3 s
   excerpt at a random start; 25 -> 30 fps; metadata stripped (remux). Detection rate = watermark found with the
   payload (job id) decoded exactly.
3. False positives: the detector on every real video of the corpus (talking/train, talking/val, motion).
4. Cost: time spent in the watermark and the signing vs. the whole generate / dub, and PSNR marked vs unmarked.

Run: PYTHONPATH=. .venv/bin/python benchmarks/provenance.py --photos 20 --dubs 20 [--fp-limit 0] [--data DIR]
The issue's 100 clips, only outputs that carry the watermark (RESULTS.md, fourth pass): --photos 91 --dubs 11
--marked-only --dub-glob 'multivsr*,grid*' --seed 6 --no-fp --no-psnr --state FILE.
With `--state FILE` every finished clip, marked real clip, video and frame is appended to FILE (JSON lines) and a
rerun with the same arguments skips them: a long run can be stopped and resumed. The false-positive part also
counts the tail of the detector's null distribution (TAIL_Z), which the threshold's union bound rests on.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path

import av
import cv2
import numpy as np

from talkinghead.media import load_audio
from talkinghead.media.audio import resample
from talkinghead.provenance import manifest as manifest_mod
from talkinghead.provenance import watermark as wm
from talkinghead.provenance.label import read_label

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TRANSFORMS = ("none", "crf28", "half", "crop10", "excerpt3s", "fps30", "strip")


# ------------------------------------------------------------------------------------------ transformations


def reencode(
    src: Path,
    dst: Path,
    crf: int = 23,
    scale: float = 1.0,
    crop: float = 0.0,
    fps: float | None = None,
    start: float = 0.0,
    duration: float | None = None,
) -> Path:
    """Decode, crop `crop` of each side, scale, resample the frame rate (nearest frame), cut, encode H.264."""
    with av.open(os.fspath(src)) as ic:
        s = ic.streams.video[0]
        src_fps = float(s.average_rate or 25)
        frames = [
            f.to_ndarray(format="rgb24")
            for f in ic.decode(s)
            if float(f.time) >= start and (duration is None or float(f.time) < start + duration)
        ]
    h, w = frames[0].shape[:2]
    y0, x0 = int(round(h * crop)), int(round(w * crop))
    ch, cw = h - 2 * y0, w - 2 * x0
    ow, oh = int(cw * scale) // 2 * 2, int(ch * scale) // 2 * 2
    rate = fps or src_fps
    n_out = max(1, int(round(len(frames) * rate / src_fps)))
    with av.open(os.fspath(dst), "w") as oc:
        o = oc.add_stream("libx264", rate=round(rate))
        o.width, o.height, o.pix_fmt = ow, oh, "yuv420p"
        o.options = {"crf": str(crf), "preset": "veryfast"}
        for i in range(n_out):
            a = frames[min(len(frames) - 1, int(i * src_fps / rate))][y0 : y0 + ch, x0 : x0 + cw]
            a = cv2.resize(a, (ow, oh), interpolation=cv2.INTER_AREA) if (ow, oh) != (cw, ch) else a[:oh, :ow]
            for p in o.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24")):
                oc.mux(p)
        for p in o.encode(None):
            oc.mux(p)
    return dst


def strip(src: Path, dst: Path) -> Path:
    """Remux the video stream only: no metadata, no C2PA box, same pixels."""
    with av.open(os.fspath(src)) as ic, av.open(os.fspath(dst), "w") as oc:
        s = ic.streams.video[0]
        o = oc.add_stream_from_template(s)
        for p in ic.demux(s):
            if p.dts is None:
                continue
            p.stream = o
            oc.mux(p)
    return dst


def transformed(src: Path, kind: str, folder: Path, rng: random.Random) -> Path:
    dst = folder / f"{src.stem}_{kind}.mp4"
    if kind == "none":
        return src
    if kind == "crf28":
        return reencode(src, dst, crf=28)
    if kind == "half":
        return reencode(src, dst, scale=0.5)
    if kind == "crop10":
        return reencode(src, dst, crop=0.10)
    if kind == "excerpt3s":
        with av.open(os.fspath(src)) as c:
            dur = float(c.duration or 0) / av.time_base
        return reencode(src, dst, start=rng.uniform(0, max(0.0, dur - 3.0)), duration=3.0)
    if kind == "fps30":
        return reencode(src, dst, fps=30.0)
    if kind == "strip":
        return strip(src, dst)
    raise ValueError(kind)


# ------------------------------------------------------------------------------------------ marked clips


_ORIG_CALL, _ORIG_SIGN = wm.WatermarkEmbedder.__call__, manifest_mod.sign_file
# a dub marks with the moving-spare embedder (each frame's own mouth spared; session 8)
_ORIG_MOVING = getattr(wm, "MovingSpareEmbedder", None)
_ORIG_MOVING_CALL = _ORIG_MOVING.__call__ if _ORIG_MOVING is not None else None


class Timed:
    """Wraps the watermark embedder and the signer to add up the time they take (one per clip)."""

    def __init__(self) -> None:
        self.mark = 0.0
        self.sign = 0.0
        orig_call, orig_sign = _ORIG_CALL, _ORIG_SIGN

        def call(emb: wm.WatermarkEmbedder, y: np.ndarray) -> None:
            t = time.perf_counter()
            orig_call(emb, y)
            self.mark += time.perf_counter() - t

        def sign(*a: object, **k: object) -> None:
            t = time.perf_counter()
            orig_sign(*a, **k)  # type: ignore[arg-type]
            self.sign += time.perf_counter() - t

        wm.WatermarkEmbedder.__call__ = call  # type: ignore[method-assign]
        if _ORIG_MOVING is not None and _ORIG_MOVING_CALL is not None:
            orig_moving = _ORIG_MOVING_CALL

            def moving(emb: object, y: np.ndarray) -> None:
                t = time.perf_counter()
                orig_moving(emb, y)
                self.mark += time.perf_counter() - t

            _ORIG_MOVING.__call__ = moving  # type: ignore[method-assign]
        import talkinghead.provenance.stamp as stamp_mod

        stamp_mod.sign_file = sign  # type: ignore[assignment]


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    import wave

    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(os.fspath(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())
    return path


def cut_speech(path: Path, seconds: float, out: Path) -> Path:
    w = load_audio(path, sample_rate=None, mono=True)
    s = w.samples if w.sample_rate == 16000 else resample(w.samples, w.sample_rate, 16000)
    return write_wav(out, np.resize(s, int(seconds * 16000)), 16000)


def psnr(a: Path, b: Path) -> float:
    """Luma+chroma PSNR over all frames of two videos of the same size."""
    se, n = 0.0, 0
    with av.open(os.fspath(a)) as ca, av.open(os.fspath(b)) as cb:
        for fa, fb in zip(ca.decode(video=0), cb.decode(video=0)):
            x = fa.to_ndarray(format="rgb24").astype(np.float32)
            y = fb.to_ndarray(format="rgb24").astype(np.float32)
            se += float(np.sum((x - y) ** 2))
            n += x.size
    return float(10 * np.log10(255.0**2 / max(se / n, 1e-12)))


def output_size(path: Path) -> tuple[int, int]:
    """(width, height) of the output made from a portrait (`fit_size`: even sides) or a talking clip (its own)."""
    if path.suffix.lower() == ".mp4":
        return _video_size(path)
    from talkinghead.media.image import fit_size

    h, w = fit_size(cv2.imread(os.fspath(path)), None).shape[:2]
    return w, h


def would_be_marked(path: Path) -> bool:
    """Whether the output made from this portrait or clip carries the watermark (shorter side >= the floor)."""
    from talkinghead.provenance.stamp import MIN_WATERMARK_SIDE

    return min(output_size(path)) >= MIN_WATERMARK_SIDE


def clip_jobs(
    n_photos: int,
    n_dubs: int,
    rng: random.Random,
    dub_glob: str = "*.mp4",
    min_side: int = 0,
    max_side: int = 0,
    marked_only: bool = False,
) -> list[dict]:
    """What to render: (mode, source, speech, seconds, seed) for each clip, drawn from the corpus up front so that
    the result does not depend on how many workers render them. `dub_glob`: one pattern or several, comma
    separated; the clips of the first come first (each pattern's clips shuffled). `marked_only`: only sources
    whose output carries the watermark."""

    def side(p: Path) -> int:
        return max(cv2.imread(os.fspath(p)).shape[:2])

    portraits = sorted(
        p
        for p in (DATA / "portraits").glob("*.jpg")
        if (not min_side or side(p) >= min_side)
        and (not max_side or side(p) <= max_side)
        and (not marked_only or would_be_marked(p))
    )
    speech = sorted((DATA / "speech").glob("*.flac"))
    patterns = dub_glob.split(",")
    groups: list[list[Path]] = []
    for pattern in patterns:
        found = sorted(p for p in (DATA / "talking").rglob(pattern) if p.suffix == ".mp4")
        if len(patterns) == 1 and pattern == "*.mp4":  # the default: the non-GRID clips and 10 GRID ones
            found = [p for p in found if not p.name.startswith("grid")]
            found += sorted((DATA / "talking" / "val").glob("grid*.mp4"))[:10]
        elif pattern == "*.mp4" or not pattern.startswith("grid"):
            found = [p for p in found if not p.name.startswith("grid")]
        groups.append(found)
    videos: list[Path] = []
    for found in groups:
        found = [p for p in found if p not in videos]
        if marked_only:
            if len(found) > 100:  # GRID: 1000 clips of one size; a random 100 are enough to draw from
                found = rng.sample(found, 100)
            found = [p for p in found if would_be_marked(p)]
        if len(groups) > 1:
            rng.shuffle(found)
        videos += found
    rng.shuffle(portraits)
    if len(groups) == 1:
        rng.shuffle(videos)
    srcs = [("photo", p) for p in portraits[:n_photos]] + [("dub", v) for v in videos[:n_dubs]]
    return [
        {"k": k, "mode": m, "src": src, "speech": rng.choice(speech), "seconds": rng.uniform(3.0, 10.0)}
        for k, (m, src) in enumerate(srcs)
    ]


_ANIMATOR = None


def _init_worker(data: Path, nice: int) -> None:
    global DATA
    DATA = data
    if nice:
        os.nice(nice)
    import torch

    torch.set_num_threads(1)


def one_clip(job: dict, folder: Path) -> dict | None:
    """Render one marked clip (and its unmarked twin), measure cost and PSNR, transform it every way, detect."""
    from talkinghead.dubbing import dub
    from talkinghead.pipeline import Animator, generate

    global _ANIMATOR
    timer = Timed()
    k, mode, src = job["k"], job["mode"], job["src"]
    rng = random.Random(1000 + k)
    audio = cut_speech(job["speech"], job["seconds"], folder / f"a{k}.wav")
    out, plain = folder / f"{mode}{k}.mp4", folder / f"{mode}{k}_plain.mp4"
    t = time.perf_counter()
    try:
        if mode == "photo":
            _ANIMATOR = _ANIMATOR or Animator()
            generate(src, audio, out, seed=k, animator=_ANIMATOR)
        else:
            dub(src, audio, out)
    except Exception as exc:  # a portrait or video without a usable face: skip it, say so
        print(f"skip {src.name}: {exc}", flush=True)
        return None
    total = time.perf_counter() - t
    row: dict = {"mode": mode, "source": src.name, "seconds": round(job["seconds"], 2), "path": out}
    row.update(mark_s=timer.mark, sign_s=timer.sign, total_s=total)
    twin = job.get("twin", True)  # the unmarked twin (PSNR): off with --no-psnr
    if twin and mode == "photo":
        generate(src, audio, plain, seed=k, animator=_ANIMATOR, watermark=False)
    elif twin:
        dub(src, audio, plain, watermark=False)
    label = read_label(out)
    with av.open(os.fspath(out)) as c:
        cc = c.streams.video[0].codec_context
        row["size"], row["shape"] = max(cc.width, cc.height), f"{cc.width}x{cc.height}"
        row["short"] = min(cc.width, cc.height)
    row["job_id"] = label["job_id"] if label else None
    row["watermark_on"] = bool(label and label["watermark"])
    row["psnr"] = psnr(out, plain) if twin else None
    if twin and k % 5 == 0:  # the mark alone: lossless renders with and without it (encoder noise left out)
        a, b = folder / f"lossless{k}_a.mp4", folder / f"lossless{k}_b.mp4"
        if mode == "photo":
            generate(src, audio, a, seed=k, animator=_ANIMATOR, crf=0)
            generate(src, audio, b, seed=k, animator=_ANIMATOR, crf=0, watermark=False)
        else:
            dub(src, audio, a, crf=0)
            dub(src, audio, b, crf=0, watermark=False)
        row["psnr_mark"] = psnr(a, b)
        a.unlink()
        b.unlink()
    for kind in TRANSFORMS:
        v = transformed(out, kind, folder, rng)
        row[kind] = _detected(v, row["job_id"])
        if kind == "strip":
            row["strip_label"] = read_label(v) is not None
            row["strip_manifest"] = manifest_mod.read_manifest(v)["status"]
        if v != out:
            v.unlink()
    for p in (out, plain, audio):
        p.unlink(missing_ok=True)
    print(
        f"{mode} {k} {src.name} ({row['shape']}): {job['seconds']:.1f}s, psnr {row['psnr'] or float('nan'):.2f} dB "
        f"(mark alone {row.get('psnr_mark', float('nan')):.2f}), mark {timer.mark:.3f}s sign {timer.sign:.3f}s "
        f"of {total:.1f}s; " + " ".join(f"{t}:{row[t]['z']}{'E' if row[t]['payload_ok'] else ''}" for t in TRANSFORMS),
        flush=True,
    )
    row["path"] = str(out)
    return row


def _detected(video: Path, job_id: str | None) -> dict:
    """The detector's verdict on one transformed clip: found, sync z, job id exact, list-decoding rank, and a
    wrong job id (found with a valid CRC but not the one embedded)."""
    d = wm.detect(video)
    return {
        "found": d.found,
        "z": round(d.sync_z, 2),
        "payload_ok": d.payload == job_id,
        "rank": d.list_rank,
        "wrong": d.payload is not None and d.payload != job_id,
    }


def real_spare(src: Path, start: float, seconds: float) -> wm.Spare | None:
    """The box a dub spares for this window of a real clip (face mesh on its frames, as the dub tracks them)."""
    from talkinghead.face.track import track_video
    from talkinghead.provenance.stamp import mouth_spare

    track = track_video(src)
    keep = (track.times >= start) & (track.times < start + seconds) & track.found
    return mouth_spare(track.points[keep]) if keep.any() else None


def marked_real(job: dict, folder: Path) -> dict:
    """A dub's pixels without the models: a real clip (a random 3-10 s window) marked and encoded at the dub's CRF
    18, as a dub leaves every pixel outside the mouth. Many more sizes and clips per CPU-minute than real dubs."""
    from talkinghead.media import VideoWriter, iter_frames, probe_video

    k, src = job["k"], job["src"]
    rng = random.Random(2000 + k)
    info = probe_video(src)
    start = rng.uniform(0, max(0.0, info.duration - job["seconds"]))
    frames = [f for t, f in iter_frames(src) if start <= t < start + job["seconds"]]
    h, w = frames[0].shape[:2]
    job_id = rng.randrange(1 << 24)
    out = folder / f"real{k}.mp4"
    spare = real_spare(src, start, job["seconds"]) if job.get("spare", True) else None
    with VideoWriter(out, w, h, fps=info.fps, crf=18, mark=wm.WatermarkEmbedder(w, h, job_id, spare)) as writer:
        for f in frames:
            writer.write(f)
    row: dict = {"mode": "real+mark", "source": src.name, "seconds": round(len(frames) / info.fps, 2)}
    row.update(size=max(w, h), shape=f"{w}x{h}", job_id=f"{job_id:06x}", spare=spare is not None)
    for kind in TRANSFORMS[:-1]:
        v = transformed(out, kind, folder, rng)
        row[kind] = _detected(v, row["job_id"])
        if v != out:
            v.unlink()
    row["strip"] = row["none"]  # no metadata to strip: the same pixels
    out.unlink()
    print(
        f"real {k} {src.name} ({row['shape']}): "
        + " ".join(f"{t}:{row[t]['z']}{'E' if row[t]['payload_ok'] else ''}" for t in TRANSFORMS),
        flush=True,
    )
    return row


TAIL_Z = (3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0)


def _with_tail(run: Callable[[], wm.Detection]) -> tuple[wm.Detection, list[int]]:
    """Run the detector and count, over every correlation value of every (period, shift) it tried, how many
    standardised values reach each of TAIL_Z (last entry: how many values): the null distribution of one
    hypothesis, whose tail the threshold's union bound assumes is normal."""
    counts = np.zeros(len(TAIL_Z) + 1, np.int64)
    orig = wm._sync_peak

    def peak(spec: np.ndarray) -> tuple[float, tuple[int, int]]:
        corr = np.real(np.fft.ifft2(spec * wm._sync_spectrum()))
        zs = (corr - corr.mean()) / (corr.std() + 1e-12)
        counts[:-1] += [int(np.count_nonzero(zs >= t)) for t in TAIL_Z]
        counts[-1] += zs.size
        k = int(np.argmax(corr))
        return float(zs.flat[k]), (k // wm.TILE, k % wm.TILE)

    wm._sync_peak = peak  # type: ignore[assignment]
    try:
        d = run()
    finally:
        wm._sync_peak = orig
    return d, counts.tolist()


def _fp_row(d: wm.Detection, tail: list[int]) -> dict:
    return {
        "found": d.found,
        "z": round(d.sync_z, 3),
        "crc_ok": d.crc_ok,
        "threshold": round(d.threshold_z, 3),
        "scale": round(d.period / wm.TILE, 4),
        "frames": d.frames,
        "tail": tail,
    }


def _detect_video(path: Path) -> dict:
    d, tail = _with_tail(lambda: wm.detect(path))
    return _fp_row(d, tail)


def _detect_frame(item: tuple[Path, int]) -> dict:
    """The detector on one frame of a real video, as if it were a still video."""
    path, index = item
    with av.open(os.fspath(path)) as c:
        for k, frame in enumerate(c.decode(video=0)):
            if k == index:
                y = frame.to_ndarray(format="gray").astype(np.float32)
                d, tail = _with_tail(lambda y=y: wm.detect_luma(y, 1))  # type: ignore[misc]
                return {**_fp_row(d, tail), "key_frame": bool(frame.key_frame)}
    raise ValueError(f"{path.name} has no frame {index}")


def fp_items(limit: int, frames: int) -> tuple[list[Path], list[tuple[Path, int]]]:
    """Every real video of the corpus (or a random `limit` of them) and `frames` random single frames (from the
    first 4 s of random videos; the same draw as the second pass, extended)."""
    every = sorted((DATA / "talking").rglob("*.mp4")) + sorted((DATA / "motion").glob("*.mp4"))
    videos = random.Random(1).sample(every, min(limit, len(every))) if limit > 0 else every
    rng = random.Random(2)
    picks = []
    for v in rng.choices(every, k=frames):
        with av.open(os.fspath(v)) as c:
            picks.append((v, rng.randrange(max(1, min(100, int(c.streams.video[0].frames or 1))))))
    return (videos if limit >= 0 else []), picks


def _rel(p: Path) -> str:
    return os.fspath(p.relative_to(DATA))


def _fp_item(item: tuple[str, Path, int]) -> dict:
    kind, path, index = item
    return _detect_video(path) if kind == "v" else _detect_frame((path, index))


def false_positives(state: State, limit: int, frames: int, pool: Executor, per_frame: int = 2) -> dict:
    """The detector on every real video of the corpus (or `limit` of them) and on `frames` random single frames,
    `per_frame` videos for each frame; finished items are kept in `state` (a stopped run resumes). Videos that
    the second pass did not reach (it checked a random 800) come first."""
    videos, picks = fp_items(limit, frames)
    every = sorted((DATA / "talking").rglob("*.mp4")) + sorted((DATA / "motion").glob("*.mp4"))
    checked_before = set(random.Random(1).sample(every, 800))
    videos = [v for v in videos if v not in checked_before] + [v for v in videos if v in checked_before]
    todo_v = [("v", v, 0) for v in videos if not state.done(f"fpv:{_rel(v)}")]
    todo_f = [("f", v, i) for v, i in picks if not state.done(f"fpf:{_rel(v)}#{i}")]
    print(f"fp: {len(todo_v)} of {len(videos)} videos and {len(todo_f)} of {len(picks)} frames to do", flush=True)
    items: list[tuple[str, Path, int]] = []
    while todo_v or todo_f:
        items += todo_v[:per_frame] + todo_f[:1]
        todo_v, todo_f = todo_v[per_frame:], todo_f[1:]
    for k, (item, row) in enumerate(zip(items, pool.map(_fp_item, items))):
        kind, v, i = item
        state.add(f"fpv:{_rel(v)}" if kind == "v" else f"fpf:{_rel(v)}#{i}", row)
        if k % 50 == 0:
            print(f"fp {k}/{len(items)} {kind} z {row['z']}", flush=True)
    return fp_summary(state, [f"fpv:{_rel(v)}" for v in videos], [f"fpf:{_rel(v)}#{i}" for v, i in picks])


def fp_summary(state: State, video_keys: list[str], frame_keys: list[str]) -> dict:
    out: dict[str, object] = {"threshold_z": round(wm.threshold(), 2)}
    for name, keys in (("videos", video_keys), ("single_frames", frame_keys)):
        rows = [state.rows[k] for k in keys if k in state.rows]
        if not rows:
            continue
        zs = np.array([r["z"] for r in rows])
        tail = np.sum([r["tail"] for r in rows], axis=0)
        out[name] = {
            "checked": len(rows),
            "of": len(keys),
            "false_positives": [k for k in keys if k in state.rows and state.rows[k]["found"]],
            "max_z": round(float(zs.max()), 2),
            "mean_z": round(float(zs.mean()), 2),
            "over_6.5": int(np.sum(zs >= 6.5)),
            "crc_ok": int(sum(r["crc_ok"] for r in rows)),
            "frames_averaged": int(sum(r["frames"] for r in rows)),
            # per hypothesis: observed share of correlation values >= z, and the normal tail Q(z)
            "tail": {
                f"{t}": [int(c), f"{c / tail[-1]:.3g}", f"{wm._normal_sf(t):.3g}"] for t, c in zip(TAIL_Z, tail[:-1])
            },
            "hypotheses": int(tail[-1]),
        }
    return out


class State:
    """Finished work items, one JSON line each (`--state`): a run stopped at any point resumes where it was."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.rows: dict[str, dict] = {}
        if path is not None and path.is_file():
            for line in path.read_text().splitlines():
                if line.strip():
                    item = json.loads(line)
                    self.rows[item["key"]] = item["row"]

    def done(self, key: str) -> bool:
        return key in self.rows

    def add(self, key: str, row: dict) -> None:
        self.rows[key] = row
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(json.dumps({"key": key, "row": row}, default=str) + "\n")


def micro(folder: Path) -> dict[str, object]:
    """Marking cost per frame at common sizes, and signing a large file (no models involved)."""
    from talkinghead.media import VideoWriter
    from talkinghead.provenance.stamp import Stamp

    out: dict[str, object] = {}
    for w, h in ((1920, 1080), (1280, 720), (512, 512)):
        emb = wm.WatermarkEmbedder(w, h, 0x123456)
        frame = av.VideoFrame(w, h, "yuv420p")
        p = frame.planes[0]
        y = np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:h, :w]
        y[:] = 128
        t = time.perf_counter()
        for _ in range(200):
            emb(y)
        out[f"mark_ms_per_frame_{w}x{h}"] = round((time.perf_counter() - t) / 200 * 1e3, 3)
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8) for _ in range(10)]
    big = folder / "big.mp4"
    with VideoWriter(big, 1280, 720, fps=25, crf=8, preset="ultrafast") as writer:
        for k in range(150):
            writer.write(noise[k % 10])
    stamp = Stamp.new("dub", True, [big], {}, (1280, 720), ingredient=big)
    t = time.perf_counter()
    manifest_mod.sign_file(big, stamp.label, stamp.title, stamp.ingredient)
    out["sign_s"] = round(time.perf_counter() - t, 2)
    out["signed_file_mb"] = round(big.stat().st_size / 1e6, 1)
    return out


def _video_size(path: Path) -> tuple[int, int]:
    with av.open(os.fspath(path)) as c:
        cc = c.streams.video[0].codec_context
        return cc.width, cc.height


def _duration(path: Path) -> float:
    with av.open(os.fspath(path)) as c:
        return float(c.duration or 0) / av.time_base


def _rates(cs: list[dict]) -> dict[str, str]:
    """Per transformation: clips found with the job id exact, clips found, clips found with a wrong job id, and
    the lowest sync z."""
    return {
        k: f"{sum(c[k]['found'] and c[k]['payload_ok'] for c in cs)} exact, {sum(c[k]['found'] for c in cs)} found"
        f", {sum(c[k].get('wrong', False) for c in cs)} wrong, min z {min(c[k]['z'] for c in cs)}"
        for k in TRANSFORMS
    }


def main() -> None:
    global DATA
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=50)
    ap.add_argument("--dubs", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2, help="processes rendering and detecting (one thread each)")
    ap.add_argument("--nice", type=int, default=0, help="niceness added in the workers (run it under nice -n 10)")
    ap.add_argument(
        "--fp-limit",
        type=int,
        default=0,
        help="real videos checked for false positives (0 = all, -1 = none: single frames only)",
    )
    ap.add_argument("--fp-frames", type=int, default=1000, help="random single frames of real video checked too")
    ap.add_argument("--marked-real", type=int, default=0, help="also mark this many real clips directly (dub proxy)")
    ap.add_argument("--no-fp", action="store_true", help="skip the false-positive scan")
    ap.add_argument("--no-clips", action="store_true", help="only the false-positive scan")
    ap.add_argument("--micro", action="store_true", help="only the per-frame marking and signing costs")
    ap.add_argument("--min-side", type=int, default=0, help="only portraits whose longer side is at least this")
    ap.add_argument("--max-side", type=int, default=0, help="only portraits whose longer side is at most this")
    ap.add_argument(
        "--dub-glob",
        default="*.mp4",
        help="which talking clips to dub, e.g. 'multivsr*' (the large ones); several, comma separated, are taken in "
        "that order (e.g. 'multivsr*,grid*')",
    )
    ap.add_argument(
        "--marked-only",
        action="store_true",
        help="only portraits and clips whose output carries the watermark (shorter side >= MIN_WATERMARK_SIDE)",
    )
    ap.add_argument("--no-psnr", action="store_true", help="skip the unmarked twin renders (PSNR): detection only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--state", type=Path, default=None, help="finished items (JSON lines): rerun with it to resume")
    ap.add_argument("--real-sides", default="", help="--marked-real: only clips whose longer side is in LO-HI px")
    ap.add_argument("--no-spare", action="store_true", help="--marked-real: mark the mouth too (as before pass 3)")
    ap.add_argument("--fp-per-frame", type=int, default=2, help="false positives: videos checked per single frame")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=None, help="the corpus (default: ../shared/data)")
    args = ap.parse_args()
    DATA = args.data or DATA
    if not (DATA / "talking").is_dir():
        raise SystemExit(f"the corpus is not at {DATA} (give --data)")
    os.environ.setdefault("XDG_CONFIG_HOME", tempfile.mkdtemp(prefix="th-prov-cfg-"))  # local signer, not ~/.config
    result: dict[str, object] = {"c2pa": manifest_mod.available()}
    if args.micro:
        with tempfile.TemporaryDirectory() as d:
            print(json.dumps(micro(Path(d)), indent=1))
        return
    if args.no_clips:
        args.photos = args.dubs = 0
    state = State(args.state)
    jobs = clip_jobs(
        args.photos, args.dubs, random.Random(args.seed), args.dub_glob, args.min_side, args.max_side, args.marked_only
    )
    for j in jobs:
        j["twin"] = not args.no_psnr
    keys = [f"clip{args.seed}:{j['k']}:{j['mode']}:{j['src'].name}" for j in jobs]
    with (
        tempfile.TemporaryDirectory() as d,
        ProcessPoolExecutor(args.workers, initializer=_init_worker, initargs=(DATA, args.nice)) as pool,
    ):
        todo = [(k, j) for k, j in zip(keys, jobs) if not state.done(k)]
        for (key, _), row in zip(todo, pool.map(one_clip, [j for _, j in todo], [Path(d)] * len(todo))):
            state.add(key, row or {"skipped": True})
        rows = [state.rows[k] for k in keys if k in state.rows and not state.rows[k].get("skipped")]
        real_rows: list[dict] = []
        if args.marked_real:
            rng = random.Random(args.seed + 7)
            videos = [v for v in sorted((DATA / "talking").rglob("*.mp4")) if _duration(v) >= 3.0]
            grid = [v for v in videos if v.name.startswith("grid")]  # 360x288, most of the corpus: fills up the rest
            others = [v for v in videos if v not in grid]
            rng.shuffle(others)
            picked = others[: args.marked_real]
            picked += rng.sample(grid, min(len(grid), args.marked_real - len(picked)))
            reals = [
                {"k": k, "src": v, "seconds": rng.uniform(3.0, 10.0), "spare": not args.no_spare}
                for k, v in enumerate(picked)
            ]
            if args.real_sides:  # only clips of these sizes (the draw stays that of the whole list)
                lo, hi = (int(x) for x in args.real_sides.split("-"))
                reals = [r for r in reals if lo <= max(_video_size(r["src"])) <= hi]
            rkeys = [f"real{args.seed}{'' if r['spare'] else 'u'}:{r['k']}:{r['src'].name}" for r in reals]
            todo_r = [(k, r) for k, r in zip(rkeys, reals) if not state.done(k)]
            for (key, _), row in zip(todo_r, pool.map(marked_real, [r for _, r in todo_r], [Path(d)] * len(todo_r))):
                state.add(key, row)
            real_rows = [state.rows[k] for k in rkeys if k in state.rows]
        if not args.no_fp:
            result["false_positives"] = false_positives(state, args.fp_limit, args.fp_frames, pool, args.fp_per_frame)
    if args.marked_real:
        result["marked_real"] = {
            f"{lo}-{hi}px": {
                "clips": len(cs),
                **_rates(cs),
            }
            for lo, hi in ((0, 200), (200, 300), (300, 500), (500, 10**5))
            if (cs := [c for c in real_rows if lo <= c["size"] < hi])
        }
    result["clips"] = {m: sum(c["mode"] == m for c in rows) for m in ("photo", "dub")}
    result["marked"] = sum(bool(c.get("watermark_on")) for c in rows)
    marked = [c for c in rows if c.get("watermark_on")]
    result["detection"] = _rates(marked) if marked else {}
    result["not_marked"] = [f"{c['source']} ({c['shape']})" for c in rows if not c.get("watermark_on")]
    for mode in ("photo", "dub"):
        for lo, hi in ((0, 300), (300, 500), (500, 10**5)):
            cs = [c for c in rows if lo <= c["size"] < hi and c["mode"] == mode]
            if cs:
                result[f"detection_{mode}_{lo}-{hi}px"] = {"clips": len(cs), **_rates(cs)}
    for lo, hi in ((288, 400), (400, 600), (600, 10**5)):  # marked clips by their shorter side
        cs = [c for c in marked if lo <= c.get("short", 0) < hi]
        if cs:
            result[f"detection_marked_shorter_{lo}-{hi}px"] = {
                "clips": len(cs),
                "photo": sum(c["mode"] == "photo" for c in cs),
                **_rates(cs),
            }
    for mode in ("photo", "dub"):
        cs = [c for c in rows if c["mode"] == mode]
        if cs:
            result[f"{mode}_cost"] = {
                "mark_pct": round(100 * sum(c["mark_s"] for c in cs) / sum(c["total_s"] for c in cs), 2),
                "sign_pct": round(100 * sum(c["sign_s"] for c in cs) / sum(c["total_s"] for c in cs), 2),
                "psnr_outputs_min": round(min(ps), 2) if (ps := [c["psnr"] for c in cs if c["psnr"]]) else None,
                "psnr_outputs_mean": round(float(np.mean(ps)), 2) if ps else None,
                "psnr_mark_alone": [round(c["psnr_mark"], 2) for c in cs if "psnr_mark" in c],
            }
    result["strip"] = {
        "label_left": sum(c.get("strip_label", False) for c in rows),
        "manifest": sorted({c.get("strip_manifest", "") for c in rows}),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps({"summary": result, "clips": rows, "marked_real": real_rows}, indent=1))


if __name__ == "__main__":
    main()
