"""The analysed source face: everything about the photo computed once and reused every frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talkinghead.errors import NoFaceError
from talkinghead.face.canonical import Similarity, fit_canonical
from talkinghead.face.indices import inter_ocular
from talkinghead.face.landmarks import DetectedFace, detect_faces


@dataclass(frozen=True)
class SourceFace:
    """The photo's chosen face, analysed once (conventions: `talkinghead.types`)."""

    image: np.ndarray  # RGB uint8
    points: np.ndarray  # (478, 3) pixels
    to_canonical: Similarity
    canonical: np.ndarray  # (478, 3) the same points in the canonical frame
    inter_ocular: float  # pixels
    n_faces: int


def choose_face(faces: list[DetectedFace], index: int) -> DetectedFace:
    if not faces:
        raise NoFaceError("No face was found in the image; use a photo where one face is clearly visible.")
    if not 0 <= index < len(faces):
        raise NoFaceError(
            f"--face-index {index} is out of range: the image has {len(faces)} face(s), "
            f"numbered 0 (largest) to {len(faces) - 1}."
        )
    return faces[index]


def analyse_source(
    image: np.ndarray, reference: np.ndarray, face_index: int = 0, faces: list[DetectedFace] | None = None
) -> SourceFace:
    """Find the chosen face (0 = largest) and express it in the canonical frame of `reference`; `faces`
    are the image's `detect_faces`, when already found (photo mode finds them while the models load)."""
    if faces is None:
        faces = detect_faces(image)
    face = choose_face(faces, face_index)
    sim = fit_canonical(face.points, reference)
    return SourceFace(
        image=image,
        points=face.points,
        to_canonical=sim,
        canonical=sim.apply(face.points),
        inter_ocular=inter_ocular(face.points),
        n_faces=len(faces),
    )
