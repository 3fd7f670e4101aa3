"""Head pose and blinks taken from a driving video (motion-controllable generation).

The driver's motion is measured relative to its own median pose and open-eye level, so only movement
transfers, not the driver's identity, framing or resting head angle; it is then applied to the photo
around the photo's own pose. A driver shorter than the speech plays forwards and backwards (no jump).
"""

from __future__ import annotations

import numpy as np

from talkinghead.errors import InputError
from talkinghead.face.canonical import fit_canonical, rotation_to_euler
from talkinghead.face.indices import eye_aspect_ratio, inter_ocular
from talkinghead.face.track import FaceTrack
from talkinghead.motion.resample import pingpong_times, resample
from talkinghead.types import HeadMotion


def _fill_missing(x: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Linear interpolation over frames without a face (per column)."""
    idx = np.arange(len(x))
    out = x.copy()
    for c in range(x.shape[1]):
        out[:, c] = np.interp(idx, idx[ok], x[ok, c])
    return out


def driver_motion(track: FaceTrack, reference: np.ndarray) -> HeadMotion:
    """Per driver frame: head pose and lid closure (conventions: `types.Motion`)."""
    ok = track.found
    if ok.sum() < 2:
        raise InputError("The driving video shows no trackable face; use a video where a face is visible.")
    n = len(track.times)
    rots = np.zeros((n, 3, 3))
    raw = np.zeros((n, 4))  # x, y of the nose bridge, inter-ocular distance, eye aspect ratio
    for k in np.flatnonzero(ok):
        p = track.points[k]
        rots[k] = fit_canonical(p, reference).rotation
        raw[k] = [p[168, 0], p[168, 1], inter_ocular(p), eye_aspect_ratio(p)]
    # neutral = the frame closest to the median orientation
    eul = np.array([rotation_to_euler(r.T) if o else np.zeros(3) for r, o in zip(rots, ok)])
    med = np.median(eul[ok], axis=0)
    neutral = np.flatnonzero(ok)[np.argmin(np.abs(eul[ok] - med).sum(1))]
    pose = np.zeros((n, 5))
    for k in np.flatnonzero(ok):
        # rotation carrying the neutral head to this frame's head, in the canonical frame
        pose[k, :3] = rotation_to_euler(rots[neutral] @ rots[k].T)
    iod = np.median(raw[ok, 2])
    pose[:, 3:] = (raw[:, :2] - raw[neutral, :2]) / iod
    pose = _fill_missing(pose, ok)
    ear = _fill_missing(raw[:, 3:4], ok)[:, 0]
    open_level = np.percentile(ear, 90)
    lids = np.clip((open_level - ear) / (0.55 * open_level), 0.0, 1.0)
    return HeadMotion(pose.astype(np.float32), lids.astype(np.float32))


def driven_motion(track: FaceTrack, reference: np.ndarray, n_frames: int, fps: float) -> HeadMotion:
    """The driver's head motion at the output frame times; past the driver's end it plays backwards, then
    forwards again (no jump)."""
    drv = driver_motion(track, reference)
    t = pingpong_times(np.arange(n_frames) / fps, float(track.times[0]), float(track.times[-1]))
    return HeadMotion(resample(drv.pose, track.times, t), resample(drv.lids, track.times, t))
