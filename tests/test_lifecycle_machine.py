"""A state machine over the whole flow: watcher runs, correlation passes, people acting
(some while a pass is held between its read and its write), an accounts export cut short
or missing an account and restored, time passing, and deliveries that succeed, fail, or
are abandoned mid-batch with their leases held. On a real SQLite store, through the engine,
to a real local webhook that counts what arrives per idempotency key.

Invariants, after every step: no key arrives twice, and no alert a person acted on loses
the action while it is still the episode they acted on. At the end, once the receiver is up
and time has passed, everything decided has arrived, exactly once.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import tempfile
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import delivery_support
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from race_support import DEADLINE_S, Gate
from waiting import wait_until_async

from swanwatch.actions import Acknowledge, Action, AlertActions, Resolve, Snooze
from swanwatch.clock import FrozenClock
from swanwatch.config import Config, load_config
from swanwatch.delivery import DeliveryWorker
from swanwatch.engine import Engine
from swanwatch.model import Alert, AlertState, Severity
from swanwatch.store import Store

T = TypeVar("T")
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
ACCOUNTS = 6
HEADER = "id,name,domains,owner,segment,arr,renewal_date,tags\n"
ROWS = [f"acc-{i},Account {i},acc{i}.example,ann@csm.example,smb,{5000 * (i + 1)},,\n" for i in
        range(ACCOUNTS)]  # fmt: skip
#: One receiver for every example: each example counts what arrived since it started.
HOOK = delivery_support.Hook()
LEASE = timedelta(minutes=1)

CONFIG = """
store: {{url: "sqlite:///{folder}/sw.db"}}
sources:
  accounts: {{type: csv, options: {{path: accounts.csv}}}}
accounts: {{source: accounts, retire_after_reads: 2, retire_after: 1h}}
watchers:
  - type: static
    options:
      signals: [{signals}]
correlation:
  resolve_hold_down: 1h
  rules:
    - {{name: usage, title: Usage is falling, severity: warning, any_of: [usage_drop]}}
    - {{name: both, title: Usage falling and tickets up, severity: critical,
       all_of: [usage_drop, ticket_spike]}}
notify:
  console: false
  lease: 1m
  retry_backoff: 1m
  retry_backoff_max: 5m
  max_attempts: 1000
  channels: {{hook: {{url: "json://127.0.0.1:{port}/hook"}}}}
