"""Alerts reach an Apprise URL: a real local HTTP server as a JSON webhook, down then up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from delivery_support import Hook

from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.engine import Engine
from swanwatch.store import Store


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def _config(make_config, port: int):
    return load_config(
        make_config(
            f"""
watchers:
  - type: static
    options:
      signals:
        - {{account: acme, kind: champion_departure, strength: 0.9}}
        - {{account: acme, kind: usage_drop, strength: 0.9}}
correlation:
  rules:
    - {{name: pair, title: Champion left and usage fell, severity: high,
       all_of: [champion_departure, usage_drop], play: ["CSM: call the buyer."]}}
notify:
  console: false
  channels:
    team: {{url: "json://127.0.0.1:{port}/hook"}}
  retry_backoff: 1m
"""
        )
    )


async def _cycle(config, clock) -> None:
    store = Store(config.store_url)
    try:
        async with Engine(config, store, clock) as engine:
            await engine.cycle()
    finally:
        store.close()


async def test_alert_is_posted_once_as_json(hook: Hook, make_config) -> None:
    config = _config(make_config, hook.port)
    clock = FrozenClock("2026-11-20T12:00:00Z")
    await _cycle(config, clock)
    clock.set("2026-11-20T13:00:00Z")
    await _cycle(config, clock)  # nothing new: nothing sent again
    assert len(hook.received) == 1
    (received,) = hook.received
    message = received.body
    assert message["title"] == "[HIGH] Acme Corp: Champion left and usage fell"
    assert "CSM: call the buyer." in str(message["message"])
    assert "of $120,000 ARR" in str(message["message"])


async def test_a_down_webhook_is_retried_then_delivered_once(hook: Hook, make_config) -> None:
    config = _config(make_config, hook.port)
    clock = FrozenClock("2026-11-20T12:00:00Z")
    hook.fail_with = 503
    await _cycle(config, clock)
    assert hook.received == []
    store = Store(config.store_url)
    (note,) = store.notifications()
    assert note.status == "pending" and note.attempts == 1 and note.last_error
    hook.fail_with = None
    clock.set("2026-11-20T12:00:30Z")  # before the backoff: not yet
    await _cycle(config, clock)
    assert hook.received == []
    clock.set("2026-11-20T12:02:00Z")
    await _cycle(config, clock)
    clock.set("2026-11-20T12:10:00Z")
    await _cycle(config, clock)
    assert len(hook.received) == 1
    (note,) = store.notifications()
    assert note.status == "sent" and note.attempts == 2
    store.close()
