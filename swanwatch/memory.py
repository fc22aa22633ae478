"""Memory handed back between a cycle's heavy steps, so a long-lived daemon's peak is the
step's, not the sum of what every step left behind.

Arrow's pool holds on to freed memory unless told: mimalloc, pyarrow's default in its
wheels, kept about 180 MiB resident at 100,000 accounts after one watcher's columns were
gone. :func:`use_arrow_pool` makes Arrow allocate from jemalloc with no decay delay (freed
pages go back at once), unless ``ARROW_DEFAULT_MEMORY_POOL`` says otherwise. The C heap
keeps what is freed too: the daemon limits its arenas (:func:`limit_arenas`) and hands the
free pages back after each cycle (:func:`give_back`).
"""

from __future__ import annotations

import logging
import os
from functools import cache
from typing import Any

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


# --- the C heap -------------------------------------------------------------------------
#
# A long-lived daemon's C heap (glibc malloc) keeps what a cycle freed: each thread that
# allocates may get an arena of its own (up to eight a core), and freed pages stay with
# their arena. Over a book of 100,000 accounts the daemon's resident memory after a cycle
# grew from 359 to 557 MiB over seven cycles, and its peak from 560 to 916 MiB, with the
# same Python objects alive after each (BENCHMARKS.md, "Memory over cycles"). Two arenas,
# and the freed pages handed back after each cycle, kept it at 284 to 354 MiB, peak 686.

#: Arenas the daemon's C heap may have (MALLOC_ARENA_MAX, unless the environment says).
ARENAS = 2
#: glibc's mallopt() parameter for the arena limit.
_M_ARENA_MAX = -8


@cache
def _glibc() -> Any | None:
    """The C library, where it is glibc (the only one whose heap these calls tune)."""
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def limit_arenas() -> bool:
    """For a long-lived process, at its start: at most :data:`ARENAS` malloc arenas, here
    and in the processes it starts (through ``MALLOC_ARENA_MAX``, which each reads as it
    starts), unless ``MALLOC_ARENA_MAX`` is set already. False where the C library is
    not glibc or the limit is the environment's."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    libc = _glibc()
    if libc is None:
        return False
    os.environ["MALLOC_ARENA_MAX"] = str(ARENAS)
    return bool(libc.mallopt(_M_ARENA_MAX, ARENAS))


def give_back() -> bool:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``): after a
    cycle's heavy steps, so that what they freed does not stay resident. A few tens of
    milliseconds over a heap of 500 MiB. False where the C library is not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
