"""`/v1/stream`, the live WebSocket: a round trip (photo in, audio chunks in, JPEG frames and the MP4 out) and
clients that misbehave (bad JSON, wrong sample format, no face, disconnecting mid-stream), after which the
server still streams."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

pytest.importorskip("fastapi", reason='the [serve] extra is not installed (pip install "talkinghead[serve]")')
pytest.importorskip("httpx", reason="httpx (FastAPI's test client) is not installed")

from fastapi.testclient import TestClient
from speech import synthesize
from starlette.websockets import WebSocketDisconnect

from talkinghead.pipeline import DEMO_FACE
from talkinghead.serving import ServeSettings, create_app

LOCAL = {"base_url": "http://127.0.0.1:8000", "client": ("127.0.0.1", 50000)}
HEADER = struct.Struct("<IfI")
WS = "ws://127.0.0.1:8000/v1/stream"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    data = tmp_path_factory.mktemp("stream_data")
    app = create_app(ServeSettings(data_dir=data, workers=1, queue=1, threads_per_worker=1, streams=1))
    with TestClient(app, **LOCAL) as c:
        yield c


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return synthesize("Hello there.", "en")


def start(ws, **fields) -> dict:
    ws.send_text(json.dumps({"type": "start", "options": {"size": 128}, **fields}))
    if "face" not in fields:
        ws.send_bytes(DEMO_FACE.read_bytes())
    return ws.receive_json()


def test_round_trip(client, speech):
    pcm = (speech * 32767).astype("<i2")
    with client.websocket_connect(WS) as ws:
        ready = start(ws, format="s16le", record=True)
        assert ready["type"] == "ready" and (ready["width"], ready["height"]) == (128, 128), ready
        for i in range(0, len(pcm), 480):  # 30 ms chunks
            ws.send_bytes(pcm[i : i + 480].tobytes())
        ws.send_text(json.dumps({"type": "end"}))
        frames, message = [], None
        while True:
            m = ws.receive()
            if m.get("bytes") is not None:
                frames.append(m["bytes"])
                continue
            message = json.loads(m["text"])
            if message["type"] == "done":
                break
        video_head = ws.receive_json()
        video = ws.receive_bytes()
    n = round(len(speech) / 16000 * 25)
    assert message["frames"] == len(frames) == n
    import cv2

    for k, f in enumerate(frames):
        index, t, received = HEADER.unpack(f[: HEADER.size])
        assert index == k and abs(t - k / 25) < 1e-6 and received <= len(pcm)
    img = cv2.imdecode(np.frombuffer(frames[0][HEADER.size :], np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (128, 128, 3)
    assert video_head == {"type": "video", "bytes": len(video)}
    import io

    import av

    with av.open(io.BytesIO(video)) as c:
        assert c.streams.video[0].frames == n and len(c.streams.audio) == 1
        assert c.metadata.get("comment", "") or c.metadata  # the provenance label
    # the face is kept: a second stream by its id
    with client.websocket_connect(WS) as ws:
        again = start(ws, face=ready["face"])
        assert again["type"] == "ready" and again["face"] == ready["face"]
        ws.send_bytes(speech[:8000].astype("<f4").tobytes())
        ws.send_text(json.dumps({"type": "end"}))
        got = 0
        while True:
            m = ws.receive()
            if m.get("bytes") is not None:
                got += 1
            elif json.loads(m["text"])["type"] == "done":
                break
        assert got == round(0.5 * 25)


def error_of(ws) -> dict:
    m = ws.receive_json()
    assert m["type"] == "error", m
    assert ws.receive()["type"] == "websocket.close"
    return m


def test_bad_clients_get_an_error_and_the_server_keeps_streaming(client, speech):
    with client.websocket_connect(WS) as ws:
        ws.send_text("{not json")
        assert error_of(ws)["code"] == "bad_json"
    with client.websocket_connect(WS) as ws:
        ws.send_text(json.dumps({"type": "start", "options": {"seed": "many"}}))
        assert error_of(ws)["code"] == "bad_option"
    with client.websocket_connect(WS) as ws:
        ws.send_text(json.dumps({"type": "start", "face": "nope"}))
        assert error_of(ws)["code"] == "unknown_face"
    with client.websocket_connect(WS) as ws:
        ws.send_text(json.dumps({"type": "start"}))
        ws.send_bytes(b"GIF89a not a photo")
        assert error_of(ws)["code"] == "bad_face"
    with client.websocket_connect(WS) as ws:
        start(ws)
        ws.send_bytes(b"\x00\x01\x02")  # not whole float32 samples
        assert error_of(ws)["code"] == "bad_audio"
    with client.websocket_connect(WS) as ws:
        start(ws)  # f32le by default; int16 bytes read as floats are huge or NaN
        ws.send_bytes((speech[:3200] * 32767).astype("<i2").tobytes())
        assert error_of(ws)["code"] == "bad_audio"
    with client.websocket_connect(WS) as ws:
        start(ws)
        ws.send_text(json.dumps({"type": "dance"}))
        assert error_of(ws)["code"] == "bad_message"
    # disconnect in the middle of a stream
    with client.websocket_connect(WS) as ws:
        start(ws)
        ws.send_bytes(speech[:16000].astype("<f4").tobytes())
        ws.receive_bytes()
    # still streaming (one stream at a time here: the one above has ended)
    with client.websocket_connect(WS) as ws:
        start(ws)
        ws.send_bytes(speech[:4000].astype("<f4").tobytes())
        ws.send_text(json.dumps({"type": "end"}))
        kinds = []
        while True:
            m = ws.receive()
            kinds.append("frame" if m.get("bytes") is not None else json.loads(m["text"])["type"])
            if kinds[-1] == "done":
                break
        assert kinds.count("frame") == round(0.25 * 25)


def test_other_sites_and_missing_tokens_are_refused(tmp_path):
    app = create_app(ServeSettings(data_dir=tmp_path, workers=1, queue=1, threads_per_worker=1, token="t" * 20))
    with TestClient(app, **LOCAL) as c:
        with pytest.raises(WebSocketDisconnect) as no_token, c.websocket_connect(WS):
            pass
        assert no_token.value.code == 1008
        auth = {"Authorization": "Bearer " + "t" * 20}
        with c.websocket_connect(WS, headers=auth) as ws:
            ws.send_text("[]")
            assert error_of(ws)["code"] == "bad_message"
        with (
            pytest.raises(WebSocketDisconnect),
            c.websocket_connect("/v1/stream", headers={**auth, "Origin": "https://evil.example"}),
        ):
            pass
