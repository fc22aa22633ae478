"""Benchmark the engine's correlation step on a stored book: reads, decisions and writes.

    python bench/correlate.py prepare /tmp/swc      # 100,000 accounts, 1,000,000 signals
    python bench/correlate.py all /tmp/swc --runs 3 # reference, first and second pass
    python bench/correlate.py run /tmp/swc --profile --pass second   # cProfile of a pass
    python bench/correlate.py prepare /tmp/swc-pg \
        --store postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/correlate.py all /tmp/swc-pg --runs 3

`prepare` writes a book of ``--accounts`` accounts (accounts.csv, the engine's accounts
source) and a config, and seeds the store with ``--signals`` active signals spread over
them (ten per account on average, a few accounts with many; six kinds, strengths uniform,
observed up to 90 days back). The SQLite store is ``store.db`` in the folder; with
``--store`` a PostgreSQL database named ``swanwatch_correlate`` beside the URL's.

`run` is one correlation step as the daemon makes it, in a process of its own: the engine
reads the accounts source first (outside the clock; the pass worker, when the book calls for
one, starts then and the step waits until it is ready, as a cycle's pass finds it after the
watchers), then ``Engine.correlate()`` is timed:
the store reads of the signals and alerts, batch by batch, scoring, rules, the lifecycle,
and the writes of the alerts, outbox entries and scores. ``--pass first`` empties the
alerts, outbox and score history before (every alert is new); ``--pass second`` runs half
an hour after a first pass (signals decay a little, no repeat is due yet: almost nothing
is written). Prints one
JSON line: CPU seconds (this process's; a PostgreSQL server's own CPU is not in them),
wall seconds, peak RSS before and after the step, and what the step wrote.

`reference` is the columnar floor, in a process of its own: the store itself reads every
active signal and computes each account's decayed noisy-OR score with one SQL GROUP BY
(the score part of the step, none of the rules, lifecycle or writes).

`all` runs, ``--runs`` times: reference, first pass, second pass; then prints the median
of each figure, with ``uptime`` before and after (the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import csv
import gc
import json
import pstats
import random
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from swanwatch.clock import FrozenClock
from swanwatch.config import bundled, load_config
from swanwatch.engine import Engine
from swanwatch.model import Account, fingerprint
from swanwatch.passes import run_pass
from swanwatch.store import Store
from swanwatch.store.tables import SIGNALS

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
KINDS = (
    "usage_drop",
    "champion_departure",
    "renewal_lapse",
    "support_spike",
    "domain_expiry",
    "tls_expiry",
)
PG_DATABASE = "swanwatch_correlate"
CONFIG = """
store: {{url: "{url}"}}
sources:
  accounts:
    type: csv
    static: true
    options: {{path: accounts.csv, types: {{arr: float, renewal_date: date}}}}
  usage: {{type: csv, options: {{path: accounts.csv}}}}
  contacts: {{type: csv, options: {{path: accounts.csv}}}}
  contracts: {{type: csv, options: {{path: accounts.csv}}}}
  tickets: {{type: csv, options: {{path: accounts.csv}}}}
