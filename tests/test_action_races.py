"""A person's action is never lost to a correlation pass, and a pass writes only the alerts
it changed. On the real store (SQLite and PostgreSQL), through the engine and the actions.

The race is forced, not hoped for: a hook on the database connections holds the pass
between its read of the alerts and its write, while other threads act on the alerts
through :class:`AlertActions` (the path the board, the links and the CLI take)."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from race_support import DEADLINE_S, Gate

from swanwatch.actions import Acknowledge, AlertActions, Resolve, Snooze
from swanwatch.alerts import SCORE_STEP, Notice, worth_saving
from swanwatch.clock import FrozenClock
from swanwatch.config import load_config, parse_config
from swanwatch.delivery import outbox_entries
from swanwatch.engine import Engine
from swanwatch.model import (
    Alert,
    AlertState,
    Contribution,
    NoticeEvent,
    Reason,
    Severity,
    Signal,
)
from swanwatch.store import Findings, Store

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HEADER = "id,name,domains,owner,segment,arr,renewal_date,tags\n"
RENEWAL = "2027-09-01"


def _book(tmp_path: Path, store_url: str, accounts: int, worker: bool = False) -> Path:
    """A book of ``accounts`` accounts; ``worker``: passes shared with a pass worker (by
    default off: a gate holds a pass in this process, which a worker's batches escape)."""
    rows = (
        f"acc-{i:05d},Account {i},acc{i}.example,csm{i % 7}@csm.example,smb,{1000 + i},{RENEWAL},"
        for i in range(accounts)
    )
    (tmp_path / "accounts.csv").write_text(HEADER + "\n".join(rows) + "\n")
    path = tmp_path / "swanwatch.yaml"
    path.write_text(
        f"""
store: {{url: "{store_url}"}}
sources:
  accounts: {{type: csv, options: {{path: accounts.csv}}}}
accounts: {{source: accounts}}
watchers:
  - {{type: static, name: usage}}
  - {{type: static, name: tickets}}
correlation:
  rules:
    - {{name: usage, title: Usage is falling, severity: warning,
       any_of: [usage_drop, ticket_spike]}}
notify: {{console: false, channels: {{team: {{url: "json://127.0.0.1:9/hook"}}}}}}
daemon: {{correlation_worker: {"true" if worker else "false"}}}
"""
    )
    return path


def _signal(watcher: str, account: int, kind: str, now: datetime) -> Signal:
    return Signal(
        account_id=f"acc-{account:05d}",
        kind=kind,
        strength=0.8,
        observed_at=now - timedelta(days=1),
        summary=f"{kind} on acc-{account:05d}.",
        watcher=watcher,
    )


def _seed(store: Store, watcher: str, kind: str, accounts: range, now: datetime) -> None:
    """What a watcher run over these accounts would store (the watchers are not run)."""
    signals = [_signal(watcher, i, kind, now) for i in accounts]
    store.record_findings(Findings(watcher=watcher, now=now, signals=signals))


async def _correlate(path: Path, store: Store, now: datetime) -> Any:
    async with Engine(load_config(path), store, FrozenClock(now)) as engine:
        return await engine.correlate()


def _act_from_threads(store: Store, alerts: list[Alert], now: datetime, threads: int) -> None:
    """Acknowledge each alert through the actions, from ``threads`` threads at once."""
    start = threading.Barrier(threads)

    def work(part: list[Alert], n: int) -> None:
        start.wait(DEADLINE_S)
        actions = AlertActions(store, FrozenClock(now))
        for alert in part:
            actions.act(alert.fingerprint, Acknowledge(), by=f"csm-{n}", episode=alert.episode)

    with ThreadPoolExecutor(threads, thread_name_prefix="acker") as pool:
        futures = [pool.submit(work, alerts[n::threads], n) for n in range(threads)]
        for future in futures:
            future.result(DEADLINE_S)


@pytest.mark.slow
async def test_acknowledgements_made_during_a_pass_over_20k_accounts_all_stay(
    tmp_path: Path, store_url: str
) -> None:
    path = _book(tmp_path, store_url, accounts=20_000)
    store = Store(store_url)
    try:
        _seed(store, "usage", "usage_drop", range(0, 20_000, 10), T0)
        first = await _correlate(path, store, T0)
        assert first.open_alerts == 2000 and first.enqueued == 2000
        alerts = sorted(store.alerts(open_only=True), key=lambda a: a.account_id)
        acked = alerts[::20]
        assert len(acked) == 100

        # New evidence on every alerted account: the next pass changes every alert.
        later = T0 + timedelta(hours=1)
        _seed(store, "tickets", "ticket_spike", range(0, 20_000, 10), later)
        gate = Gate(store)
        with gate.installed():
            running = asyncio.create_task(_correlate(path, store, later))
            assert await asyncio.to_thread(gate.read.wait, DEADLINE_S), "no pass read alerts"
            await asyncio.to_thread(_act_from_threads, store, acked, later, 4)
            gate.released.set()
            second = await running

        now = {a.fingerprint: a for a in store.alerts()}
        acked_fps = {a.fingerprint for a in acked}
        lost = [fp for fp in acked_fps if now[fp].state != AlertState.ACKNOWLEDGED]
        assert lost == [], f"{len(lost)} of 100 acknowledgements lost"
        assert all((now[fp].acted_by or "").startswith("ack:csm-") for fp in acked_fps)
        assert sorted(second.refused) == sorted(acked_fps)
        others = [a for fp, a in now.items() if fp not in acked_fps]
        assert len(others) == 1900 and all(len(a.contributions) == 2 for a in others)
        assert second.written == 1900

        # The next pass takes up the new evidence on the acknowledged ones, and keeps
        # the acknowledgement; nothing was told twice.
        third = await _correlate(path, store, later + timedelta(minutes=5))
        assert third.refused == () and third.written == 100
        for fp in acked_fps:
            alert = _find(store, fp)
            assert alert.state == AlertState.ACKNOWLEDGED and len(alert.contributions) == 2
        told = Counter(n.alert_fingerprint for n in store.notifications(limit=10_000))
        assert len(told) == 2000 and set(told.values()) == {1}
    finally:
        store.close()


@pytest.mark.slow
async def test_acknowledgements_made_while_a_worker_shares_the_pass_all_stay(
    tmp_path: Path, store_url: str
) -> None:
    """The same race with half the pass in a worker process, acknowledgements made from
    threads while it runs (no gate: whatever the timing): each alert is either written by
    the pass or refused because a person acted after the pass read it; none is lost, the
    next pass takes up what was refused, and nothing is told twice."""
    path = _book(tmp_path, store_url, accounts=20_000, worker=True)
    store = Store(store_url)
    try:
        _seed(store, "usage", "usage_drop", range(0, 20_000, 10), T0)
        first = await _correlate(path, store, T0)
        assert first.open_alerts == 2000 and first.enqueued == 2000
        acked = sorted(store.alerts(open_only=True), key=lambda a: a.account_id)[::20]
        acked_fps = {a.fingerprint for a in acked}
        later = T0 + timedelta(hours=1)
        _seed(store, "tickets", "ticket_spike", range(0, 20_000, 10), later)
        running = asyncio.create_task(_correlate(path, store, later))
        await asyncio.to_thread(_act_from_threads, store, acked, later, 4)
        second = await running
        assert set(second.refused) <= acked_fps
        assert second.written + len(second.refused) == 2000
        third = await _correlate(path, store, later + timedelta(minutes=5))
        assert third.refused == () and third.written == len(second.refused)
        for alert in store.alerts():
            assert len(alert.contributions) == 2
            if alert.fingerprint in acked_fps:
                assert alert.state == AlertState.ACKNOWLEDGED
                assert (alert.acted_by or "").startswith("ack:csm-")
        told = Counter(n.alert_fingerprint for n in store.notifications(limit=10_000))
        assert len(told) == 2000 and set(told.values()) == {1}
    finally:
        store.close()


def _find(store: Store, fingerprint: str) -> Alert:
    (alert,) = store.alerts(fingerprints=[fingerprint])
    return alert


def _three(tmp_path: Path, store_url: str) -> Path:
    return _book(tmp_path, store_url, accounts=3)


async def test_an_action_on_an_alert_a_pass_changed_meanwhile_is_made_again(
    tmp_path: Path, store_url: str
) -> None:
    """The other side of the race: the action read the alert, a pass wrote it, and the
    action is applied to the alert as the pass left it (neither overwrites the other)."""
    path = _three(tmp_path, store_url)
    store = Store(store_url)
    try:
        _seed(store, "usage", "usage_drop", range(3), T0)
        await _correlate(path, store, T0)
        (alert, *_) = store.alerts()
        later = T0 + timedelta(hours=1)
        _seed(store, "tickets", "ticket_spike", range(3), later)
        gate = Gate(store)
        with gate.installed(), ThreadPoolExecutor(1, thread_name_prefix="acker") as pool:
            actions = AlertActions(store, FrozenClock(later))
            acting = pool.submit(
                actions.act, alert.fingerprint, Snooze(timedelta(days=2)), by="ann"
            )
            assert await asyncio.to_thread(gate.read.wait, DEADLINE_S), "the action read nothing"
            meanwhile = await _correlate(path, store, later)
            assert meanwhile.written == 3 and meanwhile.refused == ()
            gate.released.set()
            done = acting.result(DEADLINE_S)
        after = _find(store, alert.fingerprint)
        assert after.state == AlertState.SNOOZED and after.acted_by == "snooze:ann"
        assert len(after.contributions) == 2  # the pass's change stands too
        assert after.version == alert.version + 2 and done.alert == after
    finally:
        store.close()


async def test_a_pass_writes_only_the_alerts_it_changed(tmp_path: Path, store_url: str) -> None:
    path = _three(tmp_path, store_url)
    store = Store(store_url)
    try:
        _seed(store, "usage", "usage_drop", range(3), T0)
        first = await _correlate(path, store, T0)
        assert first.written == 3
        before = {a.fingerprint: a for a in store.alerts()}

        # An hour on, the signals have decayed a little: nothing worth a write.
        quiet = await _correlate(path, store, T0 + timedelta(hours=1))
        assert quiet.written == 0 and quiet.enqueued == 0
        assert {a.fingerprint: a for a in store.alerts()} == before

        # New evidence on one account: its alert, and only it, is written.
        _seed(store, "tickets", "ticket_spike", range(1), T0 + timedelta(hours=2))
        one = await _correlate(path, store, T0 + timedelta(hours=2))
        assert one.written == 1
        changed = [a for a in store.alerts() if a != before[a.fingerprint]]
        assert [(a.account_id, a.version) for a in changed] == [("acc-00000", 1)]

        # Days later the decay has moved the scores by a step: written once, not per pass.
        drift = await _correlate(path, store, T0 + timedelta(days=6))
        assert drift.written == 3
        again = await _correlate(path, store, T0 + timedelta(days=6, hours=1))
        assert again.written == 0
    finally:
        store.close()


async def test_a_resolve_during_a_pass_is_not_reopened_by_it(
    tmp_path: Path, store_url: str
) -> None:
    path = _three(tmp_path, store_url)
    store = Store(store_url)
    try:
        _seed(store, "usage", "usage_drop", range(3), T0)
        await _correlate(path, store, T0)
        (alert, *_) = store.alerts()
        gate = Gate(store)
        later = T0 + timedelta(hours=1)
        _seed(store, "tickets", "ticket_spike", range(3), later)
        with gate.installed():
            running = asyncio.create_task(_correlate(path, store, later))
            assert await asyncio.to_thread(gate.read.wait, DEADLINE_S), "no pass read alerts"
            actions = AlertActions(store, FrozenClock(later))
            await asyncio.to_thread(actions.act, alert.fingerprint, Resolve(), by="bob")
            gate.released.set()
            passed = await running
        assert passed.refused == (alert.fingerprint,)
        after = _find(store, alert.fingerprint)
        assert after.state == AlertState.RESOLVED and after.acted_by == "resolve:bob"
    finally:
        store.close()


def test_what_is_worth_a_write() -> None:
    """Decay alone is not; a new rule, a regraded signal, a state, a step of score are."""
    signal = Contribution(
        fingerprint="s1",
        kind="usage_drop",
        summary="Usage fell.",
        strength=0.8,
        weight=1.0,
        decay=0.9,
        age_days=1.0,
        observed_at=T0,
    )
    alert = Alert(
        fingerprint="f",
        account_id="acme",
        rule="usage",
        title="Usage is falling",
        severity=Severity.WARNING,
        score=0.7,
        contributions=(signal,),
        reasons=(Reason(rule="usage", title="Usage is falling", severity=Severity.WARNING),),
        at_stake={"arr": 1000, "revenue_at_risk": 700.0},
        started_at=T0,
        updated_at=T0,
    )
    aged = alert.model_copy(
        update={
            "score": 0.7 - SCORE_STEP / 2,
            "contributions": (signal.model_copy(update={"decay": 0.85, "age_days": 2.0}),),
            "at_stake": {"arr": 1000, "revenue_at_risk": 682.5},
            "updated_at": T0 + timedelta(days=1),
        }
    )
    assert not worth_saving(alert, aged)
    assert worth_saving(alert, aged.model_copy(update={"score": 0.7 - SCORE_STEP}))
    regraded = (signal.model_copy(update={"strength": 0.9}),)
    assert worth_saving(alert, aged.model_copy(update={"contributions": regraded}))
    joined = Reason(rule="tickets", title="Tickets pile up", severity=Severity.WARNING)
    assert worth_saving(alert, aged.model_copy(update={"reasons": (*alert.reasons, joined)}))
    assert worth_saving(alert, aged.model_copy(update={"state": AlertState.ACKNOWLEDGED}))


def test_a_pass_writes_over_the_versions_it_read(store: Store) -> None:
    """The store's side: an alert new to the pass is written only if still absent; one it
    read is written only at the version read; what is refused takes its notices along."""
    one, two = (_bare(fp) for fp in ("fp-one", "fp-two"))
    first = store.save_pass([one, two], [], {})
    assert (first.written, first.refused) == (2, ())
    # Another writer got there first: "new" to this pass, yet on record now.
    late = store.save_pass([one, _bare("fp-three")], [], {})
    assert (late.written, late.refused) == (1, ("fp-one",))
    # Read at version 0; a person's action takes it to 1; the pass's write is refused.
    acked = store.replace_alert(one.model_copy(update={"state": AlertState.ACKNOWLEDGED}), 0)
    assert acked is not None and acked.version == 1
    assert store.replace_alert(one, 0) is None  # the same stale read, refused again
    told = [Notice(alert=a, event=NoticeEvent.REPEAT) for a in (one, two)]
    config = parse_config(
        """
sources: {accounts: {type: csv, options: {path: accounts.csv}}}
accounts: {source: accounts}
notify: {console: false, channels: {team: {url: "json://127.0.0.1:9/h"}}}
""",
        check_plugins=False,
    )
    entries = outbox_entries(told, config, T0)
    stale = store.save_pass([one, two], entries, {"fp-one": 0, "fp-two": 0})
    assert (stale.written, stale.refused, stale.enqueued) == (1, ("fp-one",), 1)
    assert [n.alert_fingerprint for n in store.notifications()] == ["fp-two"]
    on_record = {a.fingerprint: a for a in store.alerts()}
    assert on_record["fp-one"].state == AlertState.ACKNOWLEDGED
    assert (on_record["fp-one"].version, on_record["fp-two"].version) == (1, 1)


def _bare(fingerprint: str) -> Alert:
    return Alert(
        fingerprint=fingerprint,
        account_id=f"acc-{fingerprint}",
        rule="usage",
        title="Usage is falling",
        severity=Severity.WARNING,
        score=0.5,
        started_at=T0,
        updated_at=T0,
    )
