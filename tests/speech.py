"""Multilingual test speech from espeak-ng, driven through ctypes.

Tests need real speech in many scripts (Devanagari, Tamil, Chinese, ...) with
known silent gaps, without shipping audio files or depending on a system
``espeak`` binary. ``espeakng-loader`` ships ``libespeak-ng.so`` plus its data
directory, so we call its C API through ctypes.

espeak-ng's output for a sentence depends on every synthesis made before it in
the same process (measured: up to 1.2 in amplitude, lengths a few samples apart;
``espeak_ng_SetRandSeed``, ``srand`` and re-initialising do not reset it), which
made tests see different speech alone and in the suite. So each sentence is
spoken by a fresh Python process running this file, as the first synthesis of
that process, and kept in memory for the rest of the run.

This is a test helper module, not a test file; ``scripts/make_demo_audio.py``
also uses it to build the bundled demo speech.
"""

from __future__ import annotations

import ctypes
import functools
import struct
import subprocess
import sys
import threading
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

__all__ = ["SENTENCES", "speech_with_pause", "synthesize", "write_wav"]

# Two natural sentences per language, each about 2-3 s at 150 wpm. Keys are
# the language codes callers use; ``_VOICE_ALIASES`` maps them to espeak voices.
# Note: espeak renders commas and sentence ends as short (about 0.2-0.45 s)
# runs of exact zeros, so a part is not voiced end to end.
SENTENCES: dict[str, list[str]] = {
    "en": [
        "The quick brown fox jumps over the lazy dog.",
        "Please call me back when you get home tonight.",
    ],
    "hi": [
        "नमस्ते, आज मौसम बहुत अच्छा है।",
        "मैं कल सुबह बाज़ार जाऊँगा।",
    ],
    "ta": [
        "வணக்கம், இன்று வானிலை மிகவும் நன்றாக உள்ளது.",
        "நான் நாளை காலை சந்தைக்கு போவேன்.",
    ],
    "zh": [
        "你好，今天的天气非常好。",
        "我明天早上要去市场买菜。",
    ],
    "de": [
        "Guten Morgen, heute ist das Wetter sehr schön.",
        "Ich gehe morgen früh auf den Markt.",
    ],
    "fr": [
        "Bonjour, il fait très beau aujourd'hui.",
        "Je vais au marché demain matin.",
    ],
    "es": [
        "Hola, hoy hace muy buen tiempo.",
        "Mañana por la mañana voy al mercado.",
    ],
    "ja": [
        "こんにちは、きょうは とても いい てんき です ね。",
        "あした の あさ、いちば に いきます。",
    ],
}

# espeak-ng names Mandarin "cmn"; "zh" is not a voice name in its data.
_VOICE_ALIASES: dict[str, str] = {"zh": "cmn"}

_AUDIO_OUTPUT_SYNCHRONOUS = 1  # ENOUTPUT_MODE_SYNCHRONOUS: samples go to our callback
_ESPEAK_RATE = 1  # espeakRATE parameter id
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_ENS_OK = 0
_EE_OK = 0

# int callback(short *wav, int numsamples, espeak_EVENT *events)
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_lock = threading.Lock()  # espeak-ng keeps global state: one synthesis at a time
_lib: ctypes.CDLL | None = None
_native_rate = 0
_chunks: list[np.ndarray] = []


@_SynthCallback
def _on_samples(wav: ctypes._Pointer, numsamples: int, _events: int) -> int:
    """Collect a block of 16-bit samples; returning 0 lets synthesis continue."""
    if wav and numsamples > 0:
        _chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
    return 0


def _bind(lib: ctypes.CDLL) -> None:
    """Declare the C signatures so ctypes passes pointers/sizes correctly."""
    lib.espeak_ng_InitializePath.argtypes = [ctypes.c_char_p]
    lib.espeak_ng_InitializePath.restype = None
    lib.espeak_ng_Initialize.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
    lib.espeak_ng_Initialize.restype = ctypes.c_int
    lib.espeak_ng_ClearErrorContext.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
    lib.espeak_ng_ClearErrorContext.restype = None
    lib.espeak_ng_InitializeOutput.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p]
    lib.espeak_ng_InitializeOutput.restype = ctypes.c_int
    lib.espeak_ng_GetSampleRate.argtypes = []
    lib.espeak_ng_GetSampleRate.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.argtypes = []
    lib.espeak_Synchronize.restype = ctypes.c_int


