"""Which face to dub when `--face auto` meets several people in shot: the one who is speaking.

The mouths of up to four faces are followed for a few seconds from the first frame where several
are found; the one whose opening varies most is the speaker. When no mouth clearly moves more than
the others, the largest face is taken (the same answer as with one face in shot).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from talkinghead.face.follow import FaceChoice, FaceFollower
from talkinghead.face.indices import mouth_opening
from talkinghead.face.landmarks import detect_faces
from talkinghead.media.i420 import I420Frame

PROBE_FRAMES = 75  # frames each candidate's mouth is followed (3 s at 25 fps)
DETECT_EVERY = 10  # frames between face searches until several faces are found
CLEAR_MARGIN = 1.2  # the speaker's mouth must vary this much more than the runner-up's


def speaking_face(
    frames: Iterable[I420Frame], probe_frames: int = PROBE_FRAMES
) -> tuple[tuple[float, float], list[float]] | None:
    """(centre of the chosen face in the first frame with several faces, each candidate's score), or
    None when there is nothing to choose: no face or a single face in the first frame with a face
    (searched every DETECT_EVERY frames for DETECT_EVERY * probe_frames frames)."""
    followers: list[FaceFollower] = []
    candidates = []
    openings: list[list[float]] = []
    start = 0
    try:
        for k, frame in enumerate(frames):
            if not followers:
                if k >= DETECT_EVERY * probe_frames:
                    break
                if k % DETECT_EVERY:
                    continue
                faces = detect_faces(frame.rgb())
                if not faces:
                    continue
                if len(faces) == 1:
                    return None
                candidates = faces[:4]
                followers = [FaceFollower(FaceChoice("point", point=f.center)) for f in candidates]
                openings = [[] for _ in candidates]
                start = k
            if k - start >= probe_frames:
                break
            for f, o in zip(followers, openings):
                p = f(frame)
                if p is not None:
                    o.append(mouth_opening(p))
    finally:
        for f in followers:
            f.close()
    if not candidates:
        return None
    scores = [float(np.std(o)) if len(o) > 10 else 0.0 for o in openings]
    ranked = sorted(scores)
    best = candidates[int(np.argmax(scores))] if ranked[-1] > CLEAR_MARGIN * ranked[-2] else candidates[0]
    return best.center, scores
