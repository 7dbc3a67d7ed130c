"""Process-level settings that decide CPU speed for spiking networks.

glibc's malloc hands every allocation over 32 MB straight to mmap and returns it on free, so
each training step page-faults its large activations in anew (one fault per 4 KiB); on this
2-core machine that costs several-fold. ``tune_allocator`` keeps freed memory in the heap
instead (``mallopt``: no mmap threshold, large trim threshold and top pad) -- what
``MALLOC_MMAP_MAX_=0`` etc. do when set before the process starts.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
_done = False


def tune_allocator() -> bool:
    """Apply the malloc settings once; False where glibc's mallopt is not available."""
    global _done
    if _done:
        return True
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        ok = all(libc.mallopt(k, v) == 1 for k, v in ((_M_MMAP_MAX, 0),
                                                        (_M_TRIM_THRESHOLD, 1 << 30),
                                                        (_M_TOP_PAD, 256 << 20)))
    except (OSError, AttributeError):
        return False
    _done = ok
    return ok
