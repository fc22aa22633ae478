"""A correlation pass on two cores: a second process decides some of its batches.

A pass decides each account from its own signals and alerts alone (:mod:`swanwatch.passes`),
so any process that reaches the store can decide a batch and save it over the versions it
read. For a big book the engine keeps one spawned process (:class:`PassWorker`); a pass
hands it a batch whenever it is free and decides the next one itself meanwhile. The worker
reads the batch's signals and alerts, decides, saves the alerts, their outbox entries and
scores, and sends back the batch's tally (with its notices when the engine tells or keeps
them). Storing stays exactly as in one process: the same transaction per batch, over the
same versions; a batch the worker could not finish is decided again by the pass.

With a worker, a pass runs in batches a quarter of the size
(:data:`~swanwatch.passes.HELPER_SPLIT`), one in each process and one queued, so a pass's
memory stays that of one batch. When (``daemon.correlation_worker``; unset: automatic):
from :data:`AUTO_MIN_SIGNALS` active signals on, on a machine of two cores or more, with a
store that another process can open (a file or a server, not SQLite in memory). The count
of signals, not of accounts, says how much a pass has to do: a book of 100,000 accounts
with a few thousand signals is decided in about a second, and a worker's hand-overs made
that pass slower, not quicker. The worker starts once, when a cycle first finds that many
signals on record (before its watchers run, so that it starts up meanwhile) or at the
first pass that has them, and lives as long as the engine: a fresh interpreter importing
the pass takes a second or more of the second core (BENCHMARKS.md, "Correlation").
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from swanwatch import parallel
from swanwatch.parallel import account_rows, accounts_from_rows

if TYPE_CHECKING:
    from swanwatch.passes import Book, Helper, PassTally
    from swanwatch.settings import Config, Rule
    from swanwatch.store import Store

log = logging.getLogger("swanwatch.pass_workers")

#: From this many active signals on, an unset ``daemon.correlation_worker`` starts the
#: worker. Measured over 100,000 accounts (steady passes, wall seconds, with and without
#: the worker): 2,933 signals 1.9 against 1.0; 30,000 signals 1.9 against 1.8; 100,000
#: signals 3.0 against 4.1; 1,000,000 signals 16 against 31 (BENCHMARKS.md, "Correlation").
AUTO_MIN_SIGNALS = 50_000


def wanted(
    setting: bool | None, signals: Callable[[], int], url: str, cores: int | None = None
) -> bool:
    """Whether a pass on the store at ``url`` has a worker, ``signals`` counting its active
    signals (asked only when the setting leaves it to them)."""
    if not shared(url):
        return False
    if setting is not None:
        return setting
    return (cores or os.cpu_count() or 1) >= 2 and signals() >= AUTO_MIN_SIGNALS


def shared(url: str) -> bool:
    """Whether another process opens the same store at ``url`` (SQLite in memory: no)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return True
    database = parsed.database or ""
    return database not in ("", ":memory:") and parsed.query.get("mode") != "memory"


@dataclass(frozen=True)
class BatchJob:
    """One batch of a pass, as the worker gets it: what it needs to decide it alone."""

    url: str
    config: Config
    rules: tuple[Rule, ...]
    now: datetime
    ids: tuple[str, ...]
    #: The batch's listed accounts (:func:`~swanwatch.parallel.account_rows`).
    accounts: list[tuple[Any, ...]]
    keep: bool
    tell: bool


