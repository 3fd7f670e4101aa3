"""Articulation adaptation of avatars (talkinghead/avatar/adapt.py): it learns what the clip shows, stays
within its bound, and keeps the shared model when the clip cannot teach it anything. Synthetic mouth
tracks on the demo speech, so no video is rendered and no corpus is needed."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

from talkinghead.media import load_audio
from talkinghead.pipeline import DEMO_AUDIO

FPS = 25.0


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return load_audio(DEMO_AUDIO).samples[: 16000 * 8]


def _segment(samples: np.ndarray, offsets: np.ndarray):
    from talkinghead.avatar.adapt import Segment

    return Segment(samples, FPS, offsets.astype(np.float32), np.ones(len(offsets), bool))


def _frames(samples: np.ndarray) -> int:
    return int(len(samples) / 16000 * FPS)


def test_learns_a_person_who_opens_wider(animator, speech):
    """Filmed motion = the shared model's, 1.6 times wider (and a little noise): the adapted layer predicts it better on speech
    it was not fitted to (the held-out tail), within its cap, and the shared model is not changed."""
    from talkinghead.avatar.adapt import adapt_lips, fingerprint, with_head

    model = animator.mouth
    before = fingerprint(model)
    n = _frames(speech)
    shared = model.predict(speech, n, FPS)
    target = 1.6 * shared + np.random.default_rng(0).normal(0, 0.1 * shared.std(), shared.shape)
    fitted = adapt_lips(model, [_segment(speech, target)])
    rep = fitted.report
    assert fitted.adapter is not None, rep
    assert rep["held_out_error_adapted"] < 0.9 * rep["held_out_error_shared"], rep
    assert 0 < rep["change"] <= rep["cap"] + 1e-6, rep
    assert fitted.adapter.lips == before == fingerprint(model)  # the shared model is untouched
    adapted = with_head(model, fitted.adapter)
    tail = slice(int(0.75 * n), n)
    err = [np.abs(m.predict(speech, n, FPS)[tail] - target[tail]).mean() for m in (model, adapted)]
    assert err[1] < 0.9 * err[0], err


def test_silence_keeps_the_shared_model(animator):
    """5 s of a silent clip with a face moving at random: nothing to learn from, the shared layer stays."""
    from talkinghead.avatar.adapt import adapt_lips

    rng = np.random.default_rng(0)
    silent = np.zeros(16000 * 5, np.float32)
    m = len(animator.mouth.geometry.indices)
    fitted = adapt_lips(animator.mouth, [_segment(silent, rng.normal(0, 0.05, (125, m, 2)))])
    assert fitted.adapter is None, fitted.report  # digital silence reads as all speech to the gate: held out


def test_an_odd_speaker_stays_within_the_bound(animator, speech):
    """5 s of a face whose mouth moves at random with the speech: either the shared layer stays or the
    change is within the cap, which is tighter for 5 s than for 30 s of footage."""
    from talkinghead.avatar import adapt

    five = speech[: 16000 * 5]
    n = _frames(five)
    rng = np.random.default_rng(1)
    m = len(animator.mouth.geometry.indices)
    noise = np.cumsum(rng.normal(0, 0.02, (n, m, 2)), axis=0)  # a wandering mouth, unrelated to the speech
    fitted = adapt.adapt_lips(animator.mouth, [_segment(five, noise)])
    rep = fitted.report
    assert rep["cap"] < adapt.MAX_CHANGE  # less footage, a tighter bound
    if fitted.adapter is not None:
        assert rep["change"] <= rep["cap"] + 1e-6
        assert rep["held_out_error_adapted"] <= (1 - adapt.MIN_GAIN) * rep["held_out_error_shared"]


def test_versions_and_other_lips_weights(animator, tmp_path):
    """A version-1 avatar keeps its gain and the shared model; an avatar adapted from other lips weights
    falls back to the shared model with gain 1 and a warning; a matching one gets its layer."""
    from talkinghead.avatar import Avatar, AvatarStyle, load_avatar, save_avatar
    from talkinghead.avatar.adapt import fingerprint, for_avatar
    from talkinghead.avatar.file import LipsAdapter
    from talkinghead.render.mouth_bank import MouthBank

    model = animator.mouth
    head = model.net.head
    lips = LipsAdapter(head.weight.detach().numpy() * 1.1, head.bias.detach().numpy(), fingerprint(model))
    style = AvatarStyle(pose_std=[1.0] * 5, pose_scale=[1.0] * 5, blinks_per_min=17.0, lip_gain=1.2)
    av = Avatar(
        reference=np.zeros((8, 8, 3), np.uint8),
        face_point=(4.0, 4.0),
        bank=MouthBank.empty(),
        eyes_closed=None,
        style=style,
        meta={"articulation": {"lips": fingerprint(model)}},
        lips=lips,
    )
    loaded = load_avatar(save_avatar(av, tmp_path / "a.avatar"))
    assert loaded.version == 2 and loaded.lips is not None
    assert np.array_equal(loaded.lips.weight, lips.weight)
    used, same = for_avatar(model, loaded)
    assert used is not model and same.style.lip_gain == 1.2
    assert np.allclose(used.net.head.weight.detach().numpy(), lips.weight)
    assert np.allclose(head.weight.detach().numpy() * 1.1, lips.weight)  # the shared layer is unchanged

    other = replace(loaded, meta={"articulation": {"lips": "0" * 16}})
    with pytest.warns(UserWarning, match="other lips weights"):
        used, fell = for_avatar(model, other)
    assert used is model and fell.style.lip_gain == 1.0 and fell.lips is None

    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(tmp_path / "a.avatar"), framework="numpy") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys() if not k.startswith("lips_")}
    save_file(tensors, str(tmp_path / "v1.avatar"), metadata=dict(meta, format="talkinghead-avatar-1"))
    v1 = load_avatar(tmp_path / "v1.avatar")
    assert v1.version == 1 and v1.lips is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        used, kept = for_avatar(model, v1)
    assert used is model and kept.style.lip_gain == 1.2
