"""Benchmark: the usage_drop watcher over 100,000 accounts x 90 days, from CSV and PostgreSQL.

    python bench/usage.py prepare                 # sample data + raw events in PostgreSQL
    python bench/usage.py run --from csv          # one timed run; prints a JSON line
    python bench/usage.py run --from postgres
    python bench/usage.py run --from parquet      # usage.parquet (written once from usage.csv)
    python bench/usage.py run --from csv --rows   # the row path: a dict per row, as before
    python bench/usage.py reference               # the columnar reference: read and group only

`prepare` writes the big sample set with bench/make_sample.py (usage.csv: one row per
account and day, 9,000,000 rows) and loads the same usage into PostgreSQL as *raw events*,
``--events-per-day`` rows per account and day (27,000,000 by default), the way a product
database keeps them. The PostgreSQL run reads them through the sql source with the
aggregation in the query (``GROUP BY account_id, day, metric``), so only the daily sums
cross the wire; it reports rows fetched beside raw rows. Each run prints wall time, the
source's share, and the process's peak resident memory. Time whole runs from outside with
``/usr/bin/time -v`` or a benchmark harness; see BENCHMARKS.md.

The PostgreSQL URL comes from ``--postgres`` or ``$SWANWATCH_BENCH_POSTGRES_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``); a ``swanwatch_bench`` database is
created beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from swanwatch import Account, FrozenClock, Row, Source, StateMap, WatchContext, plugins

HERE = Path(__file__).resolve().parent
DEFAULT_DIR = Path(os.environ.get("SWANWATCH_BENCH_DIR", "/tmp/swanwatch-bench"))
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = "2026-11-20T18:00:00Z"

#: The aggregation the database does: daily sums per account and metric.
DAILY_SUMS = """
SELECT account_id, day AS date, metric, CAST(SUM(amount) AS DOUBLE PRECISION) AS value
FROM usage_events
GROUP BY account_id, day, metric
"""


def bench_url(base: str) -> str:
    return make_url(base).set(database="swanwatch_bench").render_as_string(hide_password=False)


def prepare(folder: Path, accounts: int, days: int, postgres: str, events_per_day: int) -> None:
    started = time.monotonic()
    if not (folder / "usage.csv").exists():
        subprocess.run(
            [
                sys.executable,
                str(HERE / "make_sample.py"),
                "--accounts",
                str(accounts),
                "--days",
                str(days),
                "--out",
                str(folder),
            ],
            check=True,
        )
    print(f"sample data in {folder} ({time.monotonic() - started:.0f} s)", flush=True)
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS swanwatch_bench WITH (FORCE)"))
        conn.execute(text("CREATE DATABASE swanwatch_bench"))
    admin.dispose()
    engine = create_engine(bench_url(postgres))
    raw = 0
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE usage_events (account_id TEXT NOT NULL, day DATE NOT NULL, "
                "metric TEXT NOT NULL, amount BIGINT NOT NULL)"
            )
        )
        import psycopg  # only here: the rest of the bench runs without PostgreSQL

        dbapi = conn.connection.dbapi_connection
        assert isinstance(dbapi, psycopg.Connection)
        with (
            dbapi.cursor() as cur,
            cur.copy("COPY usage_events (account_id, day, metric, amount) FROM STDIN") as copy,
        ):
            for line in _events(folder / "usage.csv", events_per_day):
                copy.write(line)
                raw += line.count("\n")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # The index an events table has anyway: it lets the GROUP BY stream (a group
        # aggregate over the index) instead of hashing 27M rows and spilling to disk.
        conn.execute(
            text("CREATE INDEX usage_events_account_day ON usage_events (account_id, day, metric)")
        )
        conn.execute(text("VACUUM ANALYZE usage_events"))
    engine.dispose()
    print(f"{raw:,} raw usage events in PostgreSQL ({time.monotonic() - started:.0f} s)")


def _events(path: Path, per_day: int) -> Iterator[str]:
    """The daily values split into ``per_day`` event rows each, in COPY text format."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        chunk: list[str] = []
        for account_id, day, metric, value in reader:
            total = int(value)
            share, rest = divmod(total, per_day)
            for k in range(per_day):
                amount = share + (1 if k < rest else 0)
                chunk.append(f"{account_id}\t{day}\t{metric}\t{amount}\n")
            if len(chunk) >= 30_000:
                yield "".join(chunk)
                chunk = []
        if chunk:
            yield "".join(chunk)


def read_accounts(folder: Path) -> list[Account]:
    with open(folder / "accounts.csv", encoding="utf-8", newline="") as f:
        return [Account(id=r["id"], name=r["name"]) for r in csv.DictReader(f)]


class RowsOnly(Source):
    """A source as it reads row by row (no columns): the watcher's row path."""

    name = "rows-only"

    def __init__(self, inner: Source) -> None:
        super().__init__(inner.instance, inner.options)
        self.inner = inner

    def rows(self, *, until: datetime | None = None) -> AsyncIterator[Row]:
        return self.inner.rows(until=until)


