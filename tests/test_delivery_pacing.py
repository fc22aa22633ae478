"""Pacing on a simulated clock: the daily digest at 08:30 and quiet hours in the
recipient's time zone, across daylight-saving changes; critical alerts bypass both;
group_wait batches a burst and group_interval spaces a group's messages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import delivery_support
import pytest

from swanwatch.actions import Acknowledge, AlertActions, Resolve, Snooze
from swanwatch.alerts import RETIRED
from swanwatch.clock import FrozenClock
from swanwatch.config import QuietHours, load_config
from swanwatch.delivery import DeliveryWorker
from swanwatch.delivery.pacing import next_local, quiet_until
from swanwatch.delivery.withdraw import stale
from swanwatch.engine import Engine
from swanwatch.model import (
    Alert,
    AlertNotice,
    AlertState,
    NoticeEvent,
    NotificationStatus,
    Severity,
)
from swanwatch.store import Store

PARIS = ZoneInfo("Europe/Paris")
DAY = timedelta(days=1)


@pytest.fixture
def hook() -> Iterator[object]:
    h = delivery_support.Hook()
    yield h
    h.close()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- the clock arithmetic ------------------------------------------------------------------


def test_next_local_keeps_the_local_time_across_daylight_saving() -> None:
    # Paris: CET (UTC+1) until 2026-03-29 02:00, then CEST (UTC+2); back on 2026-10-25.
    assert next_local(time(8, 30), PARIS, utc("2026-03-28T12:00")) == utc("2026-03-29T06:30")
    assert next_local(time(8, 30), PARIS, utc("2026-03-27T12:00")) == utc("2026-03-28T07:30")
    assert next_local(time(8, 30), PARIS, utc("2026-10-24T12:00")) == utc("2026-10-25T07:30")
    # 02:30 does not exist on the spring-forward day: it falls just after the gap.
    assert next_local(time(2, 30), PARIS, utc("2026-03-28T12:00")) == utc("2026-03-29T01:30")
    # Strictly after: at 08:30 itself, the next one is tomorrow's.
    assert next_local(time(8, 30), PARIS, utc("2026-03-29T06:30")) == utc("2026-03-30T06:30")


def test_quiet_hours_end_at_the_local_time_across_daylight_saving() -> None:
    q = QuietHours(start=time(20), end=time(8))
    assert quiet_until(q, PARIS, utc("2026-10-24T19:30")) == utc("2026-10-25T07:00")
    assert quiet_until(q, PARIS, utc("2026-03-28T19:30")) == utc("2026-03-29T06:00")
    assert quiet_until(q, PARIS, utc("2026-03-28T12:00")) is None
    weekend = QuietHours(start=time(20), end=time(8), weekends=True)
    # Friday 2026-10-23 21:00 local: through the weekend to Monday 08:00 (CET by then).
    assert quiet_until(weekend, PARIS, utc("2026-10-23T19:00")) == utc("2026-10-26T07:00")


# --- end to end through the engine and the outbox ------------------------------------------


def _config(make_config, port: int, signals: str, routing: str):
    return load_config(
        make_config(
            f"""
watchers:
  - type: static
    options:
      signals:
{signals}
correlation:
  score_threshold: 1.0
  rules:
    - {{name: sag, title: Usage sagging, severity: warning, any_of: [usage_drop]}}
    - {{name: pair, title: Champion left and usage fell, severity: high,
       all_of: [champion_departure, usage_drop]}}
    - {{name: fire, title: P1 storm, severity: critical, any_of: [support_spike]}}
notify:
  console: false
  channels:
    team: {{url: "json://127.0.0.1:{port}/hook", timezone: Europe/Paris}}
{routing}
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


PACED = """
  route:
    channels: [team]
    digest: {at: "08:30", max_severity: warning}
    quiet_hours: {start: "20:00", end: "08:00"}
"""


