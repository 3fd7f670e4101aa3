"""Live streaming over a WebSocket (`/v1/stream`): audio chunks in, JPEG frames out as the speech arrives.

Protocol (also in the README, "Live streaming"):

1. The client sends one text message, JSON: `{"type": "start", "face": ID (optional), "options": {generate
   options by their API names: size, fps, seed, still, lip_strength, pose_scale, blink_rate, emotion,
   emotion_strength}, "format": "f32le" | "s16le", "lookahead": seconds (0.04-1, default 0.15), "quality":
   JPEG quality 30-95 (default 90), "record": false}`. Without `face`, the next message is the photo (JPEG, PNG or WebP
   bytes). `face` is an id the server gave earlier (in `ready`), or the id of a generate job it still holds.
2. The server answers `{"type": "ready", "face": ID, "width", "height", "fps", "sample_rate": 16000, "format",
   "lookahead"}`.
3. The client sends audio as binary messages: 16 kHz mono PCM, little-endian, float32 in [-1, 1] (`f32le`) or
   int16 (`s16le`), any length up to 10 s (20 ms or more is best), and `{"type": "end"}` when it is done.
4. The server sends each frame as a binary message: a 12-byte header (`<IfI`: frame index k, its time k / fps
   in seconds, the audio samples the server had received when it sent the frame) followed by the JPEG. After
   `end`: the last frames, then `{"type": "done", "frames": N, "seconds": S}`; with `"record": true` then
   `{"type": "video", "bytes": N}` and the MP4 (the streamed frames with the audio, provenance-marked) as one
   binary message.

Anything wrong (bad JSON, unknown message, wrong sample format, no face, too long) gets `{"type": "error",
"code", "message"}` and the socket is closed; a client that disconnects mid-stream stops its render. Each stream
renders in a thread of the server process with one loaded model set shared by all streams (models load on the
first stream); `ServeSettings.streams` bounds how many run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import logging
import queue
import struct
import tempfile
import threading
from collections import OrderedDict
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from talkinghead.errors import TalkingHeadError
from talkinghead.serving import sniff
from talkinghead.serving.auth import Guard
from talkinghead.serving.jobs import JobStore, valid_id
from talkinghead.serving.options import OptionError, parse_options
from talkinghead.serving.settings import ServeSettings

log = logging.getLogger("talkinghead.serve")
HEADER = struct.Struct("<IfI")  # frame index, time (s), audio samples received when sent
FORMATS: dict[str, np.dtype[Any]] = {"f32le": np.dtype("<f4"), "s16le": np.dtype("<i2")}
MAX_CHUNK_S = 10.0
START_TIMEOUT_S = 30.0
AUDIO_TIMEOUT_S = 60.0  # a stream with no message for this long is closed
_FACES_KEPT = 8
_FRAMES_AHEAD = 50  # frames rendered but not yet sent, at most (2 s at 25 fps)
_INTERNAL = "The stream failed because of an internal error of the server."


class StreamError(Exception):
    """A client mistake: sent back as {"type": "error"} and the socket is closed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class _Stopped(Exception):
    pass


