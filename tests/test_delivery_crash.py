"""A real daemon killed with SIGKILL mid-delivery, then restarted: every notification
arrives, none is lost, and the only repeat possible (the one whose request was cut off)
carries the same Idempotency-Key, so the receiver can drop it. And a batch slower than its
lease: the leases of what it has not sent yet must not run out under it.

The webhook holds each request until the test releases it, so "mid-delivery" is a fact the
test sets up, not a moment it hopes to catch.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections import Counter
from datetime import timedelta
from pathlib import Path

import delivery_support
import pytest
from waiting import wait_until, wait_until_async

from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.engine import Engine
from swanwatch.model import NotificationStatus
from swanwatch.store import Store

SIX_ALERTS = """
watchers:
  - type: static
    schedule: {{every: 1h}}
    options:
      signals:
        - {{account: acme, kind: usage_drop, strength: 0.9}}
        - {{account: globex, kind: usage_drop, strength: 0.9}}
        - {{account: initech, kind: usage_drop, strength: 0.9}}
        - {{account: hooli, kind: champion_departure, strength: 0.9}}
        - {{account: umbrella, kind: champion_departure, strength: 0.9}}
        - {{account: wayne, kind: champion_departure, strength: 0.9}}
correlation:
  score_threshold: 1.0
  rules:
    - {{name: sag, title: Usage sagging, severity: high, any_of: [usage_drop]}}
    - {{name: gone, title: Champion gone, severity: high, any_of: [champion_departure]}}
notify:
  console: false
  lease: {lease}
  send_concurrency: 1  # one request in flight: the test says which one
  channels:
    # rto: Apprise's read timeout (4 s by default) never cuts a request the test holds
    team: {{url: "json://127.0.0.1:{port}/hook?rto=300"}}
daemon:
  startup_spread: 0s
  deliver_every: 1s
  leader_check: 1s
"""

#: Three accounts more than the config writer's three: one alert per account, six alerts.
MORE_ACCOUNTS = """\
hooli,Hooli,hooli.example,ann@csm.example,smb,9000,2027-03-15,
umbrella,Umbrella,umbrella.example,bob@csm.example,smb,9000,2027-03-15,
wayne,Wayne,wayne.example,ann@csm.example,smb,9000,2027-03-15,
"""


def six_alerts(make_config, lease: str, port: int, store_url: str | None = None) -> Path:
    path: Path = make_config(SIX_ALERTS.format(lease=lease, port=port), store_url=store_url)
    with (path.parent / "accounts.csv").open("a") as accounts:
        accounts.write(MORE_ACCOUNTS)
    return path


@pytest.mark.slow
def test_kill_9_mid_delivery_then_restart_delivers_the_rest_once(
    store_url: str, make_config, subprocess_env, swanwatch_cmd, tmp_path: Path
) -> None:
    hook = delivery_support.Hook()
    hook.hold()
    # The lease only has to outlast two quick sends before the kill; the restarted daemon
    # waits it out before it sends what the killed one had leased.
    config = six_alerts(make_config, "4s", hook.port, store_url)
    cmd = [*swanwatch_cmd, "run", "-c", str(config)]
    env = {**subprocess_env, "SWANWATCH_LOG_LEVEL": "INFO"}
    store = Store(store_url)
    try:
        with (tmp_path / "first.log").open("w") as log:
            first = subprocess.Popen(
                cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=log
            )
        try:
            hook.wait_for_arrivals(1)
            hook.release()
            hook.wait_for_arrivals(2)
            hook.release()
            # The third request has reached the webhook and waits for its answer: kill now.
            arrived = hook.wait_for_arrivals(3)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=60)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(timeout=60)
        assert len(hook.arrivals) == 3, (tmp_path / "first.log").read_text()
        cut_off = arrived[2].headers["Idempotency-Key"]
        notes = store.notifications()
        assert len(notes) == 6
        sent = {n.idempotency_key for n in notes if n.status == NotificationStatus.SENT}
        assert sent == {r.headers["Idempotency-Key"] for r in arrived[:2]}
        hook.open()  # the cut-off request completes on the server; the rest go straight in

        with (tmp_path / "second.log").open("w") as log:
            second = subprocess.Popen(
                cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=log
            )
        try:
            wait_until(
                lambda: all(n.status == NotificationStatus.SENT for n in store.notifications()),
                "every notification sent after the restart",
            )
            # A clean stop lets a delivery pass under way finish: nothing comes after it.
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=60)
        finally:
            if second.poll() is None:
                second.kill()
                second.wait(timeout=60)
        assert second.returncode == 0, (tmp_path / "second.log").read_text()
        keys = {n.idempotency_key for n in store.notifications()}
    finally:
        hook.close()
        store.close()
    # Nothing lost, and nothing repeated but the request cut off by the kill, same key.
    assert len(keys) == 6 and cut_off in keys
    assert Counter(hook.keys) == {key: 2 if key == cut_off else 1 for key in keys}


async def test_a_batch_slower_than_its_lease_sends_nothing_twice(make_config) -> None:
    """The pass renews its claims as it goes: when the batch has run past its lease, a
    second pass of the same process does nothing (one pass at a time) and another replica
    finds nothing free to take; each notification goes once."""
    hook = delivery_support.Hook()
    hook.hold()
    lease = timedelta(minutes=1)
    config = load_config(six_alerts(make_config, "1m", hook.port))
    clock = FrozenClock("2026-11-20T12:00:00Z")
    store = Store(config.store_url)
    other = Store(config.store_url)
    try:
        async with (
            Engine(config, store, clock) as engine,
            Engine(config, other, clock) as replica,
        ):
            await engine.load_accounts()
            await engine.run_watchers()
            await engine.correlate()
            keys = {n.idempotency_key for n in store.notifications()}
            assert len(keys) == 6
            # One pass claims the six and sends them one by one; each send takes 0.6 of the
            # lease on the frozen clock: less than the lease, but the batch takes longer.
            first = asyncio.create_task(engine.deliver())
            await asyncio.to_thread(hook.wait_for_arrivals, 1)
            clock.advance(lease * 0.6)
            hook.release()
            await asyncio.to_thread(hook.wait_for_arrivals, 2)
            clock.advance(lease * 0.6)
            # 1.2 leases after the claim, while the first pass sends its second: a second
            # pass here, and one on another replica.
            others = asyncio.gather(engine.deliver(), replica.deliver())
            await wait_until_async(
                lambda: others.done() or len(hook.arrivals) > 2,
                "the other delivery passes to finish or to send",
            )
            assert len(hook.arrivals) == 2
            second, elsewhere = await others
            assert (second.tried, elsewhere.tried) == (0, 0)
            hook.open()
            done = await first
    finally:
        hook.close()
        store.close()
        other.close()
    assert done.sent == 6
    assert Counter(hook.keys) == dict.fromkeys(keys, 1)