class PassWorker:
    """An engine's pass worker: one spawned process, started for a big book."""

    def __init__(self, setting: bool | None) -> None:
        #: ``daemon.correlation_worker``: always, never, or by the book (None).
        self.setting = setting
        self._pool: ProcessPoolExecutor | None = None
        #: Whether the pool is this worker's own (else the watchers' workers', shared).
        self._own = False
        self._warm: Future[int] | None = None
        #: A batch came back from the pool broken (its process died): the next start
        #: replaces the pool, whether or not a later hand-over found out too.
        self._broken = False
        #: Held by :meth:`start`: a cycle's watchers and a pass may both start the worker,
        #: from two threads, and the count of signals between the check and the start
        #: would let both start one.
        self._starting = threading.Lock()

    @property
    def running(self) -> bool:
        return self._pool is not None

    def start(
        self, signals: Callable[[], int], url: str, shared: ProcessPoolExecutor | None = None
    ) -> None:
        """Start the worker if a pass over the store's ``signals`` (their count, asked
        only when the setting leaves it to them) wants one and it is not running; it
        imports what a pass needs at once. With ``shared`` (the watchers' worker processes,
        :mod:`swanwatch.parallel`), their processes take the batches: no process more."""
        with self._starting:
            if self._pool is not None and self._broken:
                self._drop("its process died")
            if self._pool is not None or not wanted(self.setting, signals, url):
                return
            if shared is not None:
                self._pool, self._own, self._warm = shared, False, None
            else:
                self._pool, self._own = parallel.pool(1), True
                self._warm = self._pool.submit(warm)
                log.info("correlation passes run on two cores: worker started")

    def pid(self, timeout: float = 60.0) -> int | None:
        """The worker's process id once it has started (None: no worker)."""
        warmed = self._warm if self._pool is not None else None
        return None if warmed is None else warmed.result(timeout)

    def helper(
        self,
        store: Store,
        book: Book,
        now: datetime,
        shared: ProcessPoolExecutor | None = None,
        *,
        keep: bool,
        tell: bool,
    ) -> Helper | None:
        """What a pass over ``book`` on ``store`` hands its batches to: the worker (started
        now if need be, see :meth:`start`) when the store's active signals call for it,
        else None. They are counted once, and only when the setting leaves it to them."""
        signals = cache(store.active_signal_count)
        self.start(signals, store.url, shared)
        return self.lender(store, book, now, signals, keep=keep, tell=tell)

    def lender(
        self,
        store: Store,
        book: Book,
        now: datetime,
        signals: Callable[[], int],
        *,
        keep: bool,
        tell: bool,
    ) -> Helper | None:
        """What a pass over ``book`` hands its batches to (:func:`swanwatch.passes.run_pass`),
        None without a worker or when ``signals`` (the store's active ones) are too few for
        one to pay; it takes no batch once the worker is gone (the pass then decides each
        itself)."""
        if self._pool is None or not wanted(self.setting, signals, store.url):
            return None
        listed = {a.id: a for a in book.accounts}
        url = make_url(store.url).render_as_string(hide_password=False)
        rules = tuple(book.rules)

        def lend(ids: Sequence[str]) -> Future[PassTally] | None:
            pool = self._pool
            if pool is None:
                return None
            rows = account_rows([listed[i] for i in ids if i in listed])
            job = BatchJob(url, book.config, rules, now, tuple(ids), rows, keep, tell)
            try:
                lent = pool.submit(run_job, job)
            except (BrokenProcessPool, RuntimeError) as exc:
                if self._pool is pool:
                    self._drop(str(exc))
                return None
            lent.add_done_callback(lambda done: self._note(done, pool))
            return lent

        return lend

    def _note(self, done: Future[PassTally], pool: ProcessPoolExecutor) -> None:
        """A batch lent to ``pool`` came back; broken, when the worker's process died
        under it (a pool let go of since is no matter)."""
        broken = not done.cancelled() and isinstance(done.exception(), BrokenProcessPool)
        if broken and self._pool is pool:
            self._broken = True

    def _drop(self, why: str) -> None:
        """Let go of a pool that cannot take batches: a new one starts with the next pass."""
        pool, self._pool, self._warm, self._broken = self._pool, None, None, False
        log.warning("the pass worker is gone (%s): a new one starts with the next pass", why)
        if pool is not None and self._own:
            pool.shutdown(wait=False, cancel_futures=True)

    def stop(self) -> None:
        """Stop the worker (its batch under way finishes first) and wait for it to exit."""
        pool, self._pool = self._pool, None
        if pool is not None and self._own:
            pool.shutdown(wait=True, cancel_futures=True)

    async def close(self) -> None:
        await asyncio.to_thread(self.stop)


def warm() -> int:
    """In a new worker: import what a pass needs, while the engine is busy elsewhere."""
    import swanwatch.passes
    import swanwatch.store  # noqa: F401

    return os.getpid()


#: The worker's store, by URL (the engine's; one at a time).
_STORES: dict[str, Store] = {}


def run_job(job: BatchJob) -> PassTally:
    """In the worker: decide and save one batch (:func:`swanwatch.passes.run_batch`).
    A failure is sent back as a plain RuntimeError with its message (a driver's error may
    not survive pickling), and the pass decides the batch again itself."""
    from swanwatch.muting import muter
    from swanwatch.passes import Book, run_batch

    try:
        store = _store(job.url)
        book = Book(
            config=job.config,
            rules=job.rules,
            accounts=accounts_from_rows(job.accounts),
            watchers={},
            sources={},
        )
        muted = muter(store.silences(active_at=job.now), job.now)
        return run_batch(store, book, job.now, muted, job.ids, keep=job.keep, tell=job.tell)
    except Exception as exc:
        raise RuntimeError(f"{type(exc).__name__}: {exc}") from None


def _store(url: str) -> Store:
    from swanwatch.store import Store

    found = _STORES.get(url)
    if found is None:
        for old in _STORES.values():
            old.close()
        _STORES.clear()
        found = _STORES[url] = Store(url, migrate=False)
    return found
