"""A running daemon answers /healthz, /readyz and /metrics for ops."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from waiting import wait_until

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
server:
  listen: "127.0.0.1:{port}"
notify: {{console: false}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_health_readiness_and_metrics(make_config, swanwatch_cmd, subprocess_env, tmp_path: Path):
    port = _free_port()
    config = make_config(CONFIG.format(port=port))
    base = f"http://127.0.0.1:{port}"
    with (tmp_path / "daemon.log").open("wb") as log:
        proc = subprocess.Popen(
            [*swanwatch_cmd, "run", "-c", str(config)],
            env=subprocess_env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        seen: dict[str, httpx.Response] = {}

        def ready_with_alerts() -> bool:
            try:
                seen["ready"] = httpx.get(f"{base}/readyz", timeout=30)
                seen["metrics"] = httpx.get(f"{base}/metrics", timeout=30)
            except httpx.TransportError:
                return False  # not listening yet
            return (
                seen["ready"].status_code == 200
                and 'swanwatch_alerts{muted="false"' in seen["metrics"].text
            )

        wait_until(ready_with_alerts, "/readyz ready and an alert in /metrics")
        ready, metrics = seen["ready"], seen["metrics"].text
        assert httpx.get(f"{base}/healthz", timeout=30).text == "ok\n"
        assert ready.status_code == 200, ready.text
        assert "swanwatch_leader 1" in metrics
        assert 'swanwatch_watcher_consecutive_failures{watcher="boom"} 1' in metrics
        assert 'swanwatch_watcher_consecutive_failures{watcher="static"} 0' in metrics
        assert 'swanwatch_signals_active{kind="usage_drop"} 1' in metrics
        assert 'swanwatch_alerts{muted="false",severity="warning",state="firing"} 1' in metrics
        assert "# TYPE swanwatch_dead_letters gauge" in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0, (tmp_path / "daemon.log").read_text()
