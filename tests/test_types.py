"""The stage-boundary types and the shared helpers both modes use: mouth geometry, resampling, model loading."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.errors import InputError
from talkinghead.motion.resample import at_rate, pingpong_times, resample
from talkinghead.types import Motion, TrackStatus, lip_gap
from talkinghead.weights import load_model, resolve


@pytest.fixture(scope="module")
def geometry():
    from talkinghead.motion.mouth import MouthModel

    return MouthModel().geometry


def test_close_mouth_reaches_the_asked_gap_and_keeps_the_rest(geometry):
    face = geometry.reference.copy()
    opened = face.copy()
    opened[geometry.indices, :2] += 0.3 * geometry.open_direction
    assert lip_gap(opened) > lip_gap(face) + 0.1
    closed = geometry.close(opened, closed_gap=lip_gap(face))
    assert lip_gap(closed) == pytest.approx(lip_gap(face), abs=0.02)
    others = np.setdiff1d(np.arange(478), geometry.indices)
    np.testing.assert_array_equal(closed[others], opened[others])
    np.testing.assert_array_equal(geometry.close(face, closed_gap=10.0), face)  # already closer than asked


def test_without_opening_removes_only_the_opening_component(geometry):
    offset = np.zeros((478, 3), np.float32)
    offset[geometry.indices, :2] = 0.2 * geometry.open_direction
    assert np.abs(geometry.without_opening(offset)).max() < 1e-6
    sideways = np.zeros((478, 3), np.float32)
    sideways[:, 2] = 1.0  # z is never touched
    np.testing.assert_allclose(geometry.without_opening(sideways), sideways)


def test_resample_interpolates_holds_ends_and_keeps_trailing_shape():
    values = np.arange(10, dtype=np.float32)[:, None, None] * np.ones((1, 3, 2), np.float32)
    out = at_rate(values, 25.0, np.array([-1.0, 0.02, 0.1, 5.0]))
    assert out.shape == (4, 3, 2)
    np.testing.assert_allclose(out[:, 0, 0], [0.0, 0.5, 2.5, 9.0], atol=1e-5)
    vfr = resample(np.array([0.0, 1.0, 3.0]), np.array([0.0, 0.1, 0.5]), np.array([0.05, 0.3]))
    np.testing.assert_allclose(vfr, [0.5, 2.0])


def test_pingpong_times_turn_at_the_ends():
    t = pingpong_times(np.array([0.0, 1.0, 2.0, 2.5, 4.0]), 0.0, 2.0)
    np.testing.assert_allclose(t, [0.0, 1.0, 2.0, 1.5, 0.0])


def test_motion_checks_its_shapes():
    Motion(np.zeros((3, 5, 2)), np.zeros(3), np.zeros((3, 5)), 25.0)
    with pytest.raises(ValueError):
        Motion(np.zeros((3, 5, 2)), np.zeros(4), np.zeros((3, 5)), 25.0)


def test_track_status_reasons():
    assert TrackStatus.OK.reason == "dubbed" and TrackStatus(3).reason == "profile"


def test_load_model_refuses_files_that_do_not_fit(tmp_path):
    for kind in ("lips", "motion", "sync", "emotions", "mouth"):
        assert load_model(kind).weights.metadata["format"] == f"talkinghead-{kind}-1"
    with pytest.raises(InputError, match="not a lips model"):
        load_model("lips", resolve("sync"))
    with pytest.raises(InputError, match="does not exist"):
        load_model("lips", tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(InputError, match="not a readable safetensors file"):
        load_model("lips", junk)