accounts: {{source: accounts}}
watchers:
{watchers}
correlation: {{rule_files: [rules.yaml]}}
notify: {{console: true}}
"""


def store_url(folder: Path, pg: str | None) -> str:
    if pg is None:
        return f"sqlite:///{folder / 'store.db'}"
    return make_url(pg).set(database=PG_DATABASE).render_as_string(hide_password=False)


def prepare(folder: Path, accounts: int, signals: int, seed: int, pg: str | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    ids = [f"acc-{i:07d}" for i in range(accounts)]
    with (folder / "accounts.csv").open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["id", "name", "owner", "segment", "arr", "renewal_date"])
        for i, account_id in enumerate(ids):
            renewal = NOW.date() + timedelta(days=rng.randint(-20, 400))
            segment = rng.choice(["smb", "mid-market", "enterprise"])
            arr = float(rng.randrange(5_000, 500_000, 100))
            owner = f"csm{i % 40}@example.com"
            out.writerow([account_id, f"Account {i}", owner, segment, arr, renewal])
    (folder / "rules.yaml").write_text(bundled("rules", "default.yaml").read_text())
    url = store_url(folder, pg)
    watchers = "\n".join(f"  - {{type: {k}, name: {k}}}" for k in KINDS)
    (folder / "correlate.yaml").write_text(CONFIG.format(url=url, watchers=watchers))
    if pg is not None:
        admin = create_engine(pg, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DATABASE}"))
            conn.execute(text(f"CREATE DATABASE {PG_DATABASE}"))
        admin.dispose()
    else:
        (folder / "store.db").unlink(missing_ok=True)
    store = Store(url)
    try:
        _seed(store, ids, signals, rng)
    finally:
        store.close()
    print(f"prepared {folder}: {accounts} accounts, {signals} active signals in {url}")


def _seed(store: Store, ids: list[str], signals: int, rng: random.Random) -> None:
    rows = []
    for n in range(signals):
        pick = min(len(ids) - 1, int(rng.paretovariate(1.2)) - 1) if n % 10 == 0 else None
        account = ids[pick if pick is not None else rng.randrange(len(ids))]
        kind = rng.choice(KINDS)
        key = f"k{n}"
        observed = NOW - timedelta(hours=rng.randint(0, 24 * 90))
        rows.append(
            {
                "fingerprint": fingerprint(kind, account, kind, key),
                "watcher": kind,
                "account_id": account,
                "kind": kind,
                "key": key,
                "strength": rng.random(),
                "observed_at": observed,
                "first_seen": observed,
                "last_seen": NOW,
                "cleared_at": None,
                "summary": f"{kind} signal {n}",
                "evidence": {},
                "half_life_days": None,
            }
        )
        if len(rows) == 50_000:
            with store.engine.begin() as conn:
                conn.execute(insert(SIGNALS), rows)
            rows = []
    if rows:
        with store.engine.begin() as conn:
            conn.execute(insert(SIGNALS), rows)
    if store.dialect == "postgresql":
        with store.engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()


def _maxrss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def _reset(store: Store) -> None:
    """Empty what a pass writes: the next pass finds no alert, notification or score."""
    with store.engine.begin() as conn:
        for table in ("alerts", "notifications", "score_history"):
            conn.execute(text(f"DELETE FROM {table}"))


async def _step(folder: Path, which: str, profile: bool, worker: bool | None) -> dict[str, Any]:
    config = load_config(folder / "correlate.yaml")
    daemon = config.daemon.model_copy(update={"correlation_worker": worker})
    config = config.model_copy(update={"daemon": daemon})
    store = Store(config.store_url)
    now = NOW if which == "first" else NOW + timedelta(minutes=30)
    try:
        if which == "first":
            _reset(store)
        async with Engine(config, store, FrozenClock(now)) as engine:
            engine.keep_told = False  # as the daemon runs: counts kept, not every notice
            # As the daemon's cycle: the pass worker (a big book) starts as the accounts are
            # read, and warms up meanwhile; in a cycle the watchers run before the pass
            # (seconds over a big book: 10 s at 100,000 accounts, bench/cycle.py), so the
            # pass finds it ready. Here nothing runs between: the step waits for it first.
            accounts = await engine.load_accounts(workers=True)
            await asyncio.to_thread(engine.pass_worker.pid)
            gc.collect()
            before = _maxrss_mib()
            if profile:  # the pass the engine's step runs, in this thread (cProfile)
                _profile(engine, accounts, now)
                return {}
            c0, t0 = time.process_time(), time.perf_counter()
            outcome = await engine.correlate()
            c1, t1 = time.process_time(), time.perf_counter()
            pid = engine.pass_worker.pid()
            worker_rss = _high_water_mib(pid) if pid is not None else 0.0
        # The engine is closed: its pass worker has exited, its CPU is counted.
        worker_cpu = _children_cpu()
    finally:
        store.close()
    return {
        "pass": which,
        "accounts": len(accounts),
        "assessed": outcome.accounts,
        "written": outcome.written,
        "enqueued": outcome.enqueued,
        "open_alerts": outcome.open_alerts,
        "cpu_s": round(c1 - c0 + worker_cpu, 2),
        "wall_s": round(t1 - t0, 2),
        "maxrss_before_mib": before,
        "maxrss_mib": round(_maxrss_mib() + worker_rss, 1),
        "worker_cpu_s": round(worker_cpu, 2),
        "worker_maxrss_mib": worker_rss,
    }


def _children_cpu() -> float:
    """CPU seconds of this process's children that have exited: the pass worker (its
    start-up included), and a short fork croniter's import makes."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _high_water_mib(pid: int) -> float:
    """A live process's peak RSS (Linux: VmHWM). The children's ru_maxrss would not do: a
    spawned worker counts as its own the pages of the parent it was forked from until it
    execs (the parent's peak then, not the worker's)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _profile(engine: Engine, accounts: list[Account], now: datetime) -> None:
    book = engine.book(accounts)
    profiler = cProfile.Profile()
    profiler.runcall(run_pass, engine.store, book, now, keep=False)
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(30)


REFERENCE = """
SELECT account_id,
       1 - exp(greatest_(-700.0, sum(ln(1 - least_(0.999999,
           strength * pow(0.5, age_days(observed_at) / 14.0))))))
