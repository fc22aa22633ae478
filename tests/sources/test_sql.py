"""The sql source against SQLite and the real PostgreSQL: aggregation in the database, the
cut at ``until``, streaming, work off the event loop, errors that name the failing part."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from waiting import wait_until_async

from swanwatch import SourceError
from swanwatch.testing import make_account, make_source, run_watcher

POSTGRES_URL = os.environ.get("SWANWATCH_TEST_POSTGRES_URL")
needs_postgres = pytest.mark.skipif(
    POSTGRES_URL is None, reason="set SWANWATCH_TEST_POSTGRES_URL to run"
)

#: Daily sums per account, day and metric: the pattern for usage (aggregation in the DB).
DAILY = """
SELECT account_id, day AS date, metric, SUM(amount) AS value
FROM usage_events
GROUP BY account_id, day, metric
ORDER BY account_id, day, metric
"""


@pytest.fixture
def db_url(store_url: str) -> Iterator[str]:
    """A fresh database (SQLite, and PostgreSQL when configured) with a raw event table:
    several events per account and day."""
    yield from _filled(store_url)


def _filled(url: str) -> Iterator[str]:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE usage_events (account_id VARCHAR(20), day DATE, metric VARCHAR(20), "
                "amount NUMERIC(12, 2))"
            )
        )
        rows = [
            {"a": account, "d": date(2026, 11, 1) + timedelta(days=d), "m": metric, "v": 1.5}
            for account in ("acme", "globex")
            for d in range(10)
            for metric in ("reports", "api_calls")
            for _ in range(4)  # four events a day: aggregated to one row
        ]
        conn.execute(text("INSERT INTO usage_events VALUES (:a, :d, :m, :v)"), rows)
    engine.dispose()
    yield url


def sql_source(url: str, **options: object) -> object:
    return make_source("sql", {"url": url, "query": DAILY, "date_field": "date", **options})


async def read(source: object, until: datetime | None = None) -> list[dict[str, object]]:
    try:
        return [dict(r) async for r in source.rows(until=until)]  # type: ignore[attr-defined]
    finally:
        source.close()  # type: ignore[attr-defined]


async def test_rows_are_aggregated_in_the_database_and_typed(db_url: str) -> None:
    source = sql_source(db_url, batch_rows=7)
    rows = await read(source)
    assert len(rows) == 2 * 10 * 2
    assert source.rows_fetched == 40  # type: ignore[attr-defined]  # not the 160 raw events
    assert rows[0] == {
        "account_id": "acme",
        "date": date(2026, 11, 1),
        "metric": "api_calls",
        "value": 6.0,
    }
    assert isinstance(rows[0]["value"], float)  # NUMERIC arrives as float


async def test_until_cuts_in_the_database(db_url: str) -> None:
    source = sql_source(db_url)
    rows = await read(source, until=datetime(2026, 11, 3, 18, tzinfo=UTC))
    assert {r["date"] for r in rows} == {date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)}
    assert source.rows_fetched == len(rows) == 12  # type: ignore[attr-defined]
    statement, params = source.statement(datetime(2026, 11, 3, tzinfo=UTC))  # type: ignore[attr-defined]
    assert "swanwatch_cut" in str(statement) and params["swanwatch_cut"] == date(2026, 11, 3)


async def test_query_may_place_until_itself(db_url: str) -> None:
    query = (
        "SELECT account_id, day, SUM(amount) AS value FROM usage_events "
        "WHERE day <= :until AND metric = :metric GROUP BY account_id, day"
    )
    source = make_source(
        "sql",
        {
            "url": db_url,
            "query": query,
            "params": {"metric": "reports"},
            "columns": {"date": "day"},
            "types": {"value": "int", "date": "date"},
        },
    )
    everything = await read(source)
    assert len(everything) == 20 and {type(r["value"]) for r in everything} == {int}
    cut = await read(source, until=datetime(2026, 11, 2, tzinfo=UTC))
    assert sorted({r["date"] for r in cut}, key=str) == [date(2026, 11, 1), date(2026, 11, 2)]


async def test_an_early_stop_returns_the_connection(db_url: str) -> None:
    source = sql_source(db_url, batch_rows=3)
    async for _ in source.rows():  # type: ignore[attr-defined]
        break
    # The generator is closed by the event loop once it is dropped: wait for that.
    pool = source.engine().pool  # type: ignore[attr-defined]
    await wait_until_async(lambda: pool.checkedout() == 0, "the connection back in the pool")
    source.close()  # type: ignore[attr-defined]


async def test_bad_values_are_skipped_and_listed(db_url: str) -> None:
    query = "SELECT account_id, metric AS value FROM usage_events WHERE day = '2026-11-01'"
    source = make_source("sql", {"url": db_url, "query": query, "types": {"value": "int"}})
    assert await read(source) == []
    assert source.problems[0] == "row 1: value: 'reports' is not an integer"  # type: ignore[attr-defined]


async def test_the_failing_query_is_named(db_url: str) -> None:
    source = make_source("sql", {"url": db_url, "query": "SELECT nope FROM missing_table"})
    failed = r"source 'sql' \(sql, .*\): the query failed: .*missing_table"
    with pytest.raises(SourceError, match=failed):
        await read(source)


async def test_a_missing_date_field_lists_the_columns(db_url: str) -> None:
    source = make_source(
        "sql", {"url": db_url, "query": "SELECT account_id FROM usage_events", "date_field": "day"}
    )
    with pytest.raises(SourceError, match=r"'day' named in .* it has: account_id"):
        await read(source)


async def test_a_failed_connection_is_named_and_hides_the_password() -> None:
    source = make_source(
        "sql",
        {
            "url": "postgresql+psycopg://scott:tiger@127.0.0.1:1/db",
            "query": "SELECT 1",
            "connect_timeout_s": 2,
        },
    )
    with pytest.raises(SourceError, match="cannot connect") as caught:
        await read(source)
    assert "tiger" not in str(caught.value) and "***" in str(caught.value)
    assert "tiger" not in repr(source.options)


async def test_a_relative_sqlite_path_is_relative_to_the_config(tmp_path: Path) -> None:
    for _ in _filled(f"sqlite:///{tmp_path / 'crm.db'}"):
        source = make_source(
            "sql", {"url": "sqlite:///crm.db", "query": DAILY}, base_dir=str(tmp_path)
        )
        assert len(await read(source)) == 40


@needs_postgres
async def test_the_event_loop_keeps_running_during_a_slow_query() -> None:
    assert POSTGRES_URL is not None
    source = make_source("sql", {"url": POSTGRES_URL, "query": "SELECT pg_sleep(0.4) AS slept"})
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    try:
        assert len(await read(source)) == 1
    finally:
        ticker.cancel()
    assert time.monotonic() - started >= 0.4
    # A query that blocked the loop would leave the ticker no turn at all while it ran.
    assert ticks >= 3


@needs_postgres
async def test_postgres_streams_through_a_server_side_cursor() -> None:
    assert POSTGRES_URL is not None
    query = (
        "SELECT g AS n, (SELECT count(*) FROM pg_cursors) AS open_cursors "
        "FROM generate_series(1, 50) AS g"
    )
    source = make_source("sql", {"url": POSTGRES_URL, "query": query, "batch_rows": 10})
    rows = await read(source)
    assert len(rows) == 50 and {r["open_cursors"] for r in rows} == {1}


async def test_usage_drop_reads_daily_sums_from_sql(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'usage.db'}"
    engine = create_engine(url)
    end = date(2026, 11, 20)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE events (account_id TEXT, day DATE, amount INTEGER)"))
        rows = []
        for i in range(70):
            day = end - timedelta(days=69 - i)
            per_event = 10 if day < date(2026, 11, 14) else 4  # a 60% drop for the last week
            rows += [{"a": "acme", "d": day, "v": per_event}] * 10
        conn.execute(text("INSERT INTO events VALUES (:a, :d, :v)"), rows)
    engine.dispose()
    query = "SELECT account_id, day AS date, SUM(amount) AS value FROM events GROUP BY 1, 2"
    source = make_source(
        "sql", {"url": url, "query": query, "date_field": "date", "types": {"date": "date"}}
    )
    try:
        signals = await run_watcher(
            "usage_drop",
            accounts=[make_account("acme")],
            now="2026-11-20T18:00:00Z",
            sources={"usage": source},
            replay=True,
        )
    finally:
        source.close()  # type: ignore[attr-defined]
    assert [(s.account_id, s.evidence["days_lasted"]) for s in signals] == [("acme", 7)]
    assert source.rows_fetched == 70  # type: ignore[attr-defined]


# --- cancellation: a read abandoned by the watcher's timeout stops in the database ----------

#: A query that never ends on SQLite (a recursive count with no bound).
ENDLESS_SQLITE = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
    "SELECT count(*) AS account_id FROM c"
)


def _timeout_config(tmp_path: Path, url: str, query: str) -> Path:
    (tmp_path / "accounts.csv").write_text("id,name\nacme,Acme\n")
    path = tmp_path / "swanwatch.yaml"
    path.write_text(
        f"""
