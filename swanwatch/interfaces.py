"""The plugin contracts: Watcher, Source and Notifier, and the context a watcher runs in."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import Executor
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar, ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict

from swanwatch.clock import Clock
from swanwatch.errors import PluginError, SourceError
from swanwatch.model import JSON, Account, Message, Signal
from swanwatch.values import day_of

if TYPE_CHECKING:  # annotations only: the config's checks load plugins without either
    import httpx
    from pyarrow import Table

P = ParamSpec("P")
T = TypeVar("T")

#: One record read from a source: column name to typed value.
Row = Mapping[str, object]


class PluginOptions(BaseModel):
    """Base of every plugin's options: frozen, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class WatcherOptions(PluginOptions):
    """Base of a watcher's ``Options``. Document each field with ``description=``."""


class SourceOptions(PluginOptions):
    """Base of a source's ``Options``."""


class NotifierOptions(PluginOptions):
    """Base of a notifier's ``Options``."""


class StateMap:
    """A watcher instance's small persistent key-value state (JSON values).

    Loaded before a run and saved after a successful one, so a failed run leaves the
    previous state untouched.
    """

    def __init__(self, initial: Mapping[str, JSON] | None = None) -> None:
        self._values: dict[str, JSON] = dict(initial or {})
        self._changed: set[str] = set()
        self._deleted: set[str] = set()

    def get(self, key: str, default: JSON = None) -> JSON:
        return self._values.get(key, default)

    def set(self, key: str, value: JSON) -> None:
        self._values[key] = value
        self._changed.add(key)
        self._deleted.discard(key)

    def delete(self, key: str) -> None:
        self._values.pop(key, None)
        self._changed.discard(key)
        self._deleted.add(key)

    def keys(self) -> list[str]:
        return list(self._values)

    def changes(self) -> tuple[dict[str, JSON], frozenset[str]]:
        """What to write back: changed values, and deleted keys."""
        return {k: self._values[k] for k in self._changed}, frozenset(self._deleted)


#: The first few malformed rows of a read that a tally describes (the rest are counted).
TALLY_PROBLEMS = 5


@dataclass
class ReadTally:
    """What one read of a source saw: the engine judges the source's health by it (ok,
    suspect, stale or broken) in :mod:`swanwatch.sources.health`."""

    #: The field whose newest value tells how fresh the source is (None: not dated).
    date_field: str | None = None
    rows: int = 0
    malformed: int = 0
    #: The first malformed rows, as ``file:line: why``.
    problems: list[str] = field(default_factory=list)
    newest: date | None = None
    #: The read reached its end (a watcher that stops early leaves it unfinished).
    finished: bool = False
    #: Why the read failed, with the file and line or the URL.
    error: str | None = None

    def count(self, rows: Sequence[Row]) -> None:
        """Count a batch of rows read, and the newest date among them."""
        self.rows += len(rows)
        name = self.date_field
        if name is None or not rows:
            return
        try:
            stamps = {row.get(name) for row in rows}
        except TypeError:  # an unhashable value: read them one by one
            stamps = [row.get(name) for row in rows]  # type: ignore[assignment]
        for stamp in stamps:
            try:
                day = day_of(stamp)
            except ValueError:
                continue
            if day is not None and (self.newest is None or day > self.newest):
                self.newest = day

    def count_columns(self, rows: int, newest: date | None) -> None:
        """Count a batch of ``rows`` read as columns, whose newest date is ``newest``."""
        self.rows += rows
        if newest is not None and (self.newest is None or newest > self.newest):
            self.newest = newest

    def skipped(self, problem: str) -> None:
        """A malformed row was skipped: ``problem`` says where (``file:line``) and why."""
        self.malformed += 1
        if len(self.problems) < TALLY_PROBLEMS:
            self.problems.append(problem)

    async def rows_of(self, batches: AsyncIterator[Sequence[Row]]) -> AsyncIterator[Row]:
        """The rows of ``batches``, each batch counted: the read finishes with the last one,
        or fails with the SourceError it raises."""
        try:
            async for batch in batches:
                self.count(batch)
                for row in batch:
                    yield row
        except SourceError as exc:
            self.error = str(exc)
            raise
        self.finished = True


