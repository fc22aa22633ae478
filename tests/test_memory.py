"""Memory a long-lived process hands back: Arrow's pool for the cycle's columns, and the C
heap's free pages after a cycle."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from typing import Any

import pyarrow as pa
import pytest

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


#: In a process of its own: blocks of 1 KiB (past Python's small-object allocator, so
#: glibc's malloc) made in two threads (arenas of their own) and freed but for every 64th,
#: so that the freed pages lie between kept blocks; then :func:`give_back`.
_FRAGMENTED = """
import json, os, sys, threading
from pathlib import Path
from swanwatch import memory

def rss_mib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

limited = memory.limit_arenas()
kept = []
def work():
    blocks = [bytes(1024) for _ in range(100_000)]
    kept.extend(blocks[::64])
threads = [threading.Thread(target=work) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
freed = rss_mib()
gave = memory.give_back()
print(json.dumps({"limited": limited, "arenas": os.environ.get("MALLOC_ARENA_MAX"),
                  "freed": freed, "gave": gave, "after": rss_mib()}))
"""


def _fragmented(env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _FRAGMENTED], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's heap only")
def test_what_a_long_process_freed_goes_back_to_the_system() -> None:
    """The daemon's C heap keeps freed pages resident between kept blocks until it is
    told (its memory grew cycle after cycle); after :func:`give_back` they are gone."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    run = _fragmented(env)
    assert run["limited"] and run["arenas"] == "2" and run["gave"]
    assert run["freed"] > 150  # 200 MiB freed, still resident: what a cycle leaves
    assert run["after"] < run["freed"] / 3
    # A limit the environment sets is left as it is.
    told = _fragmented({**env, "MALLOC_ARENA_MAX": "4"})
    assert told["limited"] is False and told["arenas"] == "4"
