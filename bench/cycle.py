"""One full cycle over a big book: accounts, the four business watchers, correlation, delivery.

    python bench/cycle.py prepare --accounts 100000 --days 90 --out /tmp/swanwatch-cycle
    python bench/cycle.py run /tmp/swanwatch-cycle          # a fresh SQLite store each run
    /usr/bin/time -v python bench/cycle.py run /tmp/swanwatch-cycle

`prepare` writes the seeded sample data (bench/make_sample.py) and a config like the demo's;
`run` deletes the store and times one `run --once` cycle in-process, printing each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from swanwatch.clock import FrozenClock
from swanwatch.config import bundled, load_config
from swanwatch.engine import Engine
from swanwatch.store import Store

HERE = Path(__file__).resolve().parent
NOW = "2026-11-20T12:00:00Z"


def prepare(accounts: int, days: int, out: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            str(HERE / "make_sample.py"),
            "--accounts",
            str(accounts),
            "--days",
            str(days),
            "--out",
            str(out / "sample"),
        ],
        check=True,
    )
    demo = bundled("demo.yaml").read_text()
    rules = bundled("rules", "default.yaml")
    (out / "rules.yaml").write_text(rules.read_text())
    config = demo.replace("sqlite:///swanwatch-demo.db", "sqlite:///cycle.db").replace(
        "rule_files: [rules/default.yaml]", "rule_files: [rules.yaml]"
    )
    (out / "cycle.yaml").write_text(config)
    print(f"prepared {out}: {accounts} accounts x {days} days")


async def _cycle(folder: Path) -> dict[str, float | int]:
    config = load_config(folder / "cycle.yaml")
    store = Store(config.store_url)
    times: dict[str, float | int] = {}
    try:
        async with Engine(config, store, FrozenClock(NOW)) as engine:
            t = time.perf_counter()
            accounts = await engine.load_accounts()
            times["accounts_s"] = round(time.perf_counter() - t, 2)
            t = time.perf_counter()
            outcomes = await engine.run_watchers()
            times["watchers_s"] = round(time.perf_counter() - t, 2)
            t = time.perf_counter()
            correlation = await engine.correlate()
            times["correlate_s"] = round(time.perf_counter() - t, 2)
            t = time.perf_counter()
            await engine.deliver()
            times["deliver_s"] = round(time.perf_counter() - t, 2)
    finally:
        store.close()
    times["accounts"] = len(accounts)
    times["signals"] = sum(o.run.signals for o in outcomes)
    times["open_alerts"] = correlation.open_alerts
    times["failed_watchers"] = sum(1 for o in outcomes if not o.run.ok)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--accounts", type=int, default=100_000)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("run")
    r.add_argument("folder", type=Path)
    args = ap.parse_args()
    if args.command == "prepare":
        args.out.mkdir(parents=True, exist_ok=True)
        prepare(args.accounts, args.days, args.out)
        return 0
    for old in args.folder.glob("cycle.db*"):
        old.unlink()
    t0 = time.perf_counter()
    times = asyncio.run(_cycle(args.folder))
    times["cycle_s"] = round(time.perf_counter() - t0, 2)
    times["maxrss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(times))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
