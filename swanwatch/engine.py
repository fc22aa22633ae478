"""The engine: one cycle of the flow, accounts -> watchers -> signals -> alerts -> outbox.

The daemon schedules its steps, ``run --once`` and the demo call them in turn; both use
the same code. Each watcher run is isolated, storing included: an exception, a timeout or a
store that refuses the run's findings is that run's failure (logged with its traceback,
counted and stored; when the store itself fails, counted in memory and in /metrics),
never the others'. A run's signals, unknowns and state are stored in one transaction.

Every read of a source is judged (:mod:`swanwatch.sources.health`). An unhealthy read is
not the truth: a run whose source is suspect, stale or broken is *held*: its judgement is
dropped, every account it looked at is reported unknown, and its signals are kept (bar
those older than the watcher's look-back). A suspect accounts source holds every watcher,
and the last good account list stays. An account a good read no longer lists is reported
unknown and keeps its signals until it has been absent from ``accounts.retire_after_reads``
good reads; then it is retired.

A correlation pass (:mod:`swanwatch.passes`) goes through the book one account batch at a
time, over many signals in two processes (:mod:`swanwatch.pass_workers`). Each batch is
saved in one transaction, only the alerts it changed, each over the version the pass read:
a person's action made meanwhile is never overwritten (it wins; the next pass starts there).
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import httpx
from sqlalchemy.exc import SQLAlchemyError

from swanwatch import parallel, pass_workers, plugins, tls
from swanwatch.accounts import AccountRead, build_sources, read_accounts
from swanwatch.alerts import Notice
from swanwatch.clock import Clock
from swanwatch.config import Config, WatcherConfig, all_rules
from swanwatch.delivery import DeliveryStats, DeliveryWorker
from swanwatch.errors import LookAheadError, SourceError, StoreError
from swanwatch.interfaces import ReadTally, Replayer, Source, StateMap, WatchContext, Watcher
from swanwatch.model import Account, Alert, AlertState, Signal, SourceHealth, WatcherRun
from swanwatch.passes import BATCH_ACCOUNTS, Book, run_pass
from swanwatch.replay_findings import FindingsMemo
from swanwatch.run_report import report_run
from swanwatch.sources.health import MeteredSource, held_reason, judge, metered
from swanwatch.store import Findings, Store, WatcherStatus
from swanwatch.store.health import first_line

if TYPE_CHECKING:
    from swanwatch.metrics import Metrics

log = logging.getLogger("swanwatch.engine")


@dataclass(frozen=True)
class RunOutcome:
    """A watcher run as the engine saw it, with the signals it raised."""

    run: WatcherRun
    raised: tuple[Signal, ...] = ()
    cleared: int = 0


@dataclass(frozen=True)
class CorrelationOutcome:
    """What a correlation pass changed, and what it decided to tell."""

    accounts: int
    open_alerts: int
    notices: tuple[Notice, ...]
    enqueued: int
    #: Alerts written: those the pass changed.
    written: int = 0
    #: Alerts a person (or another pass) wrote while the pass ran: left as they are now,
    #: with their notices, for the next pass to decide on.
    refused: tuple[str, ...] = ()
    #: The alerts the pass changed and saved (the refused ones left out).
    changed: tuple[Alert, ...] = ()


@dataclass
class AccountList:
    """The accounts as the engine runs on them, after the last read of the accounts source."""

    #: Every listed account: read now, or absent and not yet retired (or, while held, the
    #: last good list).
    accounts: list[Account] = field(default_factory=list)
    #: Listed accounts the last good read left out, with since when.
    absent: dict[str, datetime] = field(default_factory=dict)
    #: Why the accounts source is not the truth now (suspect, stale, broken); None when ok.
    held: str | None = None


@dataclass
class _Seen:
    """What one watcher run saw, or why it failed, or why it was held."""

    signals: list[Signal] = field(default_factory=list)
    state: StateMap = field(default_factory=StateMap)
    unknowns: list[tuple[str, str, str]] = field(default_factory=list)
    error: str | None = None
    trace: str | None = None
    #: The accounts the run speaks for: judged, and absent from the accounts source.
    judged: list[Account] = field(default_factory=list)
    absent: list[Account] = field(default_factory=list)
    #: Why the run's judgement is dropped (an unhealthy source); None when it stands.
    held: str | None = None
    #: The sources as this run read them.
    views: dict[str, MeteredSource] = field(default_factory=dict)
    lookback: timedelta | None = None


@dataclass
class _Unrecorded:
    """Failed runs the store would not take: counted here toward the ops alert."""

    failures: int = 0
    last_error: str | None = None


class Engine:
    """Runs the steps of a cycle against one config, store and clock."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        *,
        replay: bool = False,
        progress: Callable[[str, str, int], None] | None = None,
        metrics: Metrics | None = None,
        replayers: bool = False,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.replay = replay
        self.progress = progress
        self.sources = build_sources(config)
        self.rules = all_rules(config)
        self.metrics = metrics  # told of each run (the daemon's /metrics)
        self.delivery = DeliveryWorker(config, store, clock, metrics)
        self._executor = ThreadPoolExecutor(
            max_workers=config.daemon.blocking_workers, thread_name_prefix="swanwatch-blocking"
        )
        self._http: httpx.AsyncClient | None = None
        #: Worker processes for watchers that only read sources (big books; parallel.py).
        self._workers = parallel.Workers()
        self.pass_worker = pass_workers.PassWorker(config.daemon.correlation_worker)
        #: Watcher runs handed to worker processes so far.
        self.workers = 0
        self._accounts: list[Account] | None = None
        self._listing = AccountList()
        #: How the accounts source is read (a replay's reuses a day's accounts the next).
        self.account_reader: Callable[[Source, datetime | None], Awaitable[AccountRead]] = (
            read_accounts
        )
        #: A replay's findings of each watcher's last stored run (None: every run stored).
        self.findings_memo: FindingsMemo | None = None
        #: A replay's: each source's health as last saved (the store's, none else writes).
        self.health_memo: dict[str, SourceHealth] | None = None
        #: The good read listed last, and its list (see _list_accounts).
        self._listed: tuple[AccountRead, AccountList] | None = None
        self._accounts_lock = asyncio.Lock()
        self._correlate_lock = asyncio.Lock()
        #: Per watcher instance: failed runs the store did not record (it was failing).
        self.unrecorded: dict[str, _Unrecorded] = {}
        #: An incremental replay's replayer of each watcher instance (None: watch()).
        self.replayers: dict[str, Replayer | None] | None = {} if replayers else None
        #: Accounts per batch of a correlation pass (:mod:`swanwatch.passes`).
        self.batch_accounts = BATCH_ACCOUNTS
        #: Whether a correlation's outcome keeps every notice and changed alert (a
        #: backtest reads them); False keeps the counts only, and memory bounded.
        self.keep_told = True
        #: Called with each batch's notices as the batch is saved (the daemon logs them).
        self.on_told: Callable[[Sequence[Notice]], None] | None = None

    async def __aenter__(self) -> Engine:
        self._http = tls.client(
            timeout=self.config.daemon.http_timeout.total_seconds(),
            headers={"User-Agent": "swanwatch/0.1 (+https://github.com/swanwatch)"},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        for source in self.sources.values():
            try:
                await source.aclose()
            except Exception:  # one source failing to close must not keep others open
                log.exception("source %s failed to close", source.instance)
        if self._http is not None:
            await self._http.aclose()
        self._executor.shutdown(wait=False, cancel_futures=True)
        await self._workers.close()
        await self.pass_worker.close()

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError("use the engine as `async with Engine(...)`")
        return self._http

    # --- accounts -----------------------------------------------------------------------

    async def load_accounts(self, *, workers: bool = False) -> list[Account]:
        """Read the accounts source, judge the read, and keep the account list for this cycle.
        ``workers``: a cycle follows; start the worker processes its watchers will run in
        (a big book) as soon as the read tells the book's size, to start up meanwhile.

        A good read is stored (accounts it leaves out count one more absent read, and are
        retired after ``accounts.retire_after_reads``); an unhealthy one is not the truth:
        the last good list stays, held (every watcher then reports its accounts unknown).
        SourceError only when there is nothing to hold: the read failed and no list is on
        record.
        """
        async with self._accounts_lock:
            name = self.config.accounts.source
            view = metered({name: self.sources[name]}, self.config.sources)[name]
            until = self.clock.now() if self.replay else None
            read, failure = AccountRead(), None
            try:
                read = await self.account_reader(view, until)
            except SourceError as exc:
                failure = exc
            if workers:
                await self._start_workers(self.config.active_watchers(), len(read.accounts))
            tally = view.reads[-1] if view.reads else ReadTally(error=str(failure))
            for record, why in read.skipped:
                tally.skipped(f"record {record}: {why}")
            health = await asyncio.to_thread(self._judge_read, name, tally, view, self.clock.now())
            if health is not None and health.ok and read.accounts:
                self._listing = await asyncio.to_thread(self._list_accounts, read)
            else:
                self._listing = await asyncio.to_thread(self._hold_accounts, name, read, health)
            if failure is not None and not self._listing.accounts:
                raise failure
            if not self._listing.accounts:
                raise SourceError(f"accounts source {name!r} gave no accounts")
            self._accounts = self._listing.accounts
            return self._accounts

    def _list_accounts(self, read: AccountRead) -> AccountList:
        """A good read: stored, with the absent and retired accounts worked out. The read
        listed last, given again with none absent (a replay's day that served the rows of
        the day before), is what the store holds: its list stands, nothing to write."""
        if self._listed is not None and self._listed[0] is read and not self._listed[1].absent:
            return self._listed[1]
        cfg = self.config.accounts
        listing = self.store.record_account_read(
            sorted(read.accounts.values(), key=lambda a: a.id),
            self.clock.now(),
            retire_after_reads=cfg.retire_after_reads,
            retire_after=cfg.retire_after,
        )
        if listing.retired:
            log.info(
                "accounts source %s: %d accounts retired (absent from %d good reads): %s",
                cfg.source,
                len(listing.retired),
                cfg.retire_after_reads,
                ", ".join(listing.retired[:20]),
            )
        self._listed = (read, AccountList(accounts=listing.accounts, absent=listing.absent))
        return self._listed[1]

    def _hold_accounts(
        self, name: str, read: AccountRead, health: SourceHealth | None
    ) -> AccountList:
        """An unhealthy read: the last good list stays (the read's own, if none is on record)."""
        why = held_reason(health) if health is not None else f"accounts source {name!r} is empty"
        stored = self.store.accounts()
        if stored:
            absent = self.store.absent_accounts()
            return AccountList(accounts=stored, absent=absent, held=why)
        return AccountList(accounts=sorted(read.accounts.values(), key=lambda a: a.id), held=why)

    async def accounts(self) -> list[Account]:
        return self._accounts if self._accounts is not None else await self.load_accounts()

    # --- source health ------------------------------------------------------------------

    def _judge_read(
        self, name: str, tally: ReadTally, view: MeteredSource, now: datetime
    ) -> SourceHealth | None:
        """Judge one read of a source against its last good read, and store the verdict."""
        known = self.health_memo
        if known is not None and name in known:
            previous: SourceHealth | None = known[name]
        else:
            previous = self.store.source_health([name]).get(name)
        health = judge(tally, name, previous, view.policy, now)
        if health is None:
            return None
        self.store.save_source_health(health)
        if known is not None:
            known[name] = health
        if not health.ok:
            log.warning("source %s is %s: %s", name, health.state, health.reason)
        elif previous is not None and not previous.ok:
            log.info("source %s is healthy again (%d rows)", name, health.rows or 0)
        return health

    def _judge_reads(self, seen: _Seen) -> None:
        """Judge the run's reads of its sources; an unhealthy one holds the run."""
        now = self.clock.now()
        unhealthy = []
        for name, view in seen.views.items():
            tally = next((t for t in reversed(view.reads) if t.finished or t.error), None)
            if tally is None:
                continue
            health = self._judge_read(name, tally, view, now)
            if health is not None and not health.ok:
                unhealthy.append(held_reason(health))
        if unhealthy:
            seen.held = "; ".join(unhealthy)
            seen.error = seen.trace = None  # a broken source is the source's failure

    # --- watchers -----------------------------------------------------------------------

    def watcher(self, spec: WatcherConfig) -> Watcher:
        cls = plugins.watcher_class(spec.type)
        return cls(spec.instance, cls.Options.model_validate(spec.options))

    async def run_watcher(
        self,
        spec: WatcherConfig,
        *,
        refresh_accounts: bool = False,
        accounts: Sequence[Account] | None = None,
    ) -> RunOutcome:
        """Run one watcher instance once, isolated, and store what it found.

        Everything that can fail on the way (the accounts source, the plugin, the run, its
        timeout, storing what it found) is this run's failure: stored with its traceback
        and counted towards the ops alert, never an exception out of here; bar, in a
        replay, a LookAheadError (a read of a source that keeps no history): the replay's
        configuration error, not the run's. A run whose source is unhealthy is held (ok,
        its accounts unknown, its signals kept).

        ``accounts`` runs the watcher over these accounts only (a shard): it then clears
        only their signals and unknowns, and the instance's others stay as they are.
        """
        started = self.clock.now()
        t0 = time.monotonic()
        seen = await self._watch(spec, refresh_accounts, accounts)
        raised: tuple[Signal, ...] = ()
        cleared_kinds: tuple[str, ...] = ()
        try:
            if seen.views:
                await asyncio.to_thread(self._judge_reads, seen)
            if seen.error is None:
                raised, cleared_kinds = await asyncio.to_thread(
                    self._store_findings, spec, seen, accounts is not None
                )
        except (SQLAlchemyError, StoreError) as exc:  # storing is part of the run
            seen.error = f"storing the run's findings failed: {first_line(exc)}"
            seen.trace = traceback.format_exc()
            log.error("watcher %s: %s", spec.instance, seen.error)
        run = WatcherRun(
            instance=spec.instance,
            started_at=started,
            finished_at=max(self.clock.now(), started),
            ok=seen.error is None,
            signals=0 if seen.held else len(seen.signals),
            unknowns=len(seen.unknowns),
            # A NUL byte (from a plugin's error, say) is text no store refuses once spelled.
            error=_printable(seen.error),
            traceback=_printable(seen.trace),
            held=seen.held,
        )
        await self._record_run(run)
        report_run(run, raised, cleared_kinds, time.monotonic() - t0, self.metrics, self.progress)
        return RunOutcome(run=run, raised=raised, cleared=len(cleared_kinds))

    async def _record_run(self, run: WatcherRun) -> None:
        """Store the run; a store that refuses it leaves the failure counted in memory."""
        try:
            await asyncio.to_thread(self.store.record_run, run)
        except (SQLAlchemyError, StoreError) as exc:
            log.error(
                "watcher %s: the store refused the run's record (%s); its outcome (%s) is "
                "counted here until the store takes runs again",
                run.instance,
                first_line(exc),
                "ok" if run.ok else run.error,
            )
            if self.metrics is not None:
                self.metrics.unrecorded_run(run.instance)
            if not run.ok:
                missed = self.unrecorded.setdefault(run.instance, _Unrecorded())
                missed.failures += 1
                missed.last_error = run.error
            return
        self.unrecorded.pop(run.instance, None)

    async def _watch(
        self, spec: WatcherConfig, refresh_accounts: bool, accounts: Sequence[Account] | None
    ) -> _Seen:
        """Run the watcher; any failure on the way is the run's, kept in what it saw."""
        seen = _Seen()
        try:
            if accounts is None:
                listed = await (self.load_accounts() if refresh_accounts else self.accounts())
            else:
                listed = list(accounts)
            watcher = self.watcher(spec)
            seen.lookback = watcher.lookback()
            absent = self._listing.absent
            seen.judged = [a for a in listed if a.id not in absent]
            seen.absent = [a for a in listed if a.id in absent]
            if self._listing.held is not None:
                seen.held = self._listing.held  # the accounts themselves are in doubt
                return seen
            state = await asyncio.to_thread(self.store.load_state, spec.instance)
            seen.state = StateMap(state)
            seen.views = metered(self.sources, self.config.sources, watcher.uses())
            if self._workers.take(watcher):
                book = self._workers.books.of(seen.judged)
                job = parallel.Job(self.config, watcher, book, self.clock.now(), self.replay, state)
                seen.signals = await asyncio.wait_for(
                    self._in_worker(job, seen), spec.timeout.total_seconds()
                )
                return seen
            ctx = WatchContext(
                instance=spec.instance,
                clock=self.clock,
                http=self.http,
                log=logging.getLogger(f"swanwatch.watcher.{spec.instance}"),
                accounts=seen.judged,
                state=seen.state,
                sources=seen.views,
                executor=self._executor,
                replay=self.replay,
                unknowns=seen.unknowns,
            )
            seen.signals = await asyncio.wait_for(
                self._collect(watcher, ctx), spec.timeout.total_seconds()
            )
        except TimeoutError:
            seen.error = f"timed out after {spec.timeout.total_seconds():g} s"
            seen.trace = traceback.format_exc()
            log.error("watcher %s %s", spec.instance, seen.error)
        except (asyncio.CancelledError, LookAheadError):
            raise  # a replay reading a source with no history is the replay's error
        except Exception as exc:  # isolation: one watcher's failure is its own
            seen.error = f"{type(exc).__name__}: {exc}"
            seen.trace = traceback.format_exc()
            log.error("watcher %s failed: %s", spec.instance, seen.error, exc_info=exc)
        return seen

    def _store_findings(
        self, spec: WatcherConfig, seen: _Seen, shard: bool
    ) -> tuple[tuple[Signal, ...], tuple[str, ...]]:
        """Store a run's signals, unknowns and state in one transaction; the signals raised
        and the kinds cleared. Held, it keeps every signal (bar the expired), all unknown, the
        state as it was; else those of an account it could not judge at all (absent, no rows)."""
        now = self.clock.now()
        everyone = [*seen.judged, *seen.absent]
        expire = now - seen.lookback if seen.lookback is not None else None
        scope = [a.id for a in everyone] if shard else None
        if seen.held is not None:
            seen.unknowns[:] = [(a.id, "", seen.held) for a in everyone]
            found = Findings(
                watcher=spec.instance,
                now=now,
                signals=None,
                unknowns=seen.unknowns,
                scope=scope,
                unknown_scope=scope,
                expire_before=expire,
            )
        else:
            seen.unknowns.extend(self._absent_unknowns(seen.absent))
            found = Findings(
                watcher=spec.instance,
                now=now,
                signals=seen.signals,
                unknowns=seen.unknowns,
                state=seen.state.changes(),
                scope=scope,
                keep=sorted({a for a, key, _ in seen.unknowns if not key}),
                unknown_scope=scope,
                expire_before=expire,
            )
        memo = self.findings_memo  # a replay's: what the day before stored is not again
        trimmed = found if memo is None else memo.trim(found)
        if trimmed is None:
            return (), ()
        changes = self.store.record_findings(trimmed)
        if memo is not None:
            memo.stored(found)
        new = set(changes.raised)
        raised = tuple(s for s in seen.signals if s.fingerprint in new)
        return raised, changes.cleared_kinds

    def _absent_unknowns(self, absent: Sequence[Account]) -> list[tuple[str, str, str]]:
        cfg = self.config.accounts
        since = self._listing.absent
        return [
            (
                a.id,
                "",
                f"not listed by accounts source {cfg.source!r} since "
                f"{since[a.id]:%Y-%m-%d %H:%M} UTC; retired once absent from "
                f"{cfg.retire_after_reads} good reads",
            )
            for a in absent
        ]

    async def _in_worker(self, job: parallel.Job, seen: _Seen) -> list[Signal]:
        """The run in a worker process; what it left, kept as a run in-process keeps it."""
        assert self._workers.pool is not None
        self.workers += 1
        loop = asyncio.get_running_loop()
        done = await loop.run_in_executor(self._workers.pool, parallel.run_job, job)
        seen.unknowns.extend(done.unknowns)
        for key, value in done.state.items():
            seen.state.set(key, value)
        for key in done.deleted:
            seen.state.delete(key)
        for name, reads in done.reads.items():
            seen.views[name].reads = reads
        known = {a.id for a in seen.judged}
        return [
            s for s in (self._accept(job.watcher.instance, known, s) for s in done.signals) if s
        ]

    def _accept(self, instance: str, known: set[str], signal: object) -> Signal | None:
        """A signal as the run keeps it (its watcher's), or None for an unknown account."""
        if not isinstance(signal, Signal):
            raise TypeError(f"watch() yielded {type(signal).__name__}, not a Signal")
        if signal.account_id not in known:
            log.warning(
                "watcher %s: signal %s for unknown account %r dropped",
                instance,
                signal.kind,
                signal.account_id,
            )
            return None
        return signal.model_copy(update={"watcher": instance})

    async def _collect(self, watcher: Watcher, ctx: WatchContext) -> list[Signal]:
        known = {a.id for a in ctx.accounts}
        out: list[Signal] = []
        stream = self._judging(watcher, ctx)
        async for signal in stream:
            kept = self._accept(ctx.instance, known, signal)
            if kept is None:
                continue
            out.append(kept)
            if self.progress is not None and len(out) % 1000 == 0:
                self.progress(ctx.instance, "signals", len(out))
        return out

    def _judging(self, watcher: Watcher, ctx: WatchContext) -> AsyncIterator[Signal]:
        """watch(), or in an incremental replay the watcher's replayer's day."""
        if self.replayers is None:
            return watcher.watch(ctx)
        if watcher.instance not in self.replayers:
            self.replayers[watcher.instance] = watcher.replayer()
        replayer = self.replayers[watcher.instance]
        return watcher.watch(ctx) if replayer is None else replayer.day(ctx)

    async def run_watchers(self, specs: Sequence[WatcherConfig] | None = None) -> list[RunOutcome]:
        """Run watchers concurrently, each exactly once."""
        chosen = list(specs) if specs is not None else self.config.active_watchers()
        await self._start_workers(chosen, len(await self.accounts()))
        if self._workers.pool is not None:
            costs = await asyncio.to_thread(self._costs, chosen)
            self._workers.home = parallel.home(costs, self._workers.size)
        return list(await asyncio.gather(*(self.run_watcher(s) for s in chosen)))

    def _costs(self, chosen: Sequence[WatcherConfig]) -> dict[str, float | None]:
        """The seconds the last run took of each watcher a worker could run (None: none)."""
        movable = [s.instance for s in chosen if parallel.movable(self.watcher(s))]
        last = {i: self.store.runs(i, 1) for i in movable}
        return {i: (r[0].finished_at - r[0].started_at).total_seconds() if r else None
                for i, r in last.items()}  # fmt: skip

    async def _start_workers(self, chosen: Sequence[WatcherConfig], accounts: int) -> None:
        """The worker processes for ``chosen`` over a book this big, if any and not yet
        started (each imports its watchers' modules at once), and the pass worker if wanted."""
        wanted = parallel.processes(self.config.daemon.watcher_processes, accounts, len(chosen))
        modules = sorted({plugins.watcher_class(s.type).__module__ for s in chosen})
        self._workers.start(wanted, lambda: modules)
        if not self.pass_worker.running:  # the count is a store read: in a thread
            await asyncio.to_thread(self.pass_worker.start, self.store.active_signal_count,
                                    self.store.url, self._workers.pool)  # fmt: skip

    def watcher_health(self) -> dict[str, WatcherStatus]:
        """Each configured watcher's status on record, with the failed runs the store did
        not take counted in (blocking: run in a thread)."""
        configured = {w.instance for w in self.config.active_watchers()}
        statuses = {
            name: status
            for name, status in self.store.watcher_statuses().items()
            if name in configured
        }
        for name, missed in self.unrecorded.items():
            if name not in configured:
                continue
            status = statuses.get(name) or WatcherStatus(instance=name)
            statuses[name] = status.model_copy(
                update={
                    "consecutive_failures": status.consecutive_failures + missed.failures,
                    "last_error": missed.last_error,
                }
            )
        return statuses

    def source_health(self) -> Mapping[str, SourceHealth]:
        """The configured sources' health on record (blocking: run in a thread)."""
        return {
            name: health
            for name, health in self.store.source_health().items()
            if name in self.config.sources
        }

    # --- correlation and alerts ---------------------------------------------------------

    async def correlate(self) -> CorrelationOutcome:
        """Assess every account, reconcile alerts, and enqueue the notices: one transaction."""
        async with self._correlate_lock:
            accounts = await self.accounts()
            return await asyncio.to_thread(self._correlate_sync, accounts, self.clock.now())

    def _correlate_sync(self, accounts: list[Account], now: datetime) -> CorrelationOutcome:
        try:
            return self._reconcile(accounts, now)
        except SQLAlchemyError as exc:
            raise StoreError(
                f"correlation could not read or write the store: {first_line(exc)}"
            ) from exc

    def book(self, accounts: Sequence[Account]) -> Book:
        """What a correlation pass runs over: these accounts, the config's rules and the
        watchers' and sources' health (blocking: run in a thread)."""
        return Book(
            config=self.config,
            rules=self.rules,
            accounts=accounts,
            # A watcher or source removed from the config has no ops alert: its old one
            # resolves.
            watchers=self.watcher_health(),
            sources=self.source_health(),
        )

    def _reconcile(self, accounts: list[Account], now: datetime) -> CorrelationOutcome:
        book, keep, told = self.book(accounts), self.keep_told, self.on_told
        helper = self.pass_worker.helper(self.store, book, now, self._workers.pool, keep=keep,
                                         tell=told is not None)  # fmt: skip
        done = run_pass(self.store, book, now, batch=self.batch_accounts, keep=keep, told=told,
                        helper=helper)  # fmt: skip
        if done.refused:
            log.info(
                "correlation: %d alerts changed by someone else during the pass, left for "
                "the next pass: %s",
                len(done.refused),
                ", ".join(done.refused[:10]),
            )
        counts = self.store.alert_counts().items()
        open_alerts = sum(n for (state, _, _), n in counts if state != AlertState.RESOLVED)
        return CorrelationOutcome(
            accounts=done.accounts,
            open_alerts=open_alerts,
            notices=tuple(done.notices),
            enqueued=done.enqueued,
            written=done.written,
            refused=tuple(sorted(done.refused)),
            changed=tuple(done.changed),
        )

    # --- delivery -----------------------------------------------------------------------

    async def deliver(self) -> DeliveryStats:
        """Send what is due in the outbox."""
        return await self.delivery.drain()

    async def cycle(self) -> tuple[list[RunOutcome], CorrelationOutcome, DeliveryStats]:
        """Everything once: accounts, every watcher, correlation, delivery. A store that
        fails on the way is a StoreError (a watcher run's own failures are its outcome)."""
        try:
            await self.load_accounts(workers=True)
            outcomes = await self.run_watchers()
            correlation = await self.correlate()
            delivered = await self.deliver()
        except SQLAlchemyError as exc:
            raise StoreError(f"the store failed during the cycle: {first_line(exc)}") from exc
        return outcomes, correlation, delivered


def _printable(text: str | None) -> str | None:
    return None if text is None else text.replace("\x00", "\\x00")
