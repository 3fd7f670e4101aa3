"""Shared fixtures: the built-in models are loaded once per test session."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from speech import write_wav

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def animator():
    from talkinghead.pipeline import Animator

    return Animator()


@pytest.fixture(scope="session")
def demo_face() -> Path:
    from talkinghead.pipeline import DEMO_FACE

    return DEMO_FACE


@pytest.fixture()
def wav_file(tmp_path: Path):
    """Factory: write float samples (16 kHz mono) to a WAV and return its path."""

    def make(samples: np.ndarray, name: str = "speech.wav", rate: int = 16000) -> Path:
        p = tmp_path / name
        write_wav(p, samples, rate)
        return p

    return make


@pytest.fixture(scope="session", autouse=True)
def _own_config_folder(tmp_path_factory):
    """Every output is signed (provenance): keep the self-signed key the tests make out of the user's real
    config folder. Subprocesses the tests start inherit it."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
    yield
    mp.undo()
