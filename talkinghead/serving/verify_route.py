"""POST /v1/verify: is an uploaded video marked as made by talkinghead? (label, C2PA manifest, watermark)

The same check as `talkinghead verify --json`, run at once (no job): the upload is streamed into a private
temporary folder among the server's uploads, sniffed, verified in a thread and deleted. At most
`MAX_CONCURRENT` checks run at a time (each decodes up to 150 frames and searches them); one more gets 429.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from talkinghead.serving import sniff
from talkinghead.serving.settings import ServeSettings
from talkinghead.serving.upload import (
    REFUSED,
    UploadError,
    display_name,
    error_response,
    receive_form,
    refusal,
    refuse_declared_oversize,
)

__all__ = ["MAX_CONCURRENT", "VerifyOut", "verify_router"]

MAX_CONCURRENT = 2
RETRY_AFTER_S = 5


class ManifestOut(BaseModel):
    status: str  # valid | tampered | absent | unavailable (c2pa-python not installed)
    signer: str | None = None
    self_signed: bool | None = None
    model_config = {"extra": "allow"}


class WatermarkOut(BaseModel):
    found: bool
    confidence: float  # 1 - bound on the chance that an unmarked video scores this high
    payload: str | None  # the job id (6 hex digits) when found and readable
    model_config = {"extra": "allow"}


class VerifyOut(BaseModel):
    file: str  # the name the client sent (shown only)
    marked: bool
    label: dict[str, Any] | None
    manifest: ManifestOut
    watermark: WatermarkOut | None


def _schema() -> dict[str, Any]:
    props = {
        "video": {"type": "string", "format": "binary", "description": "The video to check (MP4, MOV, WebM...)."},
        "watermark": {
            "type": "string",
            "description": "false: skip the watermark search (faster; label and manifest only). Default true.",
        },
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "required": ["video"], "properties": props}}
            },
        }
    }


def verify_router(settings: ServeSettings, responses: dict[int | str, dict[str, Any]]) -> APIRouter:
    """The route, bound to one server's limits; `responses` documents the shared error bodies."""
    router = APIRouter()
    bearer = HTTPBearer(auto_error=False, description="The --token the server was started with.")
    slots = threading.BoundedSemaphore(MAX_CONCURRENT)

    @router.post(
        "/v1/verify",
        response_model=VerifyOut,
        dependencies=[Depends(bearer)],
        tags=["provenance"],
        responses={k: v for k, v in responses.items() if k in (401, 413, 415, 422, 429)},
        openapi_extra=_schema(),
    )
    async def verify(request: Request) -> Response:
        """Check a video for talkinghead's marks: the metadata label, the signed C2PA manifest and the invisible
        watermark. `marked` is true when any of them says the video is synthetic (the same object as
        `talkinghead verify --json`, with `file` the name you sent). Nothing is kept."""
        if not slots.acquire(blocking=False):
            return error_response(
                429,
                "busy",
                f"The server is checking other videos; try again in {RETRY_AFTER_S} seconds.",
                {"Retry-After": str(RETRY_AFTER_S)},
            )
        folder: Path | None = None
        try:
            refuse_declared_oversize(
                request.headers.get("content-length", ""), settings.max_upload_bytes, settings.max_upload_mb
            )
            uploads = settings.data_dir / "uploads"  # emptied when the server starts: nothing outlives a crash
            uploads.mkdir(parents=True, exist_ok=True, mode=0o700)
            folder = Path(tempfile.mkdtemp(prefix="verify-", dir=uploads))
            upload = await receive_form(
                request.headers.get("content-type", ""), request.stream(), folder, settings.max_upload_bytes, ("video",)
            )
            if "video" not in upload.files:
                raise UploadError(422, "missing_file", "Send the video to check as the form file 'video'.")
            extra = [f for f in upload.fields if f != "watermark"]
            if extra:
                raise UploadError(
                    422, "bad_option", f"Unknown field '{extra[0][:40]}'; /v1/verify takes 'video' and 'watermark'."
                )
            flag = upload.fields.get("watermark", "true").strip().lower() or "true"
            if flag not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise UploadError(422, "bad_option", f"The field 'watermark' must be true or false, not '{flag[:40]}'.")
            path = upload.files["video"]
            if path.stat().st_size == 0:
                raise UploadError(422, "empty_file", "The file 'video' is empty.")
            await run_in_threadpool(sniff.check_media, path, "video", settings.max_seconds, settings.max_pixels)
            from talkinghead.provenance.verify import verify as run

            result = await run_in_threadpool(run, path, flag in ("true", "1", "yes", "on"))
            body = result.as_dict()
            body["file"] = display_name(upload.names.get("video", "")) or "video"
            return JSONResponse(body)
        except REFUSED as exc:
            return refusal(exc)
        finally:
            slots.release()
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    return router
