"""Identity distance with dlib's face-recognition ResNet (128-d; the optional [metrics] extra).

Distance is Euclidean between descriptors, as dlib defines it: below ~0.6 reads as the same person.
The model files come from the face-recognition-models package; it is never imported (its import needs
pkg_resources), only its files are read.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import numpy as np


@functools.lru_cache(maxsize=1)
def _models():
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or importlib.util.find_spec("dlib") is None or not spec.submodule_search_locations:
        return None
    import dlib

    d = os.path.join(spec.submodule_search_locations[0], "models")
    return (
        dlib.shape_predictor(os.path.join(d, "shape_predictor_5_face_landmarks.dat")),
        dlib.face_recognition_model_v1(os.path.join(d, "dlib_face_recognition_resnet_model_v1.dat")),
    )


def available() -> bool:
    return _models() is not None


def face_descriptor(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    """128-d descriptor of the face whose mesh landmarks are `points` (box taken from them)."""
    import dlib

    models = _models()
    if models is None:
        raise RuntimeError("identity metric needs: pip install 'talkinghead[metrics]'")
    sp, rec = models
    x0, y0 = points[:, :2].min(0)
    x1, y1 = points[:, :2].max(0)
    rect = dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
    shape = sp(np.ascontiguousarray(frame), rect)
    return np.asarray(rec.compute_face_descriptor(np.ascontiguousarray(frame), shape), np.float32)
