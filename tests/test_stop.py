"""SIGTERM ends a real daemon within ``daemon.shutdown_grace`` plus a few seconds, whatever a
source is doing: a hung query is cancelled in the database, and a thread stuck in a read
that nothing can cancel (a named pipe no one writes) does not keep the process alive."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from waiting import wait_until

GRACE_S = 2
#: The daemon's own margin past the grace (swanwatch.daemon.FORCE_EXIT_AFTER_S), and ours
#: for a loaded machine.
FORCE_S = 5
SLACK_S = 15


def _config(tmp_path: Path, usage: str) -> Path:
    (tmp_path / "accounts.csv").write_text("id,name\nacme,Acme\n")
    path = tmp_path / "swanwatch.yaml"
    path.write_text(
        f"""
store: {{url: "sqlite:///{tmp_path / "sw.db"}"}}
sources:
  accounts: {{type: csv, options: {{path: accounts.csv}}}}
  usage: {usage}
accounts: {{source: accounts}}
watchers:
  - {{type: usage_drop, timeout: 10m, schedule: {{every: 1h}}}}
daemon: {{startup_spread: 0s, shutdown_grace: {GRACE_S}s}}
notify: {{console: false}}
"""
    )
    return path


def _stop(proc: subprocess.Popen[str], log: Path) -> tuple[float, str]:
    """SIGTERM; how long the process took to end, and what it logged."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=GRACE_S + FORCE_S + SLACK_S + 30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return time.monotonic() - started, log.read_text()


def _start(
    path: Path, swanwatch_cmd: list[str], tmp_path: Path, env: dict[str, str]
) -> subprocess.Popen[str]:
    with (tmp_path / "daemon.log").open("w") as log:
        return subprocess.Popen(
            [*swanwatch_cmd, "run", "-c", str(path)],
            cwd=tmp_path,
            env={**env, "SWANWATCH_LOG_LEVEL": "INFO"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )


@pytest.mark.slow
def test_sigterm_ends_a_daemon_with_a_thread_nothing_can_unblock(
    swanwatch_cmd: list[str], subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    blocked = tmp_path / "blocked"
    path = _config(tmp_path, "{type: csv, options: {path: accounts.csv}}")
    path.write_text(
        path.read_text().replace(
            "  - {type: usage_drop, timeout: 10m, schedule: {every: 1h}}",
            f"  - {{type: stuck, timeout: 10m, options: {{touch: {blocked}}}}}",
        )
    )
    proc = _start(path, swanwatch_cmd, tmp_path, subprocess_env)
    wait_until(blocked.exists, "the watcher to block its thread")
    took, err = _stop(proc, tmp_path / "daemon.log")
    assert took < GRACE_S + FORCE_S + SLACK_S, err
    assert "forced exit" in err and proc.returncode == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.postgres
def test_sigterm_cancels_a_hung_query_and_the_daemon_ends(
    swanwatch_cmd: list[str], subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    url = os.environ.get("SWANWATCH_TEST_POSTGRES_URL")
    if url is None:
        pytest.skip("set SWANWATCH_TEST_POSTGRES_URL to run")
    marker = f"swanwatch_stop_{os.getpid()}_{time.monotonic_ns()}"
    source = f"{url}?application_name={marker}"
    path = _config(
        tmp_path,
        f'{{type: sql, options: {{url: "{source}", query: "SELECT pg_sleep(600) AS account_id"}}}}',
    )
    admin = create_engine(url)

    def running() -> int:
        return _active(admin, marker)

    proc = _start(path, swanwatch_cmd, tmp_path, subprocess_env)
    try:
        wait_until(lambda: running() == 1, "the query to start")
        took, err = _stop(proc, tmp_path / "daemon.log")
        assert took < GRACE_S + FORCE_S + SLACK_S, err
        assert proc.returncode == 0, err
        assert "stopped" in err and "forced exit" not in err
        wait_until(lambda: running() == 0, "the query to end with the daemon")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        admin.dispose()


def _active(admin: Engine, application: str) -> int:
    """Statements running on the connections of ``application``."""
    with admin.connect() as conn:
        return len(
            conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE state = 'active' "
                    "AND application_name = :name"
                ),
                {"name": application},
            ).all()
        )