def _engine() -> ctypes.CDLL:
    """Load and initialise espeak-ng once per process (caller holds ``_lock``).

    The ``espeak_ng_*`` calls are used instead of ``espeak_Initialize`` because
    the latter calls ``exit(1)`` on a bad data path; these return a status.
    Every espeak-ng release accepts the directory *containing* espeak-ng-data
    (newer ones also accept the data directory itself), so that form goes first.
    """
    global _lib, _native_rate
    if _lib is not None:
        return _lib
    try:
        import espeakng_loader
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("test speech needs the 'espeakng-loader' package") from exc

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    _bind(lib)
    data_dir = Path(espeakng_loader.get_data_path())
    status = -1
    for candidate in (data_dir.parent, data_dir):
        lib.espeak_ng_InitializePath(str(candidate).encode())
        context = ctypes.c_void_p()
        status = lib.espeak_ng_Initialize(ctypes.byref(context))
        lib.espeak_ng_ClearErrorContext(ctypes.byref(context))
        if status == _ENS_OK:
            break
    if status != _ENS_OK:
        raise RuntimeError(f"espeak-ng failed to initialise from {data_dir} (status {status:#x})")
    status = lib.espeak_ng_InitializeOutput(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None)
    if status != _ENS_OK:
        raise RuntimeError(f"espeak-ng output setup failed (status {status:#x})")
    lib.espeak_SetSynthCallback(_on_samples)
    _native_rate = lib.espeak_ng_GetSampleRate()
    _lib = lib
    return lib


def _speak_here(text: str, language: str, rate_wpm: int) -> tuple[np.ndarray, int]:
    """Speak ``text`` in this process: int16 samples at espeak's native rate."""
    voice = _VOICE_ALIASES.get(language, language)
    with _lock:
        lib = _engine()
        if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise RuntimeError(f"espeak-ng has no voice for language {language!r} (tried {voice!r})")
        lib.espeak_SetParameter(_ESPEAK_RATE, int(rate_wpm), 0)
        data = text.encode("utf-8")
        _chunks.clear()
        status = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        pcm = np.concatenate(_chunks) if _chunks else np.zeros(0, np.int16)
        _chunks.clear()
    if status != _EE_OK:
        raise RuntimeError(f"espeak-ng synthesis failed for {language!r} (status {status})")
    return pcm.astype(np.int16), _native_rate


@functools.cache
def _speak_fresh(text: str, language: str, rate_wpm: int) -> tuple[bytes, int]:
    """Speak ``text`` as the first synthesis of a new process (see the module note)."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), language, str(rate_wpm)],
        input=text.encode("utf-8"),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"espeak-ng process failed (exit {done.returncode})")
    (native_rate,) = struct.unpack("<i", done.stdout[:4])
    return done.stdout[4:], native_rate


def synthesize(text: str, language: str, rate_wpm: int = 150, sample_rate: int = 16000) -> np.ndarray:
    """Speak ``text`` with the espeak-ng voice for ``language``.

    Returns float32 mono samples in [-1, 1] at ``sample_rate`` (espeak renders
    at 22050 Hz; we resample so tests match the pipeline's input rate). The same
    arguments give the same samples in any process, whatever was spoken before.
    """
    raw, native_rate = _speak_fresh(text, language, int(rate_wpm))
    samples = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    if sample_rate != native_rate:
        ratio = Fraction(sample_rate, native_rate)
        samples = resample_poly(samples, ratio.numerator, ratio.denominator).astype(np.float32)
    return np.clip(samples, -1.0, 1.0)


def _trim(samples: np.ndarray, threshold: float = 1e-3) -> np.ndarray:
    """Drop espeak's quiet lead-in/tail so the gaps we insert are the real gaps."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if loud.size == 0:
        return samples[:0]
    return samples[loud[0] : loud[-1] + 1]


def speech_with_pause(
    parts: list[str],
    language: str,
    pause_s: float = 1.0,
    lead_s: float = 0.3,
    sample_rate: int = 16000,
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Join spoken ``parts`` with exact digital silence between them.

    Returns the samples and the (start, end) seconds of each inter-part pause,
    so tests can check that the mouth closes while nothing is being said.
    Each part is trimmed of espeak's own near-silent edges, so the reported
    pauses are the whole silent gap, not a slice of a longer one.
    """
    pause = np.zeros(round(pause_s * sample_rate), np.float32)
    lead = np.zeros(round(lead_s * sample_rate), np.float32)
    pieces: list[np.ndarray] = [lead]
    pauses: list[tuple[float, float]] = []
    cursor = lead.size
    for index, part in enumerate(parts):
        if index:
            pieces.append(pause)
            pauses.append((cursor / sample_rate, (cursor + pause.size) / sample_rate))
            cursor += pause.size
        spoken = _trim(synthesize(part, language, sample_rate=sample_rate))
        pieces.append(spoken)
        cursor += spoken.size
    pieces.append(lead)
    return np.concatenate(pieces).astype(np.float32), pauses


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = 16000) -> None:
    """Write float samples as 16-bit PCM mono, the format every reader accepts."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())


def _main() -> int:
    """``python speech.py LANGUAGE RATE`` < text: native rate (int32) + int16 samples on stdout."""
    language, rate_wpm = sys.argv[1], int(sys.argv[2])
    try:
        pcm, native_rate = _speak_here(sys.stdin.buffer.read().decode("utf-8"), language, rate_wpm)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 2
    sys.stdout.buffer.write(struct.pack("<i", native_rate) + pcm.astype("<i2").tobytes())
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
