"""Small pieces with hand-checkable answers."""

from __future__ import annotations

import numpy as np

from talkinghead.audio.features import MEL_FPS, frame_positions, log_mel, mel_slice
from talkinghead.face.canonical import euler_to_rotation, rotation_to_euler, umeyama


def test_umeyama_recovers_similarity():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 3))
    rot = euler_to_rotation(10, -5, 3)
    y = 2.5 * x @ rot.T + [1, 2, 3]
    sim = umeyama(x, y)
    np.testing.assert_allclose(sim.apply(x), y, atol=1e-5)
    np.testing.assert_allclose(sim.invert(y), x, atol=1e-5)
    np.testing.assert_allclose(rotation_to_euler(sim.rotation), [10, -5, 3], atol=1e-3)


def test_log_mel_rate_and_silence():
    x = np.zeros(16000 * 2, np.float32)
    x[16000:] = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    mel = log_mel(x)
    assert mel.shape == (2 * MEL_FPS, 80)
    assert mel[150:].max(axis=1).min() > mel[:90].max() + 10  # the tone band lights up only after 1 s


def test_frame_positions_follow_video_time_at_any_fps():
    for fps in (25.0, 29.97, 30.0, 23.976):
        pos = frame_positions(3000, fps)
        # frame k sits at k / fps seconds: no drift after 3000 frames, whatever the rate
        assert abs(pos[-1] / MEL_FPS - 2999 / fps) <= 0.5 / MEL_FPS
    np.testing.assert_array_equal(frame_positions(3, 25.0, first=10), [40, 44, 48])


def test_mel_slice_pads_outside_the_clip():
    mel = np.arange(10, dtype=np.float32)[:, None].repeat(2, 1)
    s = mel_slice(mel, -2, 3)
    np.testing.assert_array_equal(s[:, 0], [0, 0, 0, 1, 2])
    s = mel_slice(mel, 8, 12, fill=-1)
    np.testing.assert_array_equal(s[:, 0], [8, 9, -1, -1])


def test_warp_with_unchanged_landmarks_is_identity(demo_face):
    from talkinghead.face.landmarks import detect_faces
    from talkinghead.media import load_image
    from talkinghead.render.warp import MeshWarper

    img = load_image(demo_face)
    pts = detect_faces(img)[0].points
    out = MeshWarper(img, pts).warp(pts)
    assert np.abs(out.astype(int) - img).max() <= 1


def test_warp_moves_a_point_where_asked(demo_face):
    from talkinghead.face.landmarks import detect_faces
    from talkinghead.media import load_image
    from talkinghead.render.warp import MeshWarper

    img = load_image(demo_face)
    pts = detect_faces(img)[0].points
    moved = pts.copy()
    moved[:, 0] += 6.0  # whole face 6 px right
    out = MeshWarper(img, pts).warp(moved)
    x, y = int(pts[1, 0]), int(pts[1, 1])  # nose tip
    patch = img[y - 8 : y + 8, x - 8 : x + 8].astype(float)
    shifted = out[y - 8 : y + 8, x - 2 : x + 14].astype(float)
    assert np.abs(shifted - patch).mean() < np.abs(out[y - 8 : y + 8, x - 8 : x + 8].astype(float) - patch).mean()


def test_warp_reads_relative_to_its_region_as_an_absolute_map_would(demo_face):
    """warp_region reads the image from the region's corner on (cv2.WARP_RELATIVE_MAP): on a face whose region
    lies inside the image, that must give the pixels a plain absolute map over the whole image gives."""
    import cv2

    from talkinghead.face.landmarks import detect_faces
    from talkinghead.media import fit_size, load_image
    from talkinghead.render.warp import MeshWarper

    img = cv2.copyMakeBorder(
        fit_size(load_image(demo_face), 512), 256, 256, 256, 256, cv2.BORDER_CONSTANT, value=(128, 128, 128)
    )
    pts = detect_faces(img)[0].points
    warper = MeshWarper(img, pts)
    x0, y0, x1, y1 = warper.box
    assert x0 > 0 and y0 > 0 and x1 < img.shape[1] and y1 < img.shape[0]  # the region is not clipped
    moved = pts.copy()
    moved[:, 0] += 3.0
    moved[:, 1] -= 2.0  # the head moves
    moved[14:18, 1] += 12.0  # and the lower lip drops
    offsets = warper.backward_offsets(moved)
    grid = np.stack(np.meshgrid(np.arange(x0, x1), np.arange(y0, y1)), -1).astype(np.float32)
    ref = cv2.remap(img, grid + offsets, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    got = warper.warp_region(moved)
    diff = np.abs(got.astype(int) - ref)
    assert diff.max() <= 2 and diff.mean() < 0.01  # float rounding of the two maps, nothing else
    assert np.abs(got.astype(int) - img[y0:y1, x0:x1]).mean() > 1.0  # and it did move


def test_builtin_weights_are_checked(tmp_path, monkeypatch):
    import pytest

    from talkinghead import weights
    from talkinghead.errors import TalkingHeadError

    w = weights.load_weights("lips")
    assert "config" in w.metadata and "command" in w.metadata
    bad = tmp_path / "lips.safetensors"
    data = bytearray((weights.WEIGHTS_DIR / "lips.safetensors").read_bytes())
    data[-1] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(TalkingHeadError, match="corrupted"):
        weights.load_weights("lips")


def test_speech_embedding_is_causal_and_per_mel_frame():
    import pytest

    pytest.importorskip("openwakeword", reason="optional extra [embedding] not installed")
    from talkinghead.audio.embedding import speech_embedding

    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32)
    e = speech_embedding(x)
    assert e.shape == (300, 96) and np.isfinite(e).all()
    y = x.copy()
    y[24000:] = 0.0  # change only the future after 1.5 s
    f = speech_embedding(y)
    scale = e.std()
    # rows before 1.4 s cannot see the change (up to float noise of the mel model), later rows do
    assert np.abs(e[:140] - f[:140]).max() < 0.02 * scale
    assert np.abs(e[200:] - f[200:]).mean() > 0.2 * scale


