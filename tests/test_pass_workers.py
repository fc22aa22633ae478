"""A correlation pass with a second process (a real spawned worker) decides exactly what a
pass in one process decides: the same alerts, outbox and scores, pass after pass; and a
worker that dies or fails loses nothing and tells nothing twice."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pass_support import on_record, told
from sqlalchemy import text

from swanwatch import pass_workers
from swanwatch.clock import FrozenClock
from swanwatch.config import Rule, load_config, parse_config
from swanwatch.engine import Engine
from swanwatch.model import Account, Signal
from swanwatch.pass_workers import PassWorker, wanted
from swanwatch.passes import Book, PassTally, run_pass
from swanwatch.store import Findings, Store

T0 = datetime(2026, 10, 1, tzinfo=UTC)
KINDS = ("champion_departure", "usage_drop", "renewal_lapse", "support_spike")
ACCOUNTS = [
    Account(
        id=f"acc-{n:02d}",
        arr=5_000.0 * (n + 1),
        renewal_date=date(2026, 10, 10) + timedelta(days=15 * n),
        owner=f"csm{n % 3}@example.com",
        segment="smb" if n % 2 else "enterprise",
    )
    for n in range(12)
]
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
RULES = [
    Rule(
        name="champion_and_usage",
        title="Champion left and usage is falling",
        severity="high",
        all_of=["champion_departure", "usage_drop"],
    ),
    Rule(name="lapsing", title="Renewal lapsing", severity="warning", any_of=["renewal_lapse"]),
]


@pytest.fixture(scope="module")
def worker() -> Iterator[PassWorker]:
    """One real worker process for the module's passes (started once: a second or so)."""
    found = PassWorker(True)
    yield found
    if found.running:
        found.stop()


def _signal(account: int, kind: str, key: str, strength: float, age_h: int) -> Signal:
    return Signal(
        watcher=kind,
        account_id=ACCOUNTS[account].id,
        kind=kind,
        key=key,
        strength=strength,
        observed_at=T0 - timedelta(hours=age_h),
        summary=f"{kind} {key} on {ACCOUNTS[account].id}",
    )


signals_st = st.builds(
    _signal,
    st.integers(0, len(ACCOUNTS) - 1),
    st.sampled_from(KINDS),
    st.sampled_from(["k1", "k2"]),
    st.floats(0.3, 1.0),
    st.integers(0, 24 * 20),
)


def _raise(store: Store, signals: list[Signal], now: datetime) -> None:
    for kind in KINDS:
        found = [s for s in signals if s.kind == kind]
        store.record_findings(Findings(watcher=kind, now=now, signals=found))


def _pass(
    store: Store, now: datetime, accounts: list[Account], worker: PassWorker | None, batch: int
) -> PassTally:
    book = Book(config=CONFIG, rules=RULES, accounts=accounts, watchers={}, sources={})
    helper = None
    if worker is not None:
        helper = worker.helper(store, book, now, keep=True, tell=True)
        assert helper is not None
    return run_pass(store, book, now, batch=batch, helper=helper)


def _on_record(store: Store) -> dict[str, Any]:
    return on_record(store, (a.id for a in ACCOUNTS))


@settings(max_examples=15, deadline=None)
@given(
    pool=st.lists(signals_st, min_size=1, max_size=40),
    active=st.lists(st.frozensets(st.integers(0, 39)), min_size=1, max_size=3),
    advance=st.sampled_from([timedelta(hours=1), timedelta(days=2)]),
    batch=st.integers(1, 12),
)
def test_a_pass_with_a_worker_decides_what_one_process_decides(
    sqlite_template: Path,
    worker: PassWorker,
    pool: list[Signal],
    active: list[frozenset[int]],
    advance: timedelta,
    batch: int,
) -> None:
    """Pass after pass (signals on and off, time moving), a pass whose batches are shared
    with a worker writes what a pass in one process writes, and tells the same."""
    with tempfile.TemporaryDirectory() as folder:
        stores = []
        for name in ("alone.db", "shared.db"):
            shutil.copyfile(sqlite_template, Path(folder) / name)
            stores.append(Store(f"sqlite:///{folder}/{name}"))
        alone, shared = stores
        try:
            now = T0
            for on in active:
                now += advance
                signals = [s for n, s in enumerate(pool) if n in on]
                for store in stores:
                    _raise(store, signals, now)
                whole = _pass(alone, now, ACCOUNTS, None, batch=1000)
                halves = _pass(shared, now, ACCOUNTS, worker, batch=batch)
                assert told(halves) == told(whole)
                assert _on_record(shared) == _on_record(alone)
        finally:
            for store in stores:
                store.close()


