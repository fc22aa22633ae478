"""The alert lifecycle, step by step on a simulated clock."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from swanwatch.alerts import (
    OPS_ACCOUNT,
    acknowledge,
    decide,
    muter,
    reconcile,
    resolve,
    snooze,
)
from swanwatch.config import Config
from swanwatch.correlate import Candidate, alert_fingerprint, assess_all
from swanwatch.errors import InvalidAction
from swanwatch.model import (
    Account,
    Alert,
    AlertState,
    Contribution,
    Reason,
    Severity,
    Signal,
    Silence,
)

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
HOLD = timedelta(days=3)
REPEAT = timedelta(days=7)


def _contribution(fp: str, kind: str = "usage_drop") -> Contribution:
    return Contribution(
        fingerprint=fp,
        kind=kind,
        summary=f"{kind} {fp}",
        strength=0.8,
        weight=0.7,
        decay=1.0,
        age_days=0.0,
        observed_at=T0,
    )


def _candidate(
    severity: Severity = Severity.HIGH,
    signals: tuple[str, ...] = ("s1",),
    rule: str = "r",
    account: str = "acme",
) -> Candidate:
    return Candidate(
        fingerprint=alert_fingerprint(account, rule),
        account_id=account,
        rule=rule,
        title="Risk",
        severity=severity,
        score=0.7,
        contributions=tuple(_contribution(fp) for fp in signals),
        why_now=("why",),
        play=("call",),
        at_stake={"owner": "ann@csm.example", "segment": "smb"},
    )


class Book:
    """The alerts on record, as the store would keep them, and the notices told."""

    def __init__(self) -> None:
        self.alerts: dict[str, Alert] = {}
        self.told: list[tuple[str, str]] = []

    def step(self, now: datetime, *cands: Candidate, **kw: object) -> list[str]:
        result = reconcile(
            self.alerts,
            cands,
            now,
            hold_down=HOLD,
            repeat_interval=REPEAT,
            **kw,  # type: ignore[arg-type]
        )
        for a in result.changed:
            self.alerts[a.fingerprint] = a
        events: list[str] = [n.event for n in result.notices]
        self.told.extend((n.alert.fingerprint, n.event) for n in result.notices)
        return events

    @property
    def only(self) -> Alert:
        (alert,) = self.alerts.values()
        return alert


def test_fires_once_repeats_after_interval_and_escalates() -> None:
    book = Book()
    assert book.step(T0, _candidate()) == ["firing"]
    assert book.step(T0 + timedelta(days=1), _candidate()) == []
    assert book.step(T0 + timedelta(days=2), _candidate(Severity.CRITICAL)) == ["escalated"]
    assert book.step(T0 + timedelta(days=3), _candidate(Severity.CRITICAL)) == []
    assert book.step(T0 + timedelta(days=9, hours=1), _candidate(Severity.CRITICAL)) == ["repeat"]


def test_resolves_only_after_the_hold_down_and_tells_it() -> None:
    book = Book()
    book.step(T0, _candidate())
    assert book.step(T0 + timedelta(days=1)) == []
    assert book.only.open
    assert book.step(T0 + timedelta(days=3)) == []
    assert book.step(T0 + timedelta(days=4, minutes=1)) == ["resolved"]
    assert not book.only.open


def test_a_blip_does_not_resolve() -> None:
    book = Book()
    book.step(T0, _candidate())
    book.step(T0 + timedelta(days=1))  # signals gone for a day
    assert book.step(T0 + timedelta(days=2), _candidate()) == []  # back: same episode
    assert book.step(T0 + timedelta(days=6)) == []  # hold-down starts over
    assert book.only.open and book.only.episode == 1


def test_flapping_doubles_the_hold_down() -> None:
    book = Book()
    book.step(T0, _candidate())
    book.step(T0 + timedelta(days=1))
    assert book.step(T0 + timedelta(days=4, hours=1)) == ["resolved"]
    assert book.step(T0 + timedelta(days=5), _candidate()) == ["firing"]  # back within a week
    assert book.only.flaps == 1 and book.only.episode == 2
    book.step(T0 + timedelta(days=6))
    assert book.step(T0 + timedelta(days=9, hours=1)) == []  # 3 days is no longer enough
    assert book.step(T0 + timedelta(days=12, hours=1)) == ["resolved"]


def test_acknowledged_alerts_do_not_repeat_but_do_escalate() -> None:
    book = Book()
    book.step(T0, _candidate())
    fp = book.only.fingerprint
    book.alerts[fp] = acknowledge(book.only, "ann", T0)
    assert book.step(T0 + timedelta(days=30), _candidate()) == []
    assert book.step(T0 + timedelta(days=31), _candidate(Severity.CRITICAL)) == ["escalated"]


def test_a_snooze_is_quiet_then_reminds() -> None:
    book = Book()
    book.step(T0, _candidate())
    book.alerts[book.only.fingerprint] = snooze(book.only, T0 + timedelta(days=2), "ann", T0)
    # New evidence at the same severity: the snooze holds.
    assert book.step(T0 + timedelta(days=1), _candidate(signals=("s1", "s2"))) == []
    assert book.only.state == "snoozed"
    assert book.step(T0 + timedelta(days=2), _candidate(signals=("s1", "s2"))) == ["reminder"]


def test_a_rise_in_severity_breaks_through_a_snooze() -> None:
    book = Book()
    book.step(T0, _candidate())
    book.alerts[book.only.fingerprint] = snooze(book.only, T0 + timedelta(days=5), "ann", T0)
    assert book.step(T0 + timedelta(days=1), _candidate(Severity.CRITICAL)) == ["escalated"]
    assert book.only.state == "firing" and book.only.snoozed_until is None
    with pytest.raises(InvalidAction, match="future"):
        snooze(book.only, T0, "ann", T0 + timedelta(days=3))


def test_resolved_by_hand_comes_back_only_on_new_evidence() -> None:
    book = Book()
    book.step(T0, _candidate(signals=("s1",)))
    book.alerts[book.only.fingerprint] = resolve(book.only, "ann", T0 + timedelta(hours=1))
    assert book.step(T0 + timedelta(days=1), _candidate(signals=("s1",))) == []
    assert not book.only.open
    assert book.step(T0 + timedelta(days=2), _candidate(signals=("s1", "s2"))) == ["firing"]
    assert book.only.episode == 2


def test_silenced_alerts_are_recorded_but_never_told() -> None:
    silence = Silence(
        id=7,
        matchers={"owner": "ann@*", "kind": "usage_*"},
        starts_at=T0,
        ends_at=T0 + timedelta(days=2),
        author="bob",
        reason="known outage",
        created_at=T0,
    )
    book = Book()
    mute = muter([silence], T0)
    assert book.step(T0, _candidate(), muted=mute) == []
    assert book.only.muted_by == f"silence 7 by bob until {silence.ends_at:%Y-%m-%d %H:%M} UTC"
    # The silence has ended: the alert is told now.
    later = T0 + timedelta(days=2)
    assert book.step(later, _candidate(), muted=muter([silence], later)) == ["firing"]


def test_a_silence_on_a_further_reason_mutes_the_account_alert() -> None:
    """The rules of an account are one alert: a silence on any of them holds it."""
    cand = _candidate(Severity.CRITICAL, rule="domain")
    cand = replace(
        cand,
        reasons=(
            Reason(rule="domain", title="Domain", severity=Severity.CRITICAL),
            Reason(rule="three_weak", title="Three", severity=Severity.WARNING),
        ),
    )
    silence = Silence(
        id=3,
        matchers={"rule": "three_weak"},
        starts_at=T0,
        ends_at=T0 + timedelta(days=1),
        author="bob",
        reason="known",
        created_at=T0,
    )
    book = Book()
    assert book.step(T0, cand, muted=muter([silence], T0)) == []
    assert (book.only.muted_by or "").startswith("silence 3")


def test_an_alert_acknowledged_while_muted_is_not_told_when_the_mute_ends() -> None:
    silence = Silence(
        id=1,
        matchers={"account": "acme"},
        starts_at=T0,
        ends_at=T0 + timedelta(days=1),
        author="bob",
        reason="migration",
        created_at=T0,
    )
    book = Book()
    assert book.step(T0, _candidate(), muted=muter([silence], T0)) == []
    book.alerts[book.only.fingerprint] = acknowledge(book.only, "ann", T0 + timedelta(hours=1))
    later = T0 + timedelta(days=2)  # the silence has ended
    assert book.step(later, _candidate(), muted=muter([silence], later)) == []
    assert book.only.state == "acknowledged" and book.only.last_notified_at is None


@dataclass(frozen=True)
class Health:
    consecutive_failures: int
    last_success_at: datetime | None = None
    last_error: str | None = "boom"


def test_decide_is_the_whole_pass_correlation_to_notices() -> None:
    config = Config.model_validate(
        {
            "accounts": {"source": "accounts"},
            "daemon": {"failure_alert_after": 3},
            "correlation": {
                "rules": [
                    {"name": "pair", "title": "Pair", "severity": "critical",
                     "all_of": ["champion_departure", "usage_drop"]},
                    {"name": "usage", "title": "Usage", "any_of": ["usage_drop"]},
                ]
            },
        }
    )  # fmt: skip
    accounts = [Account(id="acme", arr=1000), Account(id="globex")]
    signals = [
        Signal(account_id="acme", kind=k, strength=0.9, observed_at=T0, summary=k, watcher="w")
        for k in ("champion_departure", "usage_drop")
    ]
    assessments = assess_all(accounts, signals, T0, config.correlation, config.correlation.rules)
    gone = Alert(
        fingerprint=alert_fingerprint("initech", "usage"),
        account_id="initech",
        rule="usage",
        title="Usage",
        severity=Severity.WARNING,
        score=0.5,
        started_at=T0 - timedelta(days=3),
        updated_at=T0 - timedelta(days=3),
    )
    decided = decide(
        assessments,
        [gone],
        listed=[a.id for a in accounts],
        silences=[],
        watchers={"whois": Health(3), "csv": Health(2)},
        now=T0,
        config=config,
    )
    changed = {(a.account_id, a.rule): a for a in decided.changed}
    told = sorted((n.alert.account_id, n.alert.rule, n.event) for n in decided.notices)
    assert told == [(OPS_ACCOUNT, "watcher_failing:whois", "firing"), ("acme", "pair", "firing")]
    # One alert for acme: the critical pair names it, the lesser rule is a further reason.
    assert [r.rule for r in changed["acme", "pair"].reasons] == ["pair", "usage"]
    assert ("acme", "usage") not in changed
    retired = changed["initech", "usage"]
    assert retired.state == AlertState.RESOLVED
    assert (retired.acted_by or "").startswith("retired:account removed")
    assert (OPS_ACCOUNT, "watcher_failing:csv") not in changed  # 2 failures: not yet
    assert "Last error: boom" in changed[OPS_ACCOUNT, "watcher_failing:whois"].why_now
