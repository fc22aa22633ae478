"""Ordinary faults of a receiver, against real local servers, on the frozen clock: each
failed try is visible (the outbox, the CLI, /metrics, the log, all naming the channel)
and retried later, never dropped; a receiver that trickles its answer for ever is cut off
and retried, not waited for; a request answered after the client gave up goes again with
its Idempotency-Key; an SMTP server that hangs up after accepting a message gets it once.

Nothing here waits on a timer: a receiver holds or trickles until the test says, and the
client's own read timeout or deadline ends a try.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import delivery_support
import pytest
from aiosmtpd.controller import Controller
from waiting import DEADLINE_S

from swanwatch.clock import FrozenClock
from swanwatch.config import Config, load_config
from swanwatch.delivery import DeliveryWorker, outbox_entries
from swanwatch.metrics import Metrics
from swanwatch.model import Notification, NotificationStatus
from swanwatch.store import Store

CONFIG = """
notify:
  console: false
  retry_backoff: 1m
  channels:
    team: {{url: "{url}"{options}}}
"""


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock("2026-11-20T12:00:00Z")


@pytest.fixture
def outbox(make_config, clock: FrozenClock) -> Iterator[Any]:
    """``outbox(url, options="")``: the config of one channel ``team`` at ``url`` and its
    store, with one alert's notification queued for it, due now."""
    stores: list[Store] = []

    def queue(url: str, options: str = "") -> tuple[Config, Store, Path]:
        path = make_config(CONFIG.format(url=url, options=options))
        config = load_config(path)
        store = Store(config.store_url)
        stores.append(store)
        store.save_alerts(
            [], outbox_entries([delivery_support.notice("a1", clock)], config, clock.now())
        )
        return config, store, path

    yield queue
    for store in stores:
        store.close()


def only(store: Store) -> Notification:
    (note,) = store.notifications()
    return note


async def test_a_receiver_that_trickles_its_answer_is_cut_off_and_retried(
    outbox, clock: FrozenClock
) -> None:
    """The receiver answers 200 and then its body a byte at a time: Apprise's read timeout
    never fires (and Apprise before 2.0 has no deadline of its own: the pass, its claims
    and every send behind it waited for ever). The send is given up at the channel's
    ``timeout_s``, a failed try like any other (the pass ends, the claim is settled); once
    the receiver answers, the retry gets through with the same key."""
    receiver = delivery_support.Trickle()
    receiver.trickling.set()
    try:
        config, store, _ = outbox(
            f"json://127.0.0.1:{receiver.port}/hook", options=", options: {timeout_s: 1}"
        )
        worker = DeliveryWorker(config, store, clock)
        stats = await asyncio.wait_for(worker.drain(), DEADLINE_S)
        note = only(store)
        assert (stats.retried, note.status, note.attempts) == (1, "pending", 1)
        assert note.lease_owner is None  # settled: free for the retry
        assert "channel team" in (note.last_error or "")
        receiver.trickling.clear()
        clock.advance(timedelta(minutes=1))
        stats = await asyncio.wait_for(worker.drain(), DEADLINE_S)
    finally:
        receiver.close()
    assert stats.sent == 1 and only(store).status == NotificationStatus.SENT
    assert receiver.keys == [note.idempotency_key] * 2


async def test_an_answer_after_the_client_gave_up_is_sent_again_with_its_key(
    outbox, clock: FrozenClock
) -> None:
    """The classic duplicate: the receiver takes the request and answers only after the
    client's read timeout (``rto``). The client cannot know it got through: the try
    failed, and the retry carries the same Idempotency-Key for the receiver to drop."""
    hook = delivery_support.Hook()
    hook.hold()
    try:
        config, store, _ = outbox(f"json://127.0.0.1:{hook.port}/hook?rto=1")
        worker = DeliveryWorker(config, store, clock)
        stats = await worker.drain()
        assert stats.retried == 1 and only(store).status == NotificationStatus.PENDING
        hook.open()  # the held request is answered now, to nobody
        await asyncio.to_thread(hook.wait_settled, 1)
        clock.advance(timedelta(minutes=1))
        stats = await worker.drain()
    finally:
        hook.close()
    note = only(store)
    assert stats.sent == 1 and (note.status, note.attempts) == ("sent", 2)
    assert hook.keys == [note.idempotency_key] * 2


