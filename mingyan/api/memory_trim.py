"""Giving freed memory back to the operating system while serving.

glibc keeps what a process frees in its malloc arenas (one per thread that allocates: the decode
thread, the worker threads of `asyncio.to_thread`, the server's own). Hours of replies of every size
— KV states of megabytes copied into the RAM cache and evicted, request and reply bodies, logits —
leave free gaps inside those arenas that are not at their top, which stay in the process's RSS.
(The slow creep of the 30-minute soak is something else: it goes on with the trim; docs/operations.md.)
`malloc_trim(0)`
hands every whole free page of every arena back (madvise), without moving anything. Where the C
library has no `malloc_trim` (musl, macOS), nothing is done.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import sys
from collections.abc import Callable

log = logging.getLogger(__name__)


def libc_trim() -> Callable[[], int] | None:
    """glibc's `malloc_trim(0)` (1: memory was released), or None where the C library lacks it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: int(trim(0))


def start_memory_trim(interval_s: float) -> asyncio.Task[None] | None:
    """Trim every `interval_s` seconds (--memory-trim-s; 0: never), in a worker thread."""
    trim = libc_trim()
    if interval_s <= 0 or trim is None:
        return None

    async def run() -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await asyncio.to_thread(trim)
            except Exception:  # a trim that fails changes nothing; serving goes on
                log.exception("malloc_trim failed")

    return asyncio.create_task(run(), name="memory-trim")
