"""Memory handed back between a cycle's heavy steps, so a long-lived daemon's peak is the
step's, not the sum of what every step left behind.

Arrow's pool holds on to freed memory unless told: mimalloc, pyarrow's default in its
wheels, kept about 180 MiB resident at 100,000 accounts after one watcher's columns were
gone. :func:`use_arrow_pool` makes Arrow allocate from jemalloc with no decay delay (freed
pages go back at once), unless ``ARROW_DEFAULT_MEMORY_POOL`` says otherwise.
"""

from __future__ import annotations

import logging
import os
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