def test_image_metrics_on_known_cases(demo_face):
    from talkinghead.media import load_image
    from talkinghead.metrics.image import PSNR_CAP, ms_ssim, psnr, ssim

    a = load_image(demo_face)
    noisy = np.clip(a.astype(int) + np.random.default_rng(0).normal(0, 10, a.shape), 0, 255).astype(np.uint8)
    assert psnr(a, a) == PSNR_CAP and ssim(a, a) == 1.0 and abs(ms_ssim(a, a) - 1.0) < 1e-9
    assert 27.5 < psnr(a, noisy) < 29.5  # sigma 10 noise: 20*log10(255/10) = 28.1 dB before clipping
    assert ssim(a, noisy) < 0.9 and ms_ssim(a, noisy) < ms_ssim(a, a)
    assert abs(ssim(a, noisy) - ssim(noisy, a)) < 1e-9


def test_cpbd_falls_with_blur(demo_face):
    import cv2

    from talkinghead.media import load_image
    from talkinghead.metrics.sharpness import cpbd

    a = load_image(demo_face)
    vals = [cpbd(cv2.GaussianBlur(a, (0, 0), s) if s else a) for s in (0, 1, 2)]
    assert vals[0] > vals[1] > vals[2] and vals[0] > 0.1


def test_long_speech_is_predicted_in_windows_with_the_same_result(monkeypatch):
    """Films are predicted window by window (flat memory); the windows must not show in the result."""
    from talkinghead.motion import mouth as mouth_mod

    rng = np.random.default_rng(0)
    t = np.arange(16000 * 12) / 16000
    speech = (
        0.3 * np.sin(2 * np.pi * 150 * t) * (np.sin(2 * np.pi * 1.3 * t) > 0) + 0.02 * rng.standard_normal(len(t))
    ).astype(np.float32)
    model = mouth_mod.MouthModel()
    whole = model.predict(speech, 300, 25.0)
    monkeypatch.setattr(mouth_mod, "WINDOW", 64)
    windowed = model.predict(speech, 300, 25.0)
    assert np.abs(whole).max() > 0.05
    np.testing.assert_allclose(windowed, whole, atol=1e-4)


def test_spread_rule_gives_speech_the_real_speakers_lip_spread():
    """The shipped lips file scales each clip's lip gap to the real speakers' spread (bounded); the rule is
    one function of the gap's std so a running estimate (streaming) can use it too."""
    from talkinghead.face.indices import LIP_BOTTOM, LIP_TOP
    from talkinghead.motion.mouth import MouthModel, speech_gate, spread_gain

    model = MouthModel()
    a, s = model.amplitude, model.spread
    assert s > 0
    assert abs(spread_gain(s / a, s, a) - a) < 1e-9
    assert spread_gain(1e-9, s, a) == 2.5 * a and spread_gain(100.0, s, a) == 0.5 * a
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 6) / 16000
    speech = (
        0.3 * np.sin(2 * np.pi * 150 * t) * (np.sin(2 * np.pi * 1.3 * t) > 0) + 0.02 * rng.standard_normal(len(t))
    ).astype(np.float32)
    out = model.predict(speech, 150, 25.0)
    gate = speech_gate(speech, 150, 25.0)
    idx = list(model.geometry.indices)
    on = gate > 0.5
    gap = (out[on, idx.index(LIP_BOTTOM), 1] - out[on, idx.index(LIP_TOP), 1]) / gate[on]
    assert abs(gap.std() - s) < 0.02 * s, f"speech gap spread {gap.std():.4f} vs the real speakers' {s:.4f}"
