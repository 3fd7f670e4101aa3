"""--pose-from: head pose and blinks follow a driving video of another face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from speech import SENTENCES, speech_with_pause

from talkinghead.face.track import track_video
from talkinghead.media import load_image
from talkinghead.motion.driving import driver_motion
from talkinghead.motion.resample import pingpong_times, resample
from talkinghead.pipeline import generate


@pytest.mark.slow
def test_output_pose_tracks_the_driver(animator, demo_face, wav_file, tmp_path):
    samples, _ = speech_with_pause(SENTENCES["ja"], "ja")
    audio = wav_file(samples)
    # the driver: the product's own output with strong seeded head motion
    driver = generate(demo_face, audio, tmp_path / "driver.mp4", animator=animator, size=256, seed=11, pose_scale=2.5)
    # another face: the demo face mirrored, scaled and placed off-centre in a wider frame
    face = cv2.flip(load_image(demo_face), 1)
    canvas = np.full((360, 480, 3), 90, np.uint8)
    canvas[20:340, 140:460] = cv2.resize(face, (320, 320))
    photo = tmp_path / "other.png"
    cv2.imwrite(str(photo), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    out = generate(photo, audio, tmp_path / "driven.mp4", animator=animator, seed=0, pose_from=str(driver))
    ref = animator.mouth.geometry.reference
    d_track, o_track = track_video(driver), track_video(out)
    d_pose, d_lids = driver_motion(d_track, ref)
    o_pose, o_lids = driver_motion(o_track, ref)
    n = min(len(d_pose), len(o_pose))
    for axis, name in ((0, "yaw"), (1, "pitch")):
        assert d_pose[:n, axis].std() > 1.0, f"the driver must move ({name})"
        r = np.corrcoef(d_pose[:n, axis], o_pose[:n, axis])[0, 1]
        print(f"{name}: driver std {d_pose[:n, axis].std():.2f} deg, r = {r:.3f}")
        assert r >= 0.7, f"output {name} must follow the driver (r={r:.2f})"
    # blinks follow the driver's
    assert np.corrcoef(d_lids[:n], o_lids[:n])[0, 1] > 0.5


def test_pingpong_has_no_jump():
    times = np.arange(50) / 25.0
    values = np.sin(times)[:, None]
    out = resample(values, times, pingpong_times(np.arange(200) / 25.0, times[0], times[-1]))
    assert np.abs(np.diff(out[:, 0])).max() <= np.abs(np.diff(values[:, 0])).max() + 1e-6
    np.testing.assert_allclose(out[:50, 0], values[:, 0], atol=1e-6)
