"""Two replicas on one store: one leads, the other stands by and takes over on kill -9."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from swanwatch.store import Store

CONFIG = """
watchers:
  - type: counting
    schedule: {every: 1s}
daemon:
  startup_spread: 0s
  leader_check: 0.5s
  deliver_every: 1s
notify: {console: false}
"""


def _wait(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


@pytest.mark.slow
def test_failover_between_two_replicas(
    store_url: str, make_config, swanwatch_cmd, subprocess_env, tmp_path: Path
) -> None:
    config = make_config(CONFIG, store_url=store_url)
    store = Store(store_url)
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b")}

    def start(name: str) -> subprocess.Popen[bytes]:
        with logs[name].open("wb") as err:
            return subprocess.Popen(
                [*swanwatch_cmd, "run", "-c", str(config)],
                env=subprocess_env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def runs() -> int:
        return len(store.runs("counting", limit=10_000))

    a = start("a")
    b: subprocess.Popen[bytes] | None = None
    try:
        _wait(lambda: runs() >= 1)
        b = start("b")
        time.sleep(2.5)  # several leader checks for b
        assert "leading" in logs["a"].read_text()
        assert "leading" not in logs["b"].read_text()
        # While both run, the watcher runs once a second, not twice.
        before, t0 = runs(), time.monotonic()
        time.sleep(3)
        assert runs() - before <= (time.monotonic() - t0) + 1.5
        a.send_signal(signal.SIGKILL)
        a.wait(timeout=10)
        _wait(lambda: "leading" in logs["b"].read_text(), timeout=15)
        after = runs()
        _wait(lambda: runs() > after + 1, timeout=15)
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        store.close()
    assert b is not None and b.returncode == 0, logs["b"].read_text()
