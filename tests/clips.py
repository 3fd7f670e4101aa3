"""Test clips made from the shipped demo face (no corpus)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def smooth_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth colourful image (chroma subsampling loses little on it)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(seed)
    f = [rng.uniform(0.02, 0.08, 2) for _ in range(3)]
    img = np.stack([128 + 90 * np.sin(a * x + b * y + k) for k, (a, b) in enumerate(f)], -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def closed_mouth_clip(path: Path, animator, frames: int) -> Path:
    """The demo photo smiles with parted lips: close them (lower lip and jaw up) and film it still, 256 px."""
    from talkinghead.face.indices import LOWER_INNER_LIP, MOUTH_JAW, UPPER_INNER_LIP, inter_ocular
    from talkinghead.face.landmarks import detect_faces
    from talkinghead.media import VideoWriter
    from talkinghead.pipeline import DEMO_FACE
    from talkinghead.render import mouth_bank as mb
    from talkinghead.render.mouth_warp import warp_mouth

    img = animator.set_source(DEMO_FACE, size=256).image.copy()
    p = detect_faces(img)[0].points
    up, lo = p[UPPER_INNER_LIP[5], 1], p[LOWER_INNER_LIP[5], 1]
    jaw = np.array(MOUTH_JAW)
    t = p.copy()
    t[jaw[p[jaw, 1] > (up + lo) / 2], 1] -= 2.0 * (lo - up)
    warp_mouth(img, p, t, inter_ocular(p))
    q = detect_faces(img)[0].points
    assert mb.features(q, inter_ocular(q))[0] < mb.MIN_OPEN, "the mouth must read as closed"
    with VideoWriter(path, img.shape[1], img.shape[0], fps=25) as wr:
        for _ in range(frames):
            wr.write(img)
    return path


def reencode(src: Path, dst: Path, crf: int, scale: float = 1.0) -> Path:
    """A plain H.264 re-encode (no metadata, no manifest), optionally scaled: what a platform does to a video."""
    import os

    import av
    import cv2

    with av.open(os.fspath(src)) as ic:
        frames = [f.to_ndarray(format="rgb24") for f in ic.decode(video=0)]
    h, w = frames[0].shape[:2]
    ow, oh = int(w * scale) // 2 * 2, int(h * scale) // 2 * 2
    with av.open(os.fspath(dst), "w") as oc:
        s = oc.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt, s.options = ow, oh, "yuv420p", {"crf": str(crf), "preset": "veryfast"}
        for f in frames:
            f = cv2.resize(f, (ow, oh), interpolation=cv2.INTER_AREA) if scale != 1 else f
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                oc.mux(p)
        for p in s.encode(None):
            oc.mux(p)
    return dst


def x264_threading(path: Path) -> dict[str, str]:
    """x264's thread settings as it wrote them into the stream (its options SEI)."""
    data = path.read_bytes()
    start = data.index(b"options: ")
    words = data[start : data.index(b"\x00", start)].decode().split()
    return {k: v for k, _, v in (w.partition("=") for w in words) if k in ("threads", "sliced_threads")}
