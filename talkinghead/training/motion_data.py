"""Training clips for the head-motion and blink model, from prepared caches.

Each clip is resampled to 25 fps and turned into: head pose relative to the clip's mean (the photo's
own pose is the neutral at inference, so only movement is learned), lightly smoothed to remove the
landmark tracker's frame-to-frame noise; the speech cues of `audio.features.prosody` (zeros and an
"audio absent" flag for motion clips without sound); and blink onsets and closed-eye durations found
exactly as `metrics.mouth.count_blinks` finds them on real or generated video.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkinghead.audio.features import N_PROSODY, prosody
from talkinghead.face.track import FaceTrack
from talkinghead.metrics.mouth import measure_track
from talkinghead.motion.driving import driver_motion

FPS = 25.0


@dataclass(frozen=True)
class MotionClip:
    name: str
    group: str  # "grid" (studio speaker, head nearly still), "varied" (talking, with audio), "motion" (no audio)
    pose: np.ndarray  # (T, 5) yaw, pitch, roll (deg), x, y (inter-ocular units), clip mean removed
    audio: np.ndarray  # (T, N_PROSODY + 1) speech cues + audio-present flag
    onsets: np.ndarray  # (T,) bool, a blink starts at this frame
    valid: np.ndarray  # (T,) bool, a face was tracked near this frame
    durations: np.ndarray  # closed-eye spans (s) of this clip's blinks


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    half = int(3 * sigma) + 1
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    k /= k.sum()
    xp = np.pad(x, ((half, half), (0, 0)), mode="edge")
    return np.stack([np.convolve(xp[:, c], k, mode="valid") for c in range(x.shape[1])], 1)


def blink_runs(ear: np.ndarray, depth: float = 0.6, min_frames: int = 2) -> tuple[np.ndarray, list[int]]:
    """Start frames and lengths of blinks: eye-closed runs (EAR below 75 % of its median, as count_blinks)
    that dip below `depth` x the median and last `min_frames` or more. The extra conditions drop the
    tracker's one-frame flickers and shallow squints, which would otherwise teach the model ~35 "blinks"
    a minute where a stricter look finds ~25 (measured on the varied training speakers)."""
    e = np.nan_to_num(ear, nan=np.nanmedian(ear) if np.isfinite(ear).any() else 0.0)
    med = np.median(e)
    closed = np.concatenate([[False], e < 0.75 * med, [False]])
    d = np.diff(closed.astype(np.int8))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    keep = [k for k, (a, b) in enumerate(zip(starts, ends)) if b - a >= min_frames and e[a:b].min() < depth * med]
    return starts[keep], [int(ends[k] - starts[k]) for k in keep]


def group_of(name: str, has_audio: bool) -> str:
    if not has_audio:
        return "motion"
    return "grid" if "grid" in name else "varied"


def load_motion_clip(path: Path, reference: np.ndarray, min_found: float = 0.8) -> MotionClip | None:
    """One prepared clip as 25 fps training arrays; None when too few frames show a face."""
    z = np.load(path)
    track = FaceTrack(z["times"], z["points"])
    if len(track.times) < 20 or track.found.mean() < min_found:
        return None
    pose, _ = driver_motion(track, reference)
    ear = measure_track(track).eyes
    t = np.arange(0.0, track.times[-1], 1.0 / FPS)
    n = len(t)
    pose25 = np.stack([np.interp(t, track.times, pose[:, c]) for c in range(5)], 1)
    pose25 = _smooth(pose25, 1.0)
    pose25 -= pose25.mean(0)
    found = track.found.astype(np.float64)
    valid = np.interp(t, track.times, found) > 0.99
    ok = np.isfinite(ear)
    ear25 = np.interp(t, track.times[ok], ear[ok])
    starts, lengths = blink_runs(ear25)
    onsets = np.zeros(n, bool)
    onsets[starts] = True
    has_audio = "audio" in z.files and len(z["audio"]) > 1600
    if has_audio:
        cues = prosody(z["audio"].astype(np.float32) / 32768.0, n, FPS)
        audio = np.column_stack([cues, np.ones(n, np.float32)])
    else:
        audio = np.zeros((n, N_PROSODY + 1), np.float32)
    name = path.stem
    return MotionClip(
        name,
        group_of(name, has_audio),
        pose25.astype(np.float32),
        audio.astype(np.float32),
        onsets,
        valid,
        np.asarray(lengths, np.float64) / FPS,
    )
