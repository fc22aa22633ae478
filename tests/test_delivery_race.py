"""Property: two delivery workers on one store (SQLite and PostgreSQL), each with its own
connections, passing at the same moments, against a receiver that answers, fails, or
answers only after the client gave up, with senders that die holding claims: every
notification ends sent, and no request reaches the receiver that is not recorded as a try
of its notification (a race between the workers would send one that is not)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from itertools import count

import delivery_support
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swanwatch.clock import FrozenClock
from swanwatch.config import Config, parse_config
from swanwatch.delivery import DeliveryWorker, outbox_entries
from swanwatch.model import NotificationStatus
from swanwatch.store import Store

#: What the receiver does during a step in which both workers pass together.
ANSWERS = st.sampled_from(["ok", "fail", "late"])
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("decide"), st.integers(1, 3)),
        st.tuples(st.just("deliver"), ANSWERS),
        st.tuples(st.just("die_after_lease"), st.just(0)),
        st.tuples(st.just("wait"), st.integers(1, 120)),
    ),
    max_size=12,
)
EXAMPLES = count()


@pytest.fixture(scope="module")
def hook() -> Iterator[delivery_support.Hook]:
    h = delivery_support.Hook()
    yield h
    h.close()


def _config(store_url: str, port: int) -> Config:
    return parse_config(
        f"""
store: {{url: "{store_url}"}}
sources: {{accounts: {{type: csv, options: {{path: accounts.csv}}}}}}
accounts: {{source: accounts}}
notify:
  console: false
  lease: 30s
  retry_backoff: 10s
  retry_backoff_max: 1m
  max_attempts: 100
  channels:
    # rto: a held ("late") request is given up by the client after half a second
    hook: {{url: "json://127.0.0.1:{port}/hook?rto=0.5"}}
""",
        check_plugins=False,
    )


def test_two_workers_on_one_store_send_nothing_unrecorded(
    store: Store, store_url: str, hook: delivery_support.Hook
) -> None:
    config = _config(store_url, hook.port)
    other = Store(store_url)
    try:

        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
        @given(steps=STEPS)
        def check(steps: list[tuple[str, object]]) -> None:
            asyncio.run(_run(config, store, other, hook, steps, f"x{next(EXAMPLES)}-"))

        check()
    finally:
        other.close()


async def _deliver(
    hook: delivery_support.Hook, workers: list[DeliveryWorker], answer: object
) -> None:
    hook.fail_with = 503 if answer == "fail" else None
    if answer == "late":
        hook.hold()
    try:
        await asyncio.gather(*(w.run_once() for w in workers))
    finally:
        hook.open()  # the late requests are answered now, to nobody
        await asyncio.to_thread(hook.wait_settled, len(hook.arrivals))
        hook.fail_with = None


async def _run(
    config: Config,
    store: Store,
    other: Store,
    hook: delivery_support.Hook,
    steps: list[tuple[str, object]],
    prefix: str,
) -> None:
    clock = FrozenClock("2026-06-01T12:00:00Z")
    workers = [DeliveryWorker(config, s, clock) for s in (store, other)]
    decided = 0
    for step, arg in steps:
        if step == "decide":
            notices = [
                delivery_support.notice(
                    f"acct{decided + i}", clock, fingerprint=f"{prefix}a{decided + i}"
                )
                for i in range(int(str(arg)))
            ]
            store.save_alerts([], outbox_entries(notices, config, clock.now()))
            decided += len(notices)
        elif step == "deliver":
            await _deliver(hook, workers, arg)
        elif step == "die_after_lease":
            store.claim_outbox(clock.now(), "doomed", timedelta(seconds=30), 2)
        else:
            clock.advance(timedelta(seconds=int(str(arg))))
    for _ in range(4):  # then the receiver answers and time passes: everything goes
        clock.advance(timedelta(minutes=2))
        await _deliver(hook, workers, "ok")
    notes = [n for n in store.notifications(limit=10_000) if n.alert_fingerprint.startswith(prefix)]
    assert len(notes) == decided
    assert all(n.status == NotificationStatus.SENT for n in notes)
    with hook.lock:
        arrived = Counter(r.headers.get("Idempotency-Key", "") for r in hook.arrivals)
    for note in notes:
        assert 1 <= arrived[note.idempotency_key] <= note.attempts, note
