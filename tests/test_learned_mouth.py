"""The learned mouth interior (render/learned_mouth.py): shipped weights, teeth where the lips part, nothing
drawn when they are closed; on small, large and dark faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from talkinghead.errors import TalkingHeadError
from talkinghead.face.indices import INNER_MOUTH_POLYGON, LOWER_INNER_LIP, UPPER_INNER_LIP, inter_ocular
from talkinghead.face.landmarks import detect_faces
from talkinghead.media import fit_size
from talkinghead.models.mouth import MouthNet
from talkinghead.render.learned_mouth import HybridMouth, LearnedMouth, face_colours, mouth_gap
from talkinghead.render.mouth_interior import CHEEKS, face_tone, paint_mouth, painted_teeth
from talkinghead.render.tooth_row import ToothRow, tooth_colour
from talkinghead.weights import REGISTRY, WEIGHTS_DIR, load_model, sha256
from tests.battery_kit import demo_face_rgb


def test_shipped_weights_match_their_hash_and_load() -> None:
    fname, digest = REGISTRY["mouth"]
    assert sha256(WEIGHTS_DIR / fname) == digest
    model = load_model("mouth")
    assert isinstance(model.net, MouthNet)
    assert "train mouth" in model.weights.metadata["command"]


def test_a_swapped_weights_file_is_refused(tmp_path, monkeypatch) -> None:
    bad = tmp_path / "mouth.safetensors"
    bad.write_bytes((WEIGHTS_DIR / REGISTRY["mouth"][0]).read_bytes()[:-8] + b"\0" * 8)
    monkeypatch.setattr("talkinghead.weights.WEIGHTS_DIR", tmp_path)
    with pytest.raises(TalkingHeadError, match="sha256"):
        load_model("mouth")


def _opened(points: np.ndarray, gap: float) -> np.ndarray:
    """The landmarks with the lower inner lip moved down so the middle gap grows by `gap` px."""
    out = points.copy()
    n = len(LOWER_INNER_LIP)
    for i, idx in enumerate(LOWER_INNER_LIP[1:-1], start=1):
        out[idx, 1] += gap * np.sin(np.pi * i / (n - 1))
    return out


def _points(img: np.ndarray) -> np.ndarray:
    faces = detect_faces(img)
    assert faces, "the demo face was not found"
    return faces[0].points


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return demo_face_rgb()


def _drawn(
    face: np.ndarray, width: int, dark: bool, painted: bool, hybrid: bool = False, teeth: bool = False
) -> tuple[float, float, float]:
    """(P90 luma of the opening's upper third, P10 luma of the opening, cheek luma) of a face whose
    lips are pulled 0.3 x inter-ocular apart and filled by the learned (with `hybrid`, the learned one with
    the tooth row over it) or the painted interior (with `teeth`, the painted cavity with the tooth row)."""
    img = cv2.resize(face, (width, round(face.shape[0] * width / face.shape[1])), interpolation=cv2.INTER_AREA)
    if dark:  # a darker skin under the same light (lips and all)
        img = np.clip(img.astype(np.float32) * [0.42, 0.32, 0.27], 0, 255).astype(np.uint8)
    pts = _points(img)
    iod = inter_ocular(pts)
    target = _opened(pts, 0.3 * iod)
    frame = img.copy()
    if painted:
        paint_mouth(frame, target, iod, face_tone(img, pts), teeth=painted_teeth(img, pts) if teeth else None)
    else:
        (HybridMouth if hybrid else LearnedMouth).for_face(img, pts)(frame, target, iod)
    assert not np.array_equal(frame, img)
    inside = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(inside, [np.round(target[INNER_MOUTH_POLYGON, :2]).astype(np.int32)], 1)
    inside = cv2.erode(inside, np.ones((3, 3), np.uint8)) if width >= 400 else inside
    ys, xs = np.nonzero(inside)
    upper = ys < float(target[UPPER_INNER_LIP[5], 1]) + mouth_gap(target) / 3
    luma = _luma(frame)[ys, xs]
    cheeks = float(np.median(_luma(img)[pts[CHEEKS, 1].astype(int), pts[CHEEKS, 0].astype(int)]))
    return float(np.percentile(luma[upper], 90)), float(np.percentile(luma, 10)), cheeks


SIZES = [(150, False), (400, False), (1000, False), (400, True)]


PAINTED_SIZES = [
    pytest.param(150, False, marks=pytest.mark.xfail(strict=True, reason="painted teeth blur to grey at 150 px")),
    *SIZES[1:],
]


@pytest.mark.parametrize(("width", "dark"), PAINTED_SIZES)
def test_painted_mouth_has_bright_teeth_and_a_dark_cavity(face: np.ndarray, width: int, dark: bool) -> None:
    """The check below, on the painted interior (photo mode's default): teeth 1.0-1.1 x the cheeks' luma
    from 400 px up, 0.74 at 150 px (issue 11's "greyish on smaller faces")."""
    teeth, cavity, cheeks = _drawn(face, width, dark, painted=True)
    assert teeth > cheeks and cavity < 0.5 * cheeks


@pytest.mark.xfail(
    strict=True,
    reason="the shipped learned interior is an average fill without distinct teeth (docs/MODEL_CARD.md): "
    "teeth P90 0.63-0.71 x the cheeks' luma",
)
@pytest.mark.parametrize(("width", "dark"), SIZES)
def test_learned_mouth_has_bright_teeth_and_a_dark_cavity(face: np.ndarray, width: int, dark: bool) -> None:
    """Teeth read as teeth: the upper third of the opening holds pixels brighter than the cheeks, the
    opening's darkest tenth is far darker than them; at 150 and 1000 px wide and on a darkened face."""
    teeth, cavity, cheeks = _drawn(face, width, dark, painted=False)
    assert teeth > cheeks, "no teeth brighter than the skin under the upper lip"
    assert cavity < 0.5 * cheeks, "no dark cavity"


@pytest.mark.parametrize(("width", "dark"), SIZES)
def test_hybrid_mouth_has_bright_teeth_and_a_dark_cavity(face: np.ndarray, width: int, dark: bool) -> None:
    """The same check on the hybrid (the learned interior with the tooth row of render/tooth_row.py over it):
    teeth brighter than the cheeks under the upper lip, a cavity below half of them, at every size."""
    teeth, cavity, cheeks = _drawn(face, width, dark, painted=False, hybrid=True)
    assert teeth > cheeks, f"no teeth brighter than the skin under the upper lip ({teeth / cheeks:.2f})"
    assert cavity < 0.5 * cheeks, f"no dark cavity ({cavity / cheeks:.2f})"


@pytest.mark.parametrize(("width", "dark"), SIZES)
def test_teeth_mouth_has_bright_teeth_and_a_dark_cavity(face: np.ndarray, width: int, dark: bool) -> None:
    """The same check on `--mouth teeth` (the painted cavity with the tooth row over it, no network): teeth
    brighter than the cheeks under the upper lip, a cavity below half of them, at every size (150 px too, where
    the painted band blurs grey)."""
    teeth, cavity, cheeks = _drawn(face, width, dark, painted=True, teeth=True)
    assert teeth > cheeks, f"no teeth brighter than the skin under the upper lip ({teeth / cheeks:.2f})"
    assert cavity < 0.5 * cheeks, f"no dark cavity ({cavity / cheeks:.2f})"


def _row_alone(face: np.ndarray, width: int, fill: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, float]:
    """The face at `width` px with its lips pulled 0.3 x inter-ocular apart, the opening filled flat with `fill`
    and the tooth row alone drawn over it: (frame, target points, inter-ocular distance)."""
    img = cv2.resize(face, (width, round(face.shape[0] * width / face.shape[1])), interpolation=cv2.INTER_AREA)
    pts = _points(img)
    iod = inter_ocular(pts)
    target = _opened(pts, 0.3 * iod)
    frame = img.copy()
    cv2.fillPoly(frame, [np.round(target[INNER_MOUTH_POLYGON, :2]).astype(np.int32)], fill)
    ToothRow.for_skin(face_colours(img, pts)[:3] * 255)(frame, target, iod)
    return frame, target, iod


def _row_profile(face: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    """Luma along the upper teeth (a line 0.04 x inter-ocular under the upper inner lip, across the middle
    half of the mouth) of the tooth row alone on a flat grey opening, and the inter-ocular distance."""
    frame, target, iod = _row_alone(face, width, (60, 40, 40))
    upper = target[UPPER_INNER_LIP, :2]
    xs = np.arange(int(upper[2, 0]), int(upper[-3, 0]))
    ys = np.interp(xs, upper[:, 0], upper[:, 1]) + 0.04 * iod
    return _luma(frame)[np.round(ys).astype(int), xs], iod


def test_tooth_row_shows_separate_teeth_on_a_large_face(face: np.ndarray) -> None:
    """At 1000 px the row is teeth, not a band: along it the luma dips at several gaps between teeth."""
    profile, _ = _row_profile(face, 1000)
    smooth = np.convolve(profile, np.ones(3) / 3, mode="same")[2:-2]
    dips = [k for k in range(1, len(smooth) - 1) if smooth[k] < smooth[k - 1] and smooth[k] <= smooth[k + 1]]
    deep = [k for k in dips if smooth[k] < 0.93 * max(smooth[max(k - 6, 0) : k + 7])]
    assert len(deep) >= 4, f"{len(deep)} gaps between teeth seen"


def test_tooth_row_keeps_its_size_relative_to_the_face(face: np.ndarray) -> None:
    """The row's height follows the face (inter-ocular distance), not the pixels: at 400 and 1000 px the
    bright rows under the upper lip span the same share of the inter-ocular distance (within 25 %)."""
    heights = []
    for width in (400, 1000):
        frame, target, iod = _row_alone(face, width, (30, 20, 20))
        x = int(round(target[UPPER_INNER_LIP[5], 0]))
        column = _luma(frame)[:, x - 1 : x + 2].mean(1)
        y0, y1 = int(target[UPPER_INNER_LIP[5], 1]), int(target[LOWER_INNER_LIP[5], 1])
        heights.append(float((column[y0:y1] > 120).sum()) / iod)
    assert heights[0] > 0.05 and abs(heights[0] - heights[1]) < 0.25 * heights[1], heights


def test_tooth_colour_is_brighter_than_the_skin_and_lit_like_it() -> None:
    """Off-white, warmer under warm light (R >= G >= B), brighter than the skin; relatively more so on a
    dark skin (enamel reflects far more than dark skin), never past white (so only just above a very light one)."""
    luma = np.array([0.299, 0.587, 0.114])
    for skin in ((205, 150, 125), (86, 48, 34), (240, 225, 215), (120, 120, 120)):
        c = tooth_colour(np.array(skin, np.float32))
        assert c.max() <= 255 and c[0] >= c[1] >= c[2]
        skin_luma = np.array(skin) @ luma
        assert c @ luma > (1.15 * skin_luma if skin_luma < 200 else skin_luma)
    light, dark = tooth_colour(np.array([205.0, 150, 125])), tooth_colour(np.array([86.0, 48, 34]))
    assert dark @ luma / (np.array([86, 48, 34]) @ luma) > light @ luma / (np.array([205, 150, 125]) @ luma)


def test_hybrid_closed_mouth_draws_nothing(face: np.ndarray) -> None:
    img = fit_size(face, 512)
    pts = _points(img)
    frame = img.copy()
    closed = pts.copy()
    closed[LOWER_INNER_LIP, :2] = closed[UPPER_INNER_LIP, :2]
    HybridMouth.for_face(img, pts)(frame, closed, inter_ocular(pts))
    assert np.array_equal(frame, img)


@pytest.mark.parametrize(("width", "dark"), SIZES)
def test_learned_mouth_is_darker_inside_than_the_skin(face: np.ndarray, width: int, dark: bool) -> None:
    """What the shipped network does draw: an opening darker than the skin round it (P10 0.18-0.49 x
    the cheeks' luma), on every size and on the darkened face."""
    _, cavity, cheeks = _drawn(face, width, dark, painted=False)
    assert cavity < 0.6 * cheeks


def test_closed_mouth_draws_nothing(face: np.ndarray) -> None:
    img = fit_size(face, 512)
    pts = _points(img)
    frame = img.copy()
    mouth = LearnedMouth.for_face(img, pts)
    closed = pts.copy()
    closed[LOWER_INNER_LIP, :2] = closed[UPPER_INNER_LIP, :2]  # lips together
    mouth(frame, closed, inter_ocular(pts))
    assert np.array_equal(frame, img)


def test_face_colours_follow_the_skin(face: np.ndarray) -> None:
    img = fit_size(face, 512)
    pts = _points(img)
    light, dark = face_colours(img, pts), face_colours((img * 0.5).astype(np.uint8), pts)
    assert np.all(dark[:3] < 0.6 * light[:3])
    assert np.allclose(dark[3:], light[3:], atol=0.1)  # lip relative to skin: unchanged by the light


def test_teeth_and_hybrid_are_photo_mode_choices() -> None:
    from talkinghead.config import GenerateOptions
    from talkinghead.pipeline import check_options

    assert check_options(GenerateOptions(mouth="hybrid")).mouth == "hybrid"
    assert check_options(GenerateOptions(mouth="teeth")).mouth == "teeth"
    with pytest.raises(TalkingHeadError, match="teeth, painted, learned or hybrid"):
        check_options(GenerateOptions(mouth="dentures"))


def test_generate_refuses_an_unknown_mouth(tmp_path) -> None:
    from talkinghead.pipeline import DEMO_AUDIO, DEMO_FACE
    from tests.battery_kit import assert_user_error, run_cli

    out = tmp_path / "out.mp4"
    res = run_cli(["generate", "--face", DEMO_FACE, "--audio", DEMO_AUDIO, "-o", out, "--mouth", "dentures", "-q"])
    assert_user_error(res, out, "--mouth")


def _synthetic_patches(n: int, bright: float) -> dict[str, np.ndarray]:
    """Patches with a wide opening: a `bright` x skin band under the upper lip, a dark cavity below it."""
    from talkinghead.models.mouth import MouthConfig

    cfg = MouthConfig()
    shapes = np.zeros((n, 4, cfg.patch_h, cfg.patch_w), np.float16)
    shapes[:, 0, 12:30, 10:54] = 1.0
    colours = np.tile(np.array([0.6, 0.45, 0.4, -0.1, -0.3, -0.2], np.float32), (n, 1))
    skin = colours[0, :3] * 255
    targets = np.zeros((n, cfg.patch_h, cfg.patch_w, 3), np.uint8)
    targets[:] = np.clip(skin * 0.2, 0, 255).astype(np.uint8)
    targets[:, 12:17, 10:54] = np.clip(skin * bright, 0, 255).astype(np.uint8)
    return {"targets": targets, "shapes": shapes, "colours": colours}


def test_teeth_score_sees_teeth_under_the_upper_lip() -> None:
    from talkinghead.training.train_mouth import teeth_score

    shown, hidden = _synthetic_patches(2, 1.3), _synthetic_patches(2, 0.5)
    assert np.all(teeth_score(**shown) > 1.2)
    assert np.all(teeth_score(**hidden) < 0.6)


def test_a_one_colour_file_starts_a_mixture_with_teeth_input(tmp_path) -> None:
    """`start_from` turns the first (L1) network into a K-candidate one with the teeth input: the shared
    layers are copied, and the mixture trains (its loss falls in a few steps on synthetic patches)."""
    import torch
    from safetensors.torch import save_file

    from talkinghead.models.mouth import MouthConfig
    from talkinghead.training.train_mouth import loss_terms, start_from, to_tensors

    one = MouthNet(MouthConfig())
    path = tmp_path / "one.safetensors"
    save_file(
        {f"model.{k}": v for k, v in one.state_dict().items()},
        str(path),
        metadata={"config": '{"width": 12}', "format": "talkinghead-mouth-1"},
    )
    net = MouthNet(MouthConfig(components=3, teeth=1.2))
    start_from(net, path)
    assert torch.equal(net.enc2[0].weight, one.enc2[0].weight)
    assert torch.equal(net.enc1[0].weight[:, :10], one.enc1[0].weight)
    assert torch.all(net.enc1[0].weight[:, 10:] == 0)
    b = to_tensors(_synthetic_patches(8, 1.3), teeth_input=True)
    assert b["colours"].shape == (8, 7)
    optim = torch.optim.Adam(net.parameters(), 3e-3)
    first = None
    for _ in range(30):
        loss, _ = loss_terms(net, b, 0.0)
        first = float(loss) if first is None else first
        optim.zero_grad()
        loss.backward()
        optim.step()
    assert float(loss) < 0.7 * first
    assert net(b["shapes"], b["colours"]).shape == (8, 3, 40, 64)
