"""/metrics, /healthz and /readyz: parsed by prometheus_client, exact, and up when the store
is down; readiness that needs a store which takes writes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from ops_support import daemon, free_port, get, log_records, samples, wait_until
from sqlalchemy import event

from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.metrics import DaemonState
from swanwatch.model import WatcherRun
from swanwatch.server import create_app
from swanwatch.store import Store

CONFIG = """
watchers:
  - type: static
    schedule: {{every: 1h}}
    options:
      signals:
        - {{account: acme, kind: champion_departure, strength: 0.9}}
        - {{account: acme, kind: usage_drop, strength: 0.9}}
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
NOW = datetime(2026, 12, 1, 12, 34, 56, 789000, tzinfo=UTC)


@pytest.mark.slow
def test_a_real_daemon_exports_parseable_metrics_and_json_logs(
    make_config, swanwatch_cmd, subprocess_env, tmp_path: Path
) -> None:
    port = free_port()
    config = make_config(CONFIG.format(port=port))
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "daemon.log"
    with daemon(swanwatch_cmd, config, subprocess_env, log, tmp_path) as proc:

        def scraped() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
            ready, metrics = get(f"{base}/readyz"), get(f"{base}/metrics")
            if ready is None or metrics is None or ready.status_code != 200:
                return None
            found = samples(metrics.text)
            failed = ("swanwatch_watcher_failures_total", (("watcher", "boom"),))
            ran = ("swanwatch_watcher_runs_total", (("watcher", "static"),))
            opened = sum(v for k, v in found.items() if k[0] == "swanwatch_open_alerts")
            return found if found.get(failed) and found.get(ran) and opened >= 2 else None

        found = wait_until(scraped, "the first runs to show in /metrics")
        assert httpx.get(f"{base}/healthz").text == "ok\n"
        assert proc.poll() is None
    assert found[("swanwatch_leader", ())] == 1
    assert found[("swanwatch_store_up", ())] == 1
    assert found[("swanwatch_watcher_runs_total", (("watcher", "static"),))] == 1
    assert ("swanwatch_watcher_failures_total", (("watcher", "static"),)) not in found
    assert found[("swanwatch_watcher_consecutive_failures", (("watcher", "boom"),))] == 1
    assert found[("swanwatch_signals_raised_total", (("kind", "usage_drop"),))] == 1
    assert found[("swanwatch_signals_active", (("kind", "usage_drop"),))] == 1
    assert found[("swanwatch_watcher_run_duration_seconds_count", (("watcher", "static"),))] == 1
    # The ops alert about boom, and the account alert, are open: both high (the account's
    # ARR of 120,000 raises the catch-all rule).
    opened = {k[1]: v for k, v in found.items() if k[0] == "swanwatch_open_alerts"}
    assert opened[(("muted", "false"), ("severity", "high"), ("state", "firing"))] == 2
    assert any(k[0] == "swanwatch_build_info" for k in found)
    assert found[("swanwatch_config_last_reload_successful", ())] == 1
    assert found[("swanwatch_config_hash", ())] > 0
    assert found[("process_resident_memory_bytes", ())] > 0
    # The log: one JSON object a line, with the watcher and alert ids where known.
    records = log_records(log)
    assert records[0]["message"].startswith("swanwatch ") and records[0]["ts"].endswith("Z")
    assert any(r["message"].startswith("role: leader") for r in records)
    failed = [r for r in records if r.get("watcher") == "boom" and r["level"] == "ERROR"]
    assert failed and "RuntimeError: the registry is on fire" in failed[0]["exc"]
    alerts = [r for r in records if r.get("alert") and r["message"].startswith("alert firing")]
    assert {r["account"] for r in alerts} >= {"acme"}
    assert all(r["replica"] for r in records)


