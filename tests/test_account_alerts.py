"""One alert per account, on a real store through the engine: rules that hold together are
its reasons, an update is told only when severity rises, and an acknowledgement holds while
a lesser rule joins."""

from __future__ import annotations

from pathlib import Path

from swanwatch.actions import Acknowledge, AlertActions
from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.delivery.render import Part, Renderer
from swanwatch.engine import Engine
from swanwatch.model import Alert, AlertNotice, AlertState, NoticeEvent, Severity
from swanwatch.store import Store

RULES = """
correlation:
  rules:
    - name: pair
      title: Champion left and usage is falling
      severity: high
      all_of: [champion_departure, usage_drop]
      play: ["CSM: call the economic buyer this week."]
    - name: sagging
      title: Usage sagging
      severity: warning
      any_of: [usage_drop]
      play: ["CSM: book the usage review."]
    - name: tickets
      title: Support tickets piling up
      severity: warning
      any_of: [support_spike]
      play: ["Support lead: close the oldest tickets first."]
notify:
  console: true
"""


def _config(make_config, store_url: str, *signals: str) -> Path:
    listed = "".join(f"        - {s}\n" for s in signals)
    body = "watchers:\n  - type: static\n    options:\n      signals:\n" + listed + RULES
    path: Path = make_config(body, store_url=store_url)
    return path


async def _cycle(path: Path, store: Store, now: str) -> None:
    async with Engine(load_config(path), store, FrozenClock(now)) as engine:
        await engine.cycle()


def _open(store: Store, account: str) -> list[Alert]:
    return store.alerts(open_only=True, account_id=account)


def _told(store: Store) -> list[tuple[str, str]]:
    told = sorted(store.notifications(), key=lambda n: n.created_at)
    return [(n.account_id, str(n.event)) for n in told if n.account_id]


USAGE = "{account: acme, kind: usage_drop, strength: 0.8, key: reports}"
CHAMPION = "{account: acme, kind: champion_departure, strength: 0.9, key: priya}"
TICKETS = "{account: acme, kind: support_spike, strength: 0.7, key: volume}"


async def test_an_account_matching_two_rules_has_one_open_alert_with_both_reasons(
    store_url, make_config
) -> None:
    store = Store(store_url)
    try:
        await _cycle(_config(make_config, store_url, USAGE, CHAMPION), store, "2026-11-20T12:00Z")
        (alert,) = _open(store, "acme")
        assert alert.title == "Champion left and usage is falling"  # the most severe names it
        assert alert.severity == Severity.HIGH
        assert [(r.rule, r.severity) for r in alert.reasons] == [
            ("pair", Severity.HIGH),
            ("sagging", Severity.WARNING),
        ]
        # Both rules' plays, each once; the usage line once though both rules rest on it.
        assert alert.play == (
            "CSM: call the economic buyer this week.",
            "CSM: book the usage review.",
        )
        assert sum("usage_drop on acme" in w for w in alert.why_now) == 1
        assert _told(store) == [("acme", "firing")]  # one message for the account
    finally:
        store.close()


async def test_raising_the_severity_re_sends_once_with_whats_new_first(
    store_url, make_config
) -> None:
    store = Store(store_url)
    try:
        await _cycle(_config(make_config, store_url, USAGE), store, "2026-11-20T12:00Z")
        assert _told(store) == [("acme", "firing")]
        (first,) = _open(store, "acme")
        assert (first.rule, first.severity) == ("sagging", Severity.WARNING)
        # The champion leaves: the pair rule joins and names the alert, now HIGH.
        both = _config(make_config, store_url, USAGE, CHAMPION)
        await _cycle(both, store, "2026-11-20T13:00Z")
        await _cycle(both, store, "2026-11-20T14:00Z")
        await _cycle(both, store, "2026-11-21T09:00Z")
        assert _told(store) == [("acme", "firing"), ("acme", "escalated")]
        (alert,) = _open(store, "acme")
        assert alert.fingerprint == first.fingerprint and alert.episode == 1
        assert (alert.rule, alert.severity) == ("pair", Severity.HIGH)
        escalated = [n for n in store.notifications() if n.event == NoticeEvent.ESCALATED]
        notice = escalated[0].payload
        assert isinstance(notice, AlertNotice)
        assert notice.whats_new == (
            "Severity rose to HIGH (was WARNING).",
            "New reason: Champion left and usage is falling (high).",
            "New signal: champion_departure on acme.",
        )
        part = Part(notice.alert, notice.event, notice.label, whats_new=notice.whats_new)
        title, body = Renderer().message("text", [part])
        assert title == "[HIGH] escalated: Acme Corp: Champion left and usage is falling"
        lines = body.splitlines()
        assert lines[2] == "What's new:"  # at the top, under the headline
        assert body.index("What's new:") < body.index("Why now:")
        assert "Also:\n  * Usage sagging (warning)" in body
    finally:
        store.close()


async def test_an_acknowledged_alert_stays_acknowledged_when_a_lesser_rule_joins(
    store_url, make_config
) -> None:
    store = Store(store_url)
    try:
        await _cycle(_config(make_config, store_url, USAGE, CHAMPION), store, "2026-11-20T12:00Z")
        (alert,) = _open(store, "acme")
        AlertActions(store, FrozenClock("2026-11-20T12:30Z")).act(
            str(alert.id), Acknowledge(), by="ann"
        )
        # A support spike: the lesser tickets rule joins the account's alert.
        more = _config(make_config, store_url, USAGE, CHAMPION, TICKETS)
        await _cycle(more, store, "2026-11-20T13:00Z")
        (after,) = _open(store, "acme")
        assert "tickets" in [r.rule for r in after.reasons]
        assert after.state == AlertState.ACKNOWLEDGED and after.acted_by == "ack:ann"
        assert after.severity == Severity.HIGH and after.rule == "pair"
        assert _told(store) == [("acme", "firing")]  # nothing told: nothing rose
    finally:
        store.close()
