"""Provenance through every door: `th.verify`, POST /v1/verify, the watermark switch in serve options and batch rows,
and the watermark on a small output. No models: the videos are written by VideoWriter with a Stamp's hooks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from clips import reencode

import talkinghead as th
from talkinghead.media import VideoWriter
from talkinghead.provenance import watermark
from talkinghead.provenance.stamp import Stamp


def _video(
    path: Path,
    size: tuple[int, int],
    stamp: Stamp | None,
    seconds: float = 2.0,
    seed: int = 0,
    spare: watermark.Spare | None = None,
) -> Path:
    """A moving textured scene (a blurred noise image panned across the frame), marked by `stamp` when given."""
    w, h = size
    rng = np.random.default_rng(seed)
    scene = cv2.GaussianBlur(rng.integers(0, 255, (h + 64, w + 64, 3), dtype=np.uint8), (0, 0), 3)
    hooks = stamp.writer_args(w, h, spare) if stamp is not None else {}
    with VideoWriter(path, w, h, fps=25, **hooks) as writer:
        for k in range(int(seconds * 25)):
            dx = dy = k % 64
            writer.write(np.ascontiguousarray(scene[dy : dy + h, dx : dx + w]))
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict[str, object]:
    """A marked video of the smallest marked size (288 px) and the same scene unmarked."""
    d = tmp_path_factory.mktemp("prov_api")
    stamp = Stamp.new("dub", True, [], {"test": "small"}, (288, 288))
    return {
        "stamp": stamp,
        "marked": _video(d / "marked.mp4", (288, 288), stamp, seconds=3.0),
        "plain": _video(d / "plain.mp4", (288, 288), None, seconds=3.0),
        "folder": d,
    }


def test_small_output_is_watermarked_and_survives_reencode_and_downscale(small, tmp_path):
    stamp = small["stamp"]
    assert stamp.label.watermark  # the smallest size that gets the mark
    d = watermark.detect(small["marked"])
    assert d.found and d.payload == stamp.label.job_id, d
    for name, crf, scale in [("crf28", 28, 1.0), ("half", 23, 0.5)]:
        d = watermark.detect(reencode(small["marked"], tmp_path / f"{name}.mp4", crf, scale))
        assert d.found and d.payload == stamp.label.job_id, f"{name}: {d}"
        assert abs(d.period / watermark.TILE - scale) < 0.02, f"{name}: scale found {d.period / watermark.TILE}"
    d = watermark.detect(small["plain"])
    assert not d.found and d.payload is None, d


def test_spared_mouth_is_unmarked_and_the_mark_still_found(tmp_path):
    """A box round the mouth (`mouth_spare`) is left without the mark; the rest carries the same energy, and the
    mark is still found with its job id after a re-encode at CRF 28."""
    w = h = 288
    spare = watermark.Spare(100.0, 160.0, 190.0, 230.0, 12.0)
    stamp = Stamp.new("dub", True, [], {"test": "spare"}, (w, h))
    job = int(stamp.label.job_id, 16)
    plain, spared = np.full((h, w), 128, np.uint8), np.full((h, w), 128, np.uint8)
    watermark.WatermarkEmbedder(w, h, job)(plain)
    watermark.WatermarkEmbedder(w, h, job, spare)(spared)
    assert np.all(spared[160:231, 100:191] == 128), "no mark inside the spared box"
    energy = [float(np.mean((a.astype(float) - 128) ** 2)) for a in (plain, spared)]
    assert 0.85 < energy[1] / energy[0] < 1.1, energy  # raised elsewhere: the same PSNR
    video = _video(tmp_path / "spared.mp4", (w, h), stamp, seconds=3.0, spare=spare)
    for v in (video, reencode(video, tmp_path / "crf28.mp4", 28)):
        d = watermark.detect(v)
        assert d.found and d.payload == stamp.label.job_id, d


def test_mouth_spare_covers_the_lips_with_room_for_the_jaw():
    from talkinghead.face.indices import LEFT_IRIS, LOWER_OUTER_LIP, RIGHT_IRIS, UPPER_OUTER_LIP
    from talkinghead.provenance.stamp import mouth_spare

    pts = np.full((2, 478, 3), 50.0)
    pts[:, LEFT_IRIS[0], 0], pts[:, RIGHT_IRIS[0], 0] = 30.0, 90.0  # 60 px between the eyes
    lips = UPPER_OUTER_LIP + LOWER_OUTER_LIP
    pts[0, lips, :2] = np.linspace([40.0, 100.0], [80.0, 120.0], len(lips))
    pts[1, lips, :2] = pts[0, lips, :2] + [4.0, 2.0]  # a second frame: the head moved a little
    s = mouth_spare(pts)
    assert s is not None and s.x0 < 40 and s.x1 > 84 and s.y0 < 100 and s.y1 > 122 + 15  # the jaw opens downwards
    assert s.x1 - s.x0 < 2 * 60 and s.ramp > 0
    pts[1] = np.nan  # a frame without a face is ignored; none at all: nothing to spare
    assert mouth_spare(pts) is not None and mouth_spare(pts[1:]) is None


def test_list_decoding_reads_a_byte_from_its_runner_up():
    """A byte whose strongest pattern is wrong but whose runner-up is right: the CRC picks the right word."""
    payload = watermark.payload_bytes(0xA1B2C3)
    rng = np.random.default_rng(0)
    corr = rng.normal(0, 0.1, (watermark.SYMBOLS, watermark.ALPHABET))
    for s, b in enumerate(payload):
        corr[s, b & 0x7F] = 1.0 if b & 0x80 else -1.0
    wrong = (payload[2] & 0x7F) ^ 0x15
    corr[2, wrong] = 1.05  # a wrong pattern slightly stronger than the right one
    words = watermark._word_list(corr)
    assert not watermark._job(words[0])[1], "the plain reading fails the CRC"
    good = [watermark._job(w) for w in words if watermark._job(w)[1]]
    assert good and good[0][0] == 0xA1B2C3 and len(words) == 2


def test_a_flat_frame_is_not_evidence():
    """A uniform grey frame (the first frame of a fade) once scored z 7.13 from whitened rounding noise; the same
    frame with the mark on it is found."""
    flat = np.full((288, 360), 130, np.uint8)
    d = watermark.detect_luma(flat.astype(np.float32))
    assert not d.found and d.sync_z == 0.0 and d.payload is None, d
    watermark.WatermarkEmbedder(360, 288, 0x2468AC)(flat)
    d = watermark.detect_luma(flat.astype(np.float32))
    assert d.found and d.payload == "2468ac", d


def test_th_verify_is_typed_and_matches_the_cli_json(small):
    from typer.testing import CliRunner

    from talkinghead.cli import app

    result = th.verify(small["marked"])
    assert isinstance(result, th.Verification)
    assert result.marked and result.label is not None and result.label["mode"] == "dub"
    assert result.watermark is not None and result.watermark["payload"] == small["stamp"].label.job_id
    assert result.manifest["status"] in ("valid", "unavailable")
    r = CliRunner().invoke(app, ["verify", str(small["marked"]), "--json"])
    import json

    cli = json.loads(r.output)
    assert set(cli) == set(result.as_dict()) >= {"marked", "label", "manifest", "watermark"}
    assert cli["watermark"]["payload"] == result.watermark["payload"] and cli["label"] == result.label
    plain = th.verify(small["plain"], watermark=False)
    assert not plain.marked and plain.watermark is None and plain.label is None


def test_serve_and_batch_map_no_watermark(tmp_path):
    from talkinghead.batch import load_jobs
    from talkinghead.serving.options import parse_options

    assert parse_options("generate", {"no_watermark": "true"}) == ({"watermark": False}, {"no_watermark": True})
    assert parse_options("dub", {"no_watermark": "no"}) == ({"watermark": True}, {"no_watermark": False})
    face, audio, film = tmp_path / "f.jpg", tmp_path / "a.wav", tmp_path / "v.mp4"
    for p in (face, audio, film):
        p.write_bytes(b"\0")
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(
        '{"mode": "generate", "face": "f.jpg", "audio": "a.wav", "output": "a.mp4", "no_watermark": true}\n'
        '{"mode": "dub", "video": "v.mp4", "audio": "a.wav", "output": "b.mp4", "no_watermark": "false"}\n'
        '{"mode": "dub", "video": "v.mp4", "audio": "a.wav", "output": "c.mp4", "no_watermark": 1, "watermark": 1}\n'
    )
    a, b, c = load_jobs(jobs, tmp_path / "out")
    assert a.options is not None and a.options.watermark is False
    assert b.options is not None and b.options.watermark is True
    assert c.error is not None and "not both" in c.error


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    pytest.importorskip("fastapi", reason='the [serve] extra is not installed (pip install "talkinghead[serve]")')
    pytest.importorskip("httpx", reason="httpx (FastAPI's test client) is not installed")
    from fastapi.testclient import TestClient

    from talkinghead.serving import ServeSettings, create_app

    data = tmp_path_factory.mktemp("serve_verify")
    app = create_app(ServeSettings(data_dir=data, max_upload_mb=2.0, max_seconds=10.0))
    client = TestClient(app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 50000))  # no lifespan: no workers
    client.data = data  # type: ignore[attr-defined]
    return client


def test_verify_endpoint(client, small, tmp_path):
    r = client.post("/v1/verify", files={"video": ("clip.mp4", small["marked"].read_bytes(), "video/mp4")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["marked"] and body["file"] == "clip.mp4" and body["label"]["job_id"] == small["stamp"].label.job_id
    assert body["watermark"]["found"] and body["watermark"]["payload"] == small["stamp"].label.job_id
    assert body["manifest"]["status"] in ("valid", "unavailable")
    stripped = reencode(small["marked"], tmp_path / "re.mp4", 23)  # no label, no manifest: only the watermark
    body = client.post("/v1/verify", files={"video": ("re.mp4", stripped.read_bytes(), "video/mp4")}).json()
    assert body["marked"] and body["label"] is None and body["manifest"]["status"] in ("absent", "unavailable")
    r = client.post(
        "/v1/verify",
        data={"watermark": "false"},
        files={"video": ("plain.mp4", small["plain"].read_bytes(), "video/mp4")},
    )
    assert r.status_code == 200 and not r.json()["marked"] and r.json()["watermark"] is None
    r = client.post("/v1/verify", files={"video": ("x.mp4", b"not a video at all" * 20, "video/mp4")})
    assert r.status_code == 415, r.text
    assert client.post("/v1/verify", data={"watermark": "true"}).status_code in (415, 422)
    r = client.post("/v1/verify", data={"colour": "red"}, files={"video": ("c.mp4", b"x", "video/mp4")})
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_option"
    assert not any((client.data / "uploads").iterdir())  # nothing kept
    spec = client.get("/openapi.json").json()["paths"]["/v1/verify"]["post"]
    assert "multipart/form-data" in spec["requestBody"]["content"] and "200" in spec["responses"]
