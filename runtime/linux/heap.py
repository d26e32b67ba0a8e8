"""Give the C heap's free pages back to the kernel (glibc ``malloc_trim``).

CPython allocates objects above 512 bytes (code, large dicts and lists, request and
response bodies) with ``malloc``. glibc keeps what is freed in the process, so resident
memory after a burst of work (startup's imports, an image import, a big ``inspect``)
stays at its peak until the same sizes are asked for again. ``malloc_trim(0)`` returns
every free page, from anywhere in the heap, with ``madvise(MADV_DONTNEED)``: about 2 MB
of the daemon's resident memory after startup. It takes well under a millisecond on a
heap of this size. Other C libraries (musl) have no such call: then this does nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

__all__ = ["trim_heap"]


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        fn = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


_TRIM = _malloc_trim()


def trim_heap() -> bool:
    """Release the heap's free pages; False where the C library cannot."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
