"""Arrow's pool for the cycle's columns: one that hands freed memory back at once."""

from __future__ import annotations

import os

import pyarrow as pa

from swanwatch.memory import use_arrow_pool


def test_arrow_allocates_from_the_pool_chosen_once() -> None:
    name = use_arrow_pool()
    assert use_arrow_pool() == name == pa.default_memory_pool().backend_name
    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        return  # a pyarrow built without jemalloc keeps its default
    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        assert name == "jemalloc"