FROM signals WHERE cleared_at IS NULL GROUP BY account_id
"""


def reference(folder: Path) -> dict[str, Any]:
    """Each account's decayed noisy-OR score, computed by the store in one GROUP BY."""
    config = load_config(folder / "correlate.yaml")
    store = Store(config.store_url)
    if store.dialect == "sqlite":
        age = f"(julianday('{NOW:%Y-%m-%d %H:%M:%S}') - julianday(observed_at))"
        least, greatest = "min", "max"
    else:
        age = f"(extract(epoch from (timestamptz '{NOW.isoformat()}' - observed_at)) / 86400.0)"
        least, greatest = "least", "greatest"
    query = REFERENCE.replace("age_days(observed_at)", age).replace("least_", least)
    query = query.replace("greatest_", greatest)
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        with store.engine.connect() as conn:
            scores = conn.exec_driver_sql(query).fetchall()
        c1, t1 = time.process_time(), time.perf_counter()
    finally:
        store.close()
    return {
        "pass": "reference",
        "assessed": len(scores),
        "cpu_s": round(c1 - c0, 2),
        "wall_s": round(t1 - t0, 2),
        "maxrss_mib": _maxrss_mib(),
    }


def _child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


WORKER = {"auto": None, "on": True, "off": False}


def run_all(folder: Path, runs: int, worker: str) -> None:
    load = [_uptime()]
    results: dict[str, list[dict[str, Any]]] = {"reference": [], "first": [], "second": []}
    for _ in range(runs):
        results["reference"].append(_child("reference", str(folder)))
        for which in ("first", "second"):
            step = _child("run", str(folder), "--pass", which, "--worker", worker)
            results[which].append(step)
        for which in ("reference", "first", "second"):
            print(json.dumps(results[which][-1]), file=sys.stderr)
    load.append(_uptime())
    medians = {
        which: {
            k: statistics.median(r[k] for r in rows)
            for k in rows[0]
            if isinstance(rows[0][k], int | float)
        }
        for which, rows in results.items()
    }
    ref_cpu, ref_wall = medians["reference"]["cpu_s"], medians["reference"]["wall_s"]
    for which in ("first", "second"):
        m = medians[which]
        m["cpu_x_reference"] = round(m["cpu_s"] / ref_cpu, 1) if ref_cpu else None
        m["wall_x_reference"] = round(m["wall_s"] / ref_wall, 1) if ref_wall else None
    print(json.dumps({"runs": runs, "load": load, "medians": medians}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["prepare", "run", "reference", "all"])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--signals", type=int, default=None, help="default: 10 per account")
    ap.add_argument("--seed", type=int, default=20261120)
    ap.add_argument("--store", default=None, help="a PostgreSQL URL (default: SQLite)")
    ap.add_argument("--pass", dest="which", choices=["first", "second"], default="first")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="cProfile of the step, on stderr")
    ap.add_argument(
        "--worker",
        choices=list(WORKER),
        default="auto",
        help="daemon.correlation_worker: unset (auto), true (on) or false (off)",
    )
    args = ap.parse_args(argv)
    if args.command == "prepare":
        signals = args.signals if args.signals is not None else 10 * args.accounts
        prepare(args.folder, args.accounts, signals, args.seed, args.store)
    elif args.command == "run":
        worker = WORKER[args.worker]
        print(json.dumps(asyncio.run(_step(args.folder, args.which, args.profile, worker))))
    elif args.command == "reference":
        print(json.dumps(reference(args.folder)))
    else:
        run_all(args.folder, args.runs, args.worker)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