class Faces:
    """The loaded models (once, on the first stream) and the faces prepared for streams, by id."""

    def __init__(self, settings: ServeSettings, store: JobStore) -> None:
        self.settings, self.store = settings, store
        self._base: Any = None
        self._lock = threading.Lock()
        self._faces: OrderedDict[str, Any] = OrderedDict()
        self.active = 0

    def _animator(self) -> Any:
        with self._lock:
            if self._base is None:
                import cv2
                import torch

                # the front end's choice (streams run in this process): small per-frame work, where more threads
                # on a busy machine cost more than they give
                torch.set_num_threads(self.settings.stream_threads)
                cv2.setNumThreads(self.settings.stream_threads)
                from talkinghead.pipeline import Animator

                self._base = Animator()
            return self._base

    def get(self, face_id: str, size: int | None) -> Any:
        key = f"{face_id}:{size}"
        with self._lock:
            if key in self._faces:
                self._faces.move_to_end(key)
                return self._faces[key]
        job = self.store.get(face_id) if valid_id(face_id) else None
        if job is None or "face" not in job.inputs:
            raise StreamError("unknown_face", "There is no face with this id (it may have expired).")
        return self._prepare(face_id, self.store.folder(face_id) / job.inputs["face"], size)

    def add(self, photo: bytes, size: int | None) -> tuple[str, Any]:
        face_id = "f" + hashlib.sha256(photo).hexdigest()[:20]
        key = f"{face_id}:{size}"
        with self._lock:
            if key in self._faces:
                return face_id, self._faces[key]
        self.settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.TemporaryDirectory(dir=self.settings.data_dir) as d:
            path = Path(d) / "photo"
            path.write_bytes(photo)
            sniff.check_image(path, self.settings.max_pixels)
            return face_id, self._prepare(face_id, path, size)

    def _prepare(self, face_id: str, path: Path, size: int | None) -> Any:
        from talkinghead.media import load_image

        anim = copy.copy(self._animator())  # shares the loaded models; the face is its own
        anim.set_source(load_image(path), size=size)
        with self._lock:
            self._faces[f"{face_id}:{size}"] = anim
            while len(self._faces) > _FACES_KEPT:
                self._faces.popitem(last=False)
        return anim


def _refusal(websocket: WebSocket, token: str | None) -> str | None:
    """Guard's rules for HTTP (loopback or token, Host), plus: no socket opened by another web site."""
    scope = dict(websocket.scope, method="GET")
    headers = Headers(scope=websocket.scope)
    refused = Guard(None, token)._check(scope, headers)  # type: ignore[arg-type]
    if refused is not None and refused[0] != 303:
        return refused[2]
    if refused is not None:
        return "This server needs its token: send 'Authorization: Bearer TOKEN'."
    origin = headers.get("origin")
    if origin and origin != "null":
        from urllib.parse import urlsplit

        if urlsplit(origin).netloc.lower() != headers.get("host", "").lower():
            return "Streams opened by other web sites are refused."
    return None


def _options(start: dict[str, Any]) -> tuple[Any, str, float, int, bool]:
    from talkinghead.config import GenerateOptions
    from talkinghead.motion.stream import LOOKAHEAD_S, MIN_LOOKAHEAD_S
    from talkinghead.pipeline import check_options

    raw = start.get("options") or {}
    if not isinstance(raw, dict):
        raise StreamError("bad_option", "'options' must be an object of generate options.")
    try:
        overrides, _ = parse_options(
            "generate", {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in raw.items()}
        )
    except OptionError as exc:
        raise StreamError("bad_option", str(exc)) from None
    opts = check_options(replace(GenerateOptions(), **overrides))
    fmt = start.get("format", "f32le")
    if fmt not in FORMATS:
        raise StreamError("bad_format", f"The audio format must be f32le or s16le, not '{str(fmt)[:20]}'.")
    try:
        lookahead = float(start.get("lookahead", LOOKAHEAD_S))
        quality = int(start.get("quality", 90))
    except (TypeError, ValueError):
        raise StreamError("bad_option", "'lookahead' and 'quality' must be numbers.") from None
    if not MIN_LOOKAHEAD_S <= lookahead <= 1.0:
        raise StreamError("bad_option", f"'lookahead' must be from {MIN_LOOKAHEAD_S} to 1 second.")
    if not 30 <= quality <= 95:
        raise StreamError("bad_option", "'quality' must be from 30 to 95.")
    return opts, fmt, lookahead, quality, bool(start.get("record", False))


async def _receive(websocket: WebSocket, timeout: float) -> dict[str, Any]:
    try:
        message = await asyncio.wait_for(websocket.receive(), timeout)
    except TimeoutError:
        raise StreamError("timeout", f"Nothing was received for {timeout:g} seconds.") from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    return dict(message)


def _json(message: dict[str, Any]) -> dict[str, Any]:
    text = message.get("text")
    if text is None:
        raise StreamError("bad_message", "Expected a JSON text message here.")
    try:
        data = json.loads(text)
    except ValueError:
        raise StreamError("bad_json", "A text message is not valid JSON.") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise StreamError("bad_message", "A text message must be a JSON object with a 'type'.")
    return data


