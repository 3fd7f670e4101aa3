"""Faces: detection, landmarks, tracking, canonical frame."""
