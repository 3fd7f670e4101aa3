"""The ASGI application: HTTP API v1, the web page, the login form and the local API docs.

`create_app(settings)` is what `talkinghead serve` runs under uvicorn, and what a deployment runs under
its own ASGI server. Worker processes start with the application (lifespan) and stop with it.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import os
import shutil
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import fastapi_offline
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from talkinghead import __version__
from talkinghead.serving import sniff
from talkinghead.serving.auth import COOKIE, Guard, session_value, token_ok
from talkinghead.serving.jobs import FINISHED, Job, JobStore, valid_id
from talkinghead.serving.options import FILES, MODES, OPTIONS, OptionError, parse_options
from talkinghead.serving.settings import ServeSettings
from talkinghead.serving.upload import (
    REFUSED,
    Upload,
    UploadError,
    error_response,
    receive_form,
    refusal,
    refuse_declared_oversize,
)
from talkinghead.serving.verify_route import verify_router
from talkinghead.serving.workers import WorkerPool

log = logging.getLogger("talkinghead.serve")
STATIC = Path(__file__).parent / "static"
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


# ------------------------------------------------------------------------------------------- models


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class JobOut(BaseModel):
    id: str
    mode: str
    status: str  # queued | running | done | failed | cancelled
    progress: float  # 0-1
    stage: str
    created: str
    started: str | None
    finished: str | None
    expires: str | None  # when a finished job and its result are deleted
    options: dict[str, Any]
    files: dict[str, str]  # role -> the file name the client sent (shown only, never used as a path)
    speech_seconds: float | None  # duration of the uploaded speech
    error: ErrorDetail | None
    summary: str | None  # dub: frames dubbed and passed through
    result: str | None  # URL of the MP4 once done


class JobList(BaseModel):
    jobs: list[JobOut]


class Health(BaseModel):
    status: str
    version: str
    workers: int
    workers_ready: int
    running: int
    queued: int
    queue_limit: int


_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorBody, "description": d}
    for s, d in {
        401: "The token is missing or wrong.",
        404: "No such job (or it expired).",
        409: "The job has no result (yet).",
        413: "The upload is larger than the server takes.",
        415: "A file is not of a kind the server takes.",
        422: "An option or a file is refused.",
        429: "The queue is full; retry after Retry-After seconds.",
    }.items()
}


def _upload_schema() -> dict[str, Any]:
    """The multipart body of POST /v1/jobs, for OpenAPI (the route reads the body itself, streaming)."""
    props: dict[str, Any] = {
        "mode": {"type": "string", "enum": list(MODES), "default": "generate"},
        "face": {"type": "string", "format": "binary", "description": "generate: photo (JPEG, PNG or WebP)."},
        "video": {"type": "string", "format": "binary", "description": "dub: video with the speaker."},
        "audio": {
            "type": "string",
            "format": "binary",
            "description": "Speech: WAV, MP3, M4A, FLAC, OGG/Opus, WebM or a video's sound.",
        },
    }
    for mode, options in OPTIONS.items():
        for name, opt in options.items():
            props.setdefault(name, {"type": "string", "description": f"{mode}: {opt.help}"})
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "required": ["audio"], "properties": props}}
            },
        }
    }


# ------------------------------------------------------------------------------------------- service


class Service:
    """The state behind the routes: settings, jobs on disk, workers, and the janitor that expires jobs."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.store = JobStore(settings.data_dir, settings.keep_hours)
        self.pool = WorkerPool(self.store, settings.workers, settings.queue, settings.threads_per_worker)
        self._stop = threading.Event()
        self._janitor = threading.Thread(target=self._clean, name="talkinghead-janitor", daemon=True)

    def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for job in self.store.load():
            self.pool.queue.put(job.id, reserved=False)
        self.store.expire()
        self.pool.start()
        self._janitor.start()

    def stop(self) -> None:
        self._stop.set()
        self.pool.stop()

    def _clean(self) -> None:
        while not self._stop.wait(self.settings.cleanup_every_s):
            try:
                self.store.expire()
            except Exception:
                log.exception("cleaning expired jobs failed")

    def check_inputs(self, mode: str, upload: Upload, folder: Path) -> tuple[dict[str, str], float]:
        """Sniff every file; rename each to its role plus the suffix of what it really is. Returns
        (role -> file name, seconds of speech)."""
        s = self.settings
        missing = [r for r in FILES[mode] if r not in upload.files]
        if missing:
            what = {"face": "a photo", "video": "a video", "audio": "a speech file"}[missing[0]]
            raise UploadError(422, "missing_file", f"Send {what} as the form file '{missing[0]}' for {mode} mode.")
        extra = [r for r in upload.files if r not in FILES[mode]]
        if extra:
            raise UploadError(422, "unexpected_file", f"The file '{extra[0]}' does not belong to {mode} mode.")
        inputs: dict[str, str] = {}
        duration = 0.0
        for role, path in upload.files.items():
            if path.stat().st_size == 0:
                raise UploadError(422, "empty_file", f"The file '{role}' is empty.")
            if role == "face":
                suffix = sniff.check_image(path, s.max_pixels).suffix
            else:
                info = sniff.check_media(path, "video" if role == "video" else "audio", s.max_seconds, s.max_pixels)
                suffix = ""  # PyAV reads the container from the bytes
                if role == "audio":
                    duration = round(info.duration, 3)
            name = role + suffix
            os.replace(path, folder / name)
            inputs[role] = name
        return inputs, duration


