"""One full cycle over a big book: accounts, the four business watchers, correlation, delivery.

    python bench/cycle.py prepare --accounts 100000 --days 90 --out /tmp/swanwatch-cycle
    python bench/cycle.py run /tmp/swanwatch-cycle          # a fresh SQLite store each run
    python bench/cycle.py run /tmp/swanwatch-cycle --store postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/cycle.py run /tmp/swanwatch-cycle --processes 0   # every watcher in-process
    python bench/cycle.py run /tmp/swanwatch-cycle --steady   # and the next cycle, an hour on
    python bench/cycle.py reference /tmp/swanwatch-cycle    # Arrow reads and groups the same files
    /usr/bin/time -v python bench/cycle.py run /tmp/swanwatch-cycle

`prepare` writes the seeded sample data (bench/make_sample.py) and a config like the demo's;
`run` empties the store (a fresh SQLite file, or a new schema-less PostgreSQL database
``swanwatch_cycle`` beside ``--store``) and times one `run --once` cycle, printing each phase,
the process's CPU seconds (its worker processes' included) and peak memory: the daemon's, the
largest child's, and their sum (the largest child's once a worker: an upper bound). With
``--steady`` the same engine then runs the next cycle an hour later, as the daemon's
ordinary cycle: the book as stored, the signals as raised and the alerts open (only what
changed is written); its figures are under ``steady``, and the first cycle's are the run's
less those. As the daemon, the run limits its malloc arenas and hands freed memory back
after each cycle (:mod:`swanwatch.memory`). `reference` is
the columnar floor for the same input: Arrow reads every CSV file of the book and sums the
usage per account, metric and day (no judging, no store).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from swanwatch import memory, parallel
from swanwatch.clock import FrozenClock
from swanwatch.config import bundled, load_config
from swanwatch.engine import CorrelationOutcome, Engine, RunOutcome
from swanwatch.model import Account
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
    # The store beside the data (a relative path is beside the config file), never the
    # demo's own in the working directory: `run` starts each cycle from an empty one.
    config = demo.replace("sqlite:///./swanwatch-demo.db", "sqlite:///cycle.db").replace(
        "rule_files: [rules/default.yaml]", "rule_files: [rules.yaml]"
    )
    if "sqlite:///cycle.db" not in config:
        raise SystemExit("bench/cycle.py: the demo config's store URL changed; update prepare()")
    (out / "cycle.yaml").write_text(config)
    print(f"prepared {out}: {accounts} accounts x {days} days")


async def _cycle(
    folder: Path, store_url: str | None, processes: int | None, steady: bool = False
) -> dict[str, Any]:
    config = load_config(folder / "cycle.yaml")
    daemon = config.daemon.model_copy(update={"watcher_processes": processes})
    config = config.model_copy(update={"daemon": daemon})
    store = Store(store_url or config.store_url)
    times: dict[str, Any] = {}
    clock = FrozenClock(NOW)
    try:
        async with Engine(config, store, clock) as engine:
            accounts, outcomes, correlation = await _phases(engine, times)
            memory.give_back()  # as the daemon does after a run and its pass
            if steady:
                # The daemon's ordinary cycle: the next one, an hour on, over the same
                # files (the book as stored, the signals as raised, the alerts open).
                clock.advance(timedelta(hours=1))
                cpu, t = _cpu_s(), time.perf_counter()
                later: dict[str, Any] = {}
                await _phases(engine, later)
                later["cycle_s"] = round(time.perf_counter() - t, 2)
                later["cpu_s"] = round(_cpu_s() - cpu, 2)
                times["steady"] = later
            worker = engine.pass_worker.pid()  # its own process (None: none, or shared)
            times["pass_worker_mib"] = _high_water_mib(worker) if worker is not None else 0.0
    finally:
        store.close()
    times["accounts"] = len(accounts)
    times["signals"] = sum(o.run.signals for o in outcomes)
    times["open_alerts"] = correlation.open_alerts
    times["failed_watchers"] = sum(1 for o in outcomes if not o.run.ok)
    times["watchers_in_processes"] = engine.workers
    return times


async def _phases(
    engine: Engine, times: dict[str, Any]
) -> tuple[list[Account], list[RunOutcome], CorrelationOutcome]:
    """One cycle as ``engine.cycle()`` makes it, each phase timed into ``times``."""
    t = time.perf_counter()
    accounts = await engine.load_accounts(workers=True)
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
    return accounts, outcomes, correlation


def _cpu_s() -> float:
    """CPU seconds of this process and of its children that have exited."""
    used = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in used)


def _high_water_mib(pid: int) -> float:
    """A live process's peak RSS (Linux: VmHWM): the children's ru_maxrss would count, for
    a spawned worker, the parent's pages it was forked from until it exec'd."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def fresh_postgres(base: str) -> str:
    """A new, empty database ``swanwatch_cycle`` on the server of ``base``."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS swanwatch_cycle WITH (FORCE)"))
        conn.execute(text("CREATE DATABASE swanwatch_cycle"))
    admin.dispose()
    return make_url(base).set(database="swanwatch_cycle").render_as_string(hide_password=False)


def reference(folder: Path) -> dict[str, float | int]:
    """Arrow reads every CSV file of the book; numpy sums usage per account, metric, day."""
    import numpy as np
    import pyarrow.csv as pacsv

    t0 = time.perf_counter()
    rows = 0
    for path in sorted((folder / "sample").glob("*.csv")):
        table = pacsv.read_csv(path)
        rows += table.num_rows
        if path.name == "usage.csv":
            accounts = table.column("account_id").combine_chunks().dictionary_encode()
            metrics = table.column("metric").combine_chunks().dictionary_encode()
            days = table.column("date").combine_chunks().dictionary_encode()
            width = len(metrics.dictionary)
            series = accounts.indices.to_numpy() * width + metrics.indices.to_numpy()
            sums = np.zeros((len(accounts.dictionary) * width, len(days.dictionary)))
            np.add.at(sums, (series, days.indices.to_numpy()), table.column("value").to_numpy())
        del table
    return {
        "reference_s": round(time.perf_counter() - t0, 2),
        "rows": rows,
        "cpu_s": round(time.process_time(), 2),
        "maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--accounts", type=int, default=100_000)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("run")
    r.add_argument("folder", type=Path)
    r.add_argument("--store", help="a PostgreSQL server URL (default: SQLite beside the data)")
    r.add_argument("--processes", type=int, default=None, help="daemon.watcher_processes")
    r.add_argument(
        "--steady", action="store_true", help="then time the next cycle, an hour on ('steady')"
    )
    f = sub.add_parser("reference")
    f.add_argument("folder", type=Path)
    args = ap.parse_args()
    if args.command == "prepare":
        args.out.mkdir(parents=True, exist_ok=True)
        prepare(args.accounts, args.days, args.out)
        return 0
    if args.command == "reference":
        print(json.dumps(reference(args.folder)))
        return 0
    for old in args.folder.glob("cycle.db*"):
        old.unlink()
    memory.limit_arenas()  # as the daemon starts (swanwatch.daemon.run_daemon)
    store_url = fresh_postgres(args.store) if args.store else None
    t0 = time.perf_counter()
    times = asyncio.run(_cycle(args.folder, store_url, args.processes, args.steady))
    steady = times.pop("steady", None)
    times["cycle_s"] = round(time.perf_counter() - t0, 2)
    own, children = resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN
    times["cpu_s"] = round(_cpu_s(), 2)
    if steady is not None:  # the first cycle's own figures: the whole run less the steady one
        times["cycle_s"] = round(times["cycle_s"] - steady["cycle_s"], 2)
        times["cpu_s"] = round(times["cpu_s"] - steady["cpu_s"], 2)
    times["maxrss_mib"] = round(resource.getrusage(own).ru_maxrss / 1024, 1)
    # The largest child's peak (the OS keeps no sum): a worker process's, or, with no
    # worker, a short-lived fork such as the `file` command platform.architecture() runs
    # (the PostgreSQL driver's stack), which counts its parent's pages until it execs.
    times["children_maxrss_mib"] = round(resource.getrusage(children).ru_maxrss / 1024, 1)
    # Every watcher worker lives the whole cycle, none above the largest child: the
    # daemon's peak plus the largest child's once for each (an upper bound), plus the pass
    # worker's own peak when it has a process of its own (with watcher workers it has
    # none: it shares theirs). Without workers the largest child is a fork (the pass
    # worker's spawn, or `file`), counting pages of the daemon's: not added.
    pool = args.processes
    if pool is None:
        pool = parallel.processes(None, int(times["accounts"]), 4)
    workers = pool * times["children_maxrss_mib"]
    times["peak_sum_mib"] = round(times["maxrss_mib"] + workers + times["pass_worker_mib"], 1)
    if steady is not None:
        times["steady"] = steady
    print(json.dumps(times))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
