"""Process-wide settings for rendering long videos: the allocator (memory stays flat without a page fault per
frame) and OpenCV's thread pool.

glibc raises its mmap threshold each time a large block is freed, after which big buffers are carved from the
heap; with decoder, encoder and mediapipe threads each holding an arena of their own, freed space is not reused
across threads and resident memory grows over a long video. The fix of session 4 pinned the threshold at 128 KB,
so every frame-sized buffer was a fresh mmap, returned when freed: flat, but each one is page-faulted in again
(a 1080p dub: 12 million faults and 26 s of system CPU per 120 s of video, 15 % of the job; photo mode: 0.9
million per 30 s). Now the threshold is pinned at 4 MB with one arena and a high trim threshold: buffers up to
a 1080p frame come from one heap and are reused by whichever thread allocates next, so memory stays as flat
(120 s 1080p dub: RSS flat at ~710 MB vs 640-700 MB) for 3 % of those faults (benchmarks/RESULTS.md,
issue 16, session 8). Larger buffers (4K frames) are still mapped and returned.

The library never calls these in a caller's process (they change the whole process): the command line does, for
`dub`, `generate`, `demo` and `batch`, and the worker processes of the server and of batches (processes of our
own) tune the allocator when they start; a program that renders long videos may call them once at start-up.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 4 << 20  # bytes: a 1080p 4:2:0 frame (3.1 MB) and the dub's warp maps stay below it
TRIM_THRESHOLD = 64 << 20  # bytes of free heap kept for reuse rather than returned and faulted in again
_done = False


def tune_allocator() -> bool:
    """Fix glibc's malloc for rendering (process-wide, once; see the module docstring). False where there is no
    glibc. Call it before the rendering threads start: their allocations then share one arena."""
    global _done
    if _done:
        return True
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        settings = ((_M_ARENA_MAX, 1), (_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
        _done = all(libc.mallopt(param, value) for param, value in settings)
    except (OSError, AttributeError):
        return False
    return _done


def one_opencv_thread() -> None:
    """OpenCV's parallel loops on the calling thread only (process-wide, like the allocator above; the command
    line's choice for photo mode). Its calls there are small (a 512 px frame's warp, the mouth's layers), and
    splitting each over a second thread only adds waking and waiting while x264 and the motion already use the
    other core: 0.2-0.3 s less CPU per 30 s of video (benchmarks/RESULTS.md, issue 16, session 8)."""
    import cv2

    cv2.setNumThreads(1)
