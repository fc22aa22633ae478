"""Watchers on every core: a watcher that only reads sources runs in a worker process.

A cycle's watchers are independent, but Python runs one thread of Python at a time: four
watchers over a big book share one core. So the engine hands each *historical* watcher (one
that reads only dated records from sources: no HTTP, no live lookups) to a process of a
small pool, the way a shard hands a watcher to a worker. The worker builds the sources
from the config, runs the watcher over the accounts it is given, at the engine's ``now``,
and sends back what a run in-process leaves: the signals, the unknowns, the state's
changes and the tally of each source read (the engine judges the sources' health from
them). Storing, health and lifecycle stay in the engine, so a run is the same either way;
a test runs the demo both ways and compares.

When it pays: for a big book on a machine of several cores (``daemon.watcher_processes``;
by default from :data:`AUTO_MIN_ACCOUNTS` accounts on :data:`AUTO_MIN_CORES` cores, one
process a core but the daemon's own). A small book is quicker in-process than a process's
start-up, and on two cores the worker's start-up and copy of the book cost about what the
second core gives back. While there are more such watchers
than workers the daemon runs one itself, the costliest by its last run (:func:`home`).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import multiprocessing
import operator
import os
import pickle
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from swanwatch import tls
from swanwatch.accounts import ALL_FIELDS_SET
from swanwatch.interfaces import ReadTally, SourceUse, StateMap, WatchContext, Watcher
from swanwatch.model import JSON, Account, Signal

log = logging.getLogger("swanwatch.parallel")

#: From this many accounts on, ``watcher_processes: auto`` runs watchers in processes.
AUTO_MIN_ACCOUNTS = 20_000
#: And on this many cores at least. On two, a worker costs about what it gives: at 100,000
#: accounts its start-up and second copy of the book took 2 to 3 CPU s and 430 MiB (about
#: 360 since the watchers keep less of a book: the daemon and one worker then peak at 925
#: MiB together, over the 880 kept as a margin under 1 GB); the cycle was about 10%
#: quicker with it on an idle machine, no quicker on a busy one (BENCHMARKS.md, "Full
#: cycle"). More cores were not measured.
AUTO_MIN_CORES = 4


@dataclass(frozen=True)
class Book:
    """The accounts a cycle's watchers judge, written once to a file that each worker reads
    once: 100,000 pydantic records pickled to every run cost seconds a run; as plain
    tuples, read once per worker, they cost a fraction of that."""

    path: str
    key: str  # new for every book written

    @classmethod
    def write(cls, accounts: Sequence[Account], folder: str) -> Book:
        key = uuid.uuid4().hex
        path = os.path.join(folder, f"book-{key}.pickle")
        with open(path, "wb") as handle:
            pickle.dump(account_rows(accounts), handle, protocol=pickle.HIGHEST_PROTOCOL)
        return cls(path, key)

    def accounts(self) -> list[Account]:
        """The book's accounts (in a worker: read once, then kept until the next book)."""
        found = _READ.get(self.key)
        if found is None:
            with open(self.path, "rb") as handle:
                found = accounts_from_rows(pickle.load(handle))
            _READ.clear()
            _READ[self.key] = found
        return found


