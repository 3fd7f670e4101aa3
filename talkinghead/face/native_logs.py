"""Opt-in muting of the C++ log lines mediapipe prints on stderr when its graphs start.

Kept apart from `landmarks` so the CLI can opt in before mediapipe is imported (its log-level variables
are read once) without paying for that import.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_mute = False  # see mute_native_logs


def mute_native_logs() -> None:
    """Opt in to muting the C++ log lines mediapipe prints on stderr (the CLI does; a library never should
    behind its caller's back): while a mediapipe graph starts, file descriptor 2 of the whole process is
    pointed at /dev/null. Call it before mediapipe is first used (its log-level variables are read once).
    TALKINGHEAD_DEBUG=1 keeps the lines."""
    global _mute
    if os.environ.get("TALKINGHEAD_DEBUG"):
        return
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _mute = True


@contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Mute mediapipe's native start-up lines inside the block, if `mute_native_logs` opted in. Python
    exceptions are unaffected: they are raised, not printed, inside the block."""
    if not _mute:
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        _flush_c_stdio()  # lines the native side buffered belong to the muted block
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _flush_c_stdio() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass
