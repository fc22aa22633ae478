"""The store's side of a steady pass, on every backend: each write saves the digest of the
alert's facts, the heads read it back with the lifecycle columns, a steady pass reads in
full only the alerts that change, and a store from before the digest upgrades."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swanwatch.alerts import decide_accounts, muter
from swanwatch.config import parse_config
from swanwatch.correlate import assess_all
from swanwatch.facts import AlertHead, alert_digest
from swanwatch.model import (
    Account,
    Alert,
    AlertNotice,
    AlertState,
    Contribution,
    OutboxEntry,
    Reason,
    Severity,
    Signal,
)
from swanwatch.passes import Book, run_pass
from swanwatch.steady import decide_heads
from swanwatch.store import Findings, Store

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
KINDS = ("champion_departure", "usage_drop")
CONFIG = parse_config(
    f"""
sources: {{accounts: {{type: csv, options: {{path: accounts.csv}}}}}}
accounts: {{source: accounts}}
watchers:
{chr(10).join(f"  - {{type: static, name: {k}}}" for k in KINDS)}
correlation:
  rules:
    - {{name: pair, title: Champion left and usage fell, severity: critical,
       all_of: [champion_departure, usage_drop]}}
    - {{name: usage, title: Usage sagging, severity: high, any_of: [usage_drop]}}
notify: {{console: false, channels: {{team: {{url: "json://127.0.0.1:9/hook"}}}}}}
""",
    check_plugins=False,
)
ACCOUNTS = [
    Account(id=f"acct-{n}", arr=1000.0 * (n + 1), renewal_date=date(2027, 1, 10), owner="ann")
    for n in range(5)
]
IDS = [a.id for a in ACCOUNTS]


def _alert(fp: str, **kw: object) -> Alert:
    signal = Contribution(
        fingerprint=f"sig-{fp}", kind="usage_drop", summary="usage fell", strength=0.8,
        weight=0.7, decay=0.9, age_days=1.0, observed_at=T0,
    )  # fmt: skip
    values: dict[str, object] = {
        "fingerprint": fp,
        "account_id": f"acct-{fp}",
        "rule": "usage",
        "title": "Usage sagging",
        "severity": Severity.HIGH,
        "score": 0.6,
        "contributions": (signal,),
        "why_now": ("Usage fell.",),
        "play": ("Call.",),
        "at_stake": {"arr": 1000.0, "days_to_renewal": 51, "owner": None},
        "reasons": (Reason(rule="usage", title="Usage sagging", severity="high", since=T0),),
        "started_at": T0,
        "updated_at": T0,
        "last_notified_at": T0,
        "last_notified_severity": Severity.HIGH,
        "notify_count": 1,
    }
    values.update(kw)
    return Alert.model_validate(values)


def _heads(store: Store, ids: list[str]) -> dict[str, AlertHead]:
    return {h.fingerprint: h for h in store.alert_heads(ids)}


def test_every_write_saves_the_digest_the_heads_read_back(store: Store) -> None:
    """Whichever way an alert is written (a pass, a seed, a person's action), its head is
    its lifecycle as read back, with the digest of its facts as read back; an alert whose
    reasons were kept before their joining times has none (unknown)."""
    fresh, seeded = _alert("a"), _alert("b", state=AlertState.SNOOZED, snoozed_until=T0)
    legacy = _alert("c", reasons=(Reason(rule="usage", title="Usage sagging", severity="high"),))
    store.save_pass([fresh], [], {})
    store.save_alerts([seeded, legacy], [])
    acked = store.replace_alert(fresh.model_copy(update={"state": AlertState.ACKNOWLEDGED}), 0)
    assert acked is not None
    ids = ["acct-a", "acct-b", "acct-c"]
    heads = _heads(store, ids)
    read = store.account_alerts(ids)
    assert store.alerts_of([a.fingerprint for a in read]) == read
    assert heads == {a.fingerprint: AlertHead.of(a, alert_digest(a)) for a in read}
    assert heads["a"].state == AlertState.ACKNOWLEDGED and heads["a"].digest is not None
    assert heads["b"].snoozed_until == T0 and heads["c"].digest is None


def _signals(store: Store, now: datetime, strength: float = 0.9) -> None:
    for kind in KINDS:
        store.record_findings(
            Findings(
                watcher=kind,
                now=now,
                signals=[
                    Signal(
                        watcher=kind, account_id=a.id, kind=kind, key="k",
                        strength=strength if a.id == "acct-0" else 0.9,
                        observed_at=T0 - timedelta(hours=n), summary=f"{kind} on {a.id}",
                    )
                    for n, a in enumerate(ACCOUNTS)
                    if kind == "usage_drop" or n % 2
                ],
            )
        )  # fmt: skip


def _book() -> Book:
    return Book(config=CONFIG, rules=CONFIG.correlation.rules, accounts=ACCOUNTS,
                watchers={}, sources={})  # fmt: skip


def _both_paths_agree(store: Store, now: datetime) -> None:
    """On the store as it is: the steady path decides what the full path decides."""
    signals = store.active_signals(IDS)
    assessments = assess_all(ACCOUNTS, signals, now, CONFIG.correlation, CONFIG.correlation.rules)
    muted = muter([], now)
    on_record, heads = store.account_alerts(IDS), store.alert_heads(IDS)
    full = decide_accounts(assessments, on_record, listed=IDS, muted=muted, now=now, config=CONFIG)
    fast = decide_heads(
        assessments, heads, store.alerts_of, listed=IDS, muted=muted, now=now, config=CONFIG
    )
    assert (fast.changed, fast.notices) == (full.changed, full.notices)


def test_a_steady_pass_reads_in_full_only_the_alerts_that_change(store: Store) -> None:
    loaded: list[str] = []
    read = store.alerts_of

    def spy(fingerprints: Sequence[str]) -> list[Alert]:
        loaded.extend(fingerprints)
        return read(fingerprints)

    store.alerts_of = spy  # type: ignore[method-assign]
    _signals(store, T0)
    first = run_pass(store, _book(), T0)
    assert first.written == 5 and loaded == []  # all new: nothing on record to read
    later = T0 + timedelta(minutes=30)
    _both_paths_agree(store, later)
    loaded.clear()
    steady = run_pass(store, _book(), later)
    assert (steady.written, steady.enqueued, loaded) == (0, 0, [])
    # One account's usage signal is graded anew: its alert alone is read, and saved.
    _signals(store, later, strength=0.5)
    _both_paths_agree(store, later)
    loaded.clear()
    changed = run_pass(store, _book(), later)
    (acct0,) = [a.fingerprint for a in store.account_alerts(["acct-0"])]
    assert (changed.written, changed.enqueued, loaded) == (1, 0, [acct0])


def test_a_store_from_before_the_digest_upgrades_and_fills_it_in_as_alerts_are_read(
    store_url: str,
) -> None:
    store = Store(store_url, migrate=False)
    try:
        store.upgrade("0010")
        row = _alert("a").model_dump(mode="json", exclude={"id"})
        columns = [sa.column(name, sa.JSON() if isinstance(v, list | dict) else None)
                   for name, v in row.items()]  # fmt: skip
        row = {k: (T0 if k in ("started_at", "updated_at", "last_notified_at") else v)
               for k, v in row.items()}  # fmt: skip
        with store.engine.begin() as conn:
            conn.execute(sa.insert(sa.table("alerts", *columns)), [row])
        store.upgrade()
        (head,) = store.alert_heads(["acct-a"])
        assert head.digest is None and head.version == 0  # unknown: the full path decides
        # Read in full (the steady pass could not settle it): its digest is saved, and
        # nothing else changes (the same version: a person's action over it still lands).
        (alert,) = store.alerts_of(["a"])
        assert alert.model_copy(update={"id": None}) == _alert("a")
        (head,) = store.alert_heads(["acct-a"])
        assert head == AlertHead.of(alert, alert_digest(alert)) and head.version == 0
        store.save_pass([alert.model_copy(update={"score": 0.9})], [], {"a": 0})
        (head,) = store.alert_heads(["acct-a"])
        assert head.digest == alert_digest(alert) and head.version == 1
    finally:
        store.close()


#: Any text PostgreSQL's text columns take (no NUL).
_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
#: Any number JSON holds (pydantic writes an infinity as null).
_FINITE = st.floats(allow_nan=False, allow_infinity=False)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    title=_TEXT,
    score=st.floats(0, 1, allow_nan=False),
    stake=st.dictionaries(_TEXT, st.none() | st.booleans() | st.integers() | _FINITE | _TEXT),
    at=st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])),
    state=st.sampled_from(AlertState),
)
def test_a_pass_queues_each_notice_with_its_alert_as_decided(
    store: Store, title: str, score: float, stake: dict[str, object], at: datetime,
    state: AlertState,
) -> None:  # fmt: skip
    """A pass writes a notice's alert into its payload from the text it saved the alert
    with, not by serializing it again: the notice comes back from the outbox as it was."""
    fp = f"fp-{uuid.uuid4().hex}"
    alert = _alert(
        fp, title=title, score=score, at_stake=stake, state=state, updated_at=at,
        snoozed_until=at if state == AlertState.SNOOZED else None,
    )  # fmt: skip
    notice = AlertNotice(alert=alert, event="firing", label=title, who="channel:team",
                         new_signals=(f"sig-{fp}",))  # fmt: skip
    entry = OutboxEntry(
        idempotency_key=fp, alert_fingerprint=fp, account_id=alert.account_id, channel="team",
        event="firing", severity=alert.severity, title=title, payload=notice,
        created_at=T0, due_at=T0,
    )  # fmt: skip
    saved = store.save_pass([alert], [entry], {})
    assert saved.written == 1 and saved.enqueued == 1
    (queued,) = store.notifications(limit=1)
    assert queued.idempotency_key == fp and queued.payload == notice
