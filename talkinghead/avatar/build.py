"""One pass over a clip of the person talking -> an avatar (reference frame, mouths, lids, style).

Per tracked frame: the head turn (fit to the canonical face), the eye aspect ratio and the lip gap
score the frame as a reference (frontal, eyes open, mouth closed, sharp: the best is kept as RGB);
open mouths go to a MouthCollector (render/mouth_bank.py, as in dubbing); the frame with the lowest eye
aspect ratio gives the closed-lid crops. After the pass, `driver_motion` (motion/driving.py) turns the
landmarks into pose and lid tracks, whose spread and blink count are the person's motion style, and
the filmed mouth motion with the clip's audio adapts the lips model (`articulation`, avatar/adapt.py).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from talkinghead.avatar.adapt import Segment, adapt_lips, fingerprint, with_head
from talkinghead.avatar.file import Avatar, AvatarStyle, LipsAdapter, save_avatar
from talkinghead.errors import InputError, NoFaceError, require_file
from talkinghead.face.canonical import fit_canonical, rotation_to_euler
from talkinghead.face.follow import FaceChoice, FaceFollower, usable
from talkinghead.face.indices import FACE_OVAL, LIP_BOTTOM, LIP_TOP, eye_aspect_ratio, inter_ocular, mouth_opening
from talkinghead.face.track import FaceTrack
from talkinghead.media.frame_fetch import FrameFetcher
from talkinghead.media.video_reader import probe_video
from talkinghead.motion.mouth import MouthModel
from talkinghead.render.eyes import eye_crop
from talkinghead.render.mouth_bank import MouthCollector
from talkinghead.types import TrackStatus, lip_gap
from talkinghead.weights import WeightsRef

Progress = Callable[[int, int], None]
MIN_FRAMES = 25  # frames with a usable face: fewer cannot say anything about the person
POSE_SCALE = (0.3, 2.5)  # bounds of the per-axis pose scale
USUAL_BLINKS, PRIOR_MIN = 17.0, 0.5  # blink rate of a short clip is shrunk towards 17/min as if by 30 s of it
CLOSED_EAR = 0.5  # a blink frame's eye aspect ratio is below this share of the open level
LIP_GAIN = (0.7, 1.4)  # bounds of the articulation gain: a few seconds of clip cannot ruin the lips model


def _fingerprint(path: str) -> dict[str, object]:
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return {"name": os.path.basename(path), "bytes": os.path.getsize(path), "sha256": digest}


def _reference_score(yaw: float, pitch: float, ear: float, opening: float, sharp: float) -> float:
    """Higher is better: frontal (a 10 degree turn costs 1), eyes open, mouth closed, sharp."""
    return -(abs(yaw) + abs(pitch)) / 10.0 + 20.0 * ear - 20.0 * opening + 0.5 * float(np.log1p(sharp))


def _sharpness(frame, points: np.ndarray) -> float:
    """Laplacian variance of the luma inside the face box (no RGB conversion)."""
    oval = points[FACE_OVAL, :2]
    x0, y0 = np.maximum(np.floor(oval.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(oval.max(0)).astype(int), [frame.width, frame.height])
    if x1 - x0 < 8 or y1 - y0 < 8:
        return 0.0
    return float(cv2.Laplacian(np.ascontiguousarray(frame.y[y0:y1, x0:x1]), cv2.CV_32F).var())


def _eye_crops(frame, points: np.ndarray) -> np.ndarray:
    """Both eyes' crops (2, EYE_H, EYE_W, 3), converting only the box round the eyes to RGB."""
    from talkinghead.face.indices import LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR

    eyes = points[LEFT_EYE_CONTOUR + RIGHT_EYE_CONTOUR, :2]
    pad = 0.6 * inter_ocular(points)
    x0, y0, x1, y1 = frame.clip(
        eyes[:, 0].min() - pad, eyes[:, 1].min() - pad, eyes[:, 0].max() + pad, eyes[:, 1].max() + pad
    )
    rgb = frame.region(x0, y0, x1, y1)
    local = points[:, :2] - [x0, y0]
    return np.stack([eye_crop(rgb, local, 0), eye_crop(rgb, local, 1)])