#: The tally of the read a task is about to start; see :meth:`Source.tally`.
CURRENT_READ: ContextVar[ReadTally | None] = ContextVar("swanwatch_read", default=None)


class Source(ABC):
    """Reads business records (accounts, usage, contracts, ...) from somewhere.

    ``rows(until=...)`` yields only records dated at or before ``until`` (the source's
    ``date_field`` decides what "dated" means), so the backtest never looks ahead.

    The engine judges each read (a source's health): a read that raises is broken, one
    with malformed rows or far fewer rows than before is suspect, one whose newest dated
    row is old is stale. It counts the rows of any source by passing them through; a
    source that sets ``counts_reads = True`` counts them itself, in batches, through the
    :class:`ReadTally` that :meth:`tally` gives when ``rows()`` is called (cheaper for
    millions of rows: ``return tally.rows_of(batches)``), and tells of each malformed row it
    skips with ``tally.skipped``.
    """

    name: ClassVar[str]
    Options: ClassVar[type[SourceOptions]] = SourceOptions
    #: True when ``rows()`` counts its own rows, malformed rows and end in :meth:`tally`.
    counts_reads: ClassVar[bool] = False

    @staticmethod
    def tally() -> ReadTally:
        """The tally of the read that starts now (call it once, in ``rows()`` itself); a
        throwaway one when nothing is counting."""
        found = CURRENT_READ.get()
        return found if found is not None else ReadTally()

    def __init__(self, instance: str, options: SourceOptions, *, base_dir: str = ".") -> None:
        self.instance = instance
        self.options = options
        self.base_dir = base_dir

    @abstractmethod
    def rows(self, *, until: datetime | None = None) -> AsyncIterator[Row]:
        """Yield the source's records, those dated after ``until`` left out."""

    def columns(
        self, fields: Sequence[str], *, until: datetime | None = None
    ) -> AsyncIterator[Table] | None:
        """The records of :meth:`rows` as columns: Arrow tables of those of ``fields`` the
        records have, batch by batch, in the same order, typed the same way, counted in the
        same tally. None (the default) when the source reads only row by row: the caller
        then reads :meth:`rows`. Watchers over millions of rows (usage) read this way."""
        return None

    def fields(self) -> Sequence[str] | None:
        """The fields its rows carry, as far as is known without reading them (a file's
        header line); None when only a read tells. Raise SourceError when the source
        cannot be opened at all (a missing file). ``swanwatch validate`` calls it."""
        return None

    def history(self) -> str | None:
        """How the source keeps its history, in a few words ("rows dated by 'date'"), or
        None when it keeps none: it can only say how things are now, so ``rows(until=...)``
        cannot leave out what came later. A replay (``backtest``, ``review``) refuses to
        read a source without history unless its config declares it ``static``.

        By default: dated by the ``date_field`` option, if the source has one. A source that
        cuts at ``until`` in another way says so here.
        """
        field_name = getattr(self.options, "date_field", None)
        return f"rows dated by {field_name!r}" if isinstance(field_name, str) else None

    async def aclose(self) -> None:  # noqa: B027 (optional hook, empty by default)
        """Release what the source holds (connections, clients); called at shutdown."""


@dataclass
class WatchContext:
    """What a watcher gets for one run: time, HTTP, logging, accounts, state and sources."""

    instance: str
    clock: Clock
    http: httpx.AsyncClient
    log: logging.Logger
    accounts: Sequence[Account]
    state: StateMap
    sources: Mapping[str, Source] = field(default_factory=dict)
    executor: Executor | None = None
    #: True in a backtest: sources are cut at the simulated now, and no live lookups happen.
    replay: bool = False
    unknowns: list[tuple[str, str, str]] = field(default_factory=list)

    def source(self, name: str) -> Source:
        """The configured source called ``name``."""
        try:
            return self.sources[name]
        except KeyError:
            known = ", ".join(sorted(self.sources)) or "none"
            raise PluginError(
                f"watcher {self.instance!r} asks for source {name!r}, which is not configured "
                f"(configured sources: {known})"
            ) from None

    def report_unknown(self, account: Account | str, reason: str, key: str = "") -> None:
        """Record that ``account`` could not be judged, and why. Never a silent skip."""
        account_id = account if isinstance(account, str) else account.id
        self.unknowns.append((account_id, key, reason))
        self.log.debug("%s: cannot judge account %s: %s", self.instance, account_id, reason)

    async def run_blocking(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking call in the bounded worker pool, off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: fn(*args, **kwargs))


