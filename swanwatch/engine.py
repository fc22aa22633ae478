"""The engine: one cycle of the flow, accounts -> watchers -> signals -> alerts -> outbox.

The daemon schedules its steps, ``run --once`` and the demo call them in turn; both use
the same code. Each watcher run is isolated: an exception or a timeout is that run's
failure (logged with its traceback, counted and stored), never the others'. A correlation
pass is ``assess_all`` (correlate), :func:`swanwatch.alerts.decide` (the lifecycle and the
notices due), ``outbox_entries`` and one ``save_alerts``: one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

import httpx

from swanwatch import plugins
from swanwatch.accounts import build_sources, read_accounts
from swanwatch.alerts import Notice, decide
from swanwatch.clock import Clock
from swanwatch.config import Config, WatcherConfig, all_rules
from swanwatch.correlate import assess_all
from swanwatch.delivery import DeliveryStats, DeliveryWorker, outbox_entries
from swanwatch.errors import SourceError
from swanwatch.interfaces import StateMap, WatchContext, Watcher
from swanwatch.model import Account, AlertState, Signal, WatcherRun
from swanwatch.store import Store

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


@dataclass
class _Seen:
    """What one watcher run saw, or why it failed."""

    signals: list[Signal] = field(default_factory=list)
    state: StateMap = field(default_factory=StateMap)
    unknowns: list[tuple[str, str, str]] = field(default_factory=list)
    error: str | None = None
    trace: str | None = None


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
        self._accounts: list[Account] | None = None
        self._accounts_lock = asyncio.Lock()
        self._correlate_lock = asyncio.Lock()

    async def __aenter__(self) -> Engine:
        self._http = httpx.AsyncClient(
            timeout=self.config.daemon.http_timeout.total_seconds(),
            headers={"User-Agent": "swanwatch/0.1 (+https://github.com/swanwatch)"},
            follow_redirects=True,
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

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError("use the engine as `async with Engine(...)`")
        return self._http

    # --- accounts -----------------------------------------------------------------------

    async def load_accounts(self) -> list[Account]:
        """Read the accounts source, store the list, and keep it for this cycle."""
        async with self._accounts_lock:
            source = self.sources[self.config.accounts.source]
            until = self.clock.now() if self.replay else None
            accounts = (await read_accounts(source, until)).accounts
            if not accounts:
                raise SourceError(f"accounts source {source.instance!r} gave no accounts")
            listed = sorted(accounts.values(), key=lambda a: a.id)
            await asyncio.to_thread(self.store.upsert_accounts, listed, self.clock.now())
            self._accounts = listed
            return listed

    async def accounts(self) -> list[Account]:
        return self._accounts if self._accounts is not None else await self.load_accounts()

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
        timeout) is this run's failure: stored with its traceback and counted towards the
        ops alert, never an exception out of here.

        ``accounts`` runs the watcher over these accounts only (a shard): it then clears
        only their signals and unknowns, and the instance's others stay as they are.
        """
        started = self.clock.now()
        t0 = time.monotonic()
        seen = await self._watch(spec, refresh_accounts, accounts)
        raised: tuple[Signal, ...] = ()
        cleared = 0
        cleared_kinds: tuple[str, ...] = ()
        if seen.error is None:
            raised, cleared_kinds = await self._store_findings(spec, seen, accounts)
            cleared = len(cleared_kinds)
        run = WatcherRun(
            instance=spec.instance,
            started_at=started,
            finished_at=max(self.clock.now(), started),
            ok=seen.error is None,
            signals=len(seen.signals),
            unknowns=len(seen.unknowns),
            error=seen.error,
            traceback=seen.trace,
        )
        await asyncio.to_thread(self.store.record_run, run)
        log.info(
            "watcher %s: %s, %d signals (%d new, %d cleared), %d unknown, %.2f s",
            spec.instance,
            "ok" if run.ok else "FAILED",
            run.signals,
            len(raised),
            cleared,
            run.unknowns,
            time.monotonic() - t0,
        )
        if self.metrics is not None:
            kinds = [s.kind for s in raised]
            self.metrics.observe_run(
                spec.instance,
                ok=run.ok,
                seconds=time.monotonic() - t0,
                unknowns=run.unknowns,
                raised=kinds,
                cleared=cleared_kinds,
            )
        if self.progress is not None:
            self.progress(spec.instance, "done", run.signals)
        return RunOutcome(run=run, raised=raised, cleared=cleared)

    async def _watch(
        self, spec: WatcherConfig, refresh_accounts: bool, accounts: Sequence[Account] | None
    ) -> _Seen:
        """Run the watcher; any failure on the way is the run's, kept in what it saw."""
        seen = _Seen()
        try:
            if accounts is None:
                looked_at = await (self.load_accounts() if refresh_accounts else self.accounts())
            else:
                looked_at = list(accounts)
            seen.state = StateMap(await asyncio.to_thread(self.store.load_state, spec.instance))
            ctx = WatchContext(
                instance=spec.instance,
                clock=self.clock,
                http=self.http,
                log=logging.getLogger(f"swanwatch.watcher.{spec.instance}"),
                accounts=looked_at,
                state=seen.state,
                sources=self.sources,
                executor=self._executor,
                replay=self.replay,
                unknowns=seen.unknowns,
            )
            seen.signals = await asyncio.wait_for(
                self._collect(self.watcher(spec), ctx), spec.timeout.total_seconds()
            )
        except TimeoutError:
            seen.error = f"timed out after {spec.timeout.total_seconds():g} s"
            seen.trace = traceback.format_exc()
            log.error("watcher %s %s", spec.instance, seen.error)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # isolation: one watcher's failure is its own
            seen.error = f"{type(exc).__name__}: {exc}"
            seen.trace = traceback.format_exc()
            log.error("watcher %s failed: %s", spec.instance, seen.error, exc_info=exc)
        return seen

    async def _store_findings(
        self, spec: WatcherConfig, seen: _Seen, accounts: Sequence[Account] | None
    ) -> tuple[tuple[Signal, ...], tuple[str, ...]]:
        """Store a good run's signals, unknowns and state; returns the signals raised and
        the kinds of those cleared."""
        now = self.clock.now()
        scope = None if accounts is None else [a.id for a in accounts]
        changes = await asyncio.to_thread(
            self.store.record_signals, spec.instance, seen.signals, now, scope=scope
        )
        new = set(changes.raised)
        raised = tuple(s for s in seen.signals if s.fingerprint in new)
        await asyncio.to_thread(
            partial(self.store.record_unknowns, scope=scope), spec.instance, seen.unknowns, now
        )
        changed, deleted = seen.state.changes()
        if changed or deleted:
            await asyncio.to_thread(self.store.save_state, spec.instance, changed, deleted, now)
        return raised, changes.cleared_kinds

    async def _collect(self, watcher: Watcher, ctx: WatchContext) -> list[Signal]:
        known = {a.id for a in ctx.accounts}
        out: list[Signal] = []
        stream: AsyncIterator[Signal] = watcher.watch(ctx)
        async for signal in stream:
            if not isinstance(signal, Signal):
                raise TypeError(f"watch() yielded {type(signal).__name__}, not a Signal")
            if signal.account_id not in known:
                log.warning(
                    "watcher %s: signal %s for unknown account %r dropped",
                    ctx.instance,
                    signal.kind,
                    signal.account_id,
                )
                continue
            out.append(signal.model_copy(update={"watcher": ctx.instance}))
            if self.progress is not None and len(out) % 1000 == 0:
                self.progress(ctx.instance, "signals", len(out))
        return out

    async def run_watchers(self, specs: Sequence[WatcherConfig] | None = None) -> list[RunOutcome]:
        """Run watchers concurrently, each exactly once."""
        chosen = list(specs) if specs is not None else self.config.active_watchers()
        await self.accounts()
        return list(await asyncio.gather(*(self.run_watcher(s) for s in chosen)))

    # --- correlation and alerts ---------------------------------------------------------

    async def correlate(self) -> CorrelationOutcome:
        """Assess every account, reconcile alerts, and enqueue the notices: one transaction."""
        async with self._correlate_lock:
            accounts = await self.accounts()
            return await asyncio.to_thread(self._correlate_sync, accounts, self.clock.now())

    def _correlate_sync(self, accounts: list[Account], now: datetime) -> CorrelationOutcome:
        cfg = self.config
        # Signals of a watcher that is no longer configured no longer count.
        configured = {w.instance for w in cfg.active_watchers()}
        signals = [s for s in self.store.signals(active_only=True) if s.watcher in configured]
        assessments = assess_all(accounts, signals, now, cfg.correlation, self.rules)
        decided = decide(
            assessments,
            self.store.alerts(),
            listed=[a.id for a in accounts],
            silences=self.store.silences(active_at=now),
            # A watcher removed from the config has no ops alert: its old one resolves.
            watchers={
                name: status
                for name, status in self.store.watcher_statuses().items()
                if name in configured
            },
            now=now,
            config=cfg,
        )
        entries = outbox_entries(decided.notices, cfg, now, {a.id: a for a in accounts})
        enqueued = self.store.save_alerts(decided.changed, entries)
        open_alerts = sum(
            n
            for (state, _severity, _muted), n in self.store.alert_counts().items()
            if state != AlertState.RESOLVED
        )
        return CorrelationOutcome(
            accounts=len(assessments),
            open_alerts=open_alerts,
            notices=tuple(decided.notices),
            enqueued=enqueued,
        )

    # --- delivery -----------------------------------------------------------------------

    async def deliver(self) -> DeliveryStats:
        """Send what is due in the outbox."""
        return await self.delivery.drain()

    async def cycle(self) -> tuple[list[RunOutcome], CorrelationOutcome, DeliveryStats]:
        """Everything once: accounts, every watcher, correlation, delivery."""
        await self.load_accounts()
        outcomes = await self.run_watchers()
        correlation = await self.correlate()
        delivered = await self.deliver()
        return outcomes, correlation, delivered