def lip_gain(
    model: MouthModel, samples: np.ndarray, fps: float, real_gaps: np.ndarray
) -> tuple[float, dict[str, float]]:
    """Articulation amplitude, bounded: the ratio of the filmed lip-gap spread (std over the frames with a
    face) to the spread `model` predicts on the clip's own audio, clipped to LIP_GAIN."""
    geo = model.geometry
    offsets = model.predict(samples, len(real_gaps), fps)
    closed = geo.close(geo.reference)
    shape = closed.copy()
    pred = np.empty(len(real_gaps))
    for k, off in enumerate(offsets):
        shape[geo.indices, :2] = closed[geo.indices, :2] + off
        pred[k] = lip_gap(shape)
    ok = np.isfinite(real_gaps)
    real_sd, pred_sd = float(real_gaps[ok].std()), float(pred[ok].std())
    gain = float(np.clip(real_sd / max(pred_sd, 1e-6), *LIP_GAIN))
    return gain, {"filmed_gap_std": round(real_sd, 5), "predicted_gap_std": round(pred_sd, 5)}


def articulation(
    video: str, points: np.ndarray, real_gaps: np.ndarray, lips: WeightsRef = "lips"
) -> tuple[float, LipsAdapter | None, dict[str, object] | None]:
    """The person's articulation: the lips model's output layer adapted to the clip's own audio -> mouth
    pairs (avatar/adapt.py; None when it falls back to the shared layer), then the bounded gain of the
    filmed lip-gap spread over that model's. Gain 1.0 and nothing else for a clip without sound or face."""
    from talkinghead.face.mouth_motion import mouth_offsets
    from talkinghead.media import load_audio

    info = probe_video(video)
    if not info.has_audio or np.isfinite(real_gaps).sum() < MIN_FRAMES:
        return 1.0, None, None
    model = MouthModel(lips)
    if LIP_TOP not in model.geometry.indices or LIP_BOTTOM not in model.geometry.indices:
        return 1.0, None, None
    samples = load_audio(video).samples
    offsets, valid, _ = mouth_offsets(points, model.geometry.reference)
    fitted = adapt_lips(model, [Segment(samples, info.fps, offsets, valid)])
    used = with_head(model, fitted.adapter) if fitted.adapter is not None else model
    gain, spread = lip_gain(used, samples, info.fps, real_gaps)
    return gain, fitted.adapter, {**spread, "lips": fingerprint(model), "adaptation": fitted.report}


def _blinks(lids: np.ndarray) -> int:
    """Blinks in a lid-closure track: rises through 0.5."""
    shut = lids >= 0.5
    return int((shut[1:] & ~shut[:-1]).sum() + (1 if len(shut) and shut[0] else 0))


