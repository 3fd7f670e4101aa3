"""`talkinghead serve`: a web page and a versioned HTTP API over `Animator` and `Dubber`, safe to leave running.

Needs the optional extra: `pip install "talkinghead[serve]"` (FastAPI, uvicorn, python-multipart).

    from talkinghead.serving import ServeSettings, create_app
    app = create_app(ServeSettings(data_dir="jobs", workers=1))   # any ASGI server can run `app`

Modules: `settings` (limits), `auth` (who may connect), `upload` (streamed multipart bodies), `sniff`
(what a file really is), `options` (form fields -> pipeline options), `jobs` (state on disk),
`workers` (processes with loaded models, the bounded queue), `app` (routes), `static/` (the page).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from talkinghead.serving.settings import ServeSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["ServeSettings", "create_app"]


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """The server as an ASGI app (imports FastAPI only when called)."""
    from talkinghead.serving.app import create_app as make

    return make(settings)
