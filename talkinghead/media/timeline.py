"""Which source frame is shown when, for a dub whose new audio is longer or shorter than the video.

Output frames keep the input's own timestamps (any constant or variable frame rate), so nothing is
resampled and A/V cannot drift. When the audio outlasts the video, frames are reused: ping-pong
(forwards, backwards, forwards... no visible jump), loop (restart) or freeze (hold the last frame).
When the audio ends first, the rest of the video is either kept (with its original sound) or cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOOP_MODES = ("pingpong", "loop", "freeze")
REST_MODES = ("keep", "trim")


@dataclass(frozen=True)
class Timeline:
    """source (M,) index of the input frame shown; pts (M,) output timestamps in the input's time
    base, increasing from 0; end_pts: where the last frame ends."""

    source: np.ndarray
    pts: np.ndarray
    end_pts: int

    def __len__(self) -> int:
        return len(self.source)


def plan_timeline(
    pts: np.ndarray, time_base: float, audio_duration: float, loop: str = "pingpong", rest: str = "keep"
) -> Timeline:
    """Plan output frames for input frames stamped `pts` (ticks of `time_base` seconds)."""
    if loop not in LOOP_MODES:
        raise ValueError(f"loop must be one of {LOOP_MODES}")
    if rest not in REST_MODES:
        raise ValueError(f"rest must be one of {REST_MODES}")
    pts = np.asarray(pts, np.int64) - int(pts[0])
    n = len(pts)
    steps = np.diff(pts)
    typical = int(np.median(steps)) if n > 1 else max(1, int(round(0.04 / time_base)))
    last_step = int(steps[-1]) if n > 1 else typical
    video_end = int(pts[-1]) + last_step
    audio_end = int(round(audio_duration / time_base))

    if audio_end <= video_end:
        if rest == "keep":
            return Timeline(np.arange(n), pts, video_end)
        keep = max(1, int(np.searchsorted(pts, audio_end, side="left")))
        return Timeline(np.arange(keep), pts[:keep], max(audio_end, int(pts[keep - 1]) + 1))

    src = list(range(n))
    out = list(pts)
    t = video_end
    # durations of each frame, so reused frames keep their own rhythm (variable frame rate too)
    dur = np.append(steps, last_step) if n > 1 else np.array([typical])
    k, forward = n - 1, False
    while t < audio_end:
        if loop == "loop":
            k = (k + 1) % n
        elif loop == "pingpong" and n > 1:  # bounce at both ends without showing an end frame twice
            if (forward and k == n - 1) or (not forward and k == 0):
                forward = not forward
            k = k + 1 if forward else k - 1
        src.append(k)
        out.append(t)
        t += typical if loop == "freeze" else int(dur[k])
    return Timeline(np.asarray(src, np.int64), np.asarray(out, np.int64), t)
