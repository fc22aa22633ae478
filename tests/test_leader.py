"""Two replicas on one store: one leads, the other stands by and takes over on kill -9."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from waiting import wait_until

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


@pytest.mark.slow
def test_failover_between_two_replicas(
    store_url: str, make_config, swanwatch_cmd, subprocess_env, tmp_path: Path
) -> None:
    config = make_config(CONFIG, store_url=store_url)
    store = Store(store_url)
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b")}
    env = {**subprocess_env, "SWANWATCH_LOG_LEVEL": "DEBUG"}

    def start(name: str) -> subprocess.Popen[bytes]:
        with logs[name].open("wb") as err:
            return subprocess.Popen(
                [*swanwatch_cmd, "run", "-c", str(config)],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def log(name: str) -> str:
        return logs[name].read_text()

    def runs() -> int:
        return len(store.runs("counting", limit=10_000))

    def describe() -> str:
        return "\n".join(f"--- {name}\n{log(name)[-3000:]}" for name in logs)

    a = start("a")
    b: subprocess.Popen[bytes] | None = None
    try:
        wait_until(lambda: runs() >= 1, "a first run by a", describe=describe)
        b = start("b")
        # b checks for the lead every 0.5 s and finds a holding it, time and again, while a
        # keeps running the watcher: b never leads, never runs it.
        wait_until(
            lambda: log("b").count("standby: another replica leads") >= 3,
            "three standby checks by b",
            describe=describe,
        )
        after_standby = runs()
        wait_until(lambda: runs() >= after_standby + 2, "two more runs by a", describe=describe)
        assert "leading" in log("a")
        assert "leading" not in log("b") and "watcher counting: ok" not in log("b")
        a.send_signal(signal.SIGKILL)
        a.wait(timeout=60)
        wait_until(lambda: "leading" in log("b"), "b to take the lead", describe=describe)
        after = runs()
        # The run is stored, then logged: once b has logged it, the store has it.
        wait_until(lambda: "watcher counting: ok" in log("b"), "a run by b", describe=describe)
        assert runs() > after
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
        store.close()
    assert b is not None and b.returncode == 0, log("b")
