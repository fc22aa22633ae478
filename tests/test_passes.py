"""A correlation pass streamed in account batches decides exactly what one pass over the
whole book decides: the same alerts on record, the same outbox, the same scores.

Two stores get the same history (signals raised and cleared, accounts leaving the list, a
watcher failing, a hand resolve); one is correlated in a single batch, the other in
batches of one, two or three accounts, and after every pass both are compared.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pass_support import on_record, told
from sqlalchemy import text

from swanwatch.actions import AlertActions, Resolve
from swanwatch.clock import FrozenClock
from swanwatch.config import Rule, bundled, parse_config
from swanwatch.model import Account, AlertState, Signal
from swanwatch.passes import (
    SHRINK_FLOOR,
    SHRINK_SHARE,
    Book,
    PassTally,
    account_batches,
    run_pass,
)
from swanwatch.store import Findings, Store, WatcherStatus

T0 = datetime(2026, 10, 1, tzinfo=UTC)
KINDS = ("champion_departure", "usage_drop", "renewal_lapse", "support_spike")
IDS = ("a-01", "a-02", "a_03", "A-04", "b-05", "b-06", "c-07")
ACCOUNTS = tuple(
    Account(
        id=account_id,
        arr=10_000.0 * (n + 1),
        renewal_date=date(2026, 10, 20) + timedelta(days=40 * n),
        owner=f"csm{n % 2}@example.com",
        segment="smb" if n % 2 else "enterprise",
    )
    for n, account_id in enumerate(IDS)
)
CONFIG = parse_config(
    f"""
