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

#: A signal whose summary holds a NUL byte: PostgreSQL refuses it in a text column.
NUL_WATCHER = """
watchers:
  - type: static
    options:
      signals:
        - {account: acme, kind: usage_drop, strength: 0.8, summary: "usage\\x00fell"}
daemon: {failure_alert_after: 1}
notify: {console: false}
"""


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
async def test_a_store_that_refuses_the_findings_fails_the_run(make_config, store_url) -> None:
    path = make_config(NUL_WATCHER, store_url=store_url)
    config = load_config(path)
    store = Store(store_url)
    try:
        async with Engine(config, store, FrozenClock(NOW)) as engine:
            outcome = await engine.run_watcher(config.watchers[0], refresh_accounts=True)
            assert not outcome.run.ok
            assert "storing the run's findings failed" in (outcome.run.error or "")
            assert "NUL" in (outcome.run.error or "")
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
    path = make_config(NUL_WATCHER, store_url=store_url)
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