class Books:
    """The books an engine wrote for its workers: the last one, reused while a cycle's runs
    judge the same accounts, in a folder of its own removed at :meth:`close`."""

    def __init__(self) -> None:
        self._folder: str | None = None
        self._last: tuple[list[Account], Book] | None = None

    def of(self, accounts: list[Account]) -> Book:
        last = self._last
        same = last is not None and len(last[0]) == len(accounts)
        if last is not None and same and all(map(operator.is_, last[0], accounts)):
            return last[1]
        if self._folder is None:
            self._folder = tempfile.mkdtemp(prefix="swanwatch-books-")
        if last is not None:
            os.unlink(last[1].path)
        book = Book.write(accounts, self._folder)
        self._last = (list(accounts), book)
        return book

    def close(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
        self._folder = self._last = None


_FIELDS = tuple(Account.model_fields)


def account_rows(accounts: Sequence[Account]) -> list[tuple[Any, ...]]:
    """Accounts as plain tuples, for another process: pydantic records pickle slowly."""
    return [tuple(getattr(a, f) for f in _FIELDS) for a in accounts]


def accounts_from_rows(rows: Sequence[Sequence[Any]]) -> list[Account]:
    """The accounts :func:`account_rows` gave. They were validated when read from the
    source: rebuilt as they were, not checked again."""
    return [
        Account.model_construct(ALL_FIELDS_SET, **dict(zip(_FIELDS, r, strict=True))) for r in rows
    ]


#: The book a worker read last, by key.
_READ: dict[str, list[Account]] = {}


@dataclass
class Job:
    """One watcher run for a worker process: everything it needs, picklable."""

    config: object  # the Config: sources and their settings
    watcher: Watcher
    book: Book
    now: datetime
    replay: bool
    state: dict[str, JSON]


@dataclass
class Done:
    """What the run left: as :meth:`Engine._watch` keeps it for a run in-process."""

    signals: list[Signal] = field(default_factory=list)
    unknowns: list[tuple[str, str, str]] = field(default_factory=list)
    state: dict[str, JSON] = field(default_factory=dict)
    deleted: frozenset[str] = frozenset()
    reads: dict[str, list[ReadTally]] = field(default_factory=dict)


def processes(setting: int | None, accounts: int, watchers: int) -> int:
    """How many worker processes a cycle uses: ``setting``, or by the book's size (None):
    one a core but the daemon's own (it runs a watcher itself, see :func:`home`)."""
    if setting is not None:
        return setting
    cores = os.cpu_count() or 1
    if accounts < AUTO_MIN_ACCOUNTS or watchers < 2 or cores < AUTO_MIN_CORES:
        return 0
    return max(0, min(cores - 1, watchers - 1))


def home(costs: dict[str, float | None], workers: int) -> str | None:
    """Of the watchers a cycle could hand to ``workers`` processes (by instance, in the
    config's order, with the seconds their last run took), the one the daemon runs itself
    meanwhile: the costliest (the first, when none has run yet). None when the workers are
    as many as the watchers."""
    if len(costs) <= workers:
        return None
    names = list(costs)
    return max(names, key=lambda n: (costs[n] or 0.0, -names.index(n)))


class Workers:
    """An engine's worker processes: started for a big book, handed each cycle's accounts
    once (:class:`Books`), and told which watcher the daemon keeps (:func:`home`)."""

    def __init__(self) -> None:
        self.pool: ProcessPoolExecutor | None = None
        self.size = 0
        self.books = Books()
        #: The watcher instance the daemon's own process runs this cycle, if any.
        self.home: str | None = None

    def start(self, size: int, modules: Callable[[], Sequence[str]]) -> None:
        """``size`` processes, if none yet, each importing ``modules()`` at once."""
        if size and self.pool is None:
            self.pool, self.size = pool(size), size
            names = modules()
            for _ in range(size):
                self.pool.submit(warm, names)

    def take(self, watcher: Watcher) -> bool:
        """Whether ``watcher`` runs in a worker process."""
        return self.pool is not None and watcher.instance != self.home and movable(watcher)

    async def close(self) -> None:
        if self.pool is not None:
            await asyncio.to_thread(self.pool.shutdown, wait=True, cancel_futures=True)
        self.books.close()


def movable(watcher: Watcher) -> bool:
    """Whether ``watcher`` can run in another process: historical (sources only) and its
    class importable there by name (an entry point's module, not a drop-in file)."""
    cls = type(watcher)
    if not cls.historical:
        return False
    try:
        return importlib.util.find_spec(cls.__module__) is not None
    except (ImportError, ValueError):
        return False


def pool(size: int) -> ProcessPoolExecutor:
    """A pool of ``size`` fresh interpreters (spawned: never a fork of a threaded parent)."""
    return ProcessPoolExecutor(size, mp_context=multiprocessing.get_context("spawn"))


def warm(modules: Sequence[str]) -> None:
    """In a new worker: import what its runs need (the watchers' modules, the sources, the
    array libraries), while the engine is still storing the accounts."""
    import importlib

    import swanwatch.accounts
    import swanwatch.config
    import swanwatch.sources.csv
    import swanwatch.sources.health  # noqa: F401

    for name in [*modules, "numpy", "pyarrow", "pyarrow.csv", "pyarrow.compute"]:
        try:
            importlib.import_module(name)
        except ImportError:
            log.debug("worker warm-up: %s not importable", name)


def run_job(job: Job) -> Done:
    """In the worker: the watcher over the job's accounts, its sources built afresh."""
    return asyncio.run(_run(job))


async def _run(job: Job) -> Done:
    from swanwatch.accounts import build_sources
    from swanwatch.clock import FrozenClock
    from swanwatch.config import Config
    from swanwatch.sources.health import metered

    config = job.config
    assert isinstance(config, Config)
    watcher = job.watcher
    sources = build_sources(config)
    uses: Sequence[SourceUse] = watcher.uses()
    views = metered(sources, config.sources, uses)
    state = StateMap(job.state)
    done = Done()
    try:
        # Unused (a historical watcher reads sources), but a context has one.
        async with tls.client() as http:
            ctx = WatchContext(
                instance=watcher.instance,
                clock=FrozenClock(job.now),
                http=http,
                log=logging.getLogger(f"swanwatch.watcher.{watcher.instance}"),
                accounts=job.book.accounts(),
                state=state,
                sources=views,
                replay=job.replay,
                unknowns=done.unknowns,
            )
            done.signals = [s async for s in watcher.watch(ctx)]
    finally:
        for source in sources.values():
            await source.aclose()
    done.state, done.deleted = state.changes()
    done.reads = {name: view.reads for name, view in views.items()}
    return done
