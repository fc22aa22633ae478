"""A daemon's memory over many cycles: resident after each, and the peak so far.

    python bench/cycle.py prepare --accounts 100000 --days 90 --out /tmp/swanwatch-cycle
    python bench/cycles_memory.py /tmp/swanwatch-cycle --cycles 7          # as the daemon
    python bench/cycles_memory.py /tmp/swanwatch-cycle --cycles 7 --plain  # without

One process, one engine, a fresh SQLite store beside the data (bench/cycle.py's book), and
``--cycles`` cycles an hour apart, as the daemon runs them: the malloc arenas limited at the
start (:func:`swanwatch.memory.limit_arenas`) and the C heap's free pages handed back after
each cycle (:func:`swanwatch.memory.give_back`). ``--plain`` does neither (the daemon before
them). After each cycle it prints one JSON line: the cycle's wall seconds, the resident
memory (VmRSS) and the peak so far (VmHWM), in MiB, and the Python objects alive (after a
full collection): the same count from cycle to cycle means what grows is the C heap.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from swanwatch import memory
from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.engine import Engine
from swanwatch.store import Store

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def _status_mib() -> dict[str, int]:
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            found[line.split(":")[0]] = int(line.split()[1]) // 1024
    return found


async def _cycles(folder: Path, cycles: int, plain: bool) -> None:
    config = load_config(folder / "cycle.yaml")
    store = Store(config.store_url)
    clock = FrozenClock(NOW)
    try:
        async with Engine(config, store, clock) as engine:
            for n in range(cycles):
                t = time.perf_counter()
                await engine.cycle()
                if not plain:
                    memory.give_back()
                wall = time.perf_counter() - t
                gc.collect()
                status = _status_mib()
                line = {"cycle": n + 1, "wall_s": round(wall, 2), "rss_mib": status["VmRSS"]}
                line |= {"peak_mib": status["VmHWM"], "objects": len(gc.get_objects())}
                print(json.dumps(line), flush=True)
                clock.advance(timedelta(hours=1))
    finally:
        store.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--cycles", type=int, default=7)
    ap.add_argument("--plain", action="store_true", help="neither limit arenas nor give back")
    args = ap.parse_args()
    for old in args.folder.glob("cycle.db*"):
        old.unlink()
    if not args.plain:
        memory.limit_arenas()
    asyncio.run(_cycles(args.folder, args.cycles, args.plain))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
