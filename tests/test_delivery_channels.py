"""Delivery to real local servers: e-mail to an aiosmtpd server (headers, HTML and text
parts), a JSON webhook down then up (retries, then once, with its Idempotency-Key), a
fallback channel taking over, and an owner's own mailbox from the account data."""

from __future__ import annotations

from collections.abc import Iterator

import delivery_support
import pytest

from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.engine import Engine
from swanwatch.store import Store


@pytest.fixture
def mailbox() -> Iterator[object]:
    box = delivery_support.Mailbox()
    yield box
    box.close()


@pytest.fixture
def hook() -> Iterator[object]:
    h = delivery_support.Hook()
    yield h
    h.close()


SIGNALS = """
watchers:
  - type: static
    options:
      signals:
        - {account: acme, kind: champion_departure, strength: 0.9}
        - {account: acme, kind: usage_drop, strength: 0.9}
correlation:
  rules:
    - {name: pair, title: Champion left and usage fell, severity: high,
       all_of: [champion_departure, usage_drop], play: ["CSM: call the buyer."]}
"""


async def _cycle(config, clock) -> None:
    store = Store(config.store_url)
    try:
        async with Engine(config, store, clock) as engine:
            await engine.cycle()
    finally:
        store.close()


async def test_email_has_headers_an_html_part_and_a_text_part(mailbox, make_config) -> None:
    port = mailbox.port
    config = load_config(
        make_config(
            SIGNALS
            + f"""
notify:
  console: false
  base_url: https://swanwatch.example.com/
  link_secret: s3cret-for-tests-0123
  channels:
    mail:
      url: "mailto://127.0.0.1:{port}?from=swanwatch@example.com&to=cs-leads@example.com&name=Swanwatch"
"""
        )
    )
    await _cycle(config, FrozenClock("2026-11-20T12:00:00Z"))
    (sender, rcpts, message) = mailbox.messages[0]
    assert len(mailbox.messages) == 1
    assert sender == "swanwatch@example.com" and rcpts == ["cs-leads@example.com"]
    assert message["Subject"] == "[HIGH] Acme Corp: Champion left and usage fell"
    assert message["From"] == "Swanwatch <swanwatch@example.com>"
    assert message["To"] == "cs-leads@example.com"
    assert message["Date"] and message["Message-ID"]
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert "<li>CSM: call the buyer.</li>" in html
    assert "ARR at risk (of $120,000 ARR)" in html and "renewal 2027-01-10" in html
    assert 'href="https://swanwatch.example.com/a/' in html
    assert "CSM: call the buyer." in text and "of $120,000 ARR" in text
    assert "<" not in text.replace("<https", "")  # no markup in the text part
    assert "acknowledge https://swanwatch.example.com/a/" in text  # the links, readable


async def test_owner_gets_the_alert_in_their_own_mailbox(mailbox, make_config) -> None:
    port = mailbox.port
    config = load_config(
        make_config(
            SIGNALS
            + f"""
notify:
  console: false
  channels:
    team: {{url: "json://127.0.0.1:9/never"}}
  owners:
    url_template: "mailto://127.0.0.1:{port}?from=swanwatch@example.com&to={{owner}}"
  route:
    channels: [team]
    routes:
      - match: {{segment: enterprise}}
        owner: true
"""
        )
    )
    await _cycle(config, FrozenClock("2026-11-20T12:00:00Z"))
    ((_, rcpts, message),) = mailbox.messages
    assert rcpts == ["ann@csm.example"]  # acme's owner, from the accounts source
    assert "Champion left and usage fell" in message["Subject"]


async def test_a_down_webhook_is_retried_then_delivered_once_with_its_key(
    hook, make_config
) -> None:
    config = load_config(
        make_config(
            SIGNALS
            + f"""
notify:
  console: false
  channels:
    team: {{url: "json://127.0.0.1:{hook.port}/hook"}}
  retry_backoff: 1m
"""
        )
    )
    clock = FrozenClock("2026-11-20T12:00:00Z")
    hook.fail_with = 503
    await _cycle(config, clock)
    for minute in (2, 6):  # two more failed tries, on the backoff: 1 m, then 2 m
        clock.set(f"2026-11-20T12:{minute:02d}:00Z")
        await _cycle(config, clock)
    assert hook.received == []
    store = Store(config.store_url)
    (note,) = store.notifications()
    assert note.status == "pending" and note.attempts == 3
    assert "503" in (note.last_error or "")
    hook.fail_with = None
    clock.set("2026-11-20T12:20:00Z")
    await _cycle(config, clock)
    clock.set("2026-11-20T13:00:00Z")
    await _cycle(config, clock)
    assert len(hook.received) == 1
    assert hook.keys == [note.idempotency_key]
    (note,) = store.notifications()
    assert note.status == "sent" and note.attempts == 4
    store.close()


async def test_the_fallback_channel_takes_over_when_a_channel_keeps_failing(
    hook, make_config
) -> None:
    backup = delivery_support.Hook()
    try:
        config = load_config(
            make_config(
                SIGNALS
                + f"""
notify:
  console: false
  channels:
    slack-ish: {{url: "json://127.0.0.1:{hook.port}/hook"}}
    backup: {{url: "json://127.0.0.1:{backup.port}/hook"}}
  route:
    channels: [slack-ish]
    fallback: backup
  fallback_after: 2
  retry_backoff: 1m
"""
            )
        )
        clock = FrozenClock("2026-11-20T12:00:00Z")
        hook.fail_with = 500
        await _cycle(config, clock)
        assert backup.received == []
        clock.set("2026-11-20T12:01:00Z")
        await _cycle(config, clock)  # second failure: handed to the fallback, sent there
        assert len(backup.received) == 1
        assert backup.received[0].body["title"].startswith("[HIGH] Acme Corp")
        store = Store(config.store_url)
        notes = {n.channel: n for n in store.notifications()}
        assert notes["slack-ish"].status == "dead"
        assert "failed over to backup" in (notes["slack-ish"].last_error or "")
        assert notes["backup"].status == "sent"
        store.close()
        hook.fail_with = None
        clock.set("2026-11-20T14:00:00Z")
        await _cycle(config, clock)
        assert hook.received == [] and len(backup.received) == 1
    finally:
        backup.close()


async def test_a_template_that_cannot_render_is_a_failed_try_then_sent_once_fixed(
    hook, make_config, tmp_path
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    broken = templates / "alert.md.j2"
    broken.write_text("{{ alert.title }} {{ no_such_thing.at_all }}\n")
    config = load_config(
        make_config(
            SIGNALS
            + f"""
notify:
  console: false
  templates_dir: templates
  retry_backoff: 1m
  channels:
    team: {{url: "json://127.0.0.1:{hook.port}/hook"}}
"""
        )
    )
    clock = FrozenClock("2026-11-20T12:00:00Z")
    await _cycle(config, clock)  # the pass goes on; the notification waits for its retry
    assert hook.received == []
    store = Store(config.store_url)
    (note,) = store.notifications()
    assert note.status == "pending" and note.attempts == 1
    assert "cannot render" in (note.last_error or "") and "no_such_thing" in (note.last_error or "")
    broken.write_text("fixed: {{ alert.title }}\n")
    clock.set("2026-11-20T12:01:00Z")
    await _cycle(config, clock)
    (got,) = hook.received
    assert got.body["message"] == "fixed: Champion left and usage fell"
    assert store.notifications()[0].status == "sent"
    store.close()
