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

For the same reason a batch can be decided anywhere: given a ``helper`` (a second process,
:mod:`swanwatch.pass_workers`), the pass hands it a batch whenever it is free and decides
the next one itself meanwhile, so a big book's pass runs on two cores. Each batch is saved
by whoever decided it, over the versions it read, exactly as in one process; a batch the
helper could not finish (its process died) is decided again here, from what the store holds
then, so nothing is lost or told twice.
"""

from __future__ import annotations

import gc
import logging
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from swanwatch import collector
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
from swanwatch.store.history import chart_score

log = logging.getLogger("swanwatch.passes")
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
    listed: Sequence[Account],
    alerting: Callable[[], Sequence[str]],
    size: int,
    *,
    shrinking: bool = False,
) -> Iterator[Sequence[str]]:
    """The ids of the listed accounts in their order, then those of the accounts with an
    open alert that are not listed (asked for once the listed ones are done: their alerts
    retire), in batches of at most ``size``; one empty batch when there are none.

    ``shrinking``: the listed accounts' batches shrink as the end nears (each at most a
    :data:`SHRINK_SHARE` th of those left, and no fewer than :data:`SHRINK_FLOOR`), so
    that two processes sharing them finish together: with batches of one size, the
    process that ran out waited for up to two of the other's (1.8 s of a 14 s pass over
    100,000 accounts)."""
    empty = True
    start = 0
    while start < len(listed):
        empty = False
        step = size
        if shrinking:
            step = min(size, max(SHRINK_FLOOR, -(-(len(listed) - start) // SHRINK_SHARE)))
        yield [a.id for a in listed[start : start + step]]
        start += step
    ids = {a.id for a in listed}
    rest = [i for i in alerting() if i not in ids]
    for start in range(0, len(rest), size):
        empty = False
        yield rest[start : start + size]
    if empty:
        yield []


#: A shrinking batch (:func:`account_batches`) takes at most this share of the accounts
#: left: one for each process, with one more queued for the helper, and one to spare.
SHRINK_SHARE = 4
#: And at least this many accounts: a batch's own reads and transaction cost little next
#: to deciding a thousand accounts.
SHRINK_FLOOR = 1_000

#: Hands a batch (its account ids) to another process; the future is that batch's tally
#: (None: not taken, the pass decides it itself).
Helper = Callable[[Sequence[str]], "Future[PassTally] | None"]


def run_pass(
    store: Store,
    book: Book,
    now: datetime,
    *,
    batch: int = BATCH_ACCOUNTS,
    keep: bool = True,
    told: Callable[[Sequence[Notice]], None] | None = None,
    helper: Helper | None = None,
) -> PassTally:
    """One correlation pass over the book, batch by batch (see the module's docstring).

    ``keep`` keeps every notice and changed alert in the tally (a backtest reads them);
    without it only the counts are kept, and ``told`` (when given) sees each batch's
    notices as they are saved. ``helper`` decides some of the batches in another process.
    """
    with _fewer_collections():
        return _run(store, book, now, batch, keep, told, helper)


def run_batch(
    store: Store,
    book: Book,
    now: datetime,
    muted: Muter,
    ids: Sequence[str],
    *,
    keep: bool,
    tell: bool,
) -> PassTally:
    """One batch of a pass, decided and saved: a helper's share of a pass. The tally keeps
    the batch's notices and changed alerts when ``keep``, its notices alone when ``tell``."""
    notices: list[Notice] = []
    with _fewer_collections():
        step = _Batch(store, book, now, muted, keep, notices.extend if tell and not keep else None)
        with collector.paused():
            step.save(step.decide(ids))
    if tell and not keep:
        step.tally.notices = notices
    return step.tally


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
    helper: Helper | None,
) -> PassTally:
    step = _Batch(store, book, now, muter(store.silences(active_at=now), now), keep, told)
    if helper is not None:  # smaller batches: the helper's last ones are a short wait
        batch = max(1, batch // HELPER_SPLIT)
    lent: deque[tuple[Future[PassTally], Sequence[str]]] = deque()
    batches = account_batches(book.accounts, step.alerting, batch, shrinking=helper is not None)
    for ids in batches:
        while lent and lent[0][0].done():
            step.take_back(*lent.popleft())
        if helper is not None and ids and len(lent) < HELPER_AHEAD:
            taken = helper(ids)
            if taken is not None:
                lent.append((taken, ids))
                continue
        step.run(ids)
    while lent:
        step.take_back(*lent.popleft())
    if step.first:  # every batch went to the helper: the ops alerts on their own
        step.run([])
    step.scores.finish()
    return step.tally


#: With a helper, a pass's batches are this many times smaller: each process holds one
#: batch at a time (with one more queued for the helper, as account ids), so a pass's
#: memory stays within that of one batch of the pass without a helper.
HELPER_SPLIT = 4
#: Batches handed to the helper ahead: one it decides, one queued, so it never waits.
HELPER_AHEAD = 2


class _Decided(NamedTuple):
    """A batch decided, to be saved: the lifecycle's changes and notices, the version of
    each alert read, and the scores that moved."""

    changes: Reconciliation
    read: dict[str, int]
    scores: dict[str, float]


class _Batch:
    """One batch of a pass: its reads, its decisions and its writes."""

    def __init__(
        self,
        store: Store,
        book: Book,
        now: datetime,
        muted: Muter,
        keep: bool = True,
        told: Callable[[Sequence[Notice]], None] | None = None,
    ) -> None:
        self.store = store
        self.book = book
        self.now = now
        self.muted = muted
        #: Keep every notice and changed alert in the tally; tell each batch's notices.
        self.keep, self.told = keep, told
        #: No batch saved yet: the ops alerts go with the first.
        self.first = True
        self.configured = {w.instance for w in book.config.active_watchers()}
        self.listed = {a.id: a for a in book.accounts}
        self.tally = PassTally()
        self.scores = _Scores(store, book.config, now)

    def alerting(self) -> list[str]:
        return self.store.alerting_accounts(but=OPS_ACCOUNT)

    def decide(self, ids: Sequence[str]) -> _Decided:
        """Assess the batch's accounts and reconcile them with their alerts on record."""
        if not ids:
            return _Decided(Reconciliation(), {}, {})
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
        moved = self.scores.moved(ids, {a.account.id: a.score for a in assessments})
        return _Decided(decided, {h.fingerprint: h.version for h in heads}, moved)

    def add_ops(self, decided: Reconciliation, read: dict[str, int]) -> None:
        """Swanwatch's own alerts, decided from the book's health, joined to a batch."""
        ops_alerts = self.store.alerts(account_id=OPS_ACCOUNT)
        ops = decide_ops(
            ops_alerts,
            watchers=self.book.watchers,
            sources=self.book.sources,
            muted=self.muted,
            now=self.now,
            config=self.book.config,
        )
        decided.changed.extend(ops.changed)
        decided.notices.extend(ops.notices)
        read.update((a.fingerprint, a.version) for a in ops_alerts)

    def run(self, ids: Sequence[str]) -> None:
        """Decide and save a batch here (the ops alerts with the first)."""
        # The collector is paused for the whole batch: its records (the signals read,
        # their assessments, the candidates) make no cycles and die together when it ends.
        # Paused phase by phase, the young collection that followed each phase walked
        # everything the batch still held (6% of a steady pass at 100,000 accounts).
        with collector.paused():
            decided = self.decide(ids)
            if self.first:
                self.add_ops(decided.changes, decided.read)
                self.first = False
            self.save(decided)
            del decided  # freed now: the collector, back on, finds nothing to walk

    def take_back(self, lent: Future[PassTally], ids: Sequence[str]) -> None:
        """A helper's batch: its tally added to the pass's; decided here instead when the
        helper failed (its process died, or the batch failed there: a failure that is
        not the helper's fails here again, as in one process)."""
        try:
            done = lent.result()
        except Exception as exc:  # any failure there: the batch is decided here
            log.warning("a pass helper failed on a batch of %d accounts (%s): deciding it here",
                        len(ids), exc)  # fmt: skip
            self.run(ids)
            return
        tally = self.tally
        tally.accounts += done.accounts
        tally.batches += done.batches
        tally.written += done.written
        tally.enqueued += done.enqueued
        tally.refused.extend(done.refused)
        if self.told is not None:
            self.told(done.notices)
        if self.keep:
            tally.notices.extend(done.notices)
            tally.changed.extend(done.changed)

    def save(self, batch: _Decided) -> None:
        """Save the changed alerts, their outbox entries and the scores that moved (one
        transaction)."""
        tally, keep, told = self.tally, self.keep, self.told
        decided, read, moved = batch
        notices = telling_order(decided.notices)
        entries = outbox_entries(notices, self.book.config, self.now, self.listed)
        scores = (self.scores.day, moved) if moved else None
        saved = self.store.save_pass(decided.changed, entries, read, scores)
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

    def moved(self, ids: Sequence[str], scores: Mapping[str, float]) -> dict[str, float]:
        """The scores to write: those not yet recorded for the day as they are now (the
        batch's save writes them)."""
        if not scores:
            return {}
        known = self.store.scores_on(self.day, ids)
        return {k: v for k, v in scores.items() if known.get(k) != chart_score(v)}

    def finish(self) -> None:
        self.store.record_scores({}, self.day, keep_from=self.keep_from)