def build_avatar(
    video: str | os.PathLike[str],
    out: str | os.PathLike[str],
    face: str = "auto",
    photo: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    lips: WeightsRef = "lips",
) -> Path:
    """Clip of the person talking (+ optional photo to use as the reference) -> avatar file at `out`.
    `lips`: the lips weights to adapt (those of the Animator that will animate it)."""
    from talkinghead.motion.driving import driver_motion
    from talkinghead.weights import load_weights

    started = time.perf_counter()
    src = require_file(video, "video file")
    choice = FaceChoice.parse(face)
    photo_rgb = None
    if photo is not None:
        from talkinghead.face.landmarks import detect_faces
        from talkinghead.media import load_image

        photo_rgb = load_image(photo)
        if not detect_faces(photo_rgb):
            raise NoFaceError(
                f"No face was found in the photo '{os.fspath(photo)}'; use one where the face is clearly visible."
            )
    reference = load_weights(lips).tensors["reference"].numpy()
    total = probe_video(src).n_frames
    if choice.mode == "auto":  # several people in shot: the one whose mouth moves, as in dubbing
        from talkinghead.face.choice import speaking_face

        with FrameFetcher(src) as fetch:
            speaker = speaking_face(frame for _, frame in fetch.scan())
        if speaker is not None:
            choice = FaceChoice("point", point=speaker[0])
    times, points, gaps = [], [], []
    mouths = MouthCollector()
    best_ref: tuple[float, int, np.ndarray, np.ndarray] | None = None  # score, index, rgb, points
    closed: tuple[float, int, np.ndarray] | None = None  # eye aspect ratio, index, crops
    with FrameFetcher(src) as fetch, FaceFollower(choice) as follower:
        tb = float(fetch.time_base)
        for k, (pts, frame) in enumerate(fetch.scan()):
            times.append(pts * tb)
            found = follower(frame)
            sim = fit_canonical(found, reference) if found is not None else None
            if found is None or sim is None or usable(found, sim, frame.width, frame.height) != TrackStatus.OK:
                points.append(np.full((478, 3), np.nan, np.float32))
                gaps.append(np.nan)
            else:
                points.append(found.astype(np.float32))
                gaps.append(lip_gap(sim.apply(found)))
                iod = inter_ocular(found)
                yaw, pitch, _ = rotation_to_euler(sim.rotation)
                ear, opening = eye_aspect_ratio(found), mouth_opening(found)
                mouths.add(k, frame, found, iod)
                if photo_rgb is None:
                    geometric = _reference_score(yaw, pitch, ear, opening, 0.0)
                    if best_ref is None or geometric + 4.0 > best_ref[0]:  # sharpness can add at most ~4
                        score = _reference_score(yaw, pitch, ear, opening, _sharpness(frame, found))
                        if best_ref is None or score > best_ref[0]:
                            best_ref = (score, k, frame.rgb().copy(), found.copy())
                if abs(yaw) < 25 and abs(pitch) < 25 and (closed is None or ear < closed[0]):
                    closed = (ear, k, _eye_crops(frame, found))
            if progress:
                progress(k + 1, max(total, k + 1))
    track = FaceTrack(np.asarray(times, np.float64), np.stack(points) if points else np.zeros((0, 478, 3), np.float32))
    n_ok = int(track.found.sum())
    if n_ok < MIN_FRAMES:
        raise InputError(
            f"The video '{src}' shows a usable face in only {n_ok} frame(s); an avatar needs a clip "
            "of at least a few seconds where the face is clearly visible."
        )
    motion = driver_motion(track, reference)
    ok = track.found
    duration_min = max(float(track.times[-1] - track.times[0]), 1e-3) / 60.0
    natural = load_weights("motion").tensors["model.pose_std"].numpy().astype(np.float64)
    pose_std = motion.pose[ok].std(0).astype(np.float64)
    pose_scale = np.clip(pose_std / natural, *POSE_SCALE)
    blinks = _blinks(motion.lids)
    rate = (blinks + USUAL_BLINKS * PRIOR_MIN) / (duration_min + PRIOR_MIN)
    ears = np.array([eye_aspect_ratio(p) for p in track.points[ok]])
    open_level = float(np.percentile(ears, 90))
    eyes = closed[2] if closed is not None and closed[0] < CLOSED_EAR * open_level else None
    if photo_rgb is not None:
        ref_rgb = photo_rgb
        from talkinghead.face.landmarks import detect_faces

        f0 = detect_faces(photo_rgb)[0]
        face_point = (float(f0.center[0]), float(f0.center[1]))
        ref_meta: dict[str, object] = {"from": "photo", "name": os.path.basename(os.fspath(photo or ""))}
    else:
        assert best_ref is not None
        ref_rgb, ref_pts = best_ref[2], best_ref[3]
        face_point = (float(ref_pts[:, 0].mean()), float(ref_pts[:, 1].mean()))
        ref_meta = {
            "from": "clip",
            "frame": best_ref[1],
            "time_s": round(float(track.times[best_ref[1]]), 3),
            "score": round(best_ref[0], 3),
        }
    gain, adapter, gain_info = articulation(src, track.points, np.asarray(gaps, np.float64), lips)
    from talkinghead import __version__

    meta = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "talkinghead": __version__,
        "source": _fingerprint(src),
        "frames": len(track.times),
        "frames_with_face": n_ok,
        "duration_s": round(duration_min * 60.0, 3),
        "reference": ref_meta,
        "blinks_filmed": blinks,
        "articulation": gain_info,
        "eyes": (
            {"frame": closed[1], "eye_aspect_ratio": round(float(closed[0]), 4), "open_level": round(open_level, 4)}
            if eyes is not None and closed is not None
            else None
        ),
        "build_s": round(time.perf_counter() - started, 2),
    }
    style = AvatarStyle(
        pose_std=[round(float(v), 5) for v in pose_std],
        pose_scale=[round(float(v), 4) for v in pose_scale],
        blinks_per_min=round(float(rate), 2),
        lip_gain=round(gain, 4),
    )
    avatar = Avatar(
        reference=np.ascontiguousarray(ref_rgb),
        face_point=face_point,
        bank=mouths.bank(),
        eyes_closed=eyes,
        style=style,
        meta=meta,
        lips=adapter,
    )
    return save_avatar(avatar, out)