# ------------------------------------------------------------------------------------------- app


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """The talkinghead server as an ASGI app. Run it on a loopback address, or give `settings.token`."""
    settings = settings or ServeSettings()
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)

    app = FastAPI(
        title="talkinghead",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="A photo (or a video) and speech in, a lip-synced talking-head MP4 out. Jobs are "
        "queued; follow them with GET /v1/jobs/{id} or its server-sent events.",
    )
    app.state.service = service
    app.add_middleware(Guard, token=settings.token)
    bearer = HTTPBearer(auto_error=False, description="The --token the server was started with.")
    api = [Depends(bearer)]  # documents the scheme; Guard does the checking
    docs_static = Path(str(fastapi_offline.__file__)).parent / "static"  # Swagger UI + ReDoc, served from here
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/docs-static", StaticFiles(directory=docs_static), name="docs-static")
    store, pool = service.store, service.pool
    app.include_router(verify_router(settings, _ERRORS))  # POST /v1/verify

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = getattr(exc, "headers", None)
        return error_response(exc.status_code, f"http_{exc.status_code}", str(exc.detail), headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return error_response(422, "bad_request", "The request is malformed.")

    def public(job: Job) -> dict[str, Any]:
        return job.public(settings.keep_hours)

    def find(job_id: str) -> Job | None:
        return store.get(job_id) if valid_id(job_id) else None

    not_found = ("not_found", "There is no job with this id (it may have expired).")

    # ---------------------------------------------------------------- API

    @app.get("/v1/health", response_model=Health, dependencies=api, tags=["server"])
    async def health() -> dict[str, Any]:
        """The server answers; how many workers have their models loaded, and how busy they are."""
        return {
            "status": "ok",
            "version": __version__,
            "workers": len(pool.workers),
            "workers_ready": pool.ready,
            "running": pool.busy,
            "queued": len(pool.queue),
            "queue_limit": pool.queue.limit,
        }

    @app.post(
        "/v1/jobs",
        status_code=202,
        response_model=JobOut,
        dependencies=api,
        tags=["jobs"],
        responses=_ERRORS,
        openapi_extra=_upload_schema(),
    )
    async def create_job(request: Request) -> Response:
        """Queue a job: `mode` (generate or dub), the files (`face` or `video`, and `audio`) and any option
        by its command-line name with underscores. Answers 202 with the job; 429 when the queue is full."""
        if not pool.queue.reserve():
            wait = pool.retry_after()
            return error_response(
                429, "queue_full", f"The server is busy; try again in {wait} seconds.", {"Retry-After": str(wait)}
            )
        reserved, folder = True, None
        try:
            refuse_declared_oversize(
                request.headers.get("content-length", ""), settings.max_upload_bytes, settings.max_upload_mb
            )
            job_id, folder = store.new_upload()
            upload = await receive_form(
                request.headers.get("content-type", ""),
                request.stream(),
                folder,
                settings.max_upload_bytes,
                ("face", "video", "audio"),
            )
            mode = upload.fields.pop("mode", "generate").strip() or "generate"
            if mode not in MODES:
                raise UploadError(422, "bad_option", f"The mode must be generate or dub, not '{mode[:40]}'.")
            overrides, shown = parse_options(mode, upload.fields)
            inputs, duration = await run_in_threadpool(service.check_inputs, mode, upload, folder)
            job = Job(
                id=job_id,
                mode=mode,
                options=shown,
                overrides=overrides,
                inputs=inputs,
                names=upload.names,
                duration=duration,
            )
            store.add(job, folder)
            folder = None
            pool.queue.put(job_id)
            reserved = False
            return JSONResponse(public(job), status_code=202, headers={"Location": f"/v1/jobs/{job_id}"})
        except OptionError as exc:
            return error_response(422, "bad_option", str(exc))
        except REFUSED as exc:
            return refusal(exc)
        finally:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            if reserved:
                pool.queue.release()

    @app.get("/v1/jobs", response_model=JobList, dependencies=api, tags=["jobs"])
    async def list_jobs() -> dict[str, Any]:
        """Every job the server still holds, newest first."""
        return {"jobs": [public(j) for j in store.all()]}

    @app.get("/v1/jobs/{job_id}", response_model=JobOut, dependencies=api, tags=["jobs"], responses=_ERRORS)
    async def get_job(job_id: str) -> Response:
        """Status (queued, running, done, failed, cancelled), progress 0-1 and, when failed, the error."""
        job = find(job_id)
        return error_response(404, *not_found) if job is None else JSONResponse(public(job))

    @app.get(
        "/v1/jobs/{job_id}/events",
        dependencies=api,
        tags=["jobs"],
        responses={
            200: {"content": {"text/event-stream": {}}, "description": "One `data:` line of job JSON per change."},
            404: _ERRORS[404],
        },
    )
    async def job_events(job_id: str) -> Response:
        """Server-sent events: the job's JSON (as GET /v1/jobs/{id}) at every change, until it is finished."""
        if find(job_id) is None:
            return error_response(404, *not_found)

        async def stream() -> AsyncIterator[str]:
            loop = asyncio.get_running_loop()
            changed = asyncio.Event()

            def wake() -> None:
                loop.call_soon_threadsafe(changed.set)

            token = store.subscribe(job_id, wake)
            try:
                last = None
                while True:
                    changed.clear()
                    job = store.get(job_id)
                    if job is None:
                        yield "event: gone\ndata: {}\n\n"
                        return
                    data = json.dumps(public(job), separators=(",", ":"))
                    if data != last:
                        yield f"data: {data}\n\n"
                        last = data
                    if job.status in FINISHED:
                        return
                    try:
                        await asyncio.wait_for(changed.wait(), 15.0)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
            finally:
                store.unsubscribe(token)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    @app.get(
        "/v1/jobs/{job_id}/result",
        dependencies=api,
        tags=["jobs"],
        responses={
            200: {"content": {"video/mp4": {}}, "description": "The MP4."},
            404: _ERRORS[404],
            409: _ERRORS[409],
        },
    )
    async def job_result(job_id: str) -> Response:
        """The MP4 of a finished job; 409 while it is queued or running, or when it failed or was cancelled."""
        job = find(job_id)
        if job is None:
            return error_response(404, *not_found)
        path = store.result(job_id)
        if path is None:
            message = {
                "queued": "The job is still waiting for a worker.",
                "running": "The job is still running.",
                "failed": "The job failed; it has no result.",
                "cancelled": "The job was cancelled.",
                "done": "The result is gone.",
            }[job.status]
            return error_response(409, f"job_{job.status}", message)
        return FileResponse(
            path, media_type="video/mp4", filename=f"talkinghead-{job_id[:8]}.mp4", content_disposition_type="inline"
        )

    @app.delete(
        "/v1/jobs/{job_id}",
        dependencies=api,
        tags=["jobs"],
        responses={
            200: {"model": JobOut, "description": "The job was queued or running: it is cancelled."},
            204: {"description": "The job was finished: it and its files are deleted."},
            404: _ERRORS[404],
        },
    )
    async def delete_job(job_id: str) -> Response:
        """Cancel a queued or running job (200, the job), or delete a finished one and its result (204)."""
        job = find(job_id)
        if job is None:
            return error_response(404, *not_found)
        if job.status in FINISHED:
            store.delete(job_id)
            return Response(status_code=204)
        pool.cancel(job_id)
        for _ in range(100):  # a running job stops at its next frame
            job = store.get(job_id)
            if job is None or job.status in FINISHED:
                break
            await asyncio.sleep(0.05)
        return error_response(404, *not_found) if job is None else JSONResponse(public(job))

    from talkinghead.serving.stream import register as register_stream

    register_stream(app, settings, store)  # WebSocket /v1/stream (serving/stream.py)

    # ---------------------------------------------------------------- page, login, docs

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return FileResponse(
            STATIC / "index.html", headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"}
        )

    def login_page(message: str = "", status: int = 200) -> HTMLResponse:
        text = (STATIC / "login.html").read_text().replace("{message}", html.escape(message))
        return HTMLResponse(text, status_code=status, headers={"Content-Security-Policy": PAGE_CSP})

    @app.get("/login", include_in_schema=False)
    async def login_form() -> Response:
        return login_page()

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > 4096:
                return login_page("That is not the token.", 400)
        given = parse_qs(body.decode("utf-8", "replace")).get("token", [""])[0]
        if settings.token is None:
            return RedirectResponse("/", status_code=303)
        from starlette.datastructures import Headers

        if not token_ok(Headers({"authorization": f"Bearer {given}"}), settings.token):
            await asyncio.sleep(1.0)  # slows down guessing
            return login_page("That is not the token.", 401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE,
            session_value(settings.token),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout() -> Response:
        response = RedirectResponse("/login" if settings.token else "/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="talkinghead API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> Response:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="talkinghead API",
            redoc_js_url="/docs-static/redoc.standalone.js",
            redoc_favicon_url="/docs-static/favicon.png",
            with_google_fonts=False,
        )

    return app
