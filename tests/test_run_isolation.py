"""Storing a run is part of the run: a store that refuses a run's findings is that run's
failure, stored and counted; a store that refuses the run itself leaves it counted in
memory and in /metrics; `run --once` never ends in a traceback."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from swanwatch.alerts import OPS_ACCOUNT
from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.engine import Engine
from swanwatch.metrics import DaemonState, Metrics, StoreReading, exposition
from swanwatch.store import Store

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

#: A watcher with one signal to store; :func:`_refusing` makes the database refuse it.
STATIC_WATCHER = """
watchers:
  - type: static
    options:
      signals:
        - {account: acme, kind: usage_drop, strength: 0.8, summary: "usage fell"}
daemon: {failure_alert_after: 1}
notify: {console: false}
"""


def _refusing(store_url: str) -> None:
    """The store migrated, its signals table given a check that refuses the static
    watcher's rows: PostgreSQL itself refuses the run's findings, as it would a value it
    cannot store."""
    store = Store(store_url)
    try:
        with store.engine.begin() as conn:
            conn.execute(
                text("ALTER TABLE signals ADD CONSTRAINT refuse_static CHECK (watcher <> 'static')")
            )
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
async def test_a_store_that_refuses_the_findings_fails_the_run(make_config, store_url) -> None:
    path = make_config(STATIC_WATCHER, store_url=store_url)
    config = load_config(path)
    _refusing(store_url)
    store = Store(store_url)
    try:
        async with Engine(config, store, FrozenClock(NOW)) as engine:
            outcome = await engine.run_watcher(config.watchers[0], refresh_accounts=True)
            assert not outcome.run.ok
            assert "storing the run's findings failed" in (outcome.run.error or "")
            assert "refuse_static" in (outcome.run.error or "")
            await engine.correlate()
        (run,) = store.runs("static")
        assert not run.ok and run.traceback
        assert store.watcher_statuses()["static"].consecutive_failures == 1
        assert store.signals() == []  # all or nothing: no half-stored run
        ops = [a.rule for a in store.alerts() if a.account_id == OPS_ACCOUNT]
        assert ops == ["watcher_failing:static"]
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_run_once_reports_a_refused_store_write_without_a_traceback(
    make_config, store_url, swanwatch_cmd, subprocess_env, tmp_path: Path
) -> None:
    path = make_config(STATIC_WATCHER, store_url=store_url)
    _refusing(store_url)
    done = subprocess.run(
        [*swanwatch_cmd, "run", "-c", str(path), "--once", "--now", "2026-11-20T12:00:00Z"],
        capture_output=True,
        text=True,
        env=subprocess_env,
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "watcher static: FAILED: storing the run's findings failed" in done.stderr
    assert "1 of 1 watchers failed" in done.stderr


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_a_run_the_store_will_not_record_is_counted_in_memory(make_config, store_url) -> None:
    path = make_config(
        "watchers:\n  - type: boom\ndaemon: {failure_alert_after: 1}\nnotify: {console: false}\n",
        store_url=store_url,
    )
    config = load_config(path)
    store = Store(store_url)
    metrics = Metrics()
    try:
        with store.engine.begin() as conn:
            conn.execute(text("DROP TABLE watcher_runs"))  # the store refuses every run
        async with Engine(config, store, FrozenClock(NOW), metrics=metrics) as engine:
            outcome = await engine.run_watcher(config.watchers[0], refresh_accounts=True)
            assert not outcome.run.ok and "the registry is on fire" in (outcome.run.error or "")
            assert engine.watcher_health()["boom"].consecutive_failures == 1
            await engine.correlate()
        (ops,) = [a for a in store.alerts() if a.account_id == OPS_ACCOUNT]
        assert ops.rule == "watcher_failing:boom"
        assert "the registry is on fire" in " ".join(ops.why_now)
        page = exposition(DaemonState(metrics=metrics), StoreReading(up=True)).decode()
        assert 'swanwatch_watcher_unrecorded_runs_total{watcher="boom"} 1.0' in page
        assert 'swanwatch_watcher_failures_total{watcher="boom"} 1.0' in page
    finally:
        store.close()


#: A watcher that finds something and cannot judge one account: signals and unknowns.
FINDING_WATCHER = """
watchers:
  - type: static
    options:
      signals:
        - {account: acme, kind: usage_drop, strength: 0.8}
      unknown: [globex]
daemon: {failure_alert_after: 2}
notify: {console: false}
"""


def _refuse(store: Store, table: str) -> None:
    """The store refuses every new row of ``table``, as a full disk would (a trigger)."""
    with store.engine.begin() as conn:
        conn.execute(
            text(
                f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            )
        )


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_a_store_failing_under_runs_fails_them_and_counts_them(
    make_config, store_url
) -> None:
    """On SQLite: the findings refused (the run fails, all or nothing, and is stored), then
    the run's record refused too (counted in memory); both count toward the ops alert and
    in /metrics; once the store takes writes again, a good run clears it all."""
    config = load_config(make_config(FINDING_WATCHER, store_url=store_url))
    spec = config.watchers[0]
    store = Store(store_url)
    metrics = Metrics()
    try:
        async with Engine(config, store, FrozenClock(NOW), metrics=metrics) as engine:
            _refuse(store, "signals")
            first = await engine.run_watcher(spec, refresh_accounts=True)
            assert not first.run.ok
            assert first.run.error == (
                "storing the run's findings failed: (sqlite3.IntegrityError) database or disk "
                "is full"
            )
            (stored,) = store.runs("static")
            assert not stored.ok and stored.traceback
            assert store.signals() == [] and store.unknowns() == []  # all or nothing

            _refuse(store, "watcher_runs")
            second = await engine.run_watcher(spec)
            assert not second.run.ok and len(store.runs("static")) == 1
            assert engine.watcher_health()["static"].consecutive_failures == 2
            await engine.correlate()
            (ops,) = [a for a in store.alerts(open_only=True) if a.account_id == OPS_ACCOUNT]
            assert ops.rule == "watcher_failing:static"
            assert "database or disk is full" in " ".join(ops.why_now)
            page = exposition(DaemonState(metrics=metrics), StoreReading(up=True)).decode()
            assert 'swanwatch_watcher_failures_total{watcher="static"} 2.0' in page
            assert 'swanwatch_watcher_unrecorded_runs_total{watcher="static"} 1.0' in page

            with store.engine.begin() as conn:
                conn.execute(text("DROP TRIGGER refuse_signals"))
                conn.execute(text("DROP TRIGGER refuse_watcher_runs"))
            third = await engine.run_watcher(spec)
            assert third.run.ok and engine.unrecorded == {}
            assert engine.watcher_health()["static"].consecutive_failures == 0
            assert [s.account_id for s in store.signals()] == ["acme"]
            assert [u.account_id for u in store.unknowns()] == ["globex"]
            await engine.correlate()
            assert store.alerts(fingerprints=[ops.fingerprint])[0].clear_since is not None
    finally:
        store.close()
