"""Follow one chosen face through a video, frame by frame, for dubbing.

mediapipe's own video tracker follows whichever face it happens to find, so with several people in
shot it can jump between them. Here the mesh runs on a crop around the chosen face's last position
(its tracking state stays valid because the face stays centred in the crop), and when the face is
lost (cutaway, occlusion) the whole frame is searched again every few frames and the face nearest
to where ours was is taken back. A frame whose face is too small or in profile is reported as
unusable rather than dubbed badly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talkinghead.errors import InputError
from talkinghead.face.canonical import Similarity, rotation_to_euler
from talkinghead.face.indices import MOUTH_JAW, inter_ocular
from talkinghead.face.landmarks import MESH_INPUT, DetectedFace, VideoMesh, crop_matrix, detect_faces, mesh_on_crop
from talkinghead.media.i420 import I420Frame
from talkinghead.types import TrackStatus

MIN_INTER_OCULAR = 10.0  # pixels: smaller faces are passed through
MAX_YAW = 55.0  # degrees: beyond this the far half of the mouth is hidden


@dataclass(frozen=True)
class FaceChoice:
    """Which face to dub: 'auto' (the speaking/largest one), an index (0 = largest) or a point."""

    mode: str = "auto"
    index: int = 0
    point: tuple[float, float] = (0.0, 0.0)

    @staticmethod
    def parse(text: str) -> FaceChoice:
        t = text.strip().lower()
        if t == "auto":
            return FaceChoice("auto")
        if t.isdigit():
            return FaceChoice("index", index=int(t))
        parts = t.split(",")
        if len(parts) == 2:
            try:
                x, y = float(parts[0]), float(parts[1])
            except ValueError:
                pass
            else:
                if x >= 0 and y >= 0:
                    return FaceChoice("point", point=(x, y))
        raise InputError(f"--face must be 'auto', a face number (0 = largest) or a pixel position 'x,y', not '{text}'.")

    def pick(self, faces: list[DetectedFace]) -> DetectedFace | None:
        """The chosen face among those found in one frame (largest first), or None."""
        if not faces:
            return None
        if self.mode == "index":
            return faces[self.index] if self.index < len(faces) else None
        if self.mode == "point":
            return min(faces, key=lambda f: _distance_to_box(self.point, f.box))
        return faces[0]


def _distance_to_box(p: tuple[float, float], box: tuple[float, float, float, float]) -> float:
    x0, y0, x1, y1 = box
    dx = max(x0 - p[0], 0.0, p[0] - x1)
    dy = max(y0 - p[1], 0.0, p[1] - y1)
    return float(np.hypot(dx, dy))


def usable(points: np.ndarray, to_canonical: Similarity, width: int, height: int) -> TrackStatus:
    """OK, or why a tracked face cannot be dubbed (too small, profile, mouth out of frame).
    `to_canonical` is the face's fit to the canonical frame (the caller needs it too)."""
    if inter_ocular(points) < MIN_INTER_OCULAR:
        return TrackStatus.TOO_SMALL
    yaw = rotation_to_euler(to_canonical.rotation)[0]
    if abs(float(yaw)) > MAX_YAW:
        return TrackStatus.PROFILE
    mouth = points[MOUTH_JAW, :2]
    if mouth.min() < 0 or mouth[:, 0].max() >= width or mouth[:, 1].max() >= height:
        return TrackStatus.MOUTH_OUT_OF_FRAME
    return TrackStatus.OK


class FaceFollower:
    """Call once per frame in order; returns the followed face's (478, 3) landmarks or None."""

    def __init__(self, choice: FaceChoice, redetect_every: int = 5) -> None:
        self.choice = choice
        self.redetect_every = max(1, redetect_every)
        self.box: tuple[float, float, float, float] | None = None  # last known, kept while lost
        self._tracking = False  # the previous frame had the face
        self._since_search = 0
        self._mesh = VideoMesh()

    def __call__(self, frame: I420Frame) -> np.ndarray | None:
        pts = self._follow(frame) if self._tracking else None
        if pts is None:
            self._tracking = False
            if self._since_search % self.redetect_every == 0:
                pts = self._search(frame)
            self._since_search += 1
        if pts is not None:
            self._tracking = True
            self._since_search = 0
            self.box = _box(pts)
        return pts

    def _follow(self, frame: I420Frame) -> np.ndarray | None:
        assert self.box is not None
        x0, y0, x1, y1 = self.box
        cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0, 1.0)
        rx0, ry0, rx1, ry1 = frame.clip(cx - half, cy - half, cx + half, cy + half)
        if rx1 - rx0 < 4 or ry1 - ry0 < 4:
            return None
        # the mesh's input (twice the box, scaled to its own size) is made from the planes directly: a
        # large face costs only the mesh input's pixels, not a conversion of the whole region to RGB
        m = crop_matrix(self.box)
        pts = mesh_on_crop(self._mesh, frame.warped_rgb(m, (MESH_INPUT, MESH_INPUT)), m)
        if pts is None:
            return None
        old, new = self.box, _box(pts)
        size = max(old[2] - old[0], old[3] - old[1])
        if np.hypot((new[0] + new[2] - old[0] - old[2]) / 2, (new[1] + new[3] - old[1] - old[3]) / 2) > 0.6 * size:
            return None  # a jump: the mesh latched onto something else (a cut); search again
        return pts

    def _search(self, frame: I420Frame) -> np.ndarray | None:
        faces = detect_faces(frame.rgb())
        if self.box is None:
            face = self.choice.pick(faces)
        else:
            face = _nearest(faces, self.box) or (self.choice.pick(faces) if self.choice.mode != "point" else None)
        return None if face is None else face.points

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> FaceFollower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _nearest(faces: list[DetectedFace], box: tuple[float, float, float, float]) -> DetectedFace | None:
    """The face that is plausibly the one last seen at `box`: similar size, not far away."""
    size = max(box[2] - box[0], box[3] - box[1])
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    best, best_d = None, 1.5 * size
    for f in faces:
        fs = max(f.box[2] - f.box[0], f.box[3] - f.box[1])
        d = float(np.hypot(f.center[0] - centre[0], f.center[1] - centre[1]))
        if 0.5 < fs / size < 2.0 and d < best_d:
            best, best_d = f, d
    return best


def _box(pts: np.ndarray) -> tuple[float, float, float, float]:
    return (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))
