"""The daemon's HTTP endpoint, served for real on 127.0.0.1: signed action links shown on
GET, carried out on POST; forged, expired and stale links refused."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from swanwatch.actions import AlertActions, Resolve
from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.delivery.links import LinkClaim, action_links, make_token
from swanwatch.engine import Engine
from swanwatch.model import AlertState, Verdict
from swanwatch.server import HttpServer
from swanwatch.store import Store

SECRET = "s3cret-for-tests"


@pytest.fixture
async def served(make_config):
    config = load_config(
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
       all_of: [champion_departure, usage_drop]}}
notify:
  console: false
  base_url: http://127.0.0.1:1
  link_secret: {SECRET}
server:
  listen: "127.0.0.1:0"
"""
        )
    )
    clock = FrozenClock("2026-11-20T12:00:00Z")
    store = Store(config.store_url)
    async with Engine(config, store, clock) as engine:
        await engine.cycle()
    server = HttpServer(config, store, clock, "127.0.0.1", 0)
    await server.start()
    (alert,) = store.alerts()
    base = f"http://127.0.0.1:{server.port}"
    links = action_links(
        base,
        SECRET.encode(),
        fingerprint=alert.fingerprint,
        episode=alert.episode,
        who="ann@csm.example",
        now=clock.now(),
        ttl=timedelta(days=7),
    )
    async with httpx.AsyncClient() as client:
        yield client, links, store, clock, alert, base
    await server.stop()
    store.close()


async def test_health(served) -> None:
    client, *_rest, base = served
    response = await client.get(f"{base}/healthz")
    assert response.status_code == 200 and response.text == "ok\n"


async def test_get_only_asks_and_post_acknowledges(served) -> None:
    client, links, store, _clock, alert, _base = served
    page = await client.get(links["ack"])
    assert page.status_code == 200
    assert "Champion left and usage fell" in page.text and "<form method='post'>" in page.text
    assert store.alert(alert.fingerprint).state == AlertState.FIRING  # a preview does nothing
    done = await client.post(links["ack"])
    assert done.status_code == 200 and "acknowledged" in done.text
    acked = store.alert(alert.fingerprint)
    assert acked.state == AlertState.ACKNOWLEDGED
    assert acked.acted_by == "ack:link:ann@csm.example"


async def test_snooze_for_the_chosen_days_and_mark_noise(served) -> None:
    client, links, store, clock, alert, _base = served
    done = await client.post(links["snooze"], data={"days": "3"})
    assert done.status_code == 200
    snoozed = store.alert(alert.fingerprint)
    assert snoozed.state == AlertState.SNOOZED
    assert snoozed.snoozed_until == clock.now() + timedelta(days=3)
    assert (await client.post(links["noise"])).status_code == 200
    assert "already" in (await client.post(links["noise"])).text
    (feedback,) = store.feedback()
    assert feedback.verdict == Verdict.NOISE and feedback.author == "link:ann@csm.example"
    assert feedback.episode == alert.episode


async def test_forged_expired_and_stale_links_are_refused(served) -> None:
    client, links, store, clock, alert, base = served
    forged = links["ack"][:-3] + ("AAA" if not links["ack"].endswith("AAA") else "BBB")
    assert (await client.post(forged)).status_code == 410
    other_key = make_token(
        b"another secret",
        LinkClaim("ack", alert.fingerprint, alert.episode, "eve", clock.now() + timedelta(1)),
    )
    assert (await client.post(f"{base}/a/{other_key}")).status_code == 410
    stale = make_token(
        SECRET.encode(),
        LinkClaim("ack", alert.fingerprint, alert.episode + 1, "ann", clock.now() + timedelta(1)),
    )
    response = await client.post(f"{base}/a/{stale}")
    assert response.status_code == 410 and "another episode" in response.text
    clock.advance(timedelta(days=8))
    expired = await client.get(links["ack"])
    assert expired.status_code == 410 and "expired" in expired.text
    assert store.alert(alert.fingerprint).state == AlertState.FIRING


async def test_refused_actions_say_why_and_change_nothing(served) -> None:
    client, links, store, clock, alert, base = served
    for days, why in (("soon", "not a number"), ("45", "between 1 and 30 days")):
        refused = await client.post(links["snooze"], data={"days": days})
        assert refused.status_code == 409 and why in refused.text
    assert store.alert(alert.fingerprint).state == AlertState.FIRING
    AlertActions(store, clock).act(alert.fingerprint, Resolve(), by="bob")
    closed = await client.post(links["ack"])
    assert closed.status_code == 409 and "already resolved" in closed.text
    assert store.alert(alert.fingerprint).acted_by == "resolve:bob"
    nowhere = make_token(
        SECRET.encode(), LinkClaim("ack", "f" * 32, 1, "ann", clock.now() + timedelta(1))
    )
    gone = await client.post(f"{base}/a/{nowhere}")
    assert gone.status_code == 410 and "no longer exists" in gone.text