def _book_at_risk() -> list[Signal]:
    return [
        _signal(n, kind, "k", 0.9, n)
        for n in range(len(ACCOUNTS))
        for kind in ("champion_departure", "usage_drop", "renewal_lapse")[: 1 + n % 3]
    ]


def _fresh(store: Store) -> None:
    with store.engine.begin() as conn:
        for table in ("alerts", "notifications", "score_history"):
            conn.execute(text(f"DELETE FROM {table}"))


def test_a_worker_that_dies_loses_no_batch_and_tells_nothing_twice(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """On both stores: the reference pass, then the same with a worker, then with a worker
    killed (kill -9) before the pass: every batch is decided (here), once."""
    _raise(store, _book_at_risk(), T0)
    runs: list[tuple[tuple[object, ...], tuple[object, ...], dict[str, Any]]] = []
    worker = PassWorker(True)
    try:
        for kill in (False, False, True):
            _fresh(store)
            if kill:
                pid = worker.pid()
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
            with caplog.at_level(logging.WARNING, logger="swanwatch"):
                first = _pass(store, T0, ACCOUNTS, worker if runs else None, batch=8)
                later = _pass(store, T0 + timedelta(hours=1), ACCOUNTS, worker, batch=8)
            runs.append((told(first), told(later), _on_record(store)))
        assert runs[0][0][2] == 8  # the accounts with both signals: one alert each, told once
        assert runs[1] == runs[0]
        assert runs[2] == runs[0]
        assert "deciding it here" in caplog.text or "worker is gone" in caplog.text
        # A new worker took over with the pass after.
        assert worker.running and worker.pid() not in (None, pid)
    finally:
        worker.stop()


def test_a_batch_that_fails_in_the_worker_is_decided_here(
    tmp_path: Path, sqlite_template: Path, worker: PassWorker, caplog: pytest.LogCaptureFixture
) -> None:
    """The worker cannot open the store (here: another path): each batch fails there, is
    decided by the pass itself, and the pass writes what it writes alone."""
    paths = [tmp_path / "alone.db", tmp_path / "shared.db"]
    stores = []
    for path in paths:
        shutil.copyfile(sqlite_template, path)
        stores.append(Store(f"sqlite:///{path}"))
    alone, shared = stores
    try:
        for store in stores:
            _raise(store, _book_at_risk(), T0)
        whole = _pass(alone, T0, ACCOUNTS, None, batch=1000)
        shared.url = f"sqlite:///{tmp_path}/no-such-folder/store.db"
        with caplog.at_level(logging.WARNING, logger="swanwatch"):
            halves = _pass(shared, T0, ACCOUNTS, worker, batch=8)
        assert "deciding it here" in caplog.text
        assert told(halves) == told(whole)
        assert _on_record(shared) == _on_record(alone)
    finally:
        for store in stores:
            store.close()


def test_the_worker_is_wanted_for_many_signals_on_a_store_it_can_open() -> None:
    many, few = lambda: 1_000_000, lambda: 3_000
    assert wanted(None, many, "sqlite:////srv/swanwatch.db", cores=2)
    assert wanted(None, many, "postgresql+psycopg://db/swanwatch", cores=8)
    assert not wanted(None, few, "sqlite:////srv/swanwatch.db", cores=2)
    assert not wanted(None, many, "sqlite:////srv/swanwatch.db", cores=1)
    assert not wanted(False, many, "sqlite:////srv/swanwatch.db", cores=2)
    assert wanted(True, few, "sqlite:////srv/swanwatch.db", cores=1)
    for memory in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"):
        assert not wanted(True, many, memory, cores=8)


def test_a_pass_over_few_signals_keeps_to_one_process_and_over_many_shares_it(
    sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unset, the worker is the signals' to call for: a book of many accounts with few
    signals is decided in one process (a worker's hand-overs made such a pass slower), and
    a pass once there are enough signals has the worker; it stays, but takes no batch of a
    pass over few signals again."""
    shutil.copy(sqlite_template, tmp_path / "sw.db")
    store = Store(f"sqlite:///{tmp_path}/sw.db")
    worker = PassWorker(None)
    book = Book(config=CONFIG, rules=RULES, accounts=ACCOUNTS, watchers={}, sources={})
    # The line, where a test can reach it: the signals of three accounts.
    monkeypatch.setattr(pass_workers, "AUTO_MIN_SIGNALS", 3)
    try:
        _raise(store, [_signal(0, "usage_drop", "u", 0.8, 1)], T0)
        assert store.active_signal_count() == 1
        assert worker.helper(store, book, T0, keep=True, tell=True) is None
        assert not worker.running  # no process started for it
        _raise(store, [_signal(i, "usage_drop", "u", 0.8, 1) for i in range(3)], T0)
        helper = worker.helper(store, book, T0, keep=True, tell=True)
        assert helper is not None and worker.running
        assert (done := helper([ACCOUNTS[0].id])) is not None
        assert done.result(timeout=120).accounts == 1  # the worker decided that batch
        _raise(store, [], T0)  # the signals clear: too few again
        assert store.active_signal_count() == 0
        assert worker.helper(store, book, T0, keep=True, tell=True) is None
        assert worker.running
    finally:
        worker.stop()
        store.close()


ENGINE_CONFIG = """
watchers:
  - type: static
    options:
      signals:
        - {account: acme, kind: champion_departure, strength: 0.9, days_ago: 3}
        - {account: acme, kind: usage_drop, strength: 0.8, days_ago: 10}
        - {account: globex, kind: usage_drop, strength: 0.8}
        - {account: globex, kind: champion_departure, strength: 0.9}
correlation:
  rules:
    - name: champion_and_usage
      title: Champion left and usage is falling
      severity: high
      all_of: [champion_departure, usage_drop]
daemon: {correlation_worker: WORKER, watcher_processes: PROCESSES}
notify: {console: false}
"""


async def test_the_engine_shares_its_passes_with_a_worker_and_stops_it(
    make_config: Any, tmp_path: Path
) -> None:
    """``daemon.correlation_worker: true``: the engine's cycles, with the worker (its own,
    or the watchers' worker process), leave the store as without it; the worker is gone when
    the engine closes."""
    results = []
    for setting, processes in (("false", 0), ("true", 0), ("true", 1)):
        text = ENGINE_CONFIG.replace("WORKER", setting).replace("PROCESSES", str(processes))
        config = load_config(make_config(text))
        store = Store(f"sqlite:///{tmp_path}/{setting}-{processes}.db")
        try:
            async with Engine(config, store, FrozenClock("2026-11-20T12:00:00Z")) as engine:
                engine.batch_accounts = 1
                await engine.cycle()
                engine.clock = FrozenClock("2026-11-21T12:00:00Z")
                await engine.cycle()
                pid = engine.pass_worker.pid()
            alerts = [a.model_dump(exclude={"id"}) for a in store.alerts()]
            outbox = sorted((n.idempotency_key, n.event) for n in store.notifications())
            results.append((alerts, outbox))
        finally:
            store.close()
        if setting == "true" and not processes:
            assert pid is not None
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        else:  # none, or the watchers' worker process takes the batches: none of its own
            assert pid is None
    assert results[0] == results[1] == results[2]
    assert len(results[0][0]) == 2