sources: {{accounts: {{type: csv, options: {{path: accounts.csv}}}}}}
accounts: {{source: accounts}}
watchers:
{chr(10).join(f"  - {{type: static, name: {k}}}" for k in KINDS)}
notify: {{console: false, channels: {{team: {{url: "json://127.0.0.1:9/hook"}}}}}}
""",
    check_plugins=False,
)
PACK = bundled("rules", "default.yaml")
RULES = [
    *(
        Rule.model_validate(r)
        for r in yaml.safe_load(bundled("rules", "default.yaml").read_text())["rules"]
    ),
    Rule(
        name="deep_drop",
        title="Usage fell deep",
        severity="high",
        any_of=["usage_drop"],
        where={"drop_pct": {"at_least": 50}},
    ),
]


@dataclass(frozen=True)
class Step:
    """One pass: the clock moved on, these signals are on, these accounts are listed."""

    advance: timedelta
    active: frozenset[int]
    listed: frozenset[str]
    failing: bool
    resolve_one: bool


def _signal(account: str, kind: str, key: str, strength: float, age_h: int, drop: int) -> Signal:
    return Signal(
        watcher=kind,
        account_id=account,
        kind=kind,
        evidence={"drop_pct": drop} if kind == "usage_drop" else {},
        key=key,
        strength=strength,
        observed_at=T0 - timedelta(hours=age_h),
        summary=f"{kind} on {account}",
    )


signals_st = st.builds(
    _signal,
    st.sampled_from(IDS),
    st.sampled_from(KINDS),
    st.sampled_from(["k1", "k2"]),
    st.one_of(st.floats(0.0, 1.0), st.floats(0.6, 1.0)),
    st.integers(0, 24 * 20),
    st.integers(0, 90),
)
steps_st = st.builds(
    Step,
    st.sampled_from([timedelta(hours=1), timedelta(days=1), timedelta(days=4)]),
    st.frozensets(st.integers(0, 29)),
    st.frozensets(st.sampled_from(IDS), min_size=len(IDS) - 2),
    st.booleans(),
    st.booleans(),
)


def _record(store: Store, pool: list[Signal], step: Step, now: datetime) -> None:
    on = [s for n, s in enumerate(pool) if n in step.active]
    for kind in KINDS:
        store.record_findings(
            Findings(watcher=kind, now=now, signals=[s for s in on if s.kind == kind])
        )


def _pass(store: Store, step: Step, now: datetime, batch: int) -> PassTally:
    failing = {"usage_drop": WatcherStatus(instance="usage_drop", consecutive_failures=9)}
    book = Book(
        config=CONFIG,
        rules=RULES,
        accounts=[a for a in ACCOUNTS if a.id in step.listed],
        watchers=failing if step.failing else {},
        sources={},
    )
    return run_pass(store, book, now, batch=batch)


def _on_record(store: Store) -> dict[str, Any]:
    return on_record(store, (a.id for a in ACCOUNTS))


def _stores(template: Path, folder: str) -> tuple[Store, Store]:
    made = []
    for name in ("one.db", "many.db"):
        path = Path(folder) / name
        shutil.copyfile(template, path)
        made.append(Store(f"sqlite:///{path}"))
    return made[0], made[1]


@settings(max_examples=25, deadline=None)
@given(
    pool=st.lists(signals_st, min_size=1, max_size=30),
    steps=st.lists(steps_st, min_size=1, max_size=4),
    batch=st.integers(1, 3),
)
def test_a_pass_in_batches_decides_what_one_pass_over_the_book_decides(
    sqlite_template: Path, pool: list[Signal], steps: list[Step], batch: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        one, many = _stores(sqlite_template, folder)
        try:
            now = T0
            for step in steps:
                now += step.advance
                for store in (one, many):
                    _record(store, pool, step, now)
                    if step.resolve_one and (open_ := store.alerts(open_only=True)):
                        AlertActions(store, FrozenClock(now)).act(
                            open_[-1].fingerprint, Resolve(), by="ann"
                        )
                whole = _pass(one, step, now, batch=1000)
                batched = _pass(many, step, now, batch=batch)
                assert whole.batches <= 2  # the listed accounts, then those gone
                assert told(batched) == told(whole)
                assert _on_record(many) == _on_record(one)
        finally:
            one.close()
            many.close()


def test_a_book_larger_than_a_batch_gets_the_alerts_of_one_pass(store: Store) -> None:
    """Every account of a 60-account book at risk, correlated all at once and then (on the
    same store, emptied of alerts) 7 at a time: the same alerts. Then the signals clear
    and an account leaves the list: the alerts of accounts with no signals left clear and
    the one of the account gone retires, batch or not."""
    accounts = [
        Account(id=f"acc-{n:03d}", arr=1000.0 * n, renewal_date=date(2026, 11, 1))
        for n in range(60)
    ]
    signals = [
        _signal(a.id, kind, "k", 0.9, n % 48, 60)
        for n, a in enumerate(accounts)
        for kind in {"usage_drop", *KINDS[: n % 3]}
    ]
    runs = []
    for batch in (1000, 7):
        with store.engine.begin() as conn:
            for table in ("alerts", "notifications", "score_history"):
                conn.execute(text(f"DELETE FROM {table}"))
        _raise(store, signals, T0)
        book = Book(config=CONFIG, rules=RULES, accounts=accounts, watchers={}, sources={})
        first = run_pass(store, book, T0, batch=batch)
        assert first.batches == (1 if batch == 1000 else 9)
        assert first.written == 60 and first.enqueued == 60
        _raise(store, [], T0 + timedelta(hours=1))
        book = Book(config=CONFIG, rules=RULES, accounts=accounts[1:], watchers={}, sources={})
        later = T0 + timedelta(days=3)
        cleared = run_pass(store, book, later, batch=batch)
        hold = CONFIG.correlation.resolve_hold_down
        resolved = run_pass(store, book, later + hold, batch=batch)
        states = {a.account_id: (a.state, a.acted_by or "") for a in store.alerts()}
        assert states["acc-000"] == (AlertState.RESOLVED, states["acc-000"][1])
        assert states["acc-000"][1].startswith("retired:")
        assert all(state == AlertState.RESOLVED for state, _ in states.values())
        alerts = {a.fingerprint: a.model_dump(exclude={"id", "version"}) for a in store.alerts()}
        runs.append((told(first), told(cleared), told(resolved), alerts))
    assert runs[0] == runs[1]


def _raise(store: Store, signals: list[Signal], now: datetime) -> None:
    for kind in KINDS:
        store.record_findings(
            Findings(watcher=kind, now=now, signals=[s for s in signals if s.kind == kind])
        )


def test_a_pass_sets_the_collector_back_as_it_found_it(store: Store) -> None:
    before = gc.get_threshold()
    gc.set_threshold(900, 11, 12)
    try:
        seen: list[tuple[int, int, int]] = []
        book = Book(config=CONFIG, rules=RULES, accounts=list(ACCOUNTS), watchers={}, sources={})
        run_pass(store, book, T0, told=lambda _notices: seen.append(gc.get_threshold()))
        assert seen and seen[0][0] > 900  # fewer young collections during the pass
        assert gc.get_threshold() == (900, 11, 12)
    finally:
        gc.set_threshold(*before)


@settings(max_examples=60, deadline=None)
@given(listed=st.integers(0, 30_000), size=st.integers(1, 8_000), shrinking=st.booleans())
def test_batches_take_every_listed_account_once_in_order_and_shrink_at_the_end(
    listed: int, size: int, shrinking: bool
) -> None:
    """Shrinking or not, the batches are the listed accounts in their order, each once and
    none over the size; shrinking, each is at most a quarter of those left (and at least
    SHRINK_FLOOR), so the last ones are small for a book of many batches."""
    accounts = [Account(id=f"a{n:05d}") for n in range(listed)]
    got = list(account_batches(accounts, lambda: [], size, shrinking=shrinking))
    assert [i for batch in got for i in batch] == [a.id for a in accounts]
    assert all(0 < len(b) <= size for b in got) or got == [[]]
    if not shrinking:
        assert all(len(b) == size for b in got[:-1])
        return
    left = listed
    for batch in got:
        if left:
            assert len(batch) == min(size, left, max(SHRINK_FLOOR, -(-left // SHRINK_SHARE)))
        left -= len(batch)
    if listed >= 4 * size > 4 * SHRINK_FLOOR:
        assert len(got[-1]) < size  # the end is in smaller pieces than the start
