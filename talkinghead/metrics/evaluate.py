"""`talkinghead eval`: the field's metrics on any video, with or without a reference video.

Every metric is computed from what a viewer sees: the video's frames (face mesh re-measured) and its
audio (or another audio file). Keys, directions and the values measured on real video are documented
in `docs/METRICS.md`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import cv2
import numpy as np

from talkinghead.audio.features import log_mel, normalize
from talkinghead.errors import InputError
from talkinghead.face.indices import LOWER_INNER_LIP, LOWER_OUTER_LIP, UPPER_INNER_LIP, UPPER_OUTER_LIP, inter_ocular
from talkinghead.face.mouth_motion import mouth_offsets
from talkinghead.face.track import FaceTrack, track_video
from talkinghead.media import VideoInfo, iter_frames, load_audio, probe_video
from talkinghead.metrics import identity, quality
from talkinghead.metrics.image import ms_ssim, psnr, ssim
from talkinghead.metrics.mouth import count_blinks, measure_track
from talkinghead.metrics.sharpness import cpbd
from talkinghead.metrics.sync import SyncExpert, similarity_map, sync_from_map
from talkinghead.motion.driving import driver_motion
from talkinghead.weights import WeightsRef

_MOUTH = sorted(set(UPPER_OUTER_LIP + LOWER_OUTER_LIP + UPPER_INNER_LIP + LOWER_INNER_LIP))


def evaluate(
    video: str | os.PathLike[str],
    reference: str | os.PathLike[str] | None = None,
    audio: str | os.PathLike[str] | None = None,
    expert: SyncExpert | None = None,
    progress: Callable[[str], None] | None = None,
    sync_weights: WeightsRef = "sync",
) -> dict[str, float | int | None]:
    """All metrics as one flat dict (JSON-ready). The sync figures come from `expert`, else the expert in
    `sync_weights` (the shipped one by default, or a file written by `talkinghead train sync`)."""
    say = progress or (lambda _s: None)
    info = probe_video(video)
    if info.n_frames <= 1:
        raise InputError(f"'{os.fspath(video)}' is a single image, not a video; eval measures videos of speech.")
    if reference is not None:
        _check_reference(info, probe_video(reference), reference)
    if audio is None and not info.has_audio:
        raise InputError(f"{os.fspath(video)} has no audio track; pass the speech with --audio.")
    say("tracking the face")
    track = track_video(video)
    if track.found.sum() < 2:
        raise InputError(f"No face was found in {os.fspath(video)}.")
    expert = expert or SyncExpert(sync_weights)
    out: dict[str, float | int | None] = {
        "frames": len(track.times),
        "fps": info.fps,
        "face_found_ratio": float(track.found.mean()),
    }
    say("lip sync")
    speech = load_audio(audio if audio is not None else video).samples
    offsets, valid, _ = mouth_offsets(track.points, expert.reference)
    sims = similarity_map(expert.net, normalize(log_mel(speech)), offsets, info.fps)
    sync = sync_from_map(sims, valid)
    out.update(sync_offset_frames=sync.offset_frames, sync_confidence=sync.confidence, sync_distance=sync.distance)
    say("head pose and blinks")
    pose, _ = driver_motion(track, expert.reference)
    out["pose_std_deg"] = float(pose[:, :3].std(axis=0).mean())
    out["pose_jitter_deg"] = float(np.abs(np.diff(pose[:, :3], axis=0)).mean()) if len(pose) > 1 else 0.0
    blinks, _ = count_blinks(measure_track(track).eyes, info.fps)
    out["blink_rate_per_min"] = 60.0 * blinks / max(len(track.times) / info.fps, 1e-6)
    say("sharpness")
    out["cpbd"] = _mean_cpbd(video)
    if reference is not None:
        say("comparing with the reference")
        out.update(_reference_metrics(video, reference, track))
    return out


def _check_reference(info: VideoInfo, ref: VideoInfo, reference: str | os.PathLike[str]) -> None:
    """Frame-by-frame figures (PSNR, SSIM...) only mean something against a reference of the same size and
    length; anything else is refused rather than measured as a meaningless number."""
    if (ref.width, ref.height) != (info.width, info.height) or abs(ref.n_frames - info.n_frames) > 1:
        raise InputError(
            f"The reference '{os.fspath(reference)}' ({ref.width}x{ref.height}, {ref.n_frames} frames) "
            f"does not match the video ({info.width}x{info.height}, {info.n_frames} frames); frame-by-frame "
            "comparison needs the same size and length."
        )


def _mean_cpbd(video: str | os.PathLike[str], every: int = 5) -> float:
    """CPBD averaged over every 5th frame (sharpness changes slowly; this keeps eval fast)."""
    vals = [cpbd(f) for k, (_, f) in enumerate(iter_frames(video)) if k % every == 0]
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _reference_metrics(
    video: str | os.PathLike[str], reference: str | os.PathLike[str], track: FaceTrack
) -> dict[str, float | None]:
    ref_track = track_video(reference)
    n = min(len(track.times), len(ref_track.times))
    p, s, m, ident = [], [], [], []
    use_id = identity.available()
    # fid / lpips: only with the [quality] extra (their feature networks ship in those packages), else None
    use_fid, lp = quality.fid_available(), (quality.Lpips() if quality.lpips_available() else None)
    fid_keep = set(np.linspace(0, n - 1, min(n, quality.MAX_FID_FRAMES)).round().astype(int).tolist())
    fid_a: list[np.ndarray] = []
    fid_b: list[np.ndarray] = []
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    lpips: list[float] = []
    for (_, a), (_, b), k in zip(iter_frames(video), iter_frames(reference), range(n)):
        if use_fid and k in fid_keep:  # Inception sees 299 x 299; keeping only that bounds memory
            fid_a.append(cv2.resize(a, (299, 299), interpolation=cv2.INTER_AREA))
            fid_b.append(cv2.resize(b, (299, 299), interpolation=cv2.INTER_AREA))
        if lp is not None:
            pairs.append((a, b))
            if len(pairs) == quality.LPIPS_BATCH:
                lpips += lp.distances(pairs)
                pairs.clear()
        if use_id and k % 10 == 0 and track.found[k] and ref_track.found[k]:
            ident.append(
                float(
                    np.linalg.norm(
                        identity.face_descriptor(a, track.points[k]) - identity.face_descriptor(b, ref_track.points[k])
                    )
                )
            )
        if b.shape != a.shape:
            b = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA)
        p.append(psnr(a, b))
        s.append(ssim(a, b))
        m.append(ms_ssim(a, b))
    if lp is not None and pairs:
        lpips += lp.distances(pairs)
    both = track.found[:n] & ref_track.found[:n]
    lmd, fld = [], []
    for k in np.flatnonzero(both):
        a, b = track.points[k, :, :2], ref_track.points[k, :, :2]
        scale = 1.0 / max(inter_ocular(ref_track.points[k]), 1e-6)
        # align centres so a global shift does not count as a wrong mouth
        lmd.append(
            np.linalg.norm((a[_MOUTH] - a[_MOUTH].mean(0)) - (b[_MOUTH] - b[_MOUTH].mean(0)), axis=1).mean() * scale
        )
        fld.append(np.linalg.norm(a - b, axis=1).mean() * scale)
    return {
        "psnr": float(np.mean(p)),
        "ssim": float(np.mean(s)),
        "ms_ssim": float(np.mean(m)),
        "lmd": float(np.mean(lmd)) if lmd else float("nan"),
        "fld": float(np.mean(fld)) if fld else float("nan"),
        "identity_distance": float(np.mean(ident)) if ident else None,
        "fid": quality.fid(fid_a, fid_b) if use_fid and len(fid_a) > 1 else None,
        "lpips": float(np.mean(lpips)) if lpips else None,
    }
