"""The daemon: scheduling after a restart, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ops_support import daemon, free_port, get, log_records, samples, wait_until
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from swanwatch.config import WatcherConfig
from swanwatch.daemon import first_run_at
from swanwatch.model import WatcherRun
from swanwatch.store import Store

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
POSTGRES_URL = os.environ.get("SWANWATCH_TEST_POSTGRES_URL")
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


RELOAD_BEFORE = """
watchers:
  - type: static
    schedule: {{every: 1h}}
    options:
      signals: [{{account: acme, kind: usage_drop, strength: 0.5}}]
  - type: boom
    schedule: {{every: 1h}}
daemon:
  startup_spread: 0s
  leader_check: 0.5s
  failure_alert_after: 1
server:
  listen: "127.0.0.1:{port}"
notify: {{console: false}}
"""
RELOAD_AFTER = """
watchers:
  - type: static
    schedule: {{every: 1h}}
    options:
      signals: [{{account: acme, kind: usage_drop, strength: 0.5}}]
  - type: counting
    schedule: {{every: 1s}}
daemon:
  startup_spread: 0s
  leader_check: 0.5s
  failure_alert_after: 1
server:
  listen: "127.0.0.1:{port}"
notify: {{console: false}}
"""
RELOAD_BROKEN = """
watchers:
  - type: nope
    schedule: {{every: soon}}
server:
  listen: "127.0.0.1:{port}"
"""


def _open_ops_alerts(store: Store) -> set[str]:
    return {a.rule for a in store.alerts() if a.open and a.rule.startswith("watcher_failing:")}


@pytest.mark.slow
def test_sighup_applies_a_valid_config_and_refuses_a_broken_one(
    make_config, swanwatch_cmd, subprocess_env, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = make_config(RELOAD_BEFORE.format(port=port))
    store = Store(f"sqlite:///{tmp_path / 'sw.db'}")
    log = tmp_path / "daemon.log"

    def metric(name: str, **labels: str) -> float | None:
        response = get(f"{base}/metrics")
        found = samples(response.text) if response is not None else {}
        return found.get((name, tuple(sorted(labels.items()))))

    with daemon(swanwatch_cmd, config, subprocess_env, log, tmp_path) as proc:
        wait_until(lambda: _open_ops_alerts(store) == {"watcher_failing:boom"}, "boom's ops alert")
        hash_before = wait_until(lambda: metric("swanwatch_config_hash"), "the config hash")
        assert metric("swanwatch_watcher_runs_total", watcher="boom") == 1

        # A valid config: boom goes, counting comes.
        make_config(RELOAD_AFTER.format(port=port))
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: len(store.runs("counting", limit=100)) >= 2, "the new watcher to run")
        wait_until(lambda: not _open_ops_alerts(store), "boom's ops alert to resolve")
        assert metric("swanwatch_config_hash") not in (None, hash_before)
        assert metric("swanwatch_config_last_reload_successful") == 1
        assert metric("swanwatch_watcher_runs_total", watcher="boom") is None
        assert metric("swanwatch_watcher_consecutive_failures", watcher="boom") is None
        hash_after = metric("swanwatch_config_hash")

        # A broken config: refused with its problems, the running one stays.
        make_config(RELOAD_BROKEN.format(port=port))
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: metric("swanwatch_config_last_reload_successful") == 0, "the refusal")
        refused = [r for r in log_records(log) if "reload refused" in r["message"]]
        assert refused and "every" in refused[0]["message"] and refused[0]["level"] == "ERROR"
        runs = len(store.runs("counting", limit=1000))
        wait_until(lambda: len(store.runs("counting", limit=1000)) > runs + 1, "runs to go on")
        assert metric("swanwatch_config_hash") == hash_after
        health = get(f"{base}/healthz")
        assert proc.poll() is None and health is not None and health.status_code == 200

        # `swanwatch reload` says the same, and exits 1; with the file fixed, 0.
        cli = subprocess.run(
            [*swanwatch_cmd, "reload", "-c", str(config)],
            env=subprocess_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 2 and "watchers[0].type" in cli.stderr  # the file is bad here too
        cli = subprocess.run(
            [*swanwatch_cmd, "reload", "--url", f"{base}/-/reload"],
            env=subprocess_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 1 and "refused" in cli.stderr and "nope" in cli.stderr
        make_config(RELOAD_AFTER.format(port=port))
        cli = subprocess.run(
            [*swanwatch_cmd, "reload", "-c", str(config)],
            env=subprocess_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0 and cli.stdout == "reloaded\n", cli.stderr
        assert metric("swanwatch_config_last_reload_successful") == 1
    assert proc.returncode == 0, log.read_text()[-2000:]
    store.close()


def _run_fails(cmd: list[str], config: Path, env: dict[str, str], cwd: Path) -> str:
    """`swanwatch run` exits 1 with one line of error and no traceback; returns that line."""
    result = subprocess.run(
        [*cmd, "run", "-c", str(config)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == errors[0]
    return errors[0]


@pytest.mark.slow
def test_a_port_in_use_is_one_line_and_exit_1(
    make_config, swanwatch_cmd, subprocess_env, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = make_config(f'watchers: []\nserver: {{listen: "127.0.0.1:{port}"}}\n')
        line = _run_fails(swanwatch_cmd, config, subprocess_env, tmp_path)
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in line


@pytest.mark.slow
def test_an_unwritable_store_path_is_one_line_and_exit_1(
    make_config, swanwatch_cmd, subprocess_env, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    config = make_config("watchers: []\n", store_url=f"sqlite:///{tmp_path}/a-file/sw.db")
    line = _run_fails(swanwatch_cmd, config, subprocess_env, tmp_path)
    assert "cannot create the store's folder" in line and "a-file" in line


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skipif(POSTGRES_URL is None, reason="set SWANWATCH_TEST_POSTGRES_URL to run")
def test_a_database_not_in_utf8_is_one_line_and_exit_1(
    make_config, swanwatch_cmd, subprocess_env, tmp_path: Path
) -> None:
    assert POSTGRES_URL is not None
    name = f"swanwatch_latin1_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(
            f"CREATE DATABASE \"{name}\" ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' "
            "TEMPLATE template0"
        )
    try:
        url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        config = make_config("watchers: []\n", store_url=url)
        line = _run_fails(swanwatch_cmd, config, subprocess_env, tmp_path)
        assert "is encoded LATIN1, not UTF8" in line
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