async def test_low_severities_wait_for_the_0830_digest_across_spring_forward(
    hook, make_config
) -> None:
    signals = """
        - {account: acme, kind: usage_drop, strength: 0.9}
        - {account: initech, kind: usage_drop, strength: 0.9}
"""
    config = _config(make_config, hook.port, signals, PACED)
    clock = FrozenClock("2026-03-28T12:00:00Z")  # Saturday, 13:00 in Paris (CET)
    await _cycle(config, clock)
    assert hook.received == []
    store = Store(config.store_url)
    notes = store.notifications()
    assert len(notes) == 2
    # Sunday 08:30 in Paris is 06:30 UTC: summer time began at 02:00 that night.
    assert {n.next_attempt_at for n in notes} == {utc("2026-03-29T06:30")}
    clock.set("2026-03-29T06:29:00Z")
    await _cycle(config, clock)
    assert hook.received == []
    clock.set("2026-03-29T06:30:00Z")
    await _cycle(config, clock)
    (digest,) = hook.received
    assert digest.body["title"] == "[WARNING] Digest: 2 alerts: Acme Corp, Initech"
    assert "Usage sagging" in digest.body["message"]
    assert all(n.status == "sent" for n in store.notifications())
    store.close()


async def test_quiet_hours_hold_until_0800_local_across_fall_back_and_critical_bypasses(
    hook, make_config
) -> None:
    signals = """
        - {account: acme, kind: champion_departure, strength: 0.9}
        - {account: acme, kind: usage_drop, strength: 0.9}
        - {account: initech, kind: usage_drop, strength: 0.9}
        - {account: globex, kind: support_spike, strength: 0.9}
"""
    config = _config(make_config, hook.port, signals, PACED)
    clock = FrozenClock("2026-10-24T19:30:00Z")  # Saturday 21:30 in Paris (CEST)
    await _cycle(config, clock)
    # The critical one went at once, quiet hours or not; the high one waits.
    titles = [r.body["title"] for r in hook.received]
    assert titles == ["[CRITICAL] Globex: P1 storm"]
    store = Store(config.store_url)
    held = [n for n in store.notifications() if n.status == "pending"]
    # The sag (warning) waits for the digest, the pair (high) for the end of quiet hours:
    # 08:00 on Sunday is 07:00 UTC, winter time having begun at 03:00 that night.
    assert {n.title: n.next_attempt_at for n in held} == {
        "[HIGH] Acme Corp: Champion left and usage fell": utc("2026-10-25T07:00"),
        "[WARNING] Initech: Usage sagging": utc("2026-10-25T07:30"),
    }

    def told() -> list[str]:  # the critical one repeats meanwhile (critical_repeat)
        return [r.body["title"] for r in hook.received if "CRITICAL" not in r.body["title"]]

    clock.set("2026-10-25T06:59:00Z")
    await _cycle(config, clock)
    assert told() == []
    clock.set("2026-10-25T07:00:00Z")
    await _cycle(config, clock)
    assert told() == ["[HIGH] Acme Corp: Champion left and usage fell"]
    clock.set("2026-10-25T07:30:00Z")
    await _cycle(config, clock)
    assert told() == [
        "[HIGH] Acme Corp: Champion left and usage fell",
        "[WARNING] Initech: Usage sagging",
    ]
    store.close()


async def test_group_wait_batches_a_burst_and_group_interval_spaces_messages(
    hook, make_config
) -> None:
    routing = """
  route:
    channels: [team]
    group_wait: 5m
    group_interval: 1h
"""
    two = """
        - {account: acme, kind: usage_drop, strength: 0.9}
        - {account: globex, kind: usage_drop, strength: 0.9}
"""
    config = _config(make_config, hook.port, two, routing)
    clock = FrozenClock("2026-06-01T12:00:00Z")
    await _cycle(config, clock)
    assert hook.received == []
    clock.set("2026-06-01T12:05:00Z")
    await _cycle(config, clock)
    (first,) = hook.received
    assert first.body["title"] == "[WARNING] 2 alerts: Acme Corp, Globex"
    # A third account at 12:10: group_wait makes it due 12:15, group_interval holds the
    # group's next message until 13:05.
    three = two + "        - {account: initech, kind: usage_drop, strength: 0.9}\n"
    config = _config(make_config, hook.port, three, routing)
    clock.set("2026-06-01T12:10:00Z")
    await _cycle(config, clock)
    clock.set("2026-06-01T12:15:00Z")
    await _cycle(config, clock)
    assert len(hook.received) == 1
    store = Store(config.store_url)
    (waiting,) = [n for n in store.notifications() if n.status == "pending"]
    assert waiting.next_attempt_at == utc("2026-06-01T13:05")
    clock.set("2026-06-01T13:05:00Z")
    await _cycle(config, clock)
    assert len(hook.received) == 2
    assert hook.received[1].body["title"] == "[WARNING] Initech: Usage sagging"
    store.close()


