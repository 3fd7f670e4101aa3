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


def _video(path: Path, size: tuple[int, int], stamp: Stamp | None, seconds: float = 2.0, seed: int = 0) -> Path:
    """A moving textured scene (a blurred noise image panned across the frame), marked by `stamp` when given."""
    w, h = size
    rng = np.random.default_rng(seed)
    scene = cv2.GaussianBlur(rng.integers(0, 255, (h + 64, w + 64, 3), dtype=np.uint8), (0, 0), 3)
    hooks = stamp.writer_args(w, h) if stamp is not None else {}
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
