"""Replay history on a simulated clock: the same engine, watchers and rules as the daemon.

At each step the clock is set to the simulated now; sources yield only rows dated at or
before it (no look-ahead: a source that keeps no history is refused before the replay starts,
see :mod:`swanwatch.sources.history`), the historical watchers run, correlation runs, and
whatever the daemon would have told (new signals, alert notices) comes out as events.
Watchers that need live lookups (``historical = False``) are left out: the past cannot be
looked up again.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from swanwatch import plugins
from swanwatch.alerts import Notice
from swanwatch.clock import FrozenClock
from swanwatch.config import Config, StoreConfig, WatcherConfig
from swanwatch.engine import Engine
from swanwatch.errors import SwanwatchError
from swanwatch.model import Alert, NoticeEvent, Severity
from swanwatch.replay_accounts import AccountMemo
from swanwatch.replay_findings import FindingsMemo
from swanwatch.sources.history import require_history
from swanwatch.sources.read_once import read_once
from swanwatch.store import Store

log = logging.getLogger("swanwatch.backtest")

#: Alert notices that are news in a replay (repeats and resolutions are not new risks).
ALERT_EVENTS = frozenset({NoticeEvent.FIRING, NoticeEvent.ESCALATED})


@dataclass(frozen=True)
class Event:
    """One line of backtest output: a signal raised or an alert told, at a simulated time."""

    type: str
    at: datetime
    account: str
    name: str
    severity: Severity
    score: float
    summary: str

    def as_json(self) -> dict[str, Any]:
        key = "kind" if self.type == "signal" else "rule"
        return {
            "type": self.type,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "account": self.account,
            key: self.name,
            "severity": str(self.severity),
            "score": round(self.score, 4),
            "summary": self.summary,
        }


def signal_severity(strength: float) -> Severity:
    """A signal's strength read as a severity, for the backtest's output."""
    if strength >= 0.9:
        return Severity.CRITICAL
    if strength >= 0.6:
        return Severity.HIGH
    if strength >= 0.3:
        return Severity.WARNING
    return Severity.INFO


def replayable(config: Config) -> tuple[list[WatcherConfig], list[str]]:
    """The watcher instances a replay can run, and the names of those it leaves out."""
    keep, skipped = [], []
    for spec in config.active_watchers():
        if plugins.watcher_class(spec.type).historical:
            keep.append(spec)
        else:
            skipped.append(spec.instance)
    return keep, skipped


async def replay(
    config: Config,
    start: datetime,
    end: datetime,
    step: timedelta,
    *,
    store_dir: str | Path | None = None,
    on_step: Callable[[datetime, int], None] | None = None,
    incremental: bool = True,
) -> AsyncIterator[Event]:
    """Yield the events of a replay from ``start`` to ``end`` (inclusive), every ``step``.

    ``incremental`` (the default) reads each source once and serves every step from
    memory (:mod:`swanwatch.sources.read_once`); False re-reads every source at every
    step, as replays did before: the same events, kept to prove it.
    """
    if end < start:
        raise SwanwatchError(f"--end {end:%Y-%m-%d} is before --start {start:%Y-%m-%d}")
    if step <= timedelta(0):
        raise SwanwatchError("--step must be longer than zero")
    specs, skipped = replayable(config)
    if skipped:
        log.warning("left out of the replay (they need live lookups): %s", ", ".join(skipped))
    with tempfile.TemporaryDirectory(prefix="swanwatch-replay-", dir=store_dir) as tmp:
        url = f"sqlite:///{Path(tmp) / 'replay.db'}"
        replay_config = config.model_copy(update={"store": StoreConfig(url=url)})
        if incremental:  # the watchers read the sources held here, in this process
            daemon = config.daemon.model_copy(update={"watcher_processes": 0})
            replay_config = replay_config.model_copy(update={"daemon": daemon})
        store = Store(url, scratch=incremental)
        clock = FrozenClock(start)
        try:
            async with Engine(
                replay_config, store, clock, replay=True, replayers=incremental
            ) as engine:
                if incremental:
                    engine.sources = read_once(engine.sources)
                    engine.account_reader = AccountMemo().read_accounts
                    engine.findings_memo = FindingsMemo()
                    engine.health_memo = {}
                kept = require_history(config, engine.sources, specs)
                log.info("no look-ahead: %s", "; ".join(h.describe() for h in kept))
                now, index = start, 0
                while now <= end:
                    clock.set(now)
                    async for event in _step(engine, specs, now):
                        yield event
                    if on_step is not None:
                        on_step(now, index)
                    now, index = now + step, index + 1
        finally:
            store.close()


async def _step(
    engine: Engine, specs: Sequence[WatcherConfig], now: datetime
) -> AsyncIterator[Event]:
    """One simulated step: the accounts as of ``now``, the watchers, correlation; the
    signals raised and the alerts told."""
    await engine.load_accounts()
    for outcome in await engine.run_watchers(specs):
        if not outcome.run.ok:
            log.warning(
                "%s: watcher %s failed: %s",
                now.isoformat(),
                outcome.run.instance,
                outcome.run.error,
            )
        for s in outcome.raised:
            severity = signal_severity(s.strength)
            yield Event("signal", now, s.account_id, s.kind, severity, s.strength, s.summary)
    correlation = await engine.correlate()
    for event in alert_events(correlation.notices, correlation.changed, now):
        yield event


def alert_events(notices: Iterable[Notice], changed: Iterable[Alert], now: datetime) -> list[Event]:
    """The alert lines of one simulated step: an alert told (firing or escalated) under the
    rule that names it, and each rule that joined an open account alert at this step (a
    further reason is told nothing, but it held: review judges every rule)."""
    out: dict[tuple[str, str], Event] = {}
    for notice in notices:
        a = notice.alert
        if notice.event in ALERT_EVENTS:
            out[(a.account_id, a.rule)] = Event(
                "alert", now, a.account_id, a.rule, a.severity, a.score, a.title
            )
    for a in changed:
        for r in a.reasons:
            if (
                a.open
                and a.muted_by is None
                and r.since == now
                and (a.account_id, r.rule) not in out
            ):
                out[(a.account_id, r.rule)] = Event(
                    "alert", now, a.account_id, r.rule, r.severity, a.score, r.title
                )
    return list(out.values())
