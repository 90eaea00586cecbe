"""Giving freed memory back to the operating system between the runs of one process."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import lru_cache


@lru_cache(maxsize=1)
def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None  # glibc only


def release_memory() -> bool:
    """Return the heap's free pages to the OS (glibc's ``malloc_trim``), after collecting the
    young garbage generations (a full collection walks every object the process holds: 0.3 s
    with the code location loaded, against under a millisecond).

    A run that peaked (a model's training, a frame of every event) leaves its freed memory
    in the allocator's arenas: the process's resident size stays at that peak, and the next
    run's allocations (DuckDB's buffers, say) add to it. ``ntsb build`` runs its jobs one
    after another in one process, so it calls this between them. False where the C library
    has no ``malloc_trim`` (not glibc): nothing to do there."""
    gc.collect(1)
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