def _app(store: Store, state: DaemonState, make_config) -> httpx.AsyncClient:
    config = load_config(make_config("watchers: []\n", store_url=store.url))
    app = create_app(config, store, FrozenClock(NOW), state)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_exact_timestamps_and_large_counts_survive_parsing(store, make_config) -> None:
    last_ok = datetime(2026, 12, 1, 12, 33, 56, 123456, tzinfo=UTC)
    store.record_run(WatcherRun(instance="w", started_at=last_ok, finished_at=last_ok, ok=True))
    state = DaemonState(started=True, leading=True, watchers=("w",))
    state.metrics.observe_delivery("ops", True, count=1_234_567)
    state.metrics.observe_delivery("ops", True, count=9_007_199)
    async with _app(store, state, make_config) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    found = samples(response.text)
    stamp = found[("swanwatch_watcher_last_success_timestamp_seconds", (("watcher", "w"),))]
    assert stamp == last_ok.timestamp()  # 1796128436.123456, not 1.79613e+09
    assert NOW.timestamp() - stamp == pytest.approx(60.665544, abs=1e-6)
    assert found[("swanwatch_delivery_successes_total", (("channel", "ops"),))] == 10_241_766


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_only_the_leader_reports_the_store_and_removed_watchers_go(store, make_config):
    for name in ("kept", "removed"):
        store.record_run(WatcherRun(instance=name, started_at=NOW, finished_at=NOW, ok=False))
    state = DaemonState(started=True, leading=False, watchers=("kept",))
    for name in ("kept", "removed"):
        state.metrics.observe_run(name, ok=False, seconds=0.5, unknowns=2)
    async with _app(store, state, make_config) as client:
        standby = samples((await client.get("/metrics")).text)
        state.leading = True
        state.metrics.forget_watchers(state.watchers)
        leader = samples((await client.get("/metrics")).text)
    assert standby[("swanwatch_leader", ())] == 0 and standby[("swanwatch_store_up", ())] == 1
    assert not [k for k in standby if k[0] == "swanwatch_watcher_consecutive_failures"]
    assert leader[("swanwatch_leader", ())] == 1
    watchers = {dict(k[1]).get("watcher") for k in leader} - {None}
    assert watchers == {"kept"}
    assert leader[("swanwatch_watcher_unknowns_total", (("watcher", "kept"),))] == 2


@pytest.mark.parametrize(
    "url", ["postgresql+psycopg://swanwatch@127.0.0.1:1/gone", "sqlite:///{tmp}/garbage.db"]
)
async def test_metrics_answer_while_the_store_is_down(url: str, make_config, tmp_path) -> None:
    (tmp_path / "garbage.db").write_bytes(b"this is not a SQLite database at all" * 200)
    store = Store(url.format(tmp=tmp_path), migrate=False)
    state = DaemonState(started=True, leading=True)
    try:
        async with _app(store, state, make_config) as client:
            metrics = await client.get("/metrics")
            ready = await client.get("/readyz")
            health = await client.get("/healthz")
    finally:
        store.close()
    assert metrics.status_code == 200 and "Traceback" not in metrics.text
    assert samples(metrics.text)[("swanwatch_store_up", ())] == 0
    assert ready.status_code == 503 and "the store refuses writes" in ready.text
    assert health.status_code == 200


async def test_readiness_needs_a_store_that_takes_writes(store, make_config) -> None:
    state = DaemonState(started=True)
    async with _app(store, state, make_config) as client:
        assert (await client.get("/readyz")).status_code == 200
        # Make every new connection read-only, as a read-only file or database would be.
        if store.dialect == "sqlite":
            event.listen(store.engine, "connect", lambda c, _r: c.execute("PRAGMA query_only = ON"))
        else:
            with store.engine.connect() as conn:
                name = conn.exec_driver_sql("SELECT current_database()").scalar()
                conn.exec_driver_sql(
                    f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'
                )
                conn.commit()
        store.engine.dispose()
        ready = await client.get("/readyz")
        assert (await client.get("/healthz")).status_code == 200
    assert ready.status_code == 503, ready.text
    assert "the store refuses writes" in ready.text and "read" in ready.text.lower()


def _overwrite_start(path: Path) -> None:
    """Overwrite the SQLite header and first pages with garbage."""
    with path.open("r+b") as f:
        f.write(b"\x00garbage" * 512)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_a_corrupted_sqlite_store_is_not_ready(store_url: str, make_config) -> None:
    store = Store(store_url)
    path = Path(store.engine.url.database or "")
    store.close()
    _overwrite_start(path)
    store = Store(store_url, migrate=False)
    try:
        async with _app(store, DaemonState(started=True), make_config) as client:
            ready = await client.get("/readyz")
    finally:
        store.close()
    assert ready.status_code == 503 and "the store refuses writes" in ready.text
