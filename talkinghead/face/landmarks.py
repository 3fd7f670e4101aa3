"""Face detection and 478-point landmarks with mediapipe's bundled models.

Photos: the full-range detector finds every face anywhere in the frame (small faces in big photos
too), then the face mesh runs on an enlarged square crop of each, so the mesh always sees a face at
its preferred scale. Videos: `FaceTracker` uses the mesh's own tracking, which is ~10 ms a frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import mediapipe as mp
import numpy as np

from talkinghead.face.native_logs import quiet_native_logs

_MESH_INPUT = 384  # side of the square crop given to the mesh for photos


@dataclass(frozen=True)
class DetectedFace:
    """One face in an image: landmarks (478, 3) in pixels (z scaled like x), box x0,y0,x1,y1."""

    points: np.ndarray
    box: tuple[float, float, float, float]
    score: float

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return (x1 - x0) * (y1 - y0)

    @property
    def center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2


def mesh_points(result, width: int, height: int) -> list[np.ndarray]:
    out = []
    for face in result.multi_face_landmarks or []:
        pts = np.array([[p.x * width, p.y * height, p.z * width] for p in face.landmark], np.float32)
        out.append(pts)
    return out


def detect_faces(image: np.ndarray, max_faces: int = 8) -> list[DetectedFace]:
    """All faces in an RGB uint8 image, largest first. Empty list when there is none."""
    with quiet_native_logs():
        return _detect_faces(image, max_faces)


def _detect_faces(image: np.ndarray, max_faces: int) -> list[DetectedFace]:
    h, w = image.shape[:2]
    boxes = _detect_boxes(image)
    faces: list[DetectedFace] = []
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.3
    ) as mesh:
        for x0, y0, x1, y1, score in boxes[:max_faces]:
            pts = mesh_in_crop(mesh, image, (x0, y0, x1, y1))
            if pts is not None:
                faces.append(DetectedFace(pts, _box_of(pts), float(score)))
        if not faces:  # the detector can miss stylised faces the mesh still finds
            for pts in mesh_points(mesh.process(np.ascontiguousarray(image)), w, h):
                faces.append(DetectedFace(pts, _box_of(pts), 0.5))
    faces = _dedupe(faces)
    faces.sort(key=lambda f: f.area, reverse=True)
    return faces


def _detect_boxes(image: np.ndarray) -> list[tuple[float, float, float, float, float]]:
    """Detector boxes (x0, y0, x1, y1, score) from the whole image and overlapping tiles.

    The detector sees a 192 px image, so a face smaller than ~1/15 of a big photo is invisible to it
    until the photo is tiled. Overlapping finds of the same face are merged later, on the meshes.
    """
    h, w = image.shape[:2]
    boxes: list[tuple[float, float, float, float, float]] = []
    with mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as det:
        for tiles in (1, 2, 4):
            if tiles > 1 and min(h, w) / tiles < 160:
                break
            if tiles == 4 and boxes:
                break
            grow = 1.5 if tiles > 1 else 1.0
            th, tw = min(h, int(np.ceil(h / tiles * grow))), min(w, int(np.ceil(w / tiles * grow)))
            steps = tiles * 2 - 1 if tiles > 1 else 1
            for y in np.linspace(0, h - th, steps).astype(int):
                for x in np.linspace(0, w - tw, steps).astype(int):
                    tile = np.ascontiguousarray(image[y : y + th, x : x + tw])
                    for d in det.process(tile).detections or []:
                        bb = d.location_data.relative_bounding_box
                        boxes.append(
                            (
                                x + bb.xmin * tw,
                                y + bb.ymin * th,
                                x + (bb.xmin + bb.width) * tw,
                                y + (bb.ymin + bb.height) * th,
                                float(d.score[0]),
                            )
                        )
    return _merge_boxes(boxes)


def _merge_boxes(
    boxes: list[tuple[float, float, float, float, float]],
) -> list[tuple[float, float, float, float, float]]:
    """Keep the best-scoring box of each group overlapping by IoU > 0.3."""
    kept: list[tuple[float, float, float, float, float]] = []
    for b in sorted(boxes, key=lambda b: -b[4]):
        if all(_iou(b, k) <= 0.3 for k in kept):
            kept.append(b)
    return kept


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _box_of(pts: np.ndarray) -> tuple[float, float, float, float]:
    return (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))


def mesh_in_crop(mesh, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
    """Run the mesh on a square crop of side 2x the box, padded where it leaves the image: the mesh then
    always sees a face at its preferred scale. Landmarks in `image` pixels, or None."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = 2.0 * max(x1 - x0, y1 - y0)
    scale = _MESH_INPUT / side
    # affine: image -> crop
    m = np.array([[scale, 0, _MESH_INPUT / 2 - scale * cx], [0, scale, _MESH_INPUT / 2 - scale * cy]], np.float32)
    crop = cv2.warpAffine(
        image,
        m,
        (_MESH_INPUT, _MESH_INPUT),
        flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    found = mesh_points(mesh.process(crop), _MESH_INPUT, _MESH_INPUT)
    if not found:
        return None
    pts = found[0]
    pts[:, 0] = (pts[:, 0] - m[0, 2]) / scale
    pts[:, 1] = (pts[:, 1] - m[1, 2]) / scale
    pts[:, 2] = pts[:, 2] / scale
    return pts


def _dedupe(faces: list[DetectedFace]) -> list[DetectedFace]:
    """Drop meshes that landed on the same face from two overlapping detections."""
    kept: list[DetectedFace] = []
    for f in sorted(faces, key=lambda f: f.score, reverse=True):
        if all(np.linalg.norm(np.subtract(f.center, k.center)) > 0.3 * np.sqrt(k.area) for k in kept):
            kept.append(f)
    return kept


class VideoMesh:
    """mediapipe's face mesh in video mode (it tracks the face between calls), with its start-up log lines
    muted (see native_logs): the one set-up both the tracker below and the dub's face follower use."""

    def __init__(self, min_confidence: float = 0.5) -> None:
        self._calls = 0
        with quiet_native_logs():
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=False,
                max_num_faces=1,
                refine_landmarks=True,
                min_detection_confidence=min_confidence,
                min_tracking_confidence=min_confidence,
            )

    def process(self, rgb: np.ndarray):  # -> mediapipe's result object
        self._calls += 1
        if self._calls <= 3:  # the graph's subgraphs log on their first inferences
            with quiet_native_logs():
                return self._mesh.process(rgb)
        return self._mesh.process(rgb)

    def close(self) -> None:
        self._mesh.close()


class FaceTracker:
    """Landmarks frame by frame through a video, using the mesh's tracking between frames."""

    def __init__(self, min_confidence: float = 0.5) -> None:
        self._mesh = VideoMesh(min_confidence)

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        """Landmarks (478, 3) in pixels for an RGB frame, or None when no face is found."""
        h, w = frame.shape[:2]
        found = mesh_points(self._mesh.process(np.ascontiguousarray(frame)), w, h)
        return found[0] if found else None

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
