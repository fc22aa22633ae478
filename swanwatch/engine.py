"""The engine: one cycle of the flow, accounts -> watchers -> signals -> alerts -> outbox.

The daemon schedules its steps, ``run --once`` and the demo call them in turn; both use
the same code. Each watcher run is isolated: an exception or a timeout is that run's
failure (logged with its traceback, counted and stored), never the others'.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import httpx

from swanwatch import plugins
from swanwatch.accounts import build_sources, read_accounts
from swanwatch.alerts import Notice, muter, reconcile, retire
from swanwatch.clock import Clock
from swanwatch.config import Config, WatcherConfig, all_rules
from swanwatch.correlate import (
    Candidate,
    alert_fingerprint,
    assess_all,
    candidates,
    inhibitions,
)
from swanwatch.delivery import (
    OPS_ACCOUNT,
    DeliveryStats,
    DeliveryWorker,
    outbox_entries,
    repeat_after,
)
from swanwatch.errors import SourceError
from swanwatch.interfaces import StateMap, WatchContext, Watcher
from swanwatch.model import Account, AlertState, Severity, Signal, WatcherRun
from swanwatch.store import Store

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
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.replay = replay
        self.progress = progress
        self.sources = build_sources(config)
        self.rules = all_rules(config)
        self.delivery = DeliveryWorker(config, store, clock)
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
        error: str | None = None
        trace: str | None = None
        signals: list[Signal] = []
        state = StateMap()
        unknowns: list[tuple[str, str, str]] = []
        try:
            if accounts is None:
                looked_at = await (self.load_accounts() if refresh_accounts else self.accounts())
            else:
                looked_at = list(accounts)
            state = StateMap(await asyncio.to_thread(self.store.load_state, spec.instance))
            ctx = WatchContext(
                instance=spec.instance,
                clock=self.clock,
                http=self.http,
                log=logging.getLogger(f"swanwatch.watcher.{spec.instance}"),
                accounts=looked_at,
                state=state,
                sources=self.sources,
                executor=self._executor,
                replay=self.replay,
                unknowns=unknowns,
            )
            watcher = self.watcher(spec)
            signals = await asyncio.wait_for(
                self._collect(watcher, ctx), spec.timeout.total_seconds()
            )
        except TimeoutError:
            error = f"timed out after {spec.timeout.total_seconds():g} s"
            trace = traceback.format_exc()
            log.error("watcher %s %s", spec.instance, error)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # isolation: one watcher's failure is its own
            error = f"{type(exc).__name__}: {exc}"
            trace = traceback.format_exc()
            log.error("watcher %s failed: %s", spec.instance, error, exc_info=exc)
        raised: tuple[Signal, ...] = ()
        cleared = 0
        if error is None:
            now = self.clock.now()
            scope = None if accounts is None else [a.id for a in accounts]
            changes = await asyncio.to_thread(
                self.store.record_signals, spec.instance, signals, now, scope=scope
            )
            new = set(changes.raised)
            raised = tuple(s for s in signals if s.fingerprint in new)
            cleared = len(changes.cleared)
            await asyncio.to_thread(
                partial(self.store.record_unknowns, scope=scope), spec.instance, unknowns, now
            )
            changed, deleted = state.changes()
            if changed or deleted:
                await asyncio.to_thread(self.store.save_state, spec.instance, changed, deleted, now)
        run = WatcherRun(
            instance=spec.instance,
            started_at=started,
            finished_at=max(self.clock.now(), started),
            ok=error is None,
            signals=len(signals),
            unknowns=len(unknowns),
            error=error,
            traceback=trace,
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
        if self.progress is not None:
            self.progress(spec.instance, "done", run.signals)
        return RunOutcome(run=run, raised=raised, cleared=cleared)

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
        existing = {a.fingerprint: a for a in self.store.alerts()}
        account_alerts = {fp: a for fp, a in existing.items() if a.account_id != OPS_ACCOUNT}
        current = {a.id for a in accounts}
        # An account that left the account list takes its open alerts with it, quietly.
        gone = [
            retire(a, now)
            for a in account_alerts.values()
            if a.open and a.account_id not in current
        ]
        wanted = candidates(assessments, now)
        silences = self.store.silences(active_at=now)
        result = reconcile(
            account_alerts,
            wanted,
            now,
            hold_down=cfg.correlation.resolve_hold_down,
            repeat_interval=cfg.notify.repeat_interval,
            repeat_after=repeat_after(cfg.notify),
            flap_window=cfg.correlation.flap_window,
            muted=muter(silences, inhibitions(wanted), now),
            scope=[a.id for a in accounts],
        )
        ops_alerts = {fp: a for fp, a in existing.items() if a.account_id == OPS_ACCOUNT}
        ops = reconcile(
            ops_alerts,
            self._ops_candidates(now),
            now,
            hold_down=timedelta(0),
            repeat_interval=cfg.notify.repeat_interval,
            repeat_after=repeat_after(cfg.notify),
            muted=muter(silences, {}, now),
        )
        notices: list[Notice] = [*result.notices, *ops.notices]
        entries = outbox_entries(notices, cfg, now, {a.id: a for a in accounts})
        enqueued = self.store.save_alerts([*gone, *result.changed, *ops.changed], entries)
        open_alerts = sum(
            n
            for (state, _severity, _muted), n in self.store.alert_counts().items()
            if state != AlertState.RESOLVED
        )
        return CorrelationOutcome(
            accounts=len(assessments),
            open_alerts=open_alerts,
            notices=tuple(notices),
            enqueued=enqueued,
        )

    def _ops_candidates(self, now: datetime) -> list[Candidate]:
        """An ops alert for each watcher that has failed N runs in a row."""
        limit = self.config.daemon.failure_alert_after
        out = []
        for name, status in self.store.watcher_statuses().items():
            if status.consecutive_failures < limit:
                continue
            rule = f"watcher_failing:{name}"
            last_ok = status.last_success_at.isoformat() if status.last_success_at else "never"
            out.append(
                Candidate(
                    fingerprint=alert_fingerprint(OPS_ACCOUNT, rule),
                    account_id=OPS_ACCOUNT,
                    rule=rule,
                    title=f"Watcher {name} is failing",
                    severity=Severity.HIGH,
                    score=1.0,
                    contributions=(),
                    why_now=(
                        f"{status.consecutive_failures} runs in a row failed; last success: "
                        f"{last_ok}.",
                        f"Last error: {status.last_error}",
                    ),
                    play=(
                        f"Ops: run `swanwatch watchers runs {name}` for the tracebacks and fix "
                        "the cause; until then its signals are not refreshed.",
                    ),
                    at_stake={"watcher": name},
                )
            )
        return out

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
