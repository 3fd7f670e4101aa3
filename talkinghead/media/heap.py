"""Keep memory flat when big frames are allocated and freed many times a second.

glibc raises its mmap threshold each time a large block is freed, after which full-HD frames
(6 MB each) are carved from the heap instead of being mapped; with decoder, encoder and mediapipe
threads each holding an arena, the freed space is never returned and resident memory roughly
doubles over a long video. Pinning the threshold keeps every frame-sized buffer an mmap that goes
back to the system when freed (measured in benchmarks/RESULTS.md).

The library never calls this itself (it changes the whole process): the command line does, for
`dub`, `generate` and `demo`; a program that renders long videos may call it once at start-up.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_MMAP_THRESHOLD = -3
_done = False


def pin_mmap_threshold(threshold: int = 128 * 1024) -> bool:
    """Fix glibc's mmap threshold (process-wide, once). False where there is no glibc.
    Library users may call it explicitly before rendering long videos; nothing in the library does."""
    global _done
    if _done:
        return True
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        _done = bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False
    return _done
