"""A correlation pass over the book, streamed one account batch at a time.

The listed accounts are taken in their order, a batch at a time, then the accounts that
are no longer listed but have an open alert. For each batch the pass reads the active
signals of its accounts as light records (:class:`~swanwatch.model.ActiveSignal`),
assesses them (:func:`swanwatch.correlate.assess_all`), reconciles them with their alerts
on record (:func:`swanwatch.alerts.decide_accounts`: new, refreshed, cleared, retired or
resumed alerts) and saves the batch's changed alerts and their outbox entries in one
transaction (:meth:`~swanwatch.store.AlertsStore.save_pass`: each alert only over the
version the pass read). Memory is bounded by the batch, not the book.

What needs the whole book is decided once: Swanwatch's own alerts (saved with the first
batch), the silences, and the counts read back at the end. An alert of an account that
has no signals left is in its account's batch like any other, and one of an account no
longer listed in a batch of its own, so it clears or retires as in one pass over the
book. Each account is decided from its own signals and alerts alone, so what a pass
writes does not depend on the batch size; only the order of the outbox entries does
(most severe first within each batch).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from swanwatch.alerts import (
    OPS_ACCOUNT,
    Notice,
    Reconciliation,
    WatcherHealth,
    decide_ops,
    muter,
    telling_order,
)
from swanwatch.correlate import assess_all
from swanwatch.delivery import outbox_entries
from swanwatch.model import Account, Alert, SourceHealth
from swanwatch.muting import Muter
from swanwatch.settings import Config, Rule
from swanwatch.steady import decide_heads
from swanwatch.store import Store

#: Accounts per batch. Memory grows with it (a few hundred MiB at ten signals an account),
#: the count of reads and writes shrinks; a pass over a book up to this size reads and
#: decides all its alerts at once, as before batches (a person's action made during such
#: a pass is always refused by it, never overwritten). Under every backend's limit of
#: bound parameters in one statement.
BATCH_ACCOUNTS = 20_000


@dataclass
class PassTally:
    """What a streamed pass did, summed over its batches."""

    #: Accounts with at least one active signal (assessed).
    accounts: int = 0
    written: int = 0
    enqueued: int = 0
    batches: int = 0
    refused: list[str] = field(default_factory=list)
    #: The notices told and the alerts changed (kept only when the caller asks).
    notices: list[Notice] = field(default_factory=list)
    changed: list[Alert] = field(default_factory=list)


@dataclass(frozen=True)
class Book:
    """What a pass is run over: the config, its rules, the listed accounts and the health
    the ops alerts are decided from."""

    config: Config
    rules: Sequence[Rule]
    accounts: Sequence[Account]
    watchers: Mapping[str, WatcherHealth]
    sources: Mapping[str, SourceHealth]


def account_batches(
    listed: Sequence[Account], alerting: Callable[[], Sequence[str]], size: int
) -> Iterator[Sequence[str]]:
    """The ids of the listed accounts in their order, then those of the accounts with an
    open alert that are not listed (asked for once the listed ones are done: their alerts
    retire), in batches of at most ``size``; one empty batch when there are none."""
    empty = True
    for start in range(0, len(listed), size):
        empty = False
        yield [a.id for a in listed[start : start + size]]
    ids = {a.id for a in listed}
    rest = [i for i in alerting() if i not in ids]
    for start in range(0, len(rest), size):
        empty = False
        yield rest[start : start + size]
    if empty:
        yield []


def run_pass(
    store: Store,
    book: Book,
    now: datetime,
    *,
    batch: int = BATCH_ACCOUNTS,
    keep: bool = True,
    told: Callable[[Sequence[Notice]], None] | None = None,
) -> PassTally:
    """One correlation pass over the book, batch by batch (see the module's docstring).

    ``keep`` keeps every notice and changed alert in the tally (a backtest reads them);
    without it only the counts are kept, and ``told`` (when given) sees each batch's
    notices as they are saved.
    """
    with _fewer_collections():
        return _run(store, book, now, batch, keep, told)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """The cyclic garbage collector, run less often while a pass runs: a pass allocates
    millions of small records that die young and make no cycles, and at the default
    threshold each batch set off full collections that walked the whole heap (the
    engine's account list included): 44% of a pass's CPU over 100,000 accounts
    (BENCHMARKS.md, Correlation). The thresholds are set back after, and the objects that
    were there before are collected as before."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], _GC_THRESHOLD), *before[1:])
    # What lives before the pass (the engine, its accounts) is left out of the pass's
    # collections: they walk only what the pass allocates.
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


#: Allocations between two young collections during a pass (Python's default: 700).
_GC_THRESHOLD = 200_000


def _run(
    store: Store,
    book: Book,
    now: datetime,
    batch: int,
    keep: bool,
    told: Callable[[Sequence[Notice]], None] | None,
) -> PassTally:
    step = _Batch(store, book, now, muter(store.silences(active_at=now), now))
    first = True
    for ids in account_batches(book.accounts, step.alerting, batch):
        decided, read = step.decide(ids)
        if first:  # the ops alerts are decided once, and saved with the first batch
            ops_alerts = store.alerts(account_id=OPS_ACCOUNT)
            ops = decide_ops(
                ops_alerts,
                watchers=book.watchers,
                sources=book.sources,
                muted=step.muted,
                now=now,
                config=book.config,
            )
            decided.changed.extend(ops.changed)
            decided.notices.extend(ops.notices)
            read.update((a.fingerprint, a.version) for a in ops_alerts)
            first = False
        step.save(decided, read, keep=keep, told=told)
    step.scores.finish()
    return step.tally


class _Batch:
    """One batch of a pass: its reads, its decisions and its writes."""

    def __init__(self, store: Store, book: Book, now: datetime, muted: Muter) -> None:
        self.store = store
        self.book = book
        self.now = now
        self.muted = muted
        self.configured = {w.instance for w in book.config.active_watchers()}
        self.listed = {a.id: a for a in book.accounts}
        self.tally = PassTally()
        self.scores = _Scores(store, book.config, now)

    def alerting(self) -> list[str]:
        return self.store.alerting_accounts(but=OPS_ACCOUNT)

    def decide(self, ids: Sequence[str]) -> tuple[Reconciliation, dict[str, int]]:
        """Assess the batch's accounts and reconcile them with their alerts on record."""
        if not ids:
            return Reconciliation(), {}
        config, now = self.book.config, self.now
        signals = [s for s in self.store.active_signals(ids) if s.watcher in self.configured]
        accounts = [self.listed[i] for i in ids if i in self.listed]
        assessments = assess_all(accounts, signals, now, config.correlation, self.book.rules)
        del signals
        heads = self.store.alert_heads(ids)
        decided = decide_heads(
            assessments,
            heads,
            self.store.alerts_of,
            listed=[a.id for a in accounts],
            muted=self.muted,
            now=now,
            config=config,
        )
        self.tally.accounts += len(assessments)
        self.scores.record(ids, {a.account.id: a.score for a in assessments})
        return decided, {h.fingerprint: h.version for h in heads}

    def save(
        self,
        decided: Reconciliation,
        read: Mapping[str, int],
        *,
        keep: bool,
        told: Callable[[Sequence[Notice]], None] | None,
    ) -> None:
        """Save the changed alerts and their outbox entries (one transaction)."""
        tally = self.tally
        notices = telling_order(decided.notices)
        entries = outbox_entries(notices, self.book.config, self.now, self.listed)
        saved = self.store.save_pass(decided.changed, entries, read)
        refused = set(saved.refused)
        tally.batches += 1
        tally.written += saved.written
        tally.enqueued += saved.enqueued
        tally.refused.extend(saved.refused)
        notices = [n for n in notices if n.alert.fingerprint not in refused]
        if told is not None:
            told(notices)
        if keep:
            tally.notices.extend(notices)
            tally.changed.extend(a for a in decided.changed if a.fingerprint not in refused)


class _Scores:
    """Each account's score today, for the board's chart, written batch by batch where it
    changed; history older than ``server.board.history_days`` is dropped at the end."""

    def __init__(self, store: Store, config: Config, now: datetime) -> None:
        self.store = store
        self.day = now.date()
        self.keep_from = (now - timedelta(days=config.server.board.history_days)).date()

    def record(self, ids: Sequence[str], scores: Mapping[str, float]) -> None:
        if not scores:
            return
        known = self.store.scores_on(self.day, ids)
        changed = {k: v for k, v in scores.items() if known.get(k) != round(v, 4)}
        if changed:
            self.store.record_scores(changed, self.day, keep_from=None)

    def finish(self) -> None:
        self.store.record_scores({}, self.day, keep_from=self.keep_from)