def _samples(data: bytes, fmt: str) -> np.ndarray:
    dtype = FORMATS[fmt]
    if len(data) == 0 or len(data) % dtype.itemsize:
        raise StreamError("bad_audio", f"An audio message must hold whole {fmt} samples (16 kHz mono).")
    if len(data) // dtype.itemsize > MAX_CHUNK_S * 16000:
        raise StreamError("bad_audio", f"An audio message may hold at most {MAX_CHUNK_S:g} seconds.")
    x = np.frombuffer(data, dtype)
    if fmt == "s16le":
        return x.astype(np.float32) / 32768.0
    if not np.isfinite(x).all() or np.abs(x).max() > 8.0:
        raise StreamError("bad_audio", "The audio is not float32 samples in [-1, 1]; is it s16le?")
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def register(app: FastAPI, settings: ServeSettings, store: JobStore) -> None:
    """Add the WebSocket route `/v1/stream` to `app`."""
    faces = Faces(settings, store)
    app.state.stream_faces = faces

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket) -> None:
        refusal = _refusal(websocket, settings.token)
        if refusal is not None:
            await websocket.close(code=1008, reason=refusal[:120])
            return
        await websocket.accept()
        counted = False
        try:
            if faces.active >= settings.streams:
                raise StreamError("busy", "The server is streaming to as many clients as it may; try again later.")
            faces.active += 1
            counted = True
            await _session(websocket, faces, settings)
        except StreamError as exc:
            with contextlib.suppress(Exception):
                await websocket.send_json({"type": "error", "code": exc.code, "message": exc.message})
                await websocket.close(code=1008)
        except WebSocketDisconnect:
            pass
        except Exception:
            log.exception("stream failed")
            with contextlib.suppress(Exception):
                await websocket.send_json({"type": "error", "code": "internal", "message": _INTERNAL})
                await websocket.close(code=1011)
        finally:
            if counted:
                faces.active -= 1


async def _session(websocket: WebSocket, faces: Faces, settings: ServeSettings) -> None:
    from talkinghead.media.image import MAX_SIDE

    start = _json(await _receive(websocket, START_TIMEOUT_S))
    if start["type"] != "start":
        raise StreamError("bad_message", 'The first message must be {"type": "start", ...}.')
    try:
        opts, fmt, lookahead, quality, record = _options(start)
    except TalkingHeadError as exc:
        raise StreamError("bad_option", str(exc)) from None
    size = opts.size
    if size is not None and size > MAX_SIDE:
        raise StreamError("bad_option", f"size must be at most {MAX_SIDE}.")
    try:
        if start.get("face"):
            anim = await run_in_threadpool(faces.get, str(start["face"])[:64], size)
            face_id = str(start["face"])[:64]
        else:
            message = await _receive(websocket, START_TIMEOUT_S)
            photo = message.get("bytes")
            if not photo:
                raise StreamError("bad_message", "Send the photo as one binary message after 'start' (or a face id).")
            if len(photo) > settings.max_upload_bytes:
                raise StreamError("too_large", f"The photo is larger than {settings.max_upload_mb:g} MB.")
            face_id, anim = await run_in_threadpool(faces.add, photo, size)
    except (sniff.Unsupported, sniff.TooLarge, TalkingHeadError) as exc:
        raise StreamError("bad_face", str(exc)) from None
    h, w = anim.source.image.shape[:2]
    await websocket.send_json(
        {
            "type": "ready",
            "face": face_id,
            "width": w,
            "height": h,
            "fps": opts.fps,
            "sample_rate": 16000,
            "format": fmt,
            "lookahead": lookahead,
        }
    )
    await _run(websocket, anim, opts, fmt, lookahead, quality, record, settings)


