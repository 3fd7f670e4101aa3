"""`talkinghead serve`: every endpoint of the v1 API and every refusal the server promises, through FastAPI's
in-process client against the real app (real worker processes, real renders at 128 px of about 1 s of speech).
"""

from __future__ import annotations

import io
import json
import re
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason='the [serve] extra is not installed (pip install "talkinghead[serve]")')
pytest.importorskip("python_multipart", reason='the [serve] extra is not installed (pip install "talkinghead[serve]")')
pytest.importorskip("httpx", reason="httpx (FastAPI's test client) is not installed")

import av
from fastapi.testclient import TestClient
from speech import synthesize, write_wav

from talkinghead.pipeline import DEMO_FACE
from talkinghead.serving import ServeSettings, create_app

LOCAL = {"base_url": "http://127.0.0.1:8000", "client": ("127.0.0.1", 50000)}
URL = re.compile(
    r"(?:https?:)?//[\w-]+\.[\w.-]+"
)  # a URL with a host: the page and docs must load nothing from elsewhere
TOKEN = "s3cret-token-for-tests-0123456789"


# ------------------------------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("serve_media")
    speech = synthesize("Hello there.", "en")
    write_wav(d / "hello.wav", speech)
    write_wav(d / "silence.wav", np.zeros(16000, np.float32))
    write_wav(d / "long.wav", 0.1 * np.sin(np.arange(16000 * 12) / 16000 * 2 * np.pi * 220).astype(np.float32))
    write_wav(d / "longer.wav", np.concatenate([speech] * int(9.0 * 16000 // len(speech))))  # just under the limit
    import cv2

    cv2.imwrite(str(d / "noface.png"), np.full((96, 96, 3), 128, np.uint8))
    return {
        "wav": d / "hello.wav",
        "silence": d / "silence.wav",
        "long": d / "long.wav",
        "longer": d / "longer.wav",
        "face": Path(DEMO_FACE),
        "noface": d / "noface.png",
    }


def settings(data_dir: Path, **kw: object) -> ServeSettings:
    base = {
        "data_dir": data_dir,
        "workers": 1,
        "queue": 2,
        "max_upload_mb": 2.0,
        "max_pixels": 4_000_000,
        "max_seconds": 10.0,
        "threads_per_worker": 1,
    }
    base.update(kw)
    return ServeSettings(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One running app (one worker, queue of 2) shared by most tests."""
    data = tmp_path_factory.mktemp("serve_data")
    app = create_app(settings(data))
    with TestClient(app, **LOCAL) as client:
        client.app_state = app.state  # type: ignore[attr-defined]
        client.data = data  # type: ignore[attr-defined]
        yield client


def files(
    media: dict[str, Path],
    face: str = "face",
    audio: str = "wav",
    face_name: str = "photo.jpg",
    audio_name: str = "speech.wav",
) -> dict[str, tuple]:
    return {
        "face": (face_name, media[face].read_bytes(), "image/jpeg"),
        "audio": (audio_name, media[audio].read_bytes(), "audio/wav"),
    }


def submit(client: TestClient, media: dict[str, Path], **fields: str) -> dict:
    r = client.post("/v1/jobs", data={"mode": "generate", "size": "128", **fields}, files=files(media))
    assert r.status_code == 202, r.text
    return r.json()


def wait(client: TestClient, job_id: str, statuses=("done", "failed", "cancelled"), timeout: float = 90) -> dict:
    end = time.time() + timeout
    while time.time() < end:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")


def events(client: TestClient, job_id: str) -> list[dict]:
    r = client.get(f"/v1/jobs/{job_id}/events")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    return [json.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data:")]


def job_dirs(data: Path) -> set[str]:
    return {p.name for p in (data / "jobs").iterdir()}


# ------------------------------------------------------------------------------------------ endpoints


def test_health_openapi_and_docs_are_local(server) -> None:
    h = server.get("/v1/health")
    assert h.status_code == 200 and h.json()["status"] == "ok" and h.json()["workers"] == 1
    spec = server.get("/openapi.json").json()
    for path in ("/v1/health", "/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/events", "/v1/jobs/{job_id}/result"):
        assert path in spec["paths"], path
    body = spec["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"mode", "face", "video", "audio", "seed", "size", "still", "emotion", "face_index"} <= set(
        body["properties"]
    )
    for page in ("/docs", "/redoc"):
        assert not URL.findall(server.get(page).text), page
    assert server.get("/docs-static/swagger-ui-bundle.js").status_code == 200
    page = server.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert server.get(asset).status_code == 200
    for text in (page.text, server.get("/static/app.js").text, server.get("/static/style.css").text):
        assert not URL.findall(text)


def test_generate_job_from_upload_to_download_and_delete(server, media) -> None:
    job = submit(server, media, seed="3", still="true")
    assert job["status"] == "queued" and job["options"] == {"size": 128, "seed": 3, "still": True}
    assert abs(job["speech_seconds"] - len(synthesize("Hello there.", "en")) / 16000) < 0.05
    seen = events(server, job["id"])  # streams until the job is finished
    assert seen[-1]["status"] == "done" and seen[-1]["progress"] == 1.0
    progress = [e["progress"] for e in seen]
    assert progress == sorted(progress) and any(0 < p < 1 for p in progress)
    got = server.get(f"/v1/jobs/{job['id']}").json()
    assert got["status"] == "done" and got["error"] is None and got["result"] == f"/v1/jobs/{job['id']}/result"
    r = server.get(got["result"])
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(r.content)) as c:
        v = c.streams.video[0]
        assert max(v.codec_context.width, v.codec_context.height) == 128 and c.streams.audio
        n = sum(1 for _ in c.decode(video=0))
    assert abs(n / 25 - len(synthesize("Hello there.", "en")) / 16000) <= 0.08
    assert job["id"] in [j["id"] for j in server.get("/v1/jobs").json()["jobs"]]
    assert server.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert server.get(f"/v1/jobs/{job['id']}").status_code == 404
    assert job["id"] not in job_dirs(server.data)


def test_dub_job(server, media) -> None:
    first = submit(server, media)
    assert wait(server, first["id"])["status"] == "done"
    video = server.get(f"/v1/jobs/{first['id']}/result").content
    r = server.post(
        "/v1/jobs",
        data={"mode": "dub", "face": "auto"},
        files={"video": ("clip.mp4", video, "video/mp4"), "audio": ("new.wav", media["wav"].read_bytes())},
    )
    assert r.status_code == 202, r.text
    done = wait(server, r.json()["id"])
    assert done["status"] == "done", done
    assert "frames dubbed" in done["summary"]
    assert server.get(done["result"]).headers["content-type"] == "video/mp4"


def test_unknown_job_is_404_and_ids_never_reach_the_disk(server) -> None:
    for bad in ("0" * 32, "..", "..%2F..%2Fetc", "abc"):
        r = server.get(f"/v1/jobs/{bad}")
        assert r.status_code == 404 and r.json()["error"]["code"] in ("not_found", "http_404")
    assert server.get(f"/v1/jobs/{'0' * 32}/result").status_code == 404
    assert server.delete(f"/v1/jobs/{'0' * 32}").status_code == 404


# ------------------------------------------------------------------------------------------ refusals


def test_failed_job_has_message_and_no_result(server, media) -> None:
    r = server.post("/v1/jobs", data={"size": "128"}, files=files(media, face="noface", face_name="grey.png"))
    assert r.status_code == 202
    job = wait(server, r.json()["id"])
    assert job["status"] == "failed" and job["error"]["code"] == "no_face", job
    assert "face" in job["error"]["message"] and str(server.data) not in job["error"]["message"]
    assert server.get(f"/v1/jobs/{job['id']}/result").status_code == 409
    assert sorted(p.name for p in (server.data / "jobs" / job["id"]).iterdir()) == ["job.json"]

    r = server.post("/v1/jobs", data={"size": "128"}, files=files(media, audio="silence", audio_name="quiet.wav"))
    job = wait(server, r.json()["id"])
    assert job["status"] == "failed" and "silent" in job["error"]["message"]
    assert "quiet.wav" in job["error"]["message"] and str(server.data) not in job["error"]["message"]
    assert server.get(f"/v1/jobs/{job['id']}/result").status_code == 409


def test_upload_over_the_limit_is_413_and_leaves_nothing(server, media) -> None:
    before = job_dirs(server.data)
    big = files(media)
    big["audio"] = ("big.wav", b"RIFF" + bytes(3 * 2**20), "audio/wav")
    r = server.post("/v1/jobs", data={"mode": "generate"}, files=big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"

    # no Content-Length: the limit is enforced while the body streams in
    boundary = "b0undary"

    def body():
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="x.wav"\r\n'
            f"Content-Type: audio/wav\r\n\r\n"
        ).encode()
        for _ in range(40):  # 5 MB in 128 kB chunks
            yield bytes(128 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    r = server.post("/v1/jobs", content=body(), headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413
    assert job_dirs(server.data) == before
    assert list((server.data / "uploads").iterdir()) == []


def test_content_is_sniffed_not_trusted(server, media) -> None:
    wav, jpg = media["wav"].read_bytes(), media["face"].read_bytes()
    cases = [
        {"face": ("photo.jpg", wav, "image/jpeg"), "audio": ("a.wav", wav, "audio/wav")},  # a WAV named .jpg
        {"face": ("photo.jpg", jpg, "image/jpeg"), "audio": ("a.wav", jpg, "audio/wav")},  # a JPEG named .wav
        {"face": ("photo.jpg", b"<html>not a photo</html>" * 10, "image/jpeg"), "audio": ("a.wav", wav)},
        {"face": ("photo.jpg", jpg[:64] + bytes(64), "image/jpeg"), "audio": ("a.wav", b"RIFF" + bytes(300))},
    ]
    for case in cases:
        r = server.post("/v1/jobs", data={"size": "128"}, files=case)
        assert r.status_code == 415, r.text
        assert r.json()["error"]["code"] == "unsupported_file"
    # the other way round: right bytes under misleading names and types are taken for what they are
    r = server.post(
        "/v1/jobs",
        data={"size": "128"},
        files={"face": ("notes.txt", jpg, "text/plain"), "audio": ("song.png", wav, "image/png")},
    )
    assert r.status_code == 202
    assert wait(server, r.json()["id"])["status"] == "done"


def test_client_file_names_never_become_paths(server, media, tmp_path) -> None:
    names = ["../../../../tmp/evil.jpg", "/etc/passwd", "..\\..\\win.ini", "a/../../b.wav"]
    r = server.post(
        "/v1/jobs",
        data={"size": "128"},
        files={
            "face": (names[0], media["face"].read_bytes(), "image/jpeg"),
            "audio": (names[3], media["wav"].read_bytes()),
        },
    )
    assert r.status_code == 202
    job = r.json()
    assert job["files"] == {"face": "evil.jpg", "audio": "b.wav"}
    folder = server.data / "jobs" / job["id"]
    # job.json and the temporary file it is written through (".job.*.json", renamed over it) are the server's own
    names_here = sorted(p.name for p in folder.iterdir() if not (p.name == "job.json" or p.name.startswith(".job.")))
    assert names_here in (["audio", "face.jpg"], [])
    assert not Path("/tmp/evil.jpg").exists()
    wait(server, job["id"])
    for jid in job_dirs(server.data):  # every file of every job stays inside its own folder
        for p in (server.data / "jobs" / jid).rglob("*"):
            assert p.resolve().is_relative_to((server.data / "jobs" / jid).resolve())


def _png_header_only(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


def _png_bomb(w: int, h: int) -> bytes:
    """A valid 1-bit PNG of w x h black pixels: small on disk, w*h*3 bytes once decoded."""
    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    raw = (b"\x00" + bytes((w + 7) // 8)) * h
    idat = zlib.compress(raw, 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _jpeg_header(w: int, h: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, h, w, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def test_decompression_bombs_are_refused_before_decoding(server, media) -> None:
    bomb = _png_bomb(20000, 20000)  # 400 megapixels, 1.2 GB decoded
    assert len(bomb) < 2**20
    for name, data in [
        ("bomb.png", bomb),
        ("head.png", _png_header_only(30000, 30000)),
        ("big.jpg", _jpeg_header(60000, 60000)),
    ]:
        t = time.perf_counter()
        r = server.post(
            "/v1/jobs",
            data={"size": "128"},
            files={"face": (name, data, "image/png"), "audio": ("a.wav", media["wav"].read_bytes())},
        )
        assert r.status_code == 422 and r.json()["error"]["code"] == "too_large", r.text
        assert "megapixels" in r.json()["error"]["message"]
        assert time.perf_counter() - t < 2.0


def test_audio_longer_than_the_limit_is_refused(server, media) -> None:
    r = server.post("/v1/jobs", data={"size": "128"}, files=files(media, audio="long"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "too_large"
    assert "10 seconds" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"pose_from": "/etc/passwd"}, "bad_option"),  # server paths are never options
        ({"size": "10"}, "bad_option"),
        ({"seed": "x"}, "bad_option"),
        ({"emotion": "bored"}, "bad_option"),
        ({"mode": "paint"}, "bad_option"),
        ({"face": "auto"}, "bad_option"),  # a dub option in generate mode
    ],
)
def test_bad_options_are_refused(server, media, fields, code) -> None:
    r = server.post("/v1/jobs", data={"size": "128", **fields}, files=files(media))
    assert r.status_code == 422 and r.json()["error"]["code"] == code, r.text


def test_missing_or_misplaced_files_are_refused(server, media) -> None:
    r = server.post("/v1/jobs", data={"mode": "generate"}, files={"audio": ("a.wav", media["wav"].read_bytes())})
    assert r.status_code == 422 and r.json()["error"]["code"] == "missing_file"
    r = server.post("/v1/jobs", data={"mode": "dub"}, files=files(media))
    assert r.status_code == 422 and r.json()["error"]["code"] in ("missing_file", "unexpected_file")
    r = server.post("/v1/jobs", data={"mode": "generate"}, files={**files(media), "extra": ("x", b"1")})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unexpected_file"
    r = server.post("/v1/jobs", json={"mode": "generate"})
    assert r.status_code == 415
    r = server.post(
        "/v1/jobs",
        content=b"--x\r\nno headers here\r\n\r\n" * 50,
        headers={"content-type": "multipart/form-data; boundary=y"},
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_form"


def test_result_while_not_done_and_cancel(server, media) -> None:
    # about 9 s of speech at 512 px keeps the worker busy for seconds even on a fast machine
    r = server.post("/v1/jobs", data={"size": "512"}, files=files(media, audio="longer"))
    running = r.json()
    wait(server, running["id"], ("running",))
    queued = submit(server, media)
    assert server.get(f"/v1/jobs/{queued['id']}").json()["status"] == "queued"
    assert server.get(f"/v1/jobs/{queued['id']}/result").status_code == 409
    r = server.delete(f"/v1/jobs/{queued['id']}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert server.get(f"/v1/jobs/{running['id']}/result").status_code == 409
    r = server.delete(f"/v1/jobs/{running['id']}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.json()
    for job in (running, queued):
        assert server.get(f"/v1/jobs/{job['id']}/result").status_code == 409
        assert sorted(p.name for p in (server.data / "jobs" / job["id"]).iterdir()) == ["job.json"]
    assert wait(server, submit(server, media)["id"])["status"] == "done"  # the worker serves on


def test_full_queue_answers_429_with_retry_after(server, media) -> None:
    queue = server.app_state.service.pool.queue
    held = [queue.reserve() for _ in range(queue.limit)]
    try:
        assert all(held)
        r = server.post("/v1/jobs", data={"size": "128"}, files=files(media))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["code"] == "queue_full"
    finally:
        for _ in held:
            queue.release()


def test_burst_of_50_leaves_health_answering(server, media) -> None:
    body = files(media)
    stop = threading.Event()
    health: list[tuple[int, float]] = []

    def probe() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            health.append((server.get("/v1/health").status_code, time.perf_counter() - t))
            time.sleep(0.05)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        with ThreadPoolExecutor(16) as ex:
            answers = list(ex.map(lambda _: server.post("/v1/jobs", data={"size": "128"}, files=body), range(50)))
        codes = [r.status_code for r in answers]
        assert set(codes) <= {202, 429} and codes.count(429) >= 25, codes  # queue of 2, one worker
        assert all(int(r.headers["retry-after"]) >= 1 for r in answers if r.status_code == 429)
        accepted = [r.json()["id"] for r in answers if r.status_code == 202]
        assert [wait(server, jid)["status"] for jid in accepted] == ["done"] * len(accepted)
    finally:
        stop.set()
        prober.join()
    assert len(health) >= 5 and all(code == 200 for code, _ in health)
    assert max(dt for _, dt in health) < 3.0


# ------------------------------------------------------------------------------------------ access


def test_without_a_token_only_this_computer_is_served(tmp_path) -> None:
    app = create_app(settings(tmp_path))  # no lifespan: no workers needed to check access
    assert TestClient(app, **LOCAL).get("/v1/health").status_code == 200
    r = TestClient(app, base_url="http://127.0.0.1:8000", client=("203.0.113.7", 4000)).get("/v1/health")
    assert r.status_code == 403 and r.json()["error"]["code"] == "local_only"
    r = TestClient(app, base_url="http://attacker.example:8000", client=("127.0.0.1", 4000)).get("/v1/health")
    assert r.status_code == 403 and r.json()["error"]["code"] == "bad_host"  # DNS rebinding
    r = TestClient(app, **LOCAL).post("/v1/jobs", headers={"origin": "https://evil.example"}, data={"mode": "x"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "cross_site"


def test_token_is_required_on_every_api_and_page_request(tmp_path) -> None:
    app = create_app(settings(tmp_path, token=TOKEN))
    anyone = TestClient(app, base_url="http://192.0.2.10:8000", client=("198.51.100.3", 4000), follow_redirects=False)
    for path in ("/v1/health", "/v1/jobs", f"/v1/jobs/{'0' * 32}", "/openapi.json", "/docs", "/static/app.js"):
        r = anyone.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
    assert anyone.post("/v1/jobs").status_code == 401
    assert anyone.delete(f"/v1/jobs/{'0' * 32}").status_code == 401
    assert anyone.get("/", headers={"authorization": "Bearer wrong"}).status_code == 303
    assert anyone.get("/v1/health", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert anyone.get("/v1/health", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200

    # the page: a login form posts the token (never in a URL) and gets an HttpOnly, SameSite=Strict cookie
    r = anyone.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    form = anyone.get("/login")
    assert form.status_code == 200 and 'method="post"' in form.text and TOKEN not in form.text
    assert anyone.post("/login", data={"token": "wrong"}).status_code == 401
    r = anyone.post("/login", data={"token": TOKEN})
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower() and TOKEN not in cookie
    assert anyone.get("/").status_code == 200 and anyone.get("/v1/health").status_code == 200
    anyone.cookies.clear()
    assert anyone.get("/v1/health").status_code == 401


def test_cli_refuses_other_hosts_without_a_token() -> None:
    from typer.testing import CliRunner

    from talkinghead.cli import app

    r = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"], env={"TALKINGHEAD_TOKEN": ""})
    assert r.exit_code == 1 and "--token" in r.output
    r = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--token", "short"])
    assert r.exit_code == 1 and "16 characters" in r.output


# ------------------------------------------------------------------------------------------ restarts, expiry


def test_restart_keeps_results_fails_interrupted_jobs_and_expiry_cleans_the_disk(tmp_path, media) -> None:
    app = create_app(settings(tmp_path))
    with TestClient(app, **LOCAL) as client:
        done = submit(client, media)
        assert wait(client, done["id"])["status"] == "done"
        r = client.post("/v1/jobs", data={"size": "512"}, files=files(media, audio="longer"))
        interrupted = r.json()
        wait(client, interrupted["id"], ("running",))
    # the server stopped with one job running. A clean stop waits up to 15 s for a running job, so on a fast
    # machine this one may have finished; a server killed mid-job (kill -9) leaves its state "running": make
    # it so, as such a kill would, so the restart below is tested whatever the machine's speed
    state_file = tmp_path / "jobs" / interrupted["id"] / "job.json"
    state = json.loads(state_file.read_text())
    state["status"] = "running"
    state_file.write_text(json.dumps(state))
    app = create_app(settings(tmp_path))
    with TestClient(app, **LOCAL) as client:
        assert client.get(f"/v1/jobs/{done['id']}").json()["status"] == "done"
        r = client.get(f"/v1/jobs/{done['id']}/result")
        assert r.status_code == 200 and len(r.content) > 1000
        job = client.get(f"/v1/jobs/{interrupted['id']}").json()
        assert job["status"] == "failed" and job["error"]["code"] == "interrupted"
        assert client.get(f"/v1/jobs/{interrupted['id']}/result").status_code == 409
        assert sorted(p.name for p in (tmp_path / "jobs" / interrupted["id"]).iterdir()) == ["job.json"]

        store = app.state.service.store
        assert store.expire(now=time.time() + 23 * 3600) == []  # not yet (keep_hours = 24)
        expired = store.expire(now=time.time() + 25 * 3600)
        assert set(expired) == {done["id"], interrupted["id"]}
        assert client.get(f"/v1/jobs/{done['id']}").status_code == 404
        assert list((tmp_path / "jobs").iterdir()) == []


def test_janitor_expires_finished_jobs_on_its_own(tmp_path, media) -> None:
    app = create_app(settings(tmp_path, keep_hours=1 / 3600, cleanup_every_s=0.2))
    with TestClient(app, **LOCAL) as client:
        r = client.post("/v1/jobs", data={"size": "128"}, files=files(media, face="noface"))
        job = wait(client, r.json()["id"])
        assert job["status"] == "failed" and job["expires"] is not None
        end = time.time() + 10
        while (tmp_path / "jobs" / job["id"]).exists() and time.time() < end:
            time.sleep(0.1)
        assert not (tmp_path / "jobs" / job["id"]).exists()
        assert client.get(f"/v1/jobs/{job['id']}").status_code == 404


# ------------------------------------------------------------------------------------------ header sniffing


@pytest.mark.parametrize(
    "ext, params, channels, fmt",
    [
        (".jpg", [], 3, "jpeg"),
        (".jpg", [1, 50, 2, 1], 3, "jpeg"),  # baseline; progressive (SOF2)
        (".png", [], 3, "png"),
        (".png", [], 4, "png"),
        (".webp", [], 3, "webp"),  # lossy: VP8
        (".webp", [64, 101], 3, "webp"),  # lossless: VP8L
        (".webp", [], 4, "webp"),  # lossy with alpha: VP8X
    ],
)
def test_image_headers_give_the_real_size(tmp_path, ext, params, channels, fmt) -> None:
    import cv2

    from talkinghead.serving.sniff import image_info

    img = np.random.default_rng(0).integers(0, 255, (37, 83, channels), dtype=np.uint8)
    ok, data = cv2.imencode(ext, img, params)
    assert ok
    path = tmp_path / "x"
    path.write_bytes(data.tobytes())
    info = image_info(path)
    assert info is not None and (info.format, info.width, info.height) == (fmt, 83, 37)


def test_cli_says_which_extra_is_missing(monkeypatch) -> None:
    import sys

    from typer.testing import CliRunner

    from talkinghead.cli import app

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if the [serve] extra were not installed
    r = CliRunner().invoke(app, ["serve"])
    assert r.exit_code == 1 and 'pip install "talkinghead[serve]"' in r.output