def parquet_of(folder: Path) -> Path:
    """usage.parquet beside usage.csv, written once (typed: date, float)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = folder / "usage.parquet"
    if not path.exists():
        pq.write_table(pacsv.read_csv(folder / "usage.csv"), path)
    return path


def reference(folder: Path, kind: str) -> dict[str, object]:
    """The columnar reference: Arrow reads the usage file and numpy sums it per account,
    metric and day (the bound for reading and grouping; no judging)."""
    import numpy as np
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    started = time.perf_counter()
    if kind == "parquet":
        table = pq.read_table(parquet_of(folder))
    else:
        table = pacsv.read_csv(folder / "usage.csv")
    accounts = table.column("account_id").combine_chunks().dictionary_encode()
    days = table.column("date").combine_chunks().dictionary_encode()
    values = table.column("value").to_numpy().astype(np.float64)
    n_days = len(days.dictionary)
    sums = np.zeros((len(accounts.dictionary), n_days))
    np.add.at(sums, (accounts.indices.to_numpy(), days.indices.to_numpy()), values)
    return {
        "reference": kind,
        "rows": table.num_rows,
        "series": len(accounts.dictionary),
        "seconds": round(time.perf_counter() - started, 2),
        "cpu_seconds": round(time.process_time(), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def make_usage_source(kind: str, folder: Path, postgres: str) -> Source:
    if kind in ("csv", "parquet"):
        cls = plugins.source_class("csv")
        path = folder / "usage.csv" if kind == "csv" else parquet_of(folder)
        options: dict[str, object] = {
            "path": str(path),
            "types": {"value": "float"},
            "date_field": "date",
        }
    else:
        cls = plugins.source_class("sql")
        options = {
            "url": bench_url(postgres),
            "query": DAILY_SUMS,
            "date_field": "date",
            "batch_rows": 10_000,
        }
    return cls("usage", cls.Options.model_validate(options))


async def run(
    kind: str, folder: Path, postgres: str, read_only: bool, rows: bool = False
) -> dict[str, object]:
    """One pass: the watcher over every account (or, ``read_only``, just the source's rows)."""
    if kind == "parquet":
        parquet_of(folder)
    started = time.perf_counter()
    accounts = read_accounts(folder)
    source = make_usage_source(kind, folder, postgres)
    if rows:
        source = RowsOnly(source)
    count, signals, unknowns = 0, 0, 0
    if read_only:
        async for _ in source.rows():
            count += 1
    else:
        cls = plugins.watcher_class("usage_drop")
        watcher = cls("usage_drop", cls.Options())
        async with httpx.AsyncClient() as client:
            with ThreadPoolExecutor(max_workers=2) as pool:
                ctx = WatchContext(
                    instance="usage_drop",
                    clock=FrozenClock(NOW),
                    http=client,
                    log=logging.getLogger("bench"),
                    accounts=accounts,
                    state=StateMap(),
                    sources={"usage": source},
                    executor=pool,
                )
                signals = len([s async for s in watcher.watch(ctx)])
                unknowns = len(ctx.unknowns)
    elapsed = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fetched = getattr(source, "rows_fetched", None) or count or None
    raw: int | None = None
    if kind == "postgres":
        source.close()  # type: ignore[attr-defined]
        engine = create_engine(bench_url(postgres))
        with engine.connect() as conn:
            raw = int(conn.execute(text("SELECT count(*) FROM usage_events")).scalar_one())
        engine.dispose()
    return {
        "from": kind,
        "path": "rows" if rows or kind == "postgres" else "columns",
        "read_only": read_only,
        "accounts": len(accounts),
        "rows_fetched": fetched,
        "raw_rows": raw,
        "signals": signals,
        "unknowns": unknowns,
        "seconds": round(elapsed, 2),
        "cpu_seconds": round(time.process_time(), 2),
        "peak_rss_mb": round(peak_kb / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="write the sample data and load PostgreSQL")
    p.add_argument("--accounts", type=int, default=100_000)
    p.add_argument("--days", type=int, default=90)
    p.add_argument(
        "--events-per-day",
        type=int,
        default=3,
        help="raw event rows per account and day in PostgreSQL (default 3)",
    )
    r = sub.add_parser("run", help="one timed run of the watcher")
    r.add_argument("--from", dest="kind", choices=("csv", "parquet", "postgres"), required=True)
    r.add_argument("--rows", action="store_true", help="the row path (a dict per row)")
    f = sub.add_parser("reference", help="the columnar reference: read and group only")
    f.add_argument("--from", dest="kind", choices=("csv", "parquet"), default="csv")
    r.add_argument(
        "--read-only",
        action="store_true",
        help="only read the source's rows (how much of the time is reading)",
    )
    for parser in (p, r, f):
        parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="data folder")
        parser.add_argument(
            "--postgres",
            default=os.environ.get("SWANWATCH_BENCH_POSTGRES_URL", DEFAULT_PG),
            help="PostgreSQL URL (admin)",
        )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    if args.command == "prepare":
        prepare(args.dir, args.accounts, args.days, args.postgres, args.events_per_day)
    elif args.command == "reference":
        print(json.dumps(reference(args.dir, args.kind)))
    else:
        done = run(args.kind, args.dir, args.postgres, args.read_only, args.rows)
        print(json.dumps(asyncio.run(done)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
