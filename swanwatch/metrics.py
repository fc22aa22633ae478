"""Prometheus metrics, health and readiness: what ops look at to know Swanwatch does its job.

Two kinds of metrics, exposed together on ``/metrics`` (prometheus_client, text format):

- **Events this process saw** (:class:`Metrics`, a registry per app): counters and
  histograms incremented where the events happen. The engine calls
  :meth:`Metrics.observe_run` after each watcher run; the delivery worker
  :meth:`Metrics.observe_delivery` after each send and :meth:`Metrics.dead_letter` when it
  gives a notification up. Each replica counts its own: a sum across replicas is right.
- **The store's state** (:func:`read_store`, at scrape time): gauges about alerts, the
  outbox and watchers, exported by the leader only (or by a process running alone), so
  that a sum across replicas counts each once. Every replica exports its own
  ``swanwatch_leader`` and ``swanwatch_store_up``; a store that does not answer gives
  ``swanwatch_store_up 0``, never an error page.

docs/operations.md lists every metric, with example alert rules.
"""

from __future__ import annotations

import asyncio
import hashlib
import platform
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from swanwatch.config import Config
from swanwatch.errors import SwanwatchError
from swanwatch.model import AlertState
from swanwatch.store import Store
from swanwatch.store.health import first_line, oldest_due_at

T = TypeVar("T")

#: Watcher run durations, in seconds: from a quick file read to a slow crawl.
RUN_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
#: Content type of the text exposition.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def swanwatch_version() -> str:
    try:
        return version("swanwatch")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def config_digest(config: Config) -> str:
    """A hash of the effective config (secrets are masked in it, so they do not count)."""
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()


class Metrics:
    """This process's counters, histograms and gauges, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()

        def counter(name: str, doc: str, label: str) -> Counter:
            return Counter(name, doc, [label], registry=r)

        self.runs = counter("swanwatch_watcher_runs", "Watcher runs.", "watcher")
        self.failures = counter("swanwatch_watcher_failures", "Failed watcher runs.", "watcher")
        self.duration = Histogram(
            "swanwatch_watcher_run_duration_seconds",
            "How long watcher runs take.",
            ["watcher"],
            buckets=RUN_BUCKETS,
            registry=r,
        )
        self.unknowns = counter(
            "swanwatch_watcher_unknowns",
            "Accounts a watcher could not judge, summed over its runs.",
            "watcher",
        )
        self.raised = counter("swanwatch_signals_raised", "Signals raised (new or back).", "kind")
        self.cleared = counter("swanwatch_signals_cleared", "Signals cleared.", "kind")
        self.attempts = counter(
            "swanwatch_delivery_attempts", "Notifications sent or tried.", "channel"
        )
        self.successes = counter("swanwatch_delivery_successes", "Notifications sent.", "channel")
        self.failed = counter("swanwatch_delivery_failures", "Failed sends.", "channel")
        self.dead = counter(
            "swanwatch_delivery_dead_letters", "Notifications given up on.", "channel"
        )
        self.config_hash = Gauge(
            "swanwatch_config_hash", "The loaded config's hash (48 bits).", registry=r
        )
        self.reload_ok = Gauge(
            "swanwatch_config_last_reload_successful",
            "1 when the last config (re)load succeeded, 0 when it was refused.",
            registry=r,
        )
        self.reload_time = Gauge(
            "swanwatch_config_last_reload_success_timestamp_seconds",
            "When the config was last loaded successfully (Unix time).",
            registry=r,
        )
        build = Gauge("swanwatch_build_info", "Always 1.", ["version", "python"], registry=r)
        build.labels(swanwatch_version(), platform.python_version()).set(1)
        ProcessCollector(registry=r)
        self._watchers: set[str] = set()

    def observe_run(
        self,
        watcher: str,
        *,
        ok: bool,
        seconds: float,
        unknowns: int,
        raised: Iterable[str] = (),
        cleared: Iterable[str] = (),
    ) -> None:
        """A watcher run finished: ``raised`` and ``cleared`` are the kinds of its signals."""
        self._watchers.add(watcher)
        self.runs.labels(watcher).inc()
        if not ok:
            self.failures.labels(watcher).inc()
        self.duration.labels(watcher).observe(seconds)
        self.unknowns.labels(watcher).inc(unknowns)
        for kind in raised:
            self.raised.labels(kind).inc()
        for kind in cleared:
            self.cleared.labels(kind).inc()

    def observe_delivery(self, channel: str, ok: bool, count: int = 1) -> None:
        """A send on ``channel`` (of ``count`` notifications, a batch) succeeded or failed."""
        self.attempts.labels(channel).inc(count)
        (self.successes if ok else self.failed).labels(channel).inc(count)

    def dead_letter(self, channel: str, count: int = 1) -> None:
        self.dead.labels(channel).inc(count)

    def config_loaded(self, config: Config, at: datetime) -> None:
        self.config_hash.set(int(config_digest(config)[:12], 16))
        self.reload_ok.set(1)
        self.reload_time.set(at.timestamp())

    def config_refused(self) -> None:
        self.reload_ok.set(0)

    def forget_watchers(self, keep: Iterable[str]) -> None:
        """Drop the series of watchers no longer configured."""
        kept = set(keep)
        for name in self._watchers - kept:
            for metric in (self.runs, self.failures, self.duration, self.unknowns):
                metric.remove(name)
        self._watchers &= kept


@dataclass
class DaemonState:
    """What the daemon tells the HTTP endpoint about itself."""

    started: bool = False
    leading: bool = False
    stopping: bool = False
    #: Alone on its store (no daemon, no replicas): it reports the store's gauges itself.
    standalone: bool = False
    #: Set while this replica led and could not confirm its lock: /healthz fails.
    leadership_problem: str | None = None
    problems: list[str] = field(default_factory=list)
    replica: str = ""
    #: The configured watcher instances (the store's gauges show only these).
    watchers: tuple[str, ...] = ()
    metrics: Metrics = field(default_factory=Metrics)
    #: Re-read the config (the daemon's); returns why it was refused, empty when applied.
    reload: Callable[[], Awaitable[list[str]]] | None = None

    @property
    def reports_store(self) -> bool:
        return self.leading or self.standalone


@dataclass(frozen=True)
class StoreReading:
    """The store's state at a scrape (only what the leader reports)."""

    up: bool
    error: str = ""
    families: tuple[Metric, ...] = ()


