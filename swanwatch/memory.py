"""Memory handed back between a cycle's heavy steps, so a long-lived daemon's peak is the
step's, not the sum of what every step left behind.

Two allocators hold on to freed memory unless told: Arrow's pool (mimalloc in pyarrow's
wheels keeps freed pages; at 100,000 accounts about 180 MiB stayed resident after one
watcher's columns were gone) and glibc's malloc (freed chunks inside its arenas).
:func:`use_arrow_pool` makes Arrow allocate from jemalloc with no decay delay (freed pages
go back at once), unless ``ARROW_DEFAULT_MEMORY_POOL`` says otherwise; :func:`release`
asks glibc to return its free pages.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from collections.abc import Callable
from functools import cache

log = logging.getLogger("swanwatch.memory")


@cache
def use_arrow_pool() -> str:
    """Arrow's default memory pool, set once per process: jemalloc, returning freed
    memory at once, where pyarrow has it; the pool's name."""
    import pyarrow as pa

    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return str(pa.default_memory_pool().backend_name)
    try:
        pool = pa.jemalloc_memory_pool()
        pa.jemalloc_set_decay_ms(0)
    except (NotImplementedError, pa.ArrowNotImplementedError):
        log.debug("pyarrow has no jemalloc: its default pool stays")
        return str(pa.default_memory_pool().backend_name)
    pa.set_memory_pool(pool)
    return str(pool.backend_name)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release() -> None:
    """Hand the C heap's free pages back to the system (glibc), after a heavy step."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
