"""The page of `talkinghead serve` in a real headless Chromium (Debian's `chromium`, driven by Playwright with the
system browser: nothing is downloaded). The server runs as a user starts it, `talkinghead serve`, in a subprocess.

Set SERVE_SCREENSHOT=docs/serve.png to refresh the README's screenshot.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason='the [serve] extra is not installed (pip install "talkinghead[serve]")')
playwright = pytest.importorskip(
    "playwright.sync_api", reason='Playwright is not installed (pip install "talkinghead[browser]")'
)
CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser")) if p), None)
if CHROMIUM is None:
    pytest.skip("no Chromium browser is installed (apt-get install chromium)", allow_module_level=True)

from speech import synthesize, write_wav  # noqa: E402

from talkinghead.pipeline import DEMO_FACE  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    port = _free_port()
    data = tmp_path_factory.mktemp("browser_data")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TALKINGHEAD_TOKEN", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "talkinghead.cli",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data),
            "--max-seconds",
            "20",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.time() + 120
        while time.time() < end:
            try:
                with urllib.request.urlopen(url + "/v1/health", timeout=2) as r:
                    if b'"workers_ready":1' in r.read():
                        break
            except OSError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode()[-2000:])  # type: ignore[union-attr]
            time.sleep(0.3)
        else:
            raise RuntimeError("the server did not start within 120 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"],
        )
        yield b
        b.close()


@pytest.fixture()
def page(browser, base_url):
    """A fresh page that records console errors, uncaught exceptions and every URL it requests."""
    context = browser.new_context(viewport={"width": 1000, "height": 1000})
    context.grant_permissions(["microphone"], origin=base_url)
    pg = context.new_page()
    pg.problems = []  # type: ignore[attr-defined]
    pg.urls = []  # type: ignore[attr-defined]
    pg.on("console", lambda m: m.type == "error" and pg.problems.append(m.text))  # type: ignore[attr-defined]
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))  # type: ignore[attr-defined]
    pg.on("request", lambda r: pg.urls.append(r.url))  # type: ignore[attr-defined]
    pg.goto(base_url + "/")
    yield pg
    context.close()


@pytest.fixture(scope="module")
def speech_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("browser_media") / "hello.wav"
    write_wav(p, synthesize("Hello there, nice to meet you.", "en"))
    return p


def _only_local(pg, base_url: str) -> None:
    outside = [u for u in pg.urls if not (u.startswith(base_url) or u.startswith(("blob:", "data:")))]
    assert not outside, f"the page requested other hosts: {outside}"


def _plays(pg) -> None:
    pg.wait_for_selector("#result:not([hidden])", timeout=90_000)
    pg.wait_for_function(
        "() => { const v = document.querySelector('#video-out');"
        " return v.readyState >= 2 && v.duration > 0 && v.videoWidth > 0; }",
        timeout=30_000,
    )


def test_page_loads_without_console_errors(page, base_url) -> None:
    assert page.title() == "talkinghead"
    assert page.is_visible("#drop-face") and not page.is_visible("#drop-video")
    page.check("input[value=dub]")
    assert page.is_visible("#drop-video") and page.is_visible("#options-dub")
    page.check("input[value=generate]")
    page.goto(base_url + "/docs")  # the API docs too: Swagger UI from the server itself
    page.wait_for_selector(".swagger-ui .info", timeout=30_000)
    assert page.problems == []
    _only_local(page, base_url)


def test_photo_and_speech_make_a_video_that_plays(page, base_url, speech_file) -> None:
    page.set_input_files("#face", str(DEMO_FACE))
    page.set_input_files("#audio", str(speech_file))
    page.select_option("select[name=size]", "256")
    page.fill("input[name=seed]", "7")
    page.click("#submit")
    _plays(page)
    duration = page.evaluate("document.querySelector('#video-out').duration")
    assert abs(duration - len(synthesize("Hello there, nice to meet you.", "en")) / 16000) < 0.2
    assert page.get_attribute("#download", "href").startswith("/v1/jobs/")
    assert not page.is_visible("#error")
    shot = os.environ.get("SERVE_SCREENSHOT")
    if shot:
        page.evaluate("document.querySelector('#video-out').currentTime = 0.6")
        page.wait_for_timeout(500)
        page.screenshot(path=str(ROOT / shot), full_page=True)
    assert page.problems == []
    _only_local(page, base_url)


def test_microphone_recording_is_uploaded(page, base_url) -> None:
    page.set_input_files("#face", str(DEMO_FACE))
    page.select_option("select[name=size]", "256")
    page.click("#record")
    page.wait_for_timeout(1500)
    page.click("#record")  # stop: the WebM/Opus recording becomes the speech
    page.wait_for_selector("#recorded:not([hidden])")
    page.click("#submit")
    _plays(page)
    assert page.problems == []


def test_refused_input_shows_its_message(page, base_url, tmp_path) -> None:
    fake = tmp_path / "photo.jpg"
    fake.write_text("this is not a photo")
    page.set_input_files("#face", str(fake))
    page.set_input_files("#audio", str(DEMO_FACE.parent / "demo_speech.wav"))
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    assert "not a JPEG, PNG or WebP image" in page.inner_text("#error")

    import cv2

    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.full((200, 200, 3), 128, np.uint8))
    page.set_input_files("#face", str(grey))
    page.click("#submit")
    page.wait_for_function("() => document.querySelector('#error').textContent.includes('face')", timeout=60_000)
    assert page.is_visible("#error") and not page.is_visible("#result")
    # the refusal is answered with 415, which Chromium logs as a failed resource load; nothing else may be logged
    assert all("415" in p for p in page.problems), page.problems


def test_live_mode_streams_frames_from_the_microphone(page, base_url) -> None:
    """Live mode with Chromium's fake microphone (a beep): frames arrive over the WebSocket and the page shows
    the measured delay."""
    page.set_input_files("#face", str(DEMO_FACE))
    page.select_option("select[name=size]", "256")
    page.click("#live-start")
    page.wait_for_function(
        "() => document.querySelector('#live-stats').textContent.includes('audio to mouth')", timeout=60_000
    )
    stats = page.inner_text("#live-stats")
    shown = int(stats.split("audio to mouth ")[1].split(" ms")[0])
    assert 0 < shown < 5000, stats
    width = page.evaluate("document.querySelector('#live-frame').naturalWidth")
    assert width == 256
    page.click("#live-start")  # stop: the server finishes the stream
    page.wait_for_function("() => document.querySelector('#live-note').textContent.startsWith('Done')", timeout=30_000)
    assert page.problems == []
    _only_local(page, base_url)
