"""The daemon: scheduling after a restart, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import random
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from waiting import wait_until

from swanwatch.config import WatcherConfig
from swanwatch.daemon import first_run_at
from swanwatch.model import WatcherRun
from swanwatch.store import Store

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
STARTUP_SPREAD = timedelta(seconds=10)


def _status(store: Store, last_ok: datetime):
    return store.record_run(
        WatcherRun(instance="w", started_at=last_ok, finished_at=last_ok, ok=True)
    )


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_restart_neither_reruns_nor_skips(store: Store) -> None:
    spec = WatcherConfig.model_validate({"type": "counting", "schedule": {"every": "1h"}})
    rng = random.Random(1)
    # Never ran: runs now (within the start-up spread).
    assert NOW <= first_run_at(spec, None, NOW, rng) <= NOW + STARTUP_SPREAD
    # Ran 10 minutes ago: waits for its turn, no re-run.
    recent = _status(store, NOW - timedelta(minutes=10))
    assert first_run_at(spec, recent, NOW, rng) == NOW + timedelta(minutes=50)
    # Fell due while the daemon was down: runs now, not skipped to the next slot.
    overdue = _status(store, NOW - timedelta(hours=5))
    assert first_run_at(spec, overdue, NOW, rng) <= NOW + STARTUP_SPREAD


def test_cron_schedule_after_restart() -> None:
    spec = WatcherConfig.model_validate({"type": "counting", "schedule": {"cron": "0 6 * * *"}})

    class Status:
        last_success_at = datetime(2026, 11, 20, 6, 0, 5, tzinfo=UTC)

    assert first_run_at(spec, Status(), NOW, random.Random(1)) == datetime(  # type: ignore[arg-type]
        2026, 11, 21, 6, 0, tzinfo=UTC
    )
    Status.last_success_at = datetime(2026, 11, 19, 6, 0, 5, tzinfo=UTC)  # missed today's run
    assert first_run_at(spec, Status(), NOW, random.Random(1)) <= NOW + STARTUP_SPREAD  # type: ignore[arg-type]


@pytest.mark.slow
def test_sigterm_stops_a_real_daemon_cleanly(
    make_config, subprocess_env, swanwatch_cmd, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    config = make_config(
        f"""
watchers:
  - type: counting
    name: slow
    schedule: {{every: 1h}}
    options: {{gate: "{gate}"}}
  - type: static
    schedule: {{every: 1h}}
    options:
      signals: [{{account: acme, kind: usage_drop, strength: 0.5}}]
daemon:
  startup_spread: 0s
  shutdown_grace: 5m
"""
    )
    env = {**subprocess_env, "SWANWATCH_LOG_LEVEL": "INFO"}
    log = tmp_path / "daemon.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [*swanwatch_cmd, "run", "-c", str(config)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    store = Store(f"sqlite:///{tmp_path / 'sw.db'}")
    try:
        # The slow watcher is mid-run (held at its gate) when the daemon is asked to stop.
        wait_until(
            lambda: "static" in store.watcher_statuses() and (tmp_path / "gate.started").exists(),
            "a first run of static, and slow's run under way",
        )
        proc.send_signal(signal.SIGTERM)
        wait_until(lambda: "stopping: letting" in log.read_text(), "the daemon to start stopping")
        assert "slow" not in store.watcher_statuses()  # still under way
        gate.touch()
        # It stops once the run under way is done, not at the next tick an hour away.
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = log.read_text()
    assert proc.returncode == 0, err
    assert "stopped" in err
    # The slow run was allowed to finish: its run and state are stored, the store is sound.
    statuses = store.watcher_statuses()
    assert statuses["slow"].consecutive_failures == 0 and statuses["slow"].last_success_at
    assert store.load_state("slow") == {"runs": 1}
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    store.close()
    assert os.path.exists(tmp_path / "sw.db")