async def test_an_unacknowledged_critical_alert_repeats_on_a_backoff(hook, make_config) -> None:
    signals = "        - {account: globex, kind: support_spike, strength: 0.9}\n"
    config = _config(
        make_config, hook.port, signals, "  critical_repeat: 1h\n  repeat_interval: 1d\n"
    )
    clock = FrozenClock("2026-06-01T12:00:00Z")
    for hour in range(0, 12):
        clock.set(f"2026-06-01T{12 + hour:02d}:00:00Z")
        await _cycle(config, clock)
    # Told at 12:00, then 1 h, 2 h and 4 h later: 13:00, 15:00, 19:00 (next would be 03:00).
    sent = [r.body["title"] for r in hook.received]
    assert sent == [
        "[CRITICAL] Globex: P1 storm",
        "[CRITICAL] still open: Globex: P1 storm",
        "[CRITICAL] still open: Globex: P1 storm",
        "[CRITICAL] still open: Globex: P1 storm",
    ]


@pytest.mark.parametrize("action", ["resolve", "acknowledge", "snooze", "none"])
async def test_a_notice_held_over_quiet_hours_is_withdrawn_once_a_person_acted(
    hook, make_config, action: str
) -> None:
    """The alert fires at 19:30 into quiet hours (held to 07:00); at 22:00 someone resolves,
    acknowledges or snoozes it. At 07:00 the team is not told what a person already took
    in hand: the notice is withdrawn, and says why. Untouched, it goes out at 07:00."""
    signals = """
        - {account: acme, kind: champion_departure, strength: 0.9}
        - {account: acme, kind: usage_drop, strength: 0.9}
"""
    config = _config(make_config, hook.port, signals, PACED)
    clock = FrozenClock("2026-10-24T19:30:00Z")
    await _cycle(config, clock)
    assert hook.received == []
    store = Store(config.store_url)
    try:
        (alert,) = store.alerts()
        clock.set("2026-10-24T22:00:00Z")
        acts: dict[str, Acknowledge | Resolve | Snooze] = {
            "resolve": Resolve(),
            "acknowledge": Acknowledge(),
            "snooze": Snooze(DAY),
        }
        if action in acts:
            AlertActions(store, clock).act(alert.fingerprint, acts[action], by="ann")
        clock.set("2026-10-25T07:00:00Z")
        stats = await DeliveryWorker(config, store, clock).drain()
        (note,) = store.notifications()
    finally:
        store.close()
    if action == "none":
        assert (stats.sent, note.status) == (1, NotificationStatus.SENT)
        assert [r.body["title"] for r in hook.received] == [note.title]
        return
    assert hook.received == [] and (stats.sent, stats.withdrawn) == (0, 1)
    assert note.status == NotificationStatus.WITHDRAWN
    assert note.last_error is not None and "by ann" in note.last_error


def test_what_makes_a_queued_notice_stale_and_what_does_not() -> None:
    at = utc("2026-10-24T19:30")
    told = Alert(fingerprint="f", account_id="acme", rule="pair", title="t",
                 severity=Severity.HIGH, score=0.9, started_at=at, updated_at=at)  # fmt: skip

    def notice(event: NoticeEvent, alert: Alert = told) -> AlertNotice:
        return AlertNotice(alert=alert, event=event, label="Acme", who="channel:team")

    def now(**changes: object) -> Alert:
        return told.model_copy(update={"updated_at": utc("2026-10-24T22:00"), **changes})

    firing = notice(NoticeEvent.FIRING)
    assert stale(firing, now()) is None  # still firing as told
    assert stale(firing, now(score=0.95, severity=Severity.CRITICAL)) is None  # news later
    assert "episode 1 ended (now 2)" in (stale(firing, now(episode=2)) or "")
    assert stale(firing, None) is None  # not on record: nothing says it is stale
    assert "muted (silence 3)" in (stale(firing, now(muted_by="silence 3")) or "")
    resolved = now(state=AlertState.RESOLVED, acted_by=RETIRED)
    assert stale(firing, resolved) == (
        "withdrawn: the alert was resolved at 2026-10-24 22:00 UTC, before this was sent"
    )
    assert stale(notice(NoticeEvent.RESOLVED, resolved), resolved) is None  # told whatever
    # A repeat of an alert acknowledged when it was told: the acknowledgement is not news.
    acked = now(state=AlertState.ACKNOWLEDGED, acted_by="ack:ann")
    assert stale(notice(NoticeEvent.REPEAT, acked), acked) is None
    assert "acknowledged by ann" in (stale(notice(NoticeEvent.REPEAT), acked) or "")
