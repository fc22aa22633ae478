"""A real daemon killed with SIGKILL mid-delivery, then restarted: every notification
arrives, none is lost, and the only repeat possible (the one whose request was cut off)
carries the same Idempotency-Key, so the receiver can drop it."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import delivery_support
import pytest

from swanwatch.store import Store


def _wait(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_kill_9_mid_delivery_then_restart_delivers_the_rest_once(
    make_config, subprocess_env, swanwatch_cmd, tmp_path: Path
) -> None:
    hook = delivery_support.Hook(delay_s=0.6)  # a slow webhook: each POST takes 0.6 s
    config = make_config(
        f"""
watchers:
  - type: static
    schedule: {{every: 1h}}
    options:
      signals:
        - {{account: acme, kind: usage_drop, strength: 0.9}}
        - {{account: acme, kind: champion_departure, strength: 0.9}}
        - {{account: globex, kind: usage_drop, strength: 0.9}}
        - {{account: globex, kind: champion_departure, strength: 0.9}}
        - {{account: initech, kind: usage_drop, strength: 0.9}}
        - {{account: initech, kind: champion_departure, strength: 0.9}}
correlation:
  score_threshold: 1.0
  rules:
    - {{name: sag, title: Usage sagging, severity: high, any_of: [usage_drop]}}
    - {{name: gone, title: Champion gone, severity: high, any_of: [champion_departure]}}
notify:
  console: false
  lease: 2s
  channels:
    team: {{url: "json://127.0.0.1:{hook.port}/hook"}}
daemon:
  startup_spread: 0s
  deliver_every: 1s
  leader_check: 1s
"""
    )
    cmd = [*swanwatch_cmd, "run", "-c", str(config)]
    env = {**subprocess_env, "SWANWATCH_LOG_LEVEL": "INFO"}
    store = Store(f"sqlite:///{tmp_path / 'sw.db'}")
    try:
        log = (tmp_path / "first.log").open("w")
        first = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            _wait(lambda: len(hook.received) >= 2, 30, "two deliveries")
            first.send_signal(signal.SIGKILL)  # mid-delivery: the third POST is in flight
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(timeout=10)
            log.close()
        notes = store.notifications()
        assert len(notes) == 6
        left = [n for n in notes if n.status != "sent"]
        assert left, "the daemon was killed too late: nothing was left to deliver"
        time.sleep(1.0)  # let the in-flight request finish on the server side
        before_restart = len(hook.received)

        second = subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            _wait(
                lambda: all(n.status == "sent" for n in store.notifications()),
                40,
                "every notification sent after the restart",
            )
            time.sleep(1.5)  # a further delivery pass or two: nothing more must arrive
            second.send_signal(signal.SIGTERM)
            _, err = second.communicate(timeout=15)
        finally:
            if second.poll() is None:
                second.kill()
        assert second.returncode == 0, err
    finally:
        hook.close()
    keys = {n.idempotency_key for n in store.notifications()}
    store.close()
    counts = Counter(hook.keys)
    # Nothing lost: every notification reached the webhook, with its key.
    assert set(counts) == keys and len(keys) == 6
    assert len(hook.received) > before_restart
    # Nothing repeated but, at most, the one request cut off by the kill, same key.
    repeated = [k for k, n in counts.items() if n > 1]
    assert len(repeated) <= 1 and all(counts[k] == 2 for k in repeated)
