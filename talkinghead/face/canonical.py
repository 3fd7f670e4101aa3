"""Canonical face frame: a similarity fit on rigid points.

Expressing landmarks in a frame where the head is frontal, centred and of unit size (inter-ocular
distance 1) makes motion identity- and pose-independent, so it can be learned from one set of speakers
and applied to any face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talkinghead.face.indices import LEFT_IRIS, RIGHT_IRIS, RIGID


@dataclass(frozen=True)
class Similarity:
    """x_canonical = scale * rotation @ x + translation (row vectors: x @ R.T)."""

    rotation: np.ndarray  # (3, 3)
    scale: float
    translation: np.ndarray  # (3,)

    def apply(self, pts: np.ndarray) -> np.ndarray:
        return (self.scale * pts @ self.rotation.T + self.translation).astype(np.float32)

    def invert(self, pts: np.ndarray) -> np.ndarray:
        return (((pts - self.translation) / self.scale) @ self.rotation).astype(np.float32)


def umeyama(src: np.ndarray, dst: np.ndarray) -> Similarity:
    """Least-squares similarity mapping src (N,3) onto dst (N,3) (Umeyama 1991)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1
    rot = u @ sign @ vt
    var_s = (s**2).sum() / len(src)
    scale = float(np.trace(np.diag(sig) @ sign) / max(var_s, 1e-12))
    trans = mu_d - scale * rot @ mu_s
    return Similarity(rot.astype(np.float64), scale, trans.astype(np.float64))


def fit_canonical(points: np.ndarray, reference: np.ndarray) -> Similarity:
    """Similarity that maps a face's landmarks (pixels) onto the canonical reference shape."""
    return umeyama(points[RIGID].astype(np.float64), reference[RIGID].astype(np.float64))


def rotation_to_euler(rot: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) in degrees of a rotation matrix (R = Rz(roll) Ry(yaw) Rx(pitch))."""
    yaw = np.degrees(np.arcsin(np.clip(-rot[2, 0], -1.0, 1.0)))
    pitch = np.degrees(np.arctan2(rot[2, 1], rot[2, 2]))
    roll = np.degrees(np.arctan2(rot[1, 0], rot[0, 0]))
    return np.array([yaw, pitch, roll], dtype=np.float32)


def euler_to_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Inverse of `rotation_to_euler` (degrees)."""
    y, p, r = np.radians([yaw, pitch, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def generalized_procrustes(shapes: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Mean shape of many faces (K, 478, 3), frontal, centred on the nose bridge, unit eye distance."""
    ref = normalize_reference(shapes[0].astype(np.float64))
    for _ in range(iterations):
        aligned = np.stack([fit_canonical(s, ref).apply(s) for s in shapes])
        ref = normalize_reference(aligned.mean(0))
    return ref.astype(np.float32)


def normalize_reference(shape: np.ndarray) -> np.ndarray:
    """Centre on point 168 (nose bridge), unit inter-ocular distance, eyes level."""
    s = shape - shape[168]
    eye = s[RIGHT_IRIS[0]] - s[LEFT_IRIS[0]]
    s = s / np.linalg.norm(eye[:2])
    ang = np.arctan2(eye[1], eye[0])
    c, si = np.cos(-ang), np.sin(-ang)
    rz = np.array([[c, -si, 0], [si, c, 0], [0, 0, 1]])
    return s @ rz.T