async def test_a_receiver_slower_than_apprises_own_timeout_is_told_once(
    outbox, clock: FrozenClock
) -> None:
    """A chat service that takes 5 s to answer (Apprise gives up after 4 s by default, and
    Power Automate's workflows often take that long) gets the message once: the send waits
    for the answer, as long as the channel's ``timeout_s`` (30 s) allows."""
    hook = delivery_support.Hook()
    hook.answer_after_s = 5.0
    try:
        config, store, _ = outbox(f"json://127.0.0.1:{hook.port}/hook")
        stats = await DeliveryWorker(config, store, clock).drain()
    finally:
        hook.close()
    note = only(store)
    assert stats.sent == 1 and (note.status, note.attempts) == ("sent", 1)
    assert hook.keys == [note.idempotency_key]


FAULTS = {
    "refused": "json://127.0.0.1:{free}/hook",
    "tls handshake": "jsons://127.0.0.1:{port}/hook",
    "500": "json://127.0.0.1:{port}/hook",
    "429": "json://127.0.0.1:{port}/hook",
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_a_failing_channel_is_visible_and_retried_later(
    fault: str, outbox, clock: FrozenClock, run_cli, caplog: pytest.LogCaptureFixture
) -> None:
    """Connection refused, a TLS handshake that fails, 500, 429: a failed try, retried on
    the backoff, not dead. The operator sees it: `swanwatch outbox list` (tries, next try,
    the error naming the channel), /metrics (failures by channel) and a warning naming the
    channel. Once the receiver is back (a TLS endpoint never is here), it is sent once."""
    hook = delivery_support.Hook()
    hook.fail_with = int(fault) if fault.isdigit() else None
    try:
        free = delivery_support.free_port()
        config, store, path = outbox(FAULTS[fault].format(free=free, port=hook.port))
        metrics = Metrics()
        worker = DeliveryWorker(config, store, clock, metrics)
        with caplog.at_level(logging.WARNING, logger="swanwatch.delivery"):
            stats = await worker.drain()
        assert stats.retried == 1
        assert any("to team failed" in r.getMessage() for r in caplog.records)
        failures = {"channel": "team"}
        assert metrics.registry.get_sample_value("swanwatch_delivery_failures_total", failures)
        listed = run_cli("outbox", "list", "-c", str(path), "--json")
        (shown,) = json.loads(listed.stdout)
        assert (shown["status"], shown["channel"], shown["attempts"]) == ("pending", "team", 1)
        assert shown["next_attempt_at"] == "2026-11-20T12:01:00Z"
        assert "channel team" in shown["last_error"]
        if fault == "refused":
            hook.close()
            hook = delivery_support.Hook(free)
        hook.fail_with = None
        clock.advance(timedelta(minutes=1))
        stats = await worker.drain()
    finally:
        hook.close()
    note = only(store)
    if fault == "tls handshake":
        assert (stats.retried, note.status, hook.received) == (1, "pending", [])
    else:
        assert stats.sent == 1 and note.status == NotificationStatus.SENT
        assert hook.keys == [note.idempotency_key]


class HangUpSmtp:
    """An aiosmtpd server that hangs up on each message: ``after`` its 250 (accepted), or
    before it (the client cannot know), the first time only."""

    def __init__(self, after: bool) -> None:
        self.recipients: list[list[str]] = []
        box = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                box.recipients.append(list(envelope.rcpt_tos))
                if after:
                    asyncio.get_running_loop().call_soon(server.transport.close)
                elif len(box.recipients) == 1:
                    server.transport.abort()
                return "250 OK"

        self.port = delivery_support.free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


@pytest.mark.parametrize("after", [True, False], ids=["after 250", "before 250"])
async def test_an_smtp_server_that_hangs_up_after_data(
    after: bool, outbox, clock: FrozenClock
) -> None:
    """Hung up after it accepted the message (250): sent, once, nothing retried. Hung up
    before answering: a failed try, retried, and the message arrives (e-mail carries no
    key a receiver could drop the repeat by: the ambiguity is the protocol's)."""
    smtp = HangUpSmtp(after)
    try:
        config, store, _ = outbox(
            f"mailto://127.0.0.1:{smtp.port}?from=sw@example.com&to=cs@example.com"
        )
        worker = DeliveryWorker(config, store, clock)
        first = await worker.drain()
        clock.advance(timedelta(minutes=5))
        later = await worker.drain()
    finally:
        smtp.close()
    assert only(store).status == NotificationStatus.SENT
    if after:
        assert (first.sent, later.tried, smtp.recipients) == (1, 0, [["cs@example.com"]])
    else:
        assert (first.retried, later.sent) == (1, 1)
        assert smtp.recipients == [["cs@example.com"]] * 2