daemon: {{failure_alert_after: 1}}
"""


@dataclass(frozen=True)
class Acted:
    """A person's last action on an alert: what, on which episode, as whom, until when, and
    the severity last told when they acted."""

    kind: str
    episode: int
    by: str
    until: datetime | None = None
    told: Severity | None = None

    def kept_by(self, alert: Alert, now: datetime) -> bool:
        """Whether ``alert`` (the same episode) still carries this action. An escalation
        told since ends an acknowledgement or a snooze (the lifecycle's policy: the account
        got worse than what its owner took on); nothing else may."""
        since = alert.last_notified_severity
        escalated = since is not None and (self.told is None or since.rank > self.told.rank)
        if self.kind != "resolve" and escalated and alert.acted_by is None:
            return alert.state == AlertState.FIRING
        if f"{self.kind}:{self.by}" not in (alert.acted_by or ""):
            return False
        if self.kind == "ack":
            return alert.state in (AlertState.ACKNOWLEDGED, AlertState.RESOLVED)
        if self.kind == "resolve":
            return alert.state == AlertState.RESOLVED
        woke = self.until is not None and now >= self.until
        return alert.state in (AlertState.SNOOZED, AlertState.RESOLVED) or woke


@functools.cache
def _migrated() -> Path:
    """A store migrated once, copied for each example (the migrations take longer)."""
    path = Path(tempfile.mkdtemp()) / "sw.db"
    Store(f"sqlite:///{path}").close()
    return path


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory()
        self.path = Path(self.folder.name) / "swanwatch.yaml"
        self.loop = asyncio.new_event_loop()
        self.clock = FrozenClock(T0)
        self.signals: list[str] = []
        self.usage: set[int] = set()
        self.tickets: set[int] = set()
        self.strength = 0.9
        self._write_accounts(ROWS)
        self.config = self._write_config()
        shutil.copyfile(_migrated(), Path(self.folder.name) / "sw.db")
        self.store = Store(self.config.store_url)
        self.worker = DeliveryWorker(self.config, self.store, self.clock)
        self.acted: dict[str, Acted] = {}
        self.people = 0
        HOOK.fail_with = None
        self.first = len(HOOK.received)

    # --- the world ------------------------------------------------------------------------

    def _write_accounts(self, rows: list[str]) -> None:
        (Path(self.folder.name) / "accounts.csv").write_text(HEADER + "".join(rows))

    def _write_config(self) -> Config:
        self.path.write_text(
            CONFIG.format(folder=self.folder.name, port=HOOK.port, signals=", ".join(self.signals))
        )
        return load_config(self.path)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    async def _with_engine(self, step: str) -> Any:
        async with Engine(self.config, self.store, self.clock) as engine:
            if step == "watch":
                await engine.load_accounts()
                return await engine.run_watchers()
            return await engine.correlate()

    def _arrived(self) -> list[str]:
        with HOOK.lock:
            return [r.headers.get("Idempotency-Key", "") for r in HOOK.received[self.first :]]

    # --- rules ----------------------------------------------------------------------------

    @initialize(
        usage=st.sets(st.integers(0, ACCOUNTS - 1), min_size=3),
        tickets=st.sets(st.integers(0, ACCOUNTS - 1)),
    )
    def first_cycle(self, usage: set[int], tickets: set[int]) -> None:
        """Alerts to begin with: the watchers run, then a correlation pass."""
        self.watchers_run(usage, tickets, 0.9)
        self.correlation_pass()

    @rule()
    def cycle(self) -> None:
        """What the daemon does each time: watchers, correlation, delivery."""
        self._run(self._with_engine("watch"))
        self.correlation_pass()
        self.delivery(up=True)

    @rule(
        usage=st.sets(st.integers(0, ACCOUNTS - 1)),
        tickets=st.sets(st.integers(0, ACCOUNTS - 1)),
        strength=st.sampled_from([0.6, 0.9]),
    )
    def watchers_run(self, usage: set[int], tickets: set[int], strength: float) -> None:
        self.usage, self.tickets, self.strength = usage, tickets, strength
        self.signals = [
            f"{{account: acc-{i}, kind: {kind}, strength: {strength}, days_ago: 1}}"
            for kind, chosen in (("usage_drop", usage), ("ticket_spike", tickets))
            for i in sorted(chosen)
        ]
        self.config = self._write_config()
        self._run(self._with_engine("watch"))

    @rule()
    def correlation_pass(self) -> None:
        self._run(self._with_engine("correlate"))

    @rule(
        kind=st.sampled_from(["ack", "snooze", "resolve"]),
        pick=st.integers(0, 30),
        during_pass=st.booleans(),
    )
    def person_acts(self, kind: str, pick: int, during_pass: bool) -> None:
        alerts = self.store.alerts(open_only=True)
        event(f"acts on {'an alert' if alerts else 'nothing'}")
        if not alerts:
            return
        alert = alerts[pick % len(alerts)]
        self.people += 1
        by = f"p{self.people}"
        choices: dict[str, Action] = {
            "ack": Acknowledge(),
            "snooze": Snooze(timedelta(hours=3)),
            "resolve": Resolve(),
        }
        action = choices[kind]
        actions = AlertActions(self.store, self.clock)
        if during_pass:
            # The watchers grade their signals anew: the pass will want to change alerts.
            self.watchers_run(self.usage, self.tickets, 1.5 - self.strength)
            self._run(self._act_during_pass(actions, alert, action, by))
        else:
            actions.act(alert.fingerprint, action, by=by, episode=alert.episode)
        until = self.clock.now() + timedelta(hours=3) if kind == "snooze" else None
        told = alert.last_notified_severity
        self.acted[alert.fingerprint] = Acted(kind, alert.episode, by, until, told)

    async def _act_during_pass(
        self, actions: AlertActions, alert: Alert, action: Action, by: str
    ) -> None:
        gate = Gate(self.store)
        with gate.installed():
            running = asyncio.ensure_future(self._with_engine("correlate"))
            assert await asyncio.to_thread(gate.read.wait, DEADLINE_S), "no pass read alerts"
            await asyncio.to_thread(
                actions.act, alert.fingerprint, action, by=by, episode=alert.episode
            )
            gate.released.set()
            passed = await running
        event(f"a pass during an action: {len(passed.refused)} refused")

    @rule(shape=st.sampled_from(["truncated", "one_left_out", "whole"]))
    def export_changes(self, shape: str) -> None:
        if shape == "truncated":  # cut to two rows, plus a malformed one: suspect
            self._write_accounts([*ROWS[:2], "acc-bad,Broken\n"])
        elif shape == "one_left_out":  # a good read without the last account
            self._write_accounts(ROWS[:-1])
        else:
            self._write_accounts(ROWS)

    @rule(up=st.booleans())
    def delivery(self, up: bool) -> None:
        HOOK.fail_with = None if up else 503
        self._run(self.worker.run_once())
        HOOK.fail_with = None

    @rule()
    def delivery_abandoned_mid_batch(self) -> None:
        """A sender sends one notification, then dies with the next in flight (refused by
        the receiver) and the rest of its batch leased."""
        self._run(self._abandon())

    async def _abandon(self) -> None:
        doomed = DeliveryWorker(self.config, self.store, self.clock)
        before, settled = len(HOOK.arrivals), HOOK.settled
        HOOK.hold()
        sending = asyncio.ensure_future(doomed.run_once())
        try:
            await wait_until_async(
                lambda: sending.done() or len(HOOK.arrivals) > before, "a first send"
            )
            HOOK.release(1)  # the first is answered
            await wait_until_async(
                lambda: sending.done() or len(HOOK.arrivals) > before + 1, "a second send"
            )
            event(f"a sender dies after {len(HOOK.arrivals) - before} sends")
            HOOK.fail_with = 503  # the one in flight fails: the sender is dying
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
        finally:
            HOOK.open()
        # Every request the dying sender made is answered before anything else happens.
        await asyncio.to_thread(HOOK.wait_settled, settled + len(HOOK.arrivals) - before)
        HOOK.fail_with = None

    @rule(minutes=st.sampled_from([2, 45, 120, 60 * 24, 60 * 24 * 8]))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def no_key_arrives_twice(self) -> None:
        twice = [k for k, n in Counter(self._arrived()).items() if n > 1]
        assert twice == [], f"sent twice: {twice}"

    @invariant()
    def no_action_is_lost(self) -> None:
        if not self.acted:
            return
        now = self.clock.now()
        on_record = {a.fingerprint: a for a in self.store.alerts(fingerprints=list(self.acted))}
        for fp, acted in self.acted.items():
            alert = on_record[fp]
            if alert.episode == acted.episode:
                assert acted.kept_by(alert, now), (acted, alert.state, alert.acted_by)

    def teardown(self) -> None:
        try:
            # The receiver is up and time passes: everything decided arrives, once.
            HOOK.fail_with = None
            for _ in range(3):
                self.clock.advance(LEASE + timedelta(minutes=10))
                self._run(self.worker.drain())
            notes = self.store.notifications(limit=10_000)
            assert {n.status for n in notes} <= {"sent", "withdrawn"}, Counter(
                n.status for n in notes
            )
            # Withdrawn: never sent, and said why (its alert moved on before its turn).
            sent = [n.idempotency_key for n in notes if n.status == "sent"]
            assert sorted(self._arrived()) == sorted(sent)
            for note in notes:
                assert note.status == "sent" or (note.last_error or "").startswith("withdrawn:")
            event(f"notifications: {'10 or more' if len(notes) >= 10 else len(notes)}")
        finally:
            self.store.close()
            self.loop.close()
            self.folder.cleanup()


TestLifecycle = LifecycleMachine.TestCase
TestLifecycle.settings = settings(
    max_examples=15,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLifecycle = pytest.mark.slow(TestLifecycle)