def _gauge(
    name: str, doc: str, labels: Sequence[str], rows: Iterable[tuple[Sequence[str], float]]
) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    for values, value in rows:
        family.add_metric(list(values), value)
    return family


def read_store(store: Store, state: DaemonState, now: datetime) -> StoreReading:
    """The store's gauges (when this process reports them), or why the store is down."""
    try:
        if not state.reports_store:
            return StoreReading(up=store.ping())
        return StoreReading(up=True, families=tuple(_store_families(store, state, now)))
    except (SQLAlchemyError, SwanwatchError, OSError) as exc:
        return StoreReading(up=False, error=first_line(exc))


def _store_families(store: Store, state: DaemonState, now: datetime) -> list[Metric]:
    statuses = store.watcher_statuses()
    shown = sorted(n for n in statuses if not state.watchers or n in state.watchers)
    outbox = store.outbox_counts()
    oldest = oldest_due_at(store.engine, now)
    return [
        _gauge(
            "swanwatch_watcher_last_success_timestamp_seconds",
            "When each watcher last succeeded (Unix time).",
            ["watcher"],
            [
                ((n,), ts.timestamp())
                for n in shown
                if (ts := statuses[n].last_success_at) is not None
            ],
        ),
        _gauge(
            "swanwatch_watcher_consecutive_failures",
            "Failed runs in a row per watcher.",
            ["watcher"],
            [((n,), statuses[n].consecutive_failures) for n in shown],
        ),
        _gauge(
            "swanwatch_signals_active",
            "Active signals per kind.",
            ["kind"],
            [((k,), n) for k, n in sorted(store.signal_counts().items())],
        ),
        _gauge(
            "swanwatch_open_alerts",
            "Open (not resolved) alerts per state, severity and whether muted.",
            ["state", "severity", "muted"],
            [
                ((st, sev, str(m).lower()), n)
                for (st, sev, m), n in sorted(store.alert_counts().items())
                if st != AlertState.RESOLVED
            ],
        ),
        _gauge(
            "swanwatch_outbox_notifications",
            "Notifications in the outbox per status (pending is the depth, dead the dead letters).",
            ["status"],
            [((s,), n) for s, n in sorted(outbox.items())],
        ),
        _gauge(
            "swanwatch_outbox_oldest_pending_age_seconds",
            "How long the longest-waiting due notification has waited (0 when none).",
            [],
            [((), max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)],
        ),
    ]


def exposition(state: DaemonState, reading: StoreReading) -> bytes:
    """``/metrics``: this process's metrics, then the store's."""
    scrape = CollectorRegistry()
    scrape.register(_Fixed(state, reading))
    return generate_latest(state.metrics.registry) + generate_latest(scrape)


class _Fixed(Collector):
    def __init__(self, state: DaemonState, reading: StoreReading) -> None:
        self.state = state
        self.reading = reading

    def collect(self) -> Iterable[Metric]:
        yield _gauge(
            "swanwatch_leader",
            "1 on the replica that runs the watchers (and reports the store's gauges).",
            [],
            [((), 1 if self.state.leading else 0)],
        )
        yield _gauge(
            "swanwatch_store_up", "1 when the store answers.", [], [((), int(self.reading.up))]
        )
        yield from self.reading.families


class StoreCall:
    """A blocking store call off the event loop, with a deadline, one at a time: callers
    that come while one is under way wait for its answer, so a frozen store ties up one
    thread rather than one per request."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._pending: asyncio.Future[Any] | None = None

    async def __call__(self, fn: Callable[[], T]) -> T:
        """``fn()``'s result; TimeoutError when it does not answer within the deadline."""
        if self._pending is None or self._pending.done():
            self._pending = asyncio.ensure_future(asyncio.to_thread(fn))
        result: T = await asyncio.wait_for(asyncio.shield(self._pending), self.timeout_s)
        return result


def state_problems(state: DaemonState) -> list[str]:
    """Why this replica is not ready, as far as its own state tells (no I/O)."""
    problems = list(state.problems)
    if not state.started:
        problems.append("the scheduler has not started")
    if state.stopping:
        problems.append("stopping")
    return problems