@dataclass(frozen=True)
class SourceUse:
    """A source a watcher judges from: the field that dates its rows, and how recent the
    newest must be for the watcher's judgement to hold (the source's own ``fresh_within``
    setting overrides it). None: the source is not checked for freshness."""

    source: str
    date_field: str | None = None
    fresh_within: timedelta | None = None
    #: The fields the watcher cannot do without; `swanwatch validate` checks that the
    #: source's header has them.
    fields: tuple[str, ...] = ()


class Replayer(ABC):
    """A watcher's judgement carried from one simulated day to the next in a replay
    (``swanwatch backtest``, ``review``), so that a day costs what changed since the last
    one rather than the whole history. See :meth:`Watcher.replayer`."""

    @abstractmethod
    def day(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        """Yield exactly what ``watch(ctx)`` would yield on ``ctx.clock.now()``, report the
        same unknowns, read the same sources (so their health is judged as before) and
        leave the same state, given that every earlier simulated day of this replay went
        through this method, in order. Where what it kept cannot give today's judgement
        exactly (the accounts changed, the rows are not what it relies on), it judges the
        day afresh, as ``watch()`` does."""


class Watcher(ABC):
    """Looks at accounts and yields Signals. Never notifies, never grades the account.

    Subclasses set ``name`` (the entry-point name), may define a nested ``Options`` model,
    and implement :meth:`watch`. Set ``historical = True`` when the watcher reads only
    dated records from sources (no live lookups), so the backtest can replay it.

    A watcher that judges from business sources declares them in :meth:`uses` and its
    :meth:`lookback`: when a source it reads is suspect, stale or broken, the engine
    discards the run's judgement, reports every account unknown, and keeps the signals it
    had (those observed within the look-back; older ones are cleared).
    """

    name: ClassVar[str]
    Options: ClassVar[type[WatcherOptions]] = WatcherOptions
    historical: ClassVar[bool] = False

    def __init__(self, instance: str, options: WatcherOptions) -> None:
        self.instance = instance
        self.options = options

    def uses(self) -> Sequence[SourceUse]:
        """The sources this watcher judges from, with their date field and freshness."""
        return ()

    def lookback(self) -> timedelta | None:
        """How old a finding may be and still hold without fresh data (None: no limit)."""
        return None

    def replayer(self) -> Replayer | None:
        """How a replay judges this watcher instance day after day from what it kept of
        the days before (a :class:`Replayer`, asked for once per replay); None, the
        default: every simulated day runs :meth:`watch` afresh, as the daemon does. A
        replay gives the same events either way (a test compares both)."""
        return None

    @abstractmethod
    def watch(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        """Yield the signals that hold now for ``ctx.accounts``.

        A signal not yielded again on the next successful run is cleared. Raise on a failure
        that spoils the whole run; call ``ctx.report_unknown`` for one account it cannot judge.
        """


@dataclass(frozen=True)
class DeliveryResult:
    """The outcome of one send: ``ok``, or why not and when to try again."""

    ok: bool
    reason: str = ""
    retry_after_s: float | None = None


class Notifier(ABC):
    """Turns a Message into a message on a channel."""

    name: ClassVar[str]
    Options: ClassVar[type[NotifierOptions]] = NotifierOptions

    def __init__(self, channel: str, options: NotifierOptions) -> None:
        self.channel = channel
        self.options = options

    def check(self) -> str | None:
        """What is wrong with the channel's settings, found without sending anything (an
        address the library refuses), or None. ``swanwatch validate`` calls it."""
        return None

    @abstractmethod
    async def send(self, message: Message) -> DeliveryResult:
        """Send ``message``; return the outcome rather than raise for a failed send."""
