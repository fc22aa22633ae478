"""Property: whatever the interleaving of re-enqueued decisions, failed sends, senders that
die after leasing and senders that die after sending but before recording, every
notification is stored once per idempotency key and reaches the receiver, and a key
reaches it twice only when a sender died between sending it and recording it."""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from datetime import timedelta

import delivery_support
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swanwatch.alerts import Notice
from swanwatch.clock import FrozenClock
from swanwatch.config import parse_config
from swanwatch.delivery import DeliveryWorker, outbox_entries
from swanwatch.model import Alert, NoticeEvent, Severity
from swanwatch.store import Store

HOOK = delivery_support.Hook()  # one receiver for every example; keys are unique per example

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("decide"), st.integers(0, 4)),
        st.tuples(st.just("deliver"), st.booleans()),  # receiver up or down
        st.tuples(st.just("die_after_lease"), st.just(0)),
        st.tuples(st.just("die_after_send"), st.just(0)),
        st.tuples(st.just("wait"), st.integers(1, 600)),
    ),
    max_size=25,
)


def _notice(example: int, i: int, clock: FrozenClock) -> Notice:
    alert = Alert(
        fingerprint=f"x{example}-a{i}",
        account_id=f"acct{i}",
        rule="r",
        title=f"Alert {i}",
        severity=Severity.HIGH,
        score=0.7,
        started_at=clock.now(),
        updated_at=clock.now(),
        notify_count=1,
    )
    return Notice(alert=alert, event=NoticeEvent.FIRING)


COUNTER = iter(range(10**9))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_each_key_stored_once_and_delivered_despite_crashes(ops) -> None:
    asyncio.run(_run(ops, next(COUNTER)))


async def _run(ops, example: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(
            f"""
store: {{url: "sqlite:///{tmp}/sw.db"}}
sources: {{accounts: {{type: csv, options: {{path: accounts.csv}}}}}}
accounts: {{source: accounts}}
notify:
  console: false
  lease: 30s
  retry_backoff: 10s
  retry_backoff_max: 1m
  max_attempts: 100
  channels:
    hook: {{url: "json://127.0.0.1:{HOOK.port}/hook"}}
""",
            check_plugins=False,
        )
        clock = FrozenClock("2026-06-01T12:00:00Z")
        store = Store(config.store_url)
        worker = DeliveryWorker(config, store, clock)
        decided: set[str] = set()
        died_after_send: Counter[str] = Counter()
        try:
            for op, arg in ops:
                if op == "decide":
                    entries = outbox_entries([_notice(example, arg, clock)], config, clock.now())
                    store.save_alerts([], entries)
                    decided.update(e.idempotency_key for e in entries)
                elif op == "deliver":
                    HOOK.fail_with = None if arg else 503
                    await worker.run_once()
                elif op == "die_after_lease":
                    store.claim_outbox(clock.now(), "doomed", timedelta(seconds=30), 2)
                elif op == "die_after_send":
                    HOOK.fail_with = None
                    for note in store.claim_outbox(clock.now(), "doomed", timedelta(seconds=30), 1):
                        message = worker.compose(note.channel, [note], clock.now())
                        result = await worker.notifier(note.channel).send(message)
                        if result.ok:
                            died_after_send[note.idempotency_key] += 1
                else:
                    clock.advance(timedelta(seconds=arg))
            # Then the receiver is up and time passes: everything must arrive.
            HOOK.fail_with = None
            for _ in range(5):
                clock.advance(timedelta(minutes=2))
                await worker.run_once()
            notes = store.notifications(limit=1000)
        finally:
            store.close()
        keys = [n.idempotency_key for n in notes]
        assert len(keys) == len(set(keys)) == len(decided)
        assert all(n.status == "sent" for n in notes)
        prefix = f"x{example}-"
        got = Counter(k for k in HOOK.keys if k.startswith(prefix))
        assert set(got) == decided
        for key, n in got.items():
            assert n <= 1 + died_after_send[key], (key, n)