store: {{url: "sqlite:///{tmp_path / "sw.db"}"}}
sources:
  accounts: {{type: csv, options: {{path: accounts.csv}}}}
  usage: {{type: sql, options: {{url: "{url}", query: "{query}"}}}}
accounts: {{source: accounts}}
watchers:
  - {{type: usage_drop, timeout: 1s}}
notify: {{console: false}}
"""
    )
    return path


async def _timed_out_run(path: Path) -> object:
    from swanwatch.clock import FrozenClock
    from swanwatch.config import load_config
    from swanwatch.engine import Engine
    from swanwatch.store import Store

    config = load_config(path)
    store = Store(config.store_url)
    try:
        async with Engine(config, store, FrozenClock("2026-11-20T12:00:00Z")) as engine:
            started = time.monotonic()
            outcome = await engine.run_watcher(config.watchers[0], refresh_accounts=True)
            # The timeout, plus at most the bounded wait for the cursor to close.
            assert time.monotonic() - started < 1 + 5 + 5
        return outcome.run
    finally:
        store.close()


async def _read_threads_end(before: set[threading.Thread]) -> None:
    """Wait for the read threads this test started to end (a thread another test of this
    worker left is none of its business)."""

    def ended() -> bool:
        return not [
            t
            for t in threading.enumerate()
            if t not in before and t.name.startswith("swanwatch-sql-")
        ]

    await wait_until_async(ended, "the query to stop in its thread")


async def test_the_watcher_timeout_interrupts_a_running_sqlite_query(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    create_engine(url).dispose()
    before = set(threading.enumerate())
    run = await _timed_out_run(_timeout_config(tmp_path, url, ENDLESS_SQLITE))
    assert not run.ok and "timed out after 1 s" in (run.error or "")  # type: ignore[attr-defined]
    await _read_threads_end(before)


@needs_postgres
async def test_the_watcher_timeout_cancels_a_running_postgres_query(tmp_path: Path) -> None:
    assert POSTGRES_URL is not None
    marker = f"swanwatch_cancel_{os.getpid()}_{time.monotonic_ns()}"
    url = f"{POSTGRES_URL}?application_name={marker}"
    before = set(threading.enumerate())
    run = await _timed_out_run(_timeout_config(tmp_path, url, "SELECT pg_sleep(600) AS x"))
    assert not run.ok and "timed out after 1 s" in (run.error or "")  # type: ignore[attr-defined]
    admin = create_engine(POSTGRES_URL)

    def sessions(state: str) -> int:
        with admin.connect() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = :name "
                        "AND state = :state"
                    ),
                    {"name": marker, "state": state},
                ).all()
            )

    try:
        # The connection the query ran on is back in its pool, idle: the query has ended.
        await wait_until_async(lambda: sessions("active") == 0, "the query to be cancelled")
    finally:
        admin.dispose()
    await _read_threads_end(before)


@needs_postgres
async def test_postgres_ends_a_statement_past_its_statement_timeout() -> None:
    assert POSTGRES_URL is not None
    source = make_source(
        "sql",
        {"url": POSTGRES_URL, "query": "SELECT pg_sleep(30) AS slept", "statement_timeout_s": 0.5},
    )
    started = time.monotonic()
    with pytest.raises(SourceError, match="statement timeout"):
        await read(source)
    assert time.monotonic() - started < 20