async def _run(
    websocket: WebSocket,
    anim: Any,
    opts: Any,
    fmt: str,
    lookahead: float,
    quality: int,
    record: bool,
    settings: ServeSettings,
) -> None:
    import cv2

    loop = asyncio.get_running_loop()
    chunks: queue.Queue[np.ndarray | type[_Stopped] | None] = queue.Queue()
    out: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    received = [0]
    room = threading.Semaphore(_FRAMES_AHEAD)  # a client that does not read its frames holds the render, not memory
    max_samples = int(settings.max_stream_seconds * 16000)
    tmp = tempfile.TemporaryDirectory(dir=settings.data_dir) if record else None
    stopped = threading.Event()

    def produce() -> None:
        recorder = None
        try:
            if tmp is not None:
                from talkinghead.provenance.stamp import Stamp, mouth_spare
                from talkinghead.stream_record import StreamRecorder

                h, w = anim.source.image.shape[:2]
                stamp = Stamp.new("photo", opts.watermark, [], {"stream": True, **asdict(opts)}, (w, h))
                spare = mouth_spare(anim.source.points)  # the mouth is left unmarked, as generate leaves it
                path = Path(tmp.name) / "stream.mp4"
                recorder = StreamRecorder(path, w, h, opts.fps, stamp, crf=opts.crf, spare=spare)
            sent = [0]

            def audio() -> Any:
                while True:
                    c = chunks.get()
                    if c is None:
                        return
                    if c is _Stopped:
                        raise _Stopped()
                    assert isinstance(c, np.ndarray)
                    if recorder is not None:
                        recorder.add_audio(c)
                    sent[0] += len(c)
                    yield c

            params = [int(cv2.IMWRITE_JPEG_QUALITY), quality]
            k = -1
            for k, frame in enumerate(anim.stream(audio(), opts, lookahead)):
                if recorder is not None:
                    recorder.write(frame)
                _, jpeg = cv2.imencode(".jpg", np.ascontiguousarray(frame[..., ::-1]), params)
                head = HEADER.pack(k, k / opts.fps, sent[0])
                while not room.acquire(timeout=1.0):
                    if stopped.is_set():
                        raise _Stopped()
                loop.call_soon_threadsafe(out.put_nowait, ("frame", head + jpeg.tobytes()))
            result = recorder.close() if recorder is not None else None
            recorder = None
            loop.call_soon_threadsafe(out.put_nowait, ("done", (k + 1, sent[0] / 16000, result)))
        except _Stopped:
            pass
        except TalkingHeadError as exc:
            loop.call_soon_threadsafe(out.put_nowait, ("error", ("bad_input", str(exc))))
        except Exception:
            log.exception("stream render failed")
            loop.call_soon_threadsafe(out.put_nowait, ("error", ("internal", _INTERNAL)))
        finally:
            if recorder is not None:
                recorder.abort()

    async def receive() -> None:
        while True:
            message = await _receive(websocket, AUDIO_TIMEOUT_S)
            if message.get("bytes") is not None:
                samples = _samples(message["bytes"], fmt)
                received[0] += len(samples)
                if received[0] > max_samples:
                    raise StreamError("too_long", f"A stream may last at most {settings.max_stream_seconds:g} seconds.")
                chunks.put(samples)
                continue
            data = _json(message)
            if data["type"] == "end":
                chunks.put(None)
                return
            raise StreamError("bad_message", f"Unknown message type '{data['type'][:20]}'.")

    async def send() -> None:
        while True:
            kind, value = await out.get()
            if kind == "frame":
                await websocket.send_bytes(value)
                room.release()
            elif kind == "error":
                raise StreamError(*value)
            else:
                n, seconds, result = value
                await websocket.send_json({"type": "done", "frames": n, "seconds": round(seconds, 3)})
                if result is not None:
                    data = await run_in_threadpool(Path(result).read_bytes)
                    await websocket.send_json({"type": "video", "bytes": len(data)})
                    await websocket.send_bytes(data)
                await websocket.close(code=1000)
                return

    thread = threading.Thread(target=produce, name="talkinghead-stream", daemon=True)
    thread.start()
    receiver = asyncio.create_task(receive())
    sender = asyncio.create_task(send())
    try:
        done, _ = await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
        if receiver in done and receiver.exception() is None:
            await sender  # the client said 'end': the last frames, done, the video
        else:
            for task in done:
                exc = task.exception()
                if exc is not None:
                    raise exc
    finally:
        stopped.set()
        chunks.put(_Stopped)
        for task in (receiver, sender):
            task.cancel()
        await run_in_threadpool(thread.join, 30.0)
        if tmp is not None:
            tmp.cleanup()
